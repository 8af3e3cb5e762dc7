// SPDX-License-Identifier: GPL-2.0-only
/* The etcd and ZooKeeper registries end to end: the real agent runs with
 * --registry file:... (namespaces and the topology's services) followed by
 * --registry etcd:... or zookeeper:... (a real server on 127.0.0.1), and a
 * meshed pod's traffic to a VIP follows the endpoints written there. The
 * agent also registers a meshed pod of its node (weft.io/register): reachable
 * through the VIP, gone when the agent stops cleanly, and gone by itself
 * once the lease or session times out after a SIGKILL; an upgrade keeps it
 * (ZooKeeper: the successor resumes the old agent's session).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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

/* Start the successor (--takeover in env.extra_args) and call @check
 * through the hand-over and for @after_ms past it. The hand-over comes
 * when the successor has loaded and adopted everything, which on a loaded
 * machine may be seconds after tenv_agent_start() returned (that returns
 * once an admin API answers, the predecessor's until then): the watch is
 * counted from the successor answering, not from its start. Returns how
 * long the successor took to answer, in ms.
 */
static uint64_t through_the_handover(void (*check)(void *ctx), void *ctx, uint32_t after_ms)
{
	uint64_t t0, took = 0, now;

	cr_assert_eq(tenv_agent_start(&env), 0, "successor, see %s", env.agent_log);
	t0 = tproc_now_ms();
	for (;;) {
		check(ctx);
		now = tproc_now_ms();
		if (!took && tenv_admin_pid(&env) == env.agent)
			took = now;
		if (took && now - took >= after_ms)
			break;
		cr_assert(took || now - t0 < 20000, "the successor never took over, see %s",
			  env.agent_log);
		usleep(10000);
	}
	return took - t0;
}

/* An upgrade (a successor with --takeover) keeps this node's endpoints:
 * the key is never deleted (its create_revision stays), not even once the
 * old agent's lease has expired, since the successor wrote it again under
 * its own.
 */
struct etcd_key {
	char key[256];
	int64_t rev0;
};

static void etcd_key_kept(void *ctx)
{
	struct etcd_key *k = ctx;
	int64_t rev = tetcd_create_revision(&etcd, k->key);

	cr_assert_eq(rev, k->rev0, "the registration was deleted during the upgrade (%lld -> %lld)",
		     (long long)k->rev0, (long long)rev);
}

Test(etcd_e2e, an_upgrade_never_deletes_this_nodes_registration)
{
	struct etcd_key k;
	pid_t old = env.agent;
	int status;

	snprintf(k.key, sizeof(k.key), "/weft-it/%s", LOCAL_REL);
	cr_assert_geq(ident_until("198.19.0.40:80", "pod-b", 10000), 0);
	k.rev0 = tetcd_create_revision(&etcd, k.key);
	cr_assert_gt(k.rev0, 0, "not registered before the upgrade");
	cr_assert_lt(strlen(env.extra_args) + 12, sizeof(env.extra_args));
	strcat(env.extra_args, " --takeover");
	env.agent = 0;
	/* Through the hand-over and twice the old lease's TTL (2 s) past it. */
	through_the_handover(etcd_key_kept, &k, 4000);
	cr_assert_eq(waitpid(old, &status, 0), old);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "old agent: %#x, see %s", status,
		  env.agent_log);
	cr_assert_geq(ident_until("198.19.0.40:80", "pod-b", 5000), 0);
}

/* Whether the agent log holds @needle. */
static bool log_has(const char *needle)
{
	char line[4096];
	bool found = false;
	FILE *f = fopen(env.agent_log, "r");

	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return found;
}

/* Print the log's lines holding @needle (the agents' own figures). */
static void log_show(const char *needle)
{
	char line[4096];
	FILE *f = fopen(env.agent_log, "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (strstr(line, needle))
			fprintf(stderr, "zk_e2e: agent: %s", line);
	}
	if (f)
		fclose(f);
}

/* The ZooKeeper client's timestamp of a log line ("... 2026-12-04
 * 11:54:38,344:...") in ms of the day, or -1.
 */
static long long client_ms(const char *line)
{
	const char *t = strstr(line, "zookeeper client: ");
	unsigned int h, m, sec, ms;

	if (!t || sscanf(t + 18, "%*d-%*d-%*d %u:%u:%u,%u", &h, &m, &sec, &ms) != 4)
		return -1;
	return ((h * 60LL + m) * 60 + sec) * 1000 + ms;
}

