// SPDX-License-Identifier: GPL-2.0-only
/* The etcd and ZooKeeper registries end to end: the real agent runs with
 * --registry file:... (namespaces and the topology's services) followed by
 * --registry etcd:... or zookeeper:... (a real server on 127.0.0.1), and a
 * meshed pod's traffic to a VIP follows the endpoints written there. The
 * agent also registers a meshed pod of its node (weft.io/register): reachable
 * through the VIP, gone when the agent stops cleanly, and gone by itself
 * once the lease or session times out after a SIGKILL.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "etcd_server.h"
#include "fixture.h"
#include "servers.h"
#include "sock.h"
#include "topo.h"
#include "zk_server.h"

#define DB_SVC                                                                                     \
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"db\","               \
	"\"namespace\":\"mesh\"},\"spec\":{\"clusterIP\":\"198.19.0.30\",\"ports\":[{\"port\":80," \
	"\"targetPort\":8080}]}}"
#define DB_SLICE(ip)                                                                               \
	"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":"         \
	"{\"name\":\"db-1\",\"namespace\":\"mesh\",\"labels\":{\"kubernetes.io/service-name\":"     \
	"\"db\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"" ip "\"]}],"          \
	"\"ports\":[{\"port\":8080}]}"
/* Also defined by the file registry, listed first: the file's wins. */
#define API_SVC_CONFLICT                                                                           \
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"api\","              \
	"\"namespace\":\"mesh\"},\"spec\":{\"clusterIP\":\"198.19.0.21\",\"ports\":[{\"port\":80," \
	"\"targetPort\":8080}]}}"
#define REG_SVC                                                                                    \
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"reg\","              \
	"\"namespace\":\"mesh\"},\"spec\":{\"clusterIP\":\"198.19.0.40\",\"ports\":[{\"port\":80," \
	"\"targetPort\":8080}]}}"
/* Pod b of the topology, enrolled as mesh/client-b, serving reg on :8080. */
#define POD_B                                                                                      \
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"client-b\","             \
	"\"namespace\":\"mesh\",\"annotations\":{\"weft.io/register\":\"reg:8080\"}}}"
#define NODE "node-it"
#define LOCAL_REL "endpointslices/mesh/reg-" NODE

/* One registry server and how the test writes to it. */
struct kv {
	int (*put)(const char *rel, const char *value);
	int (*del)(const char *rel);
	int (*exists)(const char *rel);		/* 1, 0, -1 */
};

static struct tetcd etcd;
static struct tzk zk;
static const struct kv *kv;
static pid_t srv[3];

static int etcd_put(const char *rel, const char *value)
{
	char key[256];

	snprintf(key, sizeof(key), "/weft-it/%s", rel);
	return tetcd_put(&etcd, key, value);
}

static int etcd_del(const char *rel)
{
	char key[256];

	snprintf(key, sizeof(key), "/weft-it/%s", rel);
	return tetcd_del(&etcd, key);
}

static int etcd_exists(const char *rel)
{
	char key[256];

	snprintf(key, sizeof(key), "/weft-it/%s", rel);
	return tetcd_get(&etcd, key, NULL, 0);
}

static int zk_put(const char *rel, const char *value)
{
	char path[256];

	snprintf(path, sizeof(path), "/weft-it/%s", rel);
	return tzk_put(&zk, path, value) == ZOK ? 0 : -1;
}

static int zk_del(const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "/weft-it/%s", rel);
	return tzk_del(&zk, path) == ZOK ? 0 : -1;
}

static int zk_exists(const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "/weft-it/%s", rel);
	return tzk_exists(&zk, path);
}

static const struct kv etcd_kv = { etcd_put, etcd_del, etcd_exists };
static const struct kv zk_kv = { zk_put, zk_del, zk_exists };

static void put(const char *rel, const char *value)
{
	cr_assert_eq(kv->put(rel, value), 0, "write %s", rel);
}

/* The registry's health in the agent's status: the second --registry. */
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

static void start_agent(void)
{
	uint64_t t0 = tproc_now_ms();

	cr_assert_eq(tenv_agent_start(&env), 0, "weft-agent did not start, see %s", env.agent_log);
	while (!registry_synced() && tproc_now_ms() - t0 < 10000)
		usleep(50000);
	cr_assert(registry_synced(), "the registry never synced, see %s", env.agent_log);
}

/* Topology, file registry, a registry server with db, reg, a conflicting
 * api and Pod client-b; the agent on both; pods a, b, c enrolled; servers
 * db-12, db-13 (in s) and pod-b (in b).
 */
