// SPDX-License-Identifier: GPL-2.0-only
/* The Consul registry end to end: the real agent runs with --registry
 * file:... (namespaces and the topology's services) followed by --registry
 * consul:... (the fake Consul of tests/consul/ on 127.0.0.1), and a meshed
 * pod's traffic to a VIP given by a Consul tag follows the passing
 * instances registered there.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "consul_fake.h"
#include "fixture.h"
#include "proc.h"
#include "servers.h"
#include "sock.h"
#include "topo.h"

#define DB_TAGS "[\"weft.io/vip=198.19.0.30\",\"weft.io/port=80\"]"

static struct cfake consul;
static pid_t srv[2];

/* The Consul source's health in the agent's status: the second --registry. */
static bool registry_synced(void)
{
	json_object *st = tenv_admin_get(&env, "/v1/status"), *regs, *h;
	bool ok = false;

	if (st && json_object_object_get_ex(st, "registries", &regs) &&
	    json_object_array_length(regs) == 2 &&
	    json_object_object_get_ex(json_object_array_get_idx(regs, 1), "health", &h))
		ok = !strcmp(json_object_get_string(h), "synced");
	json_object_put(st);
	return ok;
}

static void up(void)
{
	uint64_t t0;

	tenv_setup(&env);
	cr_assert_eq(tenv_write_registry(&env, TOPO_REGISTRY), 0);
	cr_assert_eq(cfake_start(&consul, false, NULL), 0, "the fake Consul did not start");
	snprintf(env.extra_args, sizeof(env.extra_args),
		 "--registry consul:%s --consul-namespace mesh --consul-wait 5", consul.url);
	cr_assert_eq(cfake_register(&consul, "db-12", "db", "198.18.2.12", 8080, DB_TAGS), 0);
	cr_assert_eq(tenv_agent_start(&env), 0, "weft-agent did not start, see %s", env.agent_log);
	t0 = tproc_now_ms();
	while (!registry_synced() && tproc_now_ms() - t0 < 10000)
		usleep(50000);
	cr_assert(registry_synced(), "the registry never synced, see %s", env.agent_log);
	fixture_enroll("a", "mesh", "client-a", "198.18.1.2");
	srv[0] = tsrv_start("s", "198.18.2.12", 8080, "db-12");
	srv[1] = tsrv_start("s", "198.18.2.13", 8080, "db-13");
	for (int i = 0; i < 2; i++)
		cr_assert_gt(srv[i], 0, "server %d did not start", i);
}

static void down(void)
{
	for (int i = 0; i < 2; i++)
		tsrv_stop(srv[i]);
	if (env.agent > 0)
		(void)tenv_agent_stop(&env);
	cfake_stop(&consul);
	tenv_teardown(&env);
}

TestSuite(consul_e2e, .init = up, .fini = down, .timeout = 120);

/* IDENT from pod a to @vip until the answer starts with @who, for up to
 * @ms. Returns the milliseconds it took, or -1.
 */
static long ident_until(const char *vip, const char *who, uint32_t ms)
{
	uint64_t t0 = tproc_now_ms();
	char out[256];

	do {
		if (!tsock_ident("a", vip, out, sizeof(out)) && !strncmp(out, who, strlen(who)))
			return (long)(tproc_now_ms() - t0);
		usleep(20000);
	} while (tproc_now_ms() - t0 < ms);
	return -1;
}

Test(consul_e2e, traffic_to_a_vip_follows_the_passing_instances_in_consul)
{
	char out[256];
	uint64_t t0;
	long took;
	int err;

	cr_assert_geq(ident_until("198.19.0.30:80", "db-12", 5000), 0, "db never answered");
	/* The new instance first, so the service never leaves the catalog
	 * (an unknown VIP is not captured, and a connect to it hangs).
	 */
	cr_assert_eq(cfake_register(&consul, "db-13", "db", "198.18.2.13", 8080, DB_TAGS), 0);
	cr_assert_eq(cfake_deregister(&consul, "db-12"), 0);
	/* Followed once only db-13 answers, five times in a row. */
	t0 = tproc_now_ms();
	took = -1;
	for (int run = 0; tproc_now_ms() - t0 < 5000;) {
		err = tsock_ident("a", "198.19.0.30:80", out, sizeof(out));
		run = !err && !strncmp(out, "db-13", 5) ? run + 1 : 0;
		if (run == 5) {
			took = (long)(tproc_now_ms() - t0);
			break;
		}
	}
	cr_assert_geq(took, 0, "the VIP did not follow the instance changed in Consul");
	cr_log_info("consul: instance changed -> traffic followed in %ld ms", took);
	for (int i = 0; i < 5; i++) {
		err = tsock_ident("a", "198.19.0.30:80", out, sizeof(out));
		cr_assert_eq(err, 0, "%s", strerror(-err));
		cr_assert(!strncmp(out, "db-13", 5), "answer '%s' from the old instance", out);
	}
	cr_assert_eq(tenv_agent_stop(&env), 0, "the agent did not exit cleanly, see %s",
		     env.agent_log);
}