/* How long session @id was held by no client at the hand-over, from the
 * client library's own log lines in the agents' debug log: the old
 * agent's handle freed, then the successor's connection established on
 * that session. -1 when the lines are missing.
 */
static long long unattached_ms(unsigned long long id)
{
	char line[4096], freed[96], est[96];
	long long t_freed = -1, t_est = -1;
	FILE *f = fopen(env.agent_log, "r");

	snprintf(freed, sizeof(freed), "Freeing zookeeper resources for sessionId=%#llx", id);
	snprintf(est, sizeof(est), "sessionId=%#llx,", id);
	while (f && t_est < 0 && fgets(line, sizeof(line), f)) {
		if (t_freed < 0 && strstr(line, freed))
			t_freed = client_ms(line);
		else if (t_freed >= 0 && strstr(line, "session establishment complete") &&
			 strstr(line, est))
			t_est = client_ms(line);
	}
	if (f)
		fclose(f);
	return t_freed < 0 || t_est < 0 ? -1 : t_est - t_freed;
}

/* The ZooKeeper registry's status message (the second --registry). */
static bool registry_message_has(const char *needle)
{
	json_object *st = tenv_admin_get(&env, "/v1/status"), *regs, *m;
	bool ok = false;

	if (st && json_object_object_get_ex(st, "registries", &regs) &&
	    json_object_array_length(regs) == 2 &&
	    json_object_object_get_ex(json_object_array_get_idx(regs, 1), "message", &m))
		ok = strstr(json_object_get_string(m), needle) != NULL;
	json_object_put(st);
	return ok;
}

/* ZooKeeper registrations that must stay through a hand-over: each one's
 * creation (czxid) unchanged.
 */
struct zk_kept {
	unsigned int n;
	const char *path[2];
	struct Stat before[2];
};

static void zk_znodes_kept(void *ctx)
{
	struct zk_kept *k = ctx;
	struct Stat st;
	int rc;

	for (unsigned int i = 0; i < k->n; i++) {
		rc = tzk_stat(&zk, k->path[i], &st);
		cr_assert_eq(rc, ZOK, "%s: %s during the upgrade, see %s", k->path[i],
			     rc == ZNONODE ? "registration deleted" : zerror(rc), env.agent_log);
		cr_assert_eq(st.czxid, k->before[i].czxid, "%s: registration created again",
			     k->path[i]);
	}
}

/* An upgrade (a successor with --takeover) keeps this node's endpoints:
 * the successor resumes the old agent's ZooKeeper session, so the
 * ephemeral znode is never deleted, not even past the session timeout
 * (2 s): a separate client watching it sees no event, and its owner
 * (session), creation time and version stay. A clean stop of the
 * successor, with no successor of its own, then deletes it.
 */
Test(zk_e2e, an_upgrade_never_deletes_this_nodes_registration)
{
	unsigned int created, deleted, changed;
	struct Stat before, st;
	struct tzk_watch w;
	struct zk_kept kept;
	char path[256], session[64];
	pid_t old = env.agent;
	uint64_t t0, took;
	bool lost;
	int status;

	snprintf(path, sizeof(path), "/weft-it/%s", LOCAL_REL);
	cr_assert_geq(ident_until("198.19.0.40:80", "pod-b", 10000), 0);
	cr_assert_eq(tzk_stat(&zk, path, &before), ZOK, "not registered before the upgrade");
	cr_assert_neq(before.ephemeralOwner, 0, "not ephemeral");
	cr_assert_eq(tzk_watch_start(&zk, &w, path), 0, "cannot watch %s", path);
	cr_assert_lt(strlen(env.extra_args) + 12, sizeof(env.extra_args));
	strcat(env.extra_args, " --takeover");
	env.agent = 0;
	/* Through the hand-over and past the session timeout (2 s) after it. */
	kept.n = 1;
	kept.path[0] = path;
	kept.before[0] = before;
	took = through_the_handover(zk_znodes_kept, &kept, 3000);
	fprintf(stderr, "zk_e2e: upgrade: the successor answered %llu ms after its start\n",
		(unsigned long long)took);
	cr_assert_eq(tzk_stat(&zk, path, &st), ZOK, "the registration was deleted, see %s",
		     env.agent_log);
	cr_expect_eq(st.ephemeralOwner, before.ephemeralOwner, "another session owns it");
	cr_expect_eq(st.ctime, before.ctime);
	cr_expect_eq(st.mzxid, before.mzxid, "written again");
	tzk_watch_counts(&w, &created, &deleted, &changed, &lost);
	cr_expect_eq(deleted, 0, "the watcher saw the znode deleted");
	cr_expect_eq(created + changed, 0, "the watcher saw it created or changed");
	cr_expect(!lost, "the watcher's own session broke: events may be missed");
	snprintf(session, sizeof(session), "session 0x%llx,",
		 (unsigned long long)before.ephemeralOwner);
	cr_expect(registry_message_has(session), "the successor is not on %s", session);
	cr_assert_eq(waitpid(old, &status, 0), old);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "old agent: %#x, see %s", status,
		  env.agent_log);
	cr_assert_geq(ident_until("198.19.0.40:80", "pod-b", 5000), 0);
	log_show("let go of session");
	log_show("resumed the previous agent's session");
	fprintf(stderr, "zk_e2e: upgrade: session 0x%llx held by no client for %lld ms\n",
		(unsigned long long)before.ephemeralOwner,
		unattached_ms((unsigned long long)before.ephemeralOwner));

	/* The successor stops with nobody after it: the registration goes. */
	cr_assert_eq(tenv_agent_stop(&env), 0, "the successor did not exit cleanly, see %s",
		     env.agent_log);
	cr_expect_eq(tzk_exists(&zk, path), 0, "still registered after a clean stop");
	t0 = tproc_now_ms();
	do
		tzk_watch_counts(&w, &created, &deleted, &changed, &lost);
	while (!deleted && tproc_now_ms() - t0 < 5000 && !usleep(20000));
	cr_expect_eq(deleted, 1, "the watcher did not see the deletion");
	tzk_watch_stop(&w);
	cr_expect(!log_has("Sanitizer"), "a sanitizer reported, see %s", env.agent_log);
}

