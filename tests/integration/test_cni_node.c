// SPDX-License-Identifier: GPL-2.0-only
/* A node that never blocks the cluster, with a real agent: the node state
 * file it writes, CNI STATUS following it, GC making it forget pods, CHECK
 * of a pod it does not know, and weft-cni deciding from the state file while
 * the agent is down.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cni_proto.h"
#include "fixture.h"
#include "topo.h"

TestSuite(cni_node, .init = fixture_up, .fini = fixture_down, .timeout = 120);

/* Run weft-cni @cmd with network config @conf (no pod environment: STATUS
 * and GC need none). Returns its exit status; its stdout in @out.
 */
static int cni_raw(const char *cmd, const char *conf, char *out, size_t len)
{
	char path[PATH_MAX + 32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/cni-raw.json", env.tmp);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(conf, f);
	fclose(f);
	return tenv_capture(out, len, "CNI_COMMAND=%s %s/san/weft-cni < %s", cmd, env.build,
			    path);
}

static bool read_state(struct cni_proto_state *st)
{
	char path[PATH_MAX + 32], buf[65536], err[128];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/" CNI_PROTO_STATE_FILE, env.run_dir);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	cr_assert_eq(cni_proto_state_decode(buf, st, err, sizeof(err)), 0, "%s: %s", err, buf);
	return true;
}

static size_t n_pods(void)
{
	json_object *pods = tenv_admin_get(&env, "/v1/pods");
	size_t n;

	cr_assert_not_null(pods);
	n = json_object_array_length(json_object_object_get(pods, "pods"));
	json_object_put(pods);
	return n;
}

Test(cni_node, the_agent_writes_which_namespaces_are_meshed)
{
	struct cni_proto_state st;
	char yaml[8192];
	const char *at = strstr(TOPO_REGISTRY, "    weft.io/mesh: enabled\n");
	bool gone = false;

	cr_assert(read_state(&st), "no %s under %s", CNI_PROTO_STATE_FILE, env.run_dir);
	cr_expect(st.synced);
	cr_expect(cni_proto_state_meshed(&st, "mesh"));
	cr_expect_not(cni_proto_state_meshed(&st, "plain"));
	cni_proto_state_done(&st);

	/* Unlabel the namespace: the file follows. */
	cr_assert_not_null(at);
	snprintf(yaml, sizeof(yaml), "%.*s%s", (int)(at - TOPO_REGISTRY), TOPO_REGISTRY,
		 at + strlen("    weft.io/mesh: enabled\n"));
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	for (int i = 0; i < 50 && !gone; i++) {
		cr_assert(read_state(&st));
		gone = !cni_proto_state_meshed(&st, "mesh");
		cni_proto_state_done(&st);
		if (!gone)
			usleep(100000);
	}
	cr_expect(gone, "namespace mesh is still listed as meshed after losing its label");
}

Test(cni_node, status_is_ready_with_the_agent_and_50_without)
{
	char conf[PATH_MAX + 128], out[4096];

	snprintf(conf, sizeof(conf),
		 "{\"cniVersion\":\"1.1.0\",\"name\":\"test\",\"agent_socket\":\"%s/cni.sock\"}",
		 env.run_dir);
	cr_expect_eq(cni_raw("STATUS", conf, out, sizeof(out)), 0, "%s", out);
	cr_assert_eq(tenv_agent_stop(&env), 0, "see %s", env.agent_log);
	cr_expect_eq(cni_raw("STATUS", conf, out, sizeof(out)), 1);
	cr_expect_not_null(strstr(out, "\"code\":50"), "%s", out);
}

Test(cni_node, gc_forgets_the_pods_not_listed)
{
	char conf[PATH_MAX + 256], out[4096];

	cr_assert_eq(n_pods(), 3);
	snprintf(conf, sizeof(conf),
		 "{\"cniVersion\":\"1.1.0\",\"name\":\"test\",\"agent_socket\":\"%s/cni.sock\","
		 "\"cni.dev/valid-attachments\":[{\"containerID\":\"ctr-client-a\",\"ifname\":"
		 "\"eth0\"},{\"containerID\":\"ctr-client-b\",\"ifname\":\"eth0\"}]}",
		 env.run_dir);
	cr_assert_eq(cni_raw("GC", conf, out, sizeof(out)), 0, "%s", out);
	cr_expect_eq(n_pods(), 2);
	cr_expect_eq(tenv_cni(&env, "CHECK", "a", "mesh", "client-a", "198.18.1.2", out,
			      sizeof(out)),
		     0, "a listed pod must stay: %s", out);
	/* A second GC with the same list changes nothing. */
	cr_assert_eq(cni_raw("GC", conf, out, sizeof(out)), 0, "%s", out);
	cr_expect_eq(n_pods(), 2);
}

Test(cni_node, check_of_a_pod_the_agent_does_not_know_fails)
{
	char out[4096];

	cr_expect_neq(tenv_cni(&env, "CHECK", "a", "mesh", "ghost", "198.18.1.2", out,
			       sizeof(out)),
		      0);
	cr_expect_not_null(strstr(out, "\"code\":3"), "%s", out);
}

Test(cni_node, with_the_agent_down_unmeshed_pods_start_and_meshed_ones_wait)
{
	char out[4096];

	cr_assert_eq(tenv_agent_stop(&env), 0, "see %s", env.agent_log);
	cr_expect_eq(tenv_cni(&env, "ADD", "c", "plain", "client-c2", "198.18.4.3", out,
			      sizeof(out)),
		     0, "a pod of an unmeshed namespace must start: %s", out);
	cr_expect_eq(tenv_cni(&env, "ADD", "c", "kube-system", "coredns", "198.18.4.4", out,
			      sizeof(out)),
		     0, "an excluded namespace's pod must start: %s", out);
	cr_expect_neq(tenv_cni(&env, "ADD", "a", "mesh", "client-a2", "198.18.1.3", out,
			       sizeof(out)),
		      0);
	cr_expect_not_null(strstr(out, "\"code\":11"), "a meshed pod must wait: %s", out);
}

Test(cni_node, while_the_agent_syncs_the_last_synced_state_decides)
{
	char conf[PATH_MAX + 128], out[4096];
	struct cni_proto_state st;

	/* A second registry that never answers (nothing listens on loopback
	 * port 9): the restarted agent stays unsynced.
	 */
	cr_assert_eq(tenv_agent_stop(&env), 0, "see %s", env.agent_log);
	snprintf(env.extra_args, sizeof(env.extra_args), "--registry etcd:http://127.0.0.1:9");
	cr_assert_eq(tenv_agent_start(&env), 0, "see %s", env.agent_log);

	cr_assert(read_state(&st));
	cr_expect_not(st.synced, "an agent that has not synced wrote synced: true");
	cr_expect(cni_proto_state_meshed(&st, "mesh"), "the last synced list must stay");
	cni_proto_state_done(&st);

	snprintf(conf, sizeof(conf),
		 "{\"cniVersion\":\"1.1.0\",\"name\":\"test\",\"agent_socket\":\"%s/cni.sock\"}",
		 env.run_dir);
	cr_expect_eq(cni_raw("STATUS", conf, out, sizeof(out)), 1, "%s", out);
	cr_expect_not_null(strstr(out, "\"code\":50"), "%s", out);

	cr_expect_eq(tenv_cni(&env, "ADD", "c", "plain", "client-c2", "198.18.4.3", out,
			      sizeof(out)),
		     0, "a pod of an unmeshed namespace must start: %s", out);
	cr_expect_neq(tenv_cni(&env, "ADD", "a", "mesh", "client-a2", "198.18.1.3", out,
			       sizeof(out)),
		      0);
	cr_expect_not_null(strstr(out, "\"code\":11"), "a meshed pod must wait: %s", out);
	/* The pods enrolled before the restart are still served. */
	cr_expect_eq(tenv_cni(&env, "CHECK", "a", "mesh", "client-a", "198.18.1.2", out,
			      sizeof(out)),
		     0, "%s", out);
}