static void up(const struct kv *which)
{
	uint64_t t0;

	kv = which;
	tenv_setup(&env);
	cr_assert_eq(tenv_write_registry(&env, TOPO_REGISTRY), 0);
	t0 = tproc_now_ms();
	if (kv == &etcd_kv) {
		cr_assert_eq(tetcd_start(&etcd), 0, "etcd did not start, see %s", etcd.dir);
		snprintf(env.extra_args, sizeof(env.extra_args),
			 "--registry etcd:%s --etcd-prefix /weft-it/ --etcd-lease-ttl 2 "
			 "--node-name " NODE,
			 etcd.url);
	} else {
		cr_assert_eq(tzk_start(&zk), 0, "ZooKeeper did not start, see %s", zk.dir);
		snprintf(env.extra_args, sizeof(env.extra_args),
			 "--registry zookeeper:%s/weft-it --zk-session-timeout 2000 "
			 "--node-name " NODE,
			 zk.hosts);
	}
	cr_log_info("%s started in %llu ms", kv == &etcd_kv ? "etcd" : "ZooKeeper",
		    (unsigned long long)(tproc_now_ms() - t0));
	put("services/mesh/db", DB_SVC);
	put("endpointslices/mesh/db-1", DB_SLICE("198.18.2.12"));
	put("services/mesh/api", API_SVC_CONFLICT);
	put("services/mesh/reg", REG_SVC);
	put("pods/mesh/client-b", POD_B);
	start_agent();
	fixture_enroll("a", "mesh", "client-a", "198.18.1.2");
	fixture_enroll("b", "mesh", "client-b", "198.18.3.2");
	srv[0] = tsrv_start("s", "198.18.2.12", 8080, "db-12");
	srv[1] = tsrv_start("s", "198.18.2.13", 8080, "db-13");
	srv[2] = tsrv_start("b", "198.18.3.2", 8080, "pod-b");
	for (int i = 0; i < 3; i++)
		cr_assert_gt(srv[i], 0, "server %d did not start", i);
}

static void up_etcd(void)
{
	up(&etcd_kv);
}

static void up_zk(void)
{
	up(&zk_kv);
}

static void down(void)
{
	for (int i = 0; i < 3; i++)
		tsrv_stop(srv[i]);
	/* The agent first: it deregisters from a server still there. */
	if (env.agent > 0)
		(void)tenv_agent_stop(&env);
	tetcd_stop(&etcd);
	tzk_stop(&zk);
	tenv_teardown(&env);
}

TestSuite(etcd_e2e, .init = up_etcd, .fini = down, .timeout = 120);
TestSuite(zk_e2e, .init = up_zk, .fini = down, .timeout = 120);

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

static void traffic_follows_the_registry(const char *name)
{
	char out[256];
	long took;
	int err;

	cr_assert_geq(ident_until("198.19.0.30:80", "db-12", 5000), 0, "db never answered");
	put("endpointslices/mesh/db-1", DB_SLICE("198.18.2.13"));
	took = ident_until("198.19.0.30:80", "db-13", 5000);
	cr_assert_geq(took, 0, "the VIP did not follow the endpoint changed in %s", name);
	cr_log_info("%s: endpoint changed -> traffic followed in %ld ms", name, took);
	for (int i = 0; i < 5; i++) {
		err = tsock_ident("a", "198.19.0.30:80", out, sizeof(out));
		cr_assert_eq(err, 0, "%s", strerror(-err));
		cr_assert(!strncmp(out, "db-13", 5), "answer '%s' from the old endpoint", out);
	}
	/* The file registry, listed first, keeps api at 198.19.0.20. */
	tsrv_stop(srv[0]);
	srv[0] = tsrv_start("s", "198.18.2.14", 8080, "api-1");
	cr_assert_gt(srv[0], 0);
	err = tsock_ident("a", "198.19.0.20:80", out, sizeof(out));
	cr_assert_eq(err, 0, "the file's api lost to %s's: %s", name, strerror(-err));
	cr_assert(!strncmp(out, "api-1", 5), "got '%s'", out);
	cr_assert_eq(tenv_agent_stop(&env), 0, "the agent did not exit cleanly, see %s",
		     env.agent_log);
}

Test(etcd_e2e, traffic_to_a_vip_follows_endpoints_changed_in_etcd)
{
	traffic_follows_the_registry("etcd");
}

Test(zk_e2e, traffic_to_a_vip_follows_endpoints_changed_in_zookeeper)
{
	traffic_follows_the_registry("ZooKeeper");
}

static void registered_pod(const char *name, const char *timeout)
{
	uint64_t t0;
	long took;
	int status;

	took = ident_until("198.19.0.40:80", "pod-b", 10000);
	cr_assert_geq(took, 0, "pod b, registered by its agent in %s, is not reachable", name);
	cr_assert_eq(kv->exists(LOCAL_REL), 1);

	/* A clean stop takes this node's endpoints away at once. */
	cr_assert_eq(tenv_agent_stop(&env), 0, "the agent did not exit cleanly, see %s",
		     env.agent_log);
	cr_assert_eq(kv->exists(LOCAL_REL), 0, "still registered after a clean stop");

	/* A restarted agent registers again; killed, it leaves the
	 * registration to expire by itself.
	 */
	start_agent();
	t0 = tproc_now_ms();
	while (kv->exists(LOCAL_REL) != 1 && tproc_now_ms() - t0 < 10000)
		usleep(20000);
	cr_assert_eq(kv->exists(LOCAL_REL), 1, "a restarted agent did not register again");
	cr_assert_geq(ident_until("198.19.0.40:80", "pod-b", 5000), 0);
	kill(env.agent, SIGKILL);
	waitpid(env.agent, &status, 0);
	env.agent = 0;
	t0 = tproc_now_ms();
	while (kv->exists(LOCAL_REL) == 1 && tproc_now_ms() - t0 < 10000)
		usleep(50000);
	cr_assert_eq(kv->exists(LOCAL_REL), 0, "a killed agent's endpoints did not expire");
	cr_log_info("%s: agent SIGKILLed -> registration gone in %llu ms (%s)", name,
		    (unsigned long long)(tproc_now_ms() - t0), timeout);
}

