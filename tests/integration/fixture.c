// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/integration/fixture.h. */
#include <criterion/criterion.h>

#include "fixture.h"
#include "topo.h"

struct tenv env;

void fixture_enroll(const char *ns, const char *k8s_ns, const char *pod, const char *ip)
{
	char out[4096];
	int rc = tenv_cni(&env, "ADD", ns, k8s_ns, pod, ip, out, sizeof(out));

	cr_assert_eq(rc, 0, "weft-cni ADD %s/%s exited %d: %s", k8s_ns, pod, rc, out);
}

void fixture_up(void)
{
	tenv_setup(&env);
	cr_assert_eq(tenv_write_registry(&env, TOPO_REGISTRY), 0, "write registry");
	cr_assert_eq(tenv_agent_start(&env), 0, "weft-agent did not start, see %s", env.agent_log);
	fixture_enroll("a", "mesh", "client-a", "198.18.1.2");
	fixture_enroll("b", "mesh", "client-b", "198.18.3.2");
	fixture_enroll("c", "plain", "client-c", "198.18.4.2");
}

void fixture_down(void)
{
	tenv_teardown(&env);
}