/* A successor that cannot resume the session registers anew, as agents
 * did before sessions were passed: here its --registry value is spelled
 * otherwise (the same server and root), so the session the old agent
 * passed finds no registry of that value. The znode is deleted and
 * created again by the successor's own session, and the old session,
 * which nobody resumed, expires without taking it along.
 */
Test(zk_e2e, an_upgrade_that_cannot_resume_the_session_registers_again)
{
	unsigned int created, deleted, changed;
	struct Stat before, st;
	struct tzk_watch w;
	char path[256], *root;
	pid_t old = env.agent;
	uint64_t t0, replaced;
	bool lost;
	int status;

	snprintf(path, sizeof(path), "/weft-it/%s", LOCAL_REL);
	cr_assert_geq(ident_until("198.19.0.40:80", "pod-b", 10000), 0);
	cr_assert_eq(tzk_stat(&zk, path, &before), ZOK, "not registered before the upgrade");
	cr_assert_eq(tzk_watch_start(&zk, &w, path), 0, "cannot watch %s", path);
	root = strstr(env.extra_args, "/weft-it ");
	cr_assert_not_null(root);
	memmove(root + 9, root + 8, strlen(root + 8) + 1);
	root[8] = '/';
	cr_assert_lt(strlen(env.extra_args) + 12, sizeof(env.extra_args));
	strcat(env.extra_args, " --takeover");
	env.agent = 0;
	cr_assert_eq(tenv_agent_start(&env), 0, "successor, see %s", env.agent_log);
	t0 = tproc_now_ms();
	while ((tzk_stat(&zk, path, &st) != ZOK || st.ephemeralOwner == before.ephemeralOwner) &&
	       tproc_now_ms() - t0 < 10000)
		usleep(10000);
	replaced = tproc_now_ms() - t0;
	cr_assert_eq(tzk_stat(&zk, path, &st), ZOK, "not registered again, see %s", env.agent_log);
	cr_assert_neq(st.ephemeralOwner, before.ephemeralOwner, "never re-created");
	/* Past the old session's timeout (2 s): the new znode stays. */
	usleep(3000 * 1000);
	cr_assert_eq(tzk_stat(&zk, path, &st), ZOK, "the old session took the new znode along");
	cr_expect_neq(st.ephemeralOwner, before.ephemeralOwner);
	tzk_watch_counts(&w, &created, &deleted, &changed, &lost);
	cr_expect_geq(deleted, 1, "the watcher never saw the old znode go");
	fprintf(stderr, "zk_e2e: upgrade without resuming: znode re-created %llu ms after the "
		"successor started (%u deletion(s) seen)\n",
		(unsigned long long)replaced, deleted);
	tzk_watch_stop(&w);
	cr_assert(log_has("is not a registry of this one"), "see %s", env.agent_log);
	cr_assert_eq(tenv_admin_pid(&env), env.agent, "the successor never took over, see %s",
		     env.agent_log);
	cr_assert_eq(waitpid(old, &status, 0), old);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "old agent: %#x, see %s", status,
		  env.agent_log);
	cr_assert_geq(ident_until("198.19.0.40:80", "pod-b", 5000), 0);
}