Test(etcd_e2e, a_pod_registered_by_its_agent_is_reachable_until_the_agent_goes)
{
	registered_pod("etcd", "lease TTL 2 s");
}

Test(zk_e2e, a_pod_registered_by_its_agent_is_reachable_until_the_agent_goes)
{
	registered_pod("ZooKeeper", "session timeout 2 s");
}

/* The pid of the agent answering the admin API, or 0. */
static long long admin_pid(void)
{
	json_object *o = tenv_admin_get(&env, "/v1/status"), *v;
	long long pid = 0;

	if (o && json_object_object_get_ex(o, "pid", &v))
		pid = json_object_get_int64(v);
	json_object_put(o);
	return pid;
}

/* An upgrade (a successor with --takeover) keeps this node's endpoints:
 * the key is never deleted (its create_revision stays), not even once the
 * old agent's lease has expired, since the successor wrote it again under
 * its own.
 */
Test(etcd_e2e, an_upgrade_never_deletes_this_nodes_registration)
{
	char key[256];
	int64_t rev0, rev;
	pid_t old = env.agent;
	uint64_t t0;
	int status;

	snprintf(key, sizeof(key), "/weft-it/%s", LOCAL_REL);
	cr_assert_geq(ident_until("198.19.0.40:80", "pod-b", 10000), 0);
	rev0 = tetcd_create_revision(&etcd, key);
	cr_assert_gt(rev0, 0, "not registered before the upgrade");
	cr_assert_lt(strlen(env.extra_args) + 12, sizeof(env.extra_args));
	strcat(env.extra_args, " --takeover");
	env.agent = 0;
	cr_assert_eq(tenv_agent_start(&env), 0, "successor, see %s", env.agent_log);
	t0 = tproc_now_ms();
	/* Watch through the hand-over and twice the old lease's TTL (2 s). */
	while (tproc_now_ms() - t0 < 5000) {
		rev = tetcd_create_revision(&etcd, key);
		cr_assert_eq(rev, rev0, "the registration was deleted during the upgrade (%lld -> %lld)",
			     (long long)rev0, (long long)rev);
		usleep(10000);
	}
	cr_assert_eq(admin_pid(), env.agent, "the successor never took over, see %s",
		     env.agent_log);
	cr_assert_eq(waitpid(old, &status, 0), old);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "old agent: %#x, see %s", status,
		  env.agent_log);
	cr_assert_geq(ident_until("198.19.0.40:80", "pod-b", 5000), 0);
}

/* ZooKeeper: the old agent's session closes at the hand-over and takes its
 * ephemeral znodes along; the successor creates them again. Not yet the
 * etcd guarantee (docs/lifecycle.md, "Not handed over yet"): this measures
 * the gap and asserts the registration comes back and stays.
 */
Test(zk_e2e, an_upgrade_re_creates_this_nodes_registration)
{
	uint64_t t0, gone_at = 0, back_at = 0;
	pid_t old = env.agent;
	int status;

	cr_assert_geq(ident_until("198.19.0.40:80", "pod-b", 10000), 0);
	cr_assert_eq(kv->exists(LOCAL_REL), 1, "not registered before the upgrade");
	cr_assert_lt(strlen(env.extra_args) + 12, sizeof(env.extra_args));
	strcat(env.extra_args, " --takeover");
	env.agent = 0;
	cr_assert_eq(tenv_agent_start(&env), 0, "successor, see %s", env.agent_log);
	t0 = tproc_now_ms();
	while (tproc_now_ms() - t0 < 5000) {
		int e = kv->exists(LOCAL_REL);

		if (e == 0 && !gone_at)
			gone_at = tproc_now_ms();
		if (e == 1 && gone_at && !back_at)
			back_at = tproc_now_ms();
		usleep(5000);
	}
	cr_assert_eq(kv->exists(LOCAL_REL), 1, "the successor did not register again, see %s",
		     env.agent_log);
	fprintf(stderr, "zk_e2e: upgrade: registration %s (gap %llu ms)\n",
		gone_at ? "deleted and re-created" : "never seen deleted",
		(unsigned long long)(gone_at ? back_at - gone_at : 0));
	cr_assert_eq(admin_pid(), env.agent, "the successor never took over, see %s",
		     env.agent_log);
	cr_assert_eq(waitpid(old, &status, 0), old);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "old agent: %#x, see %s", status,
		  env.agent_log);
	cr_assert_geq(ident_until("198.19.0.40:80", "pod-b", 5000), 0);
}
