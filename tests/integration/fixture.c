// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/integration/fixture.h. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "servers.h"
#include "sock.h"
#include "topo.h"

struct tenv env;

static pid_t backends[5];

void fixture_backends_start(bool v6)
{
	backends[0] = tsrv_start("s", "198.18.2.11", 8080, "web-1");
	backends[1] = tsrv_start("s", "198.18.2.12", 8080, "web-2");
	backends[2] = tsrv_start("s", "198.18.2.13", 8080, "web-3");
	backends[3] = tsrv_start("s", "198.18.2.14", 8080, "api-1");
	if (v6)
		backends[4] = tsrv_start("s", "fd00:198:2::11", 8080, "web-v6");
	for (int i = 0; i < (v6 ? 5 : 4); i++)
		cr_assert_gt(backends[i], 0, "backend %d did not start", i);
}

void fixture_backends_stop(void)
{
	for (int i = 0; i < 5; i++) {
		tsrv_stop(backends[i]);
		backends[i] = 0;
	}
}

bool fixture_web_answers_from(const char *want)
{
	char out[256];

	for (int i = 0; i < 50; i++) {
		if (!tsock_ident("a", "198.19.0.10:80", out, sizeof(out)) &&
		    !strncmp(out, want, strlen(want)))
			return true;
		usleep(100000);
	}
	return false;
}

void fixture_enroll(const char *ns, const char *k8s_ns, const char *pod, const char *ip)
{
	char out[4096];
	int rc = tenv_cni(&env, "ADD", ns, k8s_ns, pod, ip, out, sizeof(out));

	cr_assert_eq(rc, 0, "weft-cni ADD %s/%s exited %d: %s", k8s_ns, pod, rc, out);
}

void fixture_up(void)
{
	fixture_up_with("");
}

void fixture_up_with(const char *extra_args)
{
	tenv_setup(&env);
	snprintf(env.extra_args, sizeof(env.extra_args), "%s", extra_args);
	cr_assert_eq(tenv_write_registry(&env, TOPO_REGISTRY), 0, "write registry");
	cr_assert_eq(tenv_agent_start(&env), 0, "weft-agent did not start, see %s", env.agent_log);
	fixture_enroll("a", "mesh", "client-a", "198.18.1.2");
	fixture_enroll("b", "mesh", "client-b", "198.18.3.2");
	fixture_enroll("c", "plain", "client-c", "198.18.4.2");
	tenv_phase("enrolled");
}

void fixture_down(void)
{
	tenv_teardown(&env);
}

void fixture_up_two_workers(void)
{
	fixture_up_with("--workers 2");
	fixture_backends_start(false);
}

void fixture_down_with_backends(void)
{
	fixture_backends_stop();
	fixture_down();
}

void fixture_registry_until(const char *yaml, const char *expect)
{
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	for (int i = 0; i < 50; i++) {
		json_object *pods = tenv_admin_get(&env, "/v1/pods");
		bool applied = pods && strstr(json_object_to_json_string_ext(
						      pods, JSON_C_TO_STRING_NOSLASHESCAPE),
					      expect);

		json_object_put(pods);
		if (applied)
			return;
		usleep(100000);
	}
	cr_assert_fail("'%s' never showed up in /v1/pods", expect);
}