/* The hand-over as an agent of the version before sessions were passed
 * speaks it (agent/handover.c, version 1): a 16-byte header, SOCKETS
 * records of 24 bytes with one fd each; its HELLO's last word is zero.
 */
struct old_ho_msg {
	uint32_t magic, version_type, n, flags;
	uint8_t records[64 * 24];
};

static int old_ho_send(int fd, uint16_t type)
{
	struct old_ho_msg m = { .magic = 0x77656674u, .version_type = 1u | (uint32_t)type << 16 };

	return send(fd, &m, 16, MSG_NOSIGNAL) == 16 ? 0 : -1;
}

/* One message's type, closing any fds it carried; -1 on error. */
static int old_ho_recv(int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 64)];
	struct old_ho_msg m;
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

	if (n < 16)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int v;

			memcpy(&v, CMSG_DATA(c) + i * sizeof(int), sizeof(v));
			close(v);
		}
	}
	return (int)(m.version_type >> 16);
}

/* A successor of the earlier version cannot resume a session: the running
 * agent must not let go of it (nobody would attach, and the registration
 * would linger until the session timed out) nor send it what that
 * successor cannot read, but close it as before, which deletes the znode
 * at once.
 */
Test(zk_e2e, a_successor_of_an_earlier_version_gets_the_hand_over_as_before)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	pid_t old = env.agent;
	int fd, type, status;
	uint64_t t0;

	cr_assert_geq(ident_until("198.19.0.40:80", "pod-b", 10000), 0);
	cr_assert_eq(zk_exists(LOCAL_REL), 1, "not registered");
	cr_assert_lt(strlen(env.run_dir) + 15, sizeof(sun.sun_path));
	memcpy(sun.sun_path, env.run_dir, strlen(env.run_dir));
	strcat(sun.sun_path, "/handover.sock");
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0, "%s", strerror(errno));
	cr_assert_eq(old_ho_send(fd, 1 /* HELLO */), 0);
	do
		type = old_ho_recv(fd);
	while (type == 2 /* SOCKETS */);
	cr_assert_eq(type, 3 /* END */, "got %d", type);
	cr_assert_eq(old_ho_send(fd, 4 /* ADOPTED */), 0);
	type = old_ho_recv(fd);
	cr_assert_eq(type, 5 /* RELEASED */, "an earlier successor would refuse message %d", type);
	close(fd);
	/* Closed, not let go: gone long before the session timeout (2 s). */
	t0 = tproc_now_ms();
	while (zk_exists(LOCAL_REL) != 0 && tproc_now_ms() - t0 < 1000)
		usleep(10000);
	cr_assert_eq(zk_exists(LOCAL_REL), 0, "the session was not closed at the hand-over");
	cr_log_info("earlier successor: znode deleted %llu ms after RELEASED",
		    (unsigned long long)(tproc_now_ms() - t0));
	cr_assert_eq(waitpid(old, &status, 0), old);
	env.agent = 0;
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "old agent: %#x, see %s", status,
		  env.agent_log);
}

/* An agent of the earlier version as the predecessor, on @arg (a
 * listening handover.sock): no listeners to pass, and RELEASED right after
 * ADOPTED, with no REGISTRIES. Returns the HELLO's flags, or -1.
 */
static void *old_predecessor(void *arg)
{
	int lfd = *(int *)arg, fd, type = -1;
	struct old_ho_msg m;
	intptr_t flags = -1;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd == -1)
		return (void *)flags;
	if (recv(fd, &m, sizeof(m), 0) == 16 && m.version_type == (1u | 1u << 16) &&
	    !old_ho_send(fd, 3 /* END */))
		type = old_ho_recv(fd);
	if (type == 4 /* ADOPTED */ && !old_ho_send(fd, 5 /* RELEASED */))
		flags = m.flags;
	close(fd);
	return (void *)flags;
}

/* A predecessor of the earlier version passes no session (nor any
 * established connection): the successor, holding its registration until
 * the hand-over ends, then registers through its own session.
 */
