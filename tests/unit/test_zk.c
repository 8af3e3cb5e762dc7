// SPDX-License-Identifier: GPL-2.0-only
/* The ZooKeeper registry backend (agent/registry/zk*.c) against a real
 * ZooKeeper 3.8 on 127.0.0.1 (tests/helpers/zk_server.h): the initial
 * listing, changes through child and data watches (re-armed each time),
 * malformed values, a server restart mid-watch, a session expiry (new
 * session, full resync, registration again), and the ephemeral registration
 * of this node's endpoints — gone on a clean stop, and after a SIGKILL once
 * the session times out. And the hand-over of the session between two
 * backends (an agent and its successor): pass, hold, resume, and what
 * happens when the session cannot be resumed.
 */
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "etcd_server.h"
#include "registry/zk.h"
#include "registry_fixture.h"
#include "zk_server.h"

#define NS_SHOP                                                                                    \
	"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"shop\","           \
	"\"labels\":{\"weft.io/mesh\":\"enabled\"}}}"
#define SVC(ns, name, vip)                                                                         \
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"" name "\","          \
	"\"namespace\":\"" ns "\"},\"spec\":{\"clusterIP\":\"" vip "\",\"ports\":[{\"port\":80,"    \
	"\"targetPort\":8080}]}}"
#define SLICE(name, ip)                                                                            \
	"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":"         \
	"{\"name\":\"" name "\",\"namespace\":\"shop\",\"labels\":{\"kubernetes.io/service-name\":" \
	"\"web\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"" ip "\"]}],"         \
	"\"ports\":[{\"port\":8080}]}"
#define POD(name)                                                                                  \
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name "\","              \
	"\"namespace\":\"shop\"}}"
#define LOCAL_ZNODE "/t/endpointslices/shop/web-node-a"

static struct tzk srv;
static struct rfix f, g;	/* g: a successor, in the hand-over tests */
static const enum reg_health synced = REG_HEALTH_SYNCED, stale = REG_HEALTH_STALE;

static void setup(void)
{
	uint64_t t0 = tproc_now_ms();

	cr_assert_eq(tzk_start(&srv), 0, "ZooKeeper did not start, see %s/zookeeper.log", srv.dir);
	cr_log_info("ZooKeeper started in %llu ms", (unsigned long long)(tproc_now_ms() - t0));
	rfix_init(&f);
	rfix_init(&g);
}

static void teardown(void)
{
	rfix_stop(&g);
	rfix_stop(&f);
	tzk_stop(&srv);
}

TestSuite(zk, .init = setup, .fini = teardown, .timeout = 60);

static void put(const char *path, const char *value)
{
	int rc = tzk_put(&srv, path, value);

	cr_assert_eq(rc, ZOK, "put %s: %s", path, zerror(rc));
}

static void del(const char *path)
{
	int rc = tzk_del(&srv, path);

	cr_assert_eq(rc, ZOK, "delete %s: %s", path, zerror(rc));
}

static void start_watching(const char *hosts)
{
	char source[128];

	snprintf(source, sizeof(source), "zookeeper:%s/t", hosts);
	rfix_start(&f, &reg_zk_ops, source);
	cr_assert(rfix_until(&f, 10000, rfix_health_is, &synced), "not synced: %s",
		  rfix_status(&f).message);
}

static void put_shop(void)
{
	put("/t/namespaces/shop", NS_SHOP);
	put("/t/services/shop/web", SVC("shop", "web", "198.19.0.10"));
	put("/t/endpointslices/shop/web-1", SLICE("web-1", "198.18.1.1"));
}

Test(zk, initial_listing_then_changes_follow_through_rearmed_watches)
{
	uint64_t t0;

	put_shop();
	put("/t/other/x", "ignored: not a kind of the layout");
	start_watching(srv.hosts);
	cr_expect(rfix_has(&f, "Namespace shop"));
	cr_expect(rfix_has(&f, "Service shop/web"));
	cr_expect(rfix_slice_ip_is(&f, &(struct rfix_ip_is){ "EndpointSlice shop/web-1", "198.18.1.1" }));
	cr_expect_eq(rfix_status(&f).rejected, 0);

	/* Data watch, then the same watch again: it must have been re-armed. */
	t0 = tproc_now_ms();
	put("/t/endpointslices/shop/web-1", SLICE("web-1", "198.18.1.2"));
	cr_assert(rfix_until(&f, 5000, rfix_slice_ip_is,
			     &(struct rfix_ip_is){ "EndpointSlice shop/web-1", "198.18.1.2" }));
	cr_log_info("set -> model in %llu ms", (unsigned long long)(tproc_now_ms() - t0));
	put("/t/endpointslices/shop/web-1", SLICE("web-1", "198.18.1.3"));
	cr_assert(rfix_until(&f, 5000, rfix_slice_ip_is,
			     &(struct rfix_ip_is){ "EndpointSlice shop/web-1", "198.18.1.3" }));
	/* A new namespace directory, a new object in a known one. */
	put("/t/services/other/api", SVC("other", "api", "198.19.0.20"));
	cr_assert(rfix_until(&f, 5000, rfix_has, "Service other/api"));
	put("/t/services/shop/db", SVC("shop", "db", "198.19.0.30"));
	cr_assert(rfix_until(&f, 5000, rfix_has, "Service shop/db"));
	/* Deleted, then created again: seen both times. */
	del("/t/services/shop/web");
	cr_assert(rfix_until(&f, 5000, rfix_lacks, "Service shop/web"));
	put("/t/services/shop/web", SVC("shop", "web", "198.19.0.11"));
	cr_assert(rfix_until(&f, 5000, rfix_has, "Service shop/web"));
	/* A kind directory missing at the start (exists watch). */
	put("/t/pods/shop/p1", POD("p1"));
	cr_assert(rfix_until(&f, 5000, rfix_has, "Pod shop/p1"));
	/* A whole namespace directory removed. */
	del("/t/services/other/api");
	del("/t/services/other");
	cr_assert(rfix_until(&f, 5000, rfix_lacks, "Service other/api"));
	/* ... and created again. */
	put("/t/services/other/api2", SVC("other", "api2", "198.19.0.21"));
	cr_assert(rfix_until(&f, 5000, rfix_has, "Service other/api2"));
	cr_expect_eq(rfix_status(&f).resyncs, 1);
}

Test(zk, malformed_values_are_rejected_one_by_one_and_the_rest_applies)
{
	put("/t/namespaces/shop", NS_SHOP);
	put("/t/services/shop/web", SVC("shop", "web", "198.19.0.10"));
	put("/t/services/shop/bad1", "this is not JSON");
	put("/t/services/shop/bad2", SVC("shop", "web", "198.19.0.12"));
	put("/t/endpointslices/shop/bad3", SLICE("bad3", "not-an-ip"));
	start_watching(srv.hosts);
	cr_expect(rfix_has(&f, "Namespace shop"));
	cr_expect(rfix_has(&f, "Service shop/web"));
	cr_expect(rfix_lacks(&f, "Service shop/bad1"));
	cr_expect(rfix_lacks(&f, "Service shop/bad2"));
	cr_expect(rfix_lacks(&f, "EndpointSlice shop/bad3"));
	cr_expect_eq(rfix_status(&f).rejected, 3);

	put("/t/services/shop/web", "{\"kind\": \"Service\", oops");
	cr_assert(rfix_until(&f, 5000, rfix_rejected_at_least, &(uint64_t){ 4 }));
	cr_expect(rfix_has(&f, "Service shop/web"), "the previous version stays in force");
	rfix_stop_backend(&f);
	rfix_start_backend(&f);
	cr_assert(rfix_until(&f, 10000, rfix_resynced_twice, NULL), "%s", rfix_status(&f).message);
	cr_expect(rfix_has(&f, "Service shop/web"), "also through a new listing");
}

Test(zk, server_restart_mid_watch_keeps_the_last_state_then_resyncs)
{
	uint64_t t0;

	put_shop();
	start_watching(srv.hosts);
	t0 = tproc_now_ms();
	tzk_kill(&srv);
	cr_assert(rfix_until(&f, 5000, rfix_health_is, &stale), "%s", rfix_status(&f).message);
	cr_log_info("server killed -> stale in %llu ms", (unsigned long long)(tproc_now_ms() - t0));
	rfix_run(&f, 1000);
	cr_expect(rfix_has(&f, "Namespace shop"), "the last state must stay while stale");
	cr_expect(rfix_has(&f, "Service shop/web"));
	cr_expect(rfix_has(&f, "EndpointSlice shop/web-1"));

	t0 = tproc_now_ms();
	cr_assert_eq(tzk_restart(&srv), 0);
	cr_assert(rfix_until(&f, 15000, rfix_resynced_twice, NULL), "%s", rfix_status(&f).message);
	cr_log_info("server back -> resynced in %llu ms", (unsigned long long)(tproc_now_ms() - t0));
	put("/t/endpointslices/shop/web-1", SLICE("web-1", "198.18.1.4"));
	cr_assert(rfix_until(&f, 5000, rfix_slice_ip_is,
			     &(struct rfix_ip_is){ "EndpointSlice shop/web-1", "198.18.1.4" }));
}

/* This node's endpoint: shop/web on 198.18.1.1:8080. */
static void set_local(struct rfix *fx, bool on)
{
	struct selfreg_ep ep = { .ns = "shop", .service = "web", .pod = "web-1", .node = "node-a" };

	cr_assert_eq(addr_parse_ip_port("198.18.1.1:8080", &ep.addr), 0);
	rfix_register_local(fx, &ep, on ? 1 : 0);
}

static bool znode_is(struct rfix *fx, const void *present)
{
	(void)fx;
	return tzk_exists(&srv, LOCAL_ZNODE) == (*(const bool *)present ? 1 : 0);
}

static const bool present = true, absent = false;

Test(zk, session_expiry_opens_a_new_session_resyncs_and_registers_again)
{
	struct tgate gate;
	char hosts[64];
	uint64_t t0;

	cr_assert_eq(tgate_start(&gate, srv.port), 0);
	snprintf(hosts, sizeof(hosts), "127.0.0.1:%u", gate.port);
	put_shop();
	start_watching(hosts);
	set_local(&f, true);
	cr_assert(rfix_until(&f, 5000, znode_is, &present));
	cr_assert(rfix_until(&f, 5000, rfix_has, "EndpointSlice shop/web-node-a"));

	/* Cut off past the session timeout: the server expires the session
	 * (and its ephemeral znode) while things change.
	 */
	tgate_set_open(&gate, false);
	cr_assert(rfix_until(&f, 5000, rfix_health_is, &stale));
	t0 = tproc_now_ms();
	cr_assert(rfix_until(&f, 10000, znode_is, &absent), "the session did not expire");
	cr_log_info("cut off -> session expired in %llu ms (timeout 2 s)",
		    (unsigned long long)(tproc_now_ms() - t0));
	put("/t/endpointslices/shop/web-1", SLICE("web-1", "198.18.1.9"));
	del("/t/services/shop/web");
	cr_expect(rfix_has(&f, "Service shop/web"), "the last state stays while stale");

	t0 = tproc_now_ms();
	tgate_set_open(&gate, true);
	cr_assert(rfix_until(&f, 15000, rfix_resynced_twice, NULL), "%s", rfix_status(&f).message);
	cr_log_info("back -> new session synced in %llu ms",
		    (unsigned long long)(tproc_now_ms() - t0));
	cr_expect(strstr(rfix_status(&f).message, "session 0x"), "%s", rfix_status(&f).message);
	cr_expect(rfix_slice_ip_is(&f, &(struct rfix_ip_is){ "EndpointSlice shop/web-1", "198.18.1.9" }));
	cr_expect(rfix_lacks(&f, "Service shop/web"));
	cr_assert(rfix_until(&f, 5000, znode_is, &present), "not registered again");
	cr_expect(rfix_until(&f, 5000, rfix_has, "EndpointSlice shop/web-node-a"));
	rfix_stop(&f);
	tgate_stop(&gate);
}

Test(zk, this_nodes_endpoints_are_ephemeral_and_gone_on_a_clean_stop)
{
	start_watching(srv.hosts);
	set_local(&f, true);
	cr_assert(rfix_until(&f, 5000, znode_is, &present));
	cr_assert(rfix_until(&f, 5000, rfix_slice_ip_is,
			     &(struct rfix_ip_is){ "EndpointSlice shop/web-node-a", "198.18.1.1" }));
	set_local(&f, false);
	cr_assert(rfix_until(&f, 5000, znode_is, &absent));
	cr_assert(rfix_until(&f, 5000, rfix_lacks, "EndpointSlice shop/web-node-a"));
	set_local(&f, true);
	cr_assert(rfix_until(&f, 5000, znode_is, &present));
	rfix_stop_backend(&f);
	cr_expect_eq(tzk_exists(&srv, LOCAL_ZNODE), 0, "closing the session deletes it");
}

Test(zk, a_killed_agents_endpoints_vanish_with_its_session)
{
	uint64_t t0, gone;
	bool registered;
	pid_t child;

	/* Our client first, so the child does not inherit a half-made one. */
	cr_assert_not_null(tzk_client(&srv));
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		/* Nor may it outlive this test worker if that one dies first. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		struct rfix a;
		char source[128];

		rfix_init(&a);
		snprintf(source, sizeof(source), "zookeeper:%s/t", srv.hosts);
		rfix_start(&a, &reg_zk_ops, source);
		set_local(&a, true);
		for (;;)
			rfix_run(&a, 1000);
	}
	t0 = tproc_now_ms();
	while (tproc_now_ms() - t0 < 10000 && tzk_exists(&srv, LOCAL_ZNODE) != 1)
		usleep(20000);
	registered = tzk_exists(&srv, LOCAL_ZNODE) == 1;
	/* Killed whatever the outcome: a live child would keep the runner's
	 * output pipe open and hang the whole suite.
	 */
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	cr_assert(registered, "the child never registered");
	t0 = tproc_now_ms();
	while (tproc_now_ms() - t0 < 10000 && tzk_exists(&srv, LOCAL_ZNODE) == 1)
		usleep(50000);
	gone = tproc_now_ms() - t0;
	cr_assert_eq(tzk_exists(&srv, LOCAL_ZNODE), 0, "still registered after 10 s");
	cr_log_info("SIGKILL -> ephemeral znode gone in %llu ms (session timeout 2 s)",
		    (unsigned long long)gone);
	cr_expect_leq(gone, 4000);
}

Test(zk, stop_is_prompt_while_the_server_hangs)
{
	uint64_t took;

	start_watching(srv.hosts);
	set_local(&f, true);
	cr_assert(rfix_until(&f, 5000, znode_is, &present));
	/* Frozen, not dead: the connection stays open and nothing answers. */
	tzk_pause(&srv, true);
	took = tproc_now_ms();
	rfix_stop_backend(&f);
	took = tproc_now_ms() - took;
	tzk_pause(&srv, false);
	cr_log_info("stop against a frozen server took %llu ms", (unsigned long long)took);
	cr_expect_leq(took, 3500, "stop took %llu ms", (unsigned long long)took);
}

/* ---- the hand-over of the session (docs/lifecycle.md) ---- */

#define OTHER_ZNODE "/t/endpointslices/shop/api-node-a"

/* This node's endpoints: shop/web on 198.18.1.1:8080, and with @api also
 * shop/api on 198.18.1.1:9090.
 */
static void set_local_two(struct rfix *fx, bool api)
{
	struct selfreg_ep eps[2] = {
		{ .ns = "shop", .service = "api", .pod = "web-1", .node = "node-a" },
		{ .ns = "shop", .service = "web", .pod = "web-1", .node = "node-a" },
	};

	cr_assert_eq(addr_parse_ip_port("198.18.1.1:9090", &eps[0].addr), 0);
	cr_assert_eq(addr_parse_ip_port("198.18.1.1:8080", &eps[1].addr), 0);
	rfix_register_local(fx, api ? eps : eps + 1, api ? 2 : 1);
}

/* The successor: same source, started beside the running backend, held. */
static void start_successor(void)
{
	g.opts = f.opts;
	rfix_start(&g, &reg_zk_ops, f.source);
	reg_zk_ops.hold(g.state);
	cr_assert(rfix_until(&g, 10000, rfix_health_is, &synced), "successor not synced: %s",
		  rfix_status(&g).message);
}

/* The running backend lets go of its session: what it passed. */
static struct reg_pass pass_session(uint64_t *took_ms)
{
	struct reg_pass p = { .len = 0 };
	uint64_t t0 = tproc_now_ms();

	reg_zk_ops.pass(f.state, &p);
	f.state = NULL;
	*took_ms = tproc_now_ms() - t0;
	cr_assert_gt(p.len, 0, "nothing passed");
	return p;
}

static bool status_names_session(struct rfix *fx, const void *owner)
{
	char want[64];

	snprintf(want, sizeof(want), "session 0x%llx,", *(const unsigned long long *)owner);
	return rfix_status(fx).health == REG_HEALTH_SYNCED && strstr(rfix_status(fx).message, want);
}

static bool znode_owner_is_not(struct rfix *fx, const void *owner)
{
	struct Stat st;

	(void)fx;
	return tzk_stat(&srv, LOCAL_ZNODE, &st) == ZOK &&
	       (unsigned long long)st.ephemeralOwner != *(const unsigned long long *)owner;
}

Test(zk, a_successor_resumes_the_session_and_the_ephemeral_znode_is_never_deleted)
{
	unsigned int created, deleted, changed;
	unsigned long long owner;
	struct tzk_watch w;
	struct Stat before, st;
	struct reg_pass p;
	uint64_t took, t0;
	bool lost;

	start_watching(srv.hosts);
	set_local(&f, true);
	cr_assert(rfix_until(&f, 5000, znode_is, &present));
	cr_assert_eq(tzk_stat(&srv, LOCAL_ZNODE, &before), ZOK);
	owner = (unsigned long long)before.ephemeralOwner;
	cr_assert_neq(owner, 0, "not ephemeral");
	cr_assert_eq(tzk_watch_start(&srv, &w, LOCAL_ZNODE), 0);

	/* Held, the successor registers nothing, however long it waits. */
	start_successor();
	set_local(&g, true);
	rfix_run(&g, 500);
	cr_assert_eq(tzk_stat(&srv, LOCAL_ZNODE, &st), ZOK);
	cr_assert_eq(st.czxid, before.czxid, "the held successor re-created the znode");

	p = pass_session(&took);
	cr_log_info("pass (one round trip, let go) took %llu ms", (unsigned long long)took);
	t0 = tproc_now_ms();
	reg_zk_ops.resume(g.state, &p);
	cr_assert(rfix_until(&g, 5000, status_names_session, &owner), "not resumed: %s",
		  rfix_status(&g).message);
	cr_log_info("resume -> the successor synced on session 0x%llx in %llu ms", owner,
		    (unsigned long long)(tproc_now_ms() - t0));

	/* Past the session timeout (2 s): the session would have expired had
	 * nobody attached, and had the old handle taken it back the successor
	 * would have lost its connection.
	 */
	rfix_run(&g, 3000);
	cr_assert_eq(tzk_stat(&srv, LOCAL_ZNODE, &st), ZOK, "the znode went");
	cr_expect_eq((unsigned long long)st.ephemeralOwner, owner, "another session owns it");
	cr_expect_eq(st.ctime, before.ctime, "created again");
	cr_expect_eq(st.czxid, before.czxid, "created again");
	cr_expect_eq(st.mzxid, before.mzxid, "written again");
	cr_expect(status_names_session(&g, &owner), "%s", rfix_status(&g).message);
	cr_expect_eq(rfix_status(&g).resyncs, 2, "one listing per session");
	tzk_watch_counts(&w, &created, &deleted, &changed, &lost);
	cr_expect_eq(deleted, 0, "the watcher saw the znode deleted");
	cr_expect_eq(created + changed, 0, "the watcher saw it created or changed");
	cr_expect(!lost, "the watcher's own session broke: events may be missed");

	/* The successor stops cleanly with no one after it: gone at once. */
	rfix_stop_backend(&g);
	cr_expect_eq(tzk_exists(&srv, LOCAL_ZNODE), 0, "still there after a clean stop");
	t0 = tproc_now_ms();
	do
		tzk_watch_counts(&w, &created, &deleted, &changed, &lost);
	while (!deleted && tproc_now_ms() - t0 < 5000 && !usleep(20000));
	cr_expect_eq(deleted, 1, "the watcher did not see the deletion");
	tzk_watch_stop(&w);
}

Test(zk, a_resumed_session_removes_what_the_successor_no_longer_registers)
{
	unsigned long long owner;
	struct Stat before, st;
	struct reg_pass p;
	uint64_t took;

	start_watching(srv.hosts);
	set_local_two(&f, true);
	cr_assert(rfix_until(&f, 5000, znode_is, &present));
	cr_assert(tzk_exists(&srv, OTHER_ZNODE) == 1 ||
		  (rfix_run(&f, 500), tzk_exists(&srv, OTHER_ZNODE) == 1));
	cr_assert_eq(tzk_stat(&srv, LOCAL_ZNODE, &before), ZOK);
	owner = (unsigned long long)before.ephemeralOwner;

	/* api went while the agents changed places: the successor wants web only. */
	start_successor();
	set_local_two(&g, false);
	p = pass_session(&took);
	reg_zk_ops.resume(g.state, &p);
	cr_assert(rfix_until(&g, 5000, status_names_session, &owner), "not resumed: %s",
		  rfix_status(&g).message);
	cr_assert(rfix_until(&g, 5000, rfix_lacks, "EndpointSlice shop/api-node-a"),
		  "api is still registered");
	cr_expect_eq(tzk_exists(&srv, OTHER_ZNODE), 0);
	cr_assert_eq(tzk_stat(&srv, LOCAL_ZNODE, &st), ZOK);
	cr_expect_eq(st.czxid, before.czxid, "web was created again");
	cr_expect_eq((unsigned long long)st.ephemeralOwner, owner);
}

/* The successor's agent has not read every registry yet, so the set it
 * hands lacks the pod (its Service is still to come): the resumed
 * session's znode stays as it is until a complete set says otherwise.
 */
Test(zk, a_resumed_session_keeps_its_znodes_while_the_set_is_partial)
{
	unsigned long long owner;
	struct Stat before, st;
	struct reg_pass p;
	uint64_t took;

	start_watching(srv.hosts);
	set_local(&f, true);
	cr_assert(rfix_until(&f, 5000, znode_is, &present));
	cr_assert_eq(tzk_stat(&srv, LOCAL_ZNODE, &before), ZOK);
	owner = (unsigned long long)before.ephemeralOwner;

	start_successor();
	rfix_register_local_as(&g, NULL, 0, false);
	p = pass_session(&took);
	reg_zk_ops.resume(g.state, &p);
	cr_assert(rfix_until(&g, 5000, status_names_session, &owner), "not resumed: %s",
		  rfix_status(&g).message);
	rfix_run(&g, 500);
	cr_assert_eq(tzk_stat(&srv, LOCAL_ZNODE, &st), ZOK, "a partial set removed the znode");
	cr_expect_eq(st.czxid, before.czxid, "created again");

	/* Every registry synced, and the pod is not this node's any more. */
	rfix_register_local_as(&g, NULL, 0, true);
	cr_assert(rfix_until(&g, 5000, znode_is, &absent), "a complete set kept the znode");
}

/* Nobody attached within the session timeout: the session expires with
 * its znodes (which shows the old handle let go without closing it: a
 * close deletes them at once), and the successor, finding it expired,
 * registers through a new session.
 */
Test(zk, a_session_that_expired_before_the_successor_attached_is_replaced)
{
	unsigned long long owner;
	struct Stat before;
	struct reg_pass p;
	uint64_t took, t0, gone;

	start_watching(srv.hosts);
	set_local(&f, true);
	cr_assert(rfix_until(&f, 5000, znode_is, &present));
	cr_assert_eq(tzk_stat(&srv, LOCAL_ZNODE, &before), ZOK);
	owner = (unsigned long long)before.ephemeralOwner;
	start_successor();
	set_local(&g, true);
	p = pass_session(&took);
	t0 = tproc_now_ms();
	rfix_run(&g, 1000);
	cr_assert_eq(tzk_exists(&srv, LOCAL_ZNODE), 1, "gone within 1 s: the session was closed");
	while (tzk_exists(&srv, LOCAL_ZNODE) == 1 && tproc_now_ms() - t0 < 10000)
		usleep(20000);
	gone = tproc_now_ms() - t0;
	cr_assert_eq(tzk_exists(&srv, LOCAL_ZNODE), 0, "the session never expired");
	cr_log_info("session let go, nobody attached -> znode gone in %llu ms (timeout 2 s)",
		    (unsigned long long)gone);

	reg_zk_ops.resume(g.state, &p);
	cr_assert(rfix_until(&g, 10000, znode_owner_is_not, &owner), "not registered again");
	cr_expect(rfix_until(&g, 5000, rfix_health_is, &synced), "%s", rfix_status(&g).message);
	cr_expect(!status_names_session(&g, &owner), "%s", rfix_status(&g).message);
}

/* Nothing to resume (an earlier predecessor, or a pass it cannot read):
 * the successor registers through its own session, as before resuming
 * existed; the old session, closed by such a predecessor, took its znode.
 */
Test(zk, without_a_session_to_resume_the_successor_registers_anew)
{
	struct reg_pass bad = { .len = 32, .data = { 99 } };
	unsigned long long owner;
	struct Stat before;

	start_watching(srv.hosts);
	set_local(&f, true);
	cr_assert(rfix_until(&f, 5000, znode_is, &present));
	cr_assert_eq(tzk_stat(&srv, LOCAL_ZNODE, &before), ZOK);
	owner = (unsigned long long)before.ephemeralOwner;
	start_successor();
	set_local(&g, true);
	rfix_stop_backend(&f);
	reg_zk_ops.resume(g.state, &bad);
	cr_assert(rfix_until(&g, 5000, znode_owner_is_not, &owner), "not registered again");
}

Test(zk_args, bad_values_are_refused_at_start)
{
	static const char *const bad[] = { "", "/weft", "127.0.0.1", "127.0.0.1:",
					   "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:2181,/weft",
					   ":2181", "127.0.0.1:2181//weft" };
	struct rfix a;
	void *state = NULL;

	rfix_init(&a);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(reg_zk_ops.start("zookeeper:x", bad[i], &a.opts, NULL, &state), -EINVAL,
			     "'%s' accepted", bad[i]);
	cr_expect_null(state);
}