Test(zk_e2e, after_a_predecessor_of_an_earlier_version_the_successor_registers)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	pthread_t t;
	void *flags;
	uint64_t t0;
	int lfd;

	cr_assert_eq(tenv_agent_stop(&env), 0, "see %s", env.agent_log);
	cr_assert_eq(zk_exists(LOCAL_REL), 0);
	cr_assert_lt(strlen(env.run_dir) + 15, sizeof(sun.sun_path));
	memcpy(sun.sun_path, env.run_dir, strlen(env.run_dir));
	strcat(sun.sun_path, "/handover.sock");
	(void)unlink(sun.sun_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0, "%s", strerror(errno));
	cr_assert_eq(listen(lfd, 1), 0);
	cr_assert_eq(pthread_create(&t, NULL, old_predecessor, &lfd), 0);
	strcat(env.extra_args, " --takeover");
	cr_assert_eq(tenv_agent_start(&env), 0, "successor, see %s", env.agent_log);
	cr_assert_eq(pthread_join(t, &flags), 0);
	close(lfd);
	/* The resume flag, and the flag asking for established connections,
	 * which this predecessor of an earlier version ignores as it ignores
	 * every flag it does not know: it sends none, and the successor goes
	 * on without them.
	 */
	cr_assert_neq((intptr_t)flags, -1, "no hand-over");
	cr_assert_eq((intptr_t)flags & 1, 1, "a HELLO without the resume flag");
	cr_assert_eq((intptr_t)flags & 2, 2, "a HELLO without the connections flag");
	t0 = tproc_now_ms();
	while (zk_exists(LOCAL_REL) != 1 && tproc_now_ms() - t0 < 10000)
		usleep(20000);
	cr_assert_eq(zk_exists(LOCAL_REL), 1, "not registered, see %s", env.agent_log);
	cr_assert_geq(ident_until("198.19.0.40:80", "pod-b", 5000), 0);
}

/* Two ZooKeeper registries (two roots, so two sessions): each passes its
 * own session, and the successor's registry of the same --registry value
 * resumes it.
 */
Test(zk_e2e, with_two_zookeeper_registries_each_session_is_resumed)
{
	char p1[256], p2[256], extra[512];
	struct Stat b1, b2, s1, s2;
	struct zk_kept kept;
	pid_t old;
	uint64_t t0;
	int status;

	snprintf(p1, sizeof(p1), "/weft-it/%s", LOCAL_REL);
	snprintf(p2, sizeof(p2), "/weft-two/%s", LOCAL_REL);
	cr_assert_eq(tenv_agent_stop(&env), 0, "see %s", env.agent_log);
	snprintf(extra, sizeof(extra), " --registry zookeeper:%s/weft-two", zk.hosts);
	cr_assert_lt(strlen(env.extra_args) + strlen(extra), sizeof(env.extra_args));
	strcat(env.extra_args, extra);
	cr_assert_eq(tenv_agent_start(&env), 0, "see %s", env.agent_log);
	t0 = tproc_now_ms();
	while ((tzk_stat(&zk, p1, &b1) != ZOK || tzk_stat(&zk, p2, &b2) != ZOK) &&
	       tproc_now_ms() - t0 < 10000)
		usleep(20000);
	cr_assert_eq(tzk_stat(&zk, p1, &b1), ZOK, "not registered under /weft-it");
	cr_assert_eq(tzk_stat(&zk, p2, &b2), ZOK, "not registered under /weft-two");
	cr_assert_neq(b1.ephemeralOwner, b2.ephemeralOwner, "one session for both");

	old = env.agent;
	strcat(env.extra_args, " --takeover");
	env.agent = 0;
	kept = (struct zk_kept){ .n = 2, .path = { p1, p2 }, .before = { b1, b2 } };
	/* Through the hand-over and past the session timeout (2 s) after it. */
	through_the_handover(zk_znodes_kept, &kept, 3000);
	cr_assert_eq(tzk_stat(&zk, p1, &s1), ZOK, "/weft-it registration deleted");
	cr_assert_eq(tzk_stat(&zk, p2, &s2), ZOK, "/weft-two registration deleted");
	cr_expect_eq(s1.ephemeralOwner, b1.ephemeralOwner);
	cr_expect_eq(s2.ephemeralOwner, b2.ephemeralOwner);
	cr_expect(!log_has("has expired"), "a passed session expired, see %s", env.agent_log);
	log_show("let go of session");
	log_show("resumed the previous agent's session");
	cr_assert_eq(waitpid(old, &status, 0), old);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "old agent: %#x, see %s", status,
		  env.agent_log);
	cr_assert_eq(tenv_agent_stop(&env), 0, "the successor did not exit cleanly, see %s",
		     env.agent_log);
	cr_expect_eq(tzk_exists(&zk, p1), 0);
	cr_expect_eq(tzk_exists(&zk, p2), 0);
}
