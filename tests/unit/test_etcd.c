// SPDX-License-Identifier: GPL-2.0-only
/* The etcd registry backend (agent/registry/etcd*.c) against a real etcd
 * 3.4 on 127.0.0.1 (tests/helpers/etcd_server.h): the initial listing, puts
 * and deletes, malformed values, a server restart mid-watch, an outage with
 * and without compaction, and self-registration under a lease — revoked on a
 * clean stop, expired after a SIGKILL.
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
#include "registry/etcd.h"
#include "registry_fixture.h"

#define NS_SHOP                                                                                    \
	"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"shop\","           \
	"\"labels\":{\"weft.io/mesh\":\"enabled\"}}}"
#define SVC_WEB(vip)                                                                               \
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\","              \
	"\"namespace\":\"shop\"},\"spec\":{\"clusterIP\":\"" vip "\",\"ports\":[{\"port\":80,"      \
	"\"targetPort\":8080}]}}"
#define SLICE(name, ip)                                                                            \
	"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":"         \
	"{\"name\":\"" name "\",\"namespace\":\"shop\",\"labels\":{\"kubernetes.io/service-name\":" \
	"\"web\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"" ip "\"]}],"         \
	"\"ports\":[{\"port\":8080}]}"

static struct tetcd srv;
static struct rfix f;
static const enum reg_health synced = REG_HEALTH_SYNCED, stale = REG_HEALTH_STALE;

static void setup(void)
{
	uint64_t t0 = tproc_now_ms();

	cr_assert_eq(tetcd_start(&srv), 0, "etcd did not start, see %s/etcd.log", srv.dir);
	cr_log_info("etcd started in %llu ms", (unsigned long long)(tproc_now_ms() - t0));
	rfix_init(&f);
}

static void teardown(void)
{
	rfix_stop(&f);
	tetcd_stop(&srv);
}

TestSuite(etcd, .init = setup, .fini = teardown, .timeout = 60);

static void put(const char *key, const char *value)
{
	cr_assert_eq(tetcd_put(&srv, key, value), 0, "put %s", key);
}

static void start_watching(const char *url)
{
	char source[128];

	snprintf(source, sizeof(source), "etcd:%s", url);
	rfix_start(&f, &reg_etcd_ops, source);
	cr_assert(rfix_until(&f, 10000, rfix_health_is, &synced), "not synced: %s",
		  rfix_status(&f).message);
}

Test(etcd, initial_listing_then_puts_and_deletes_follow)
{
	uint64_t t0;

	put("/t/namespaces/shop", NS_SHOP);
	put("/t/services/shop/web", SVC_WEB("198.19.0.10"));
	put("/t/endpointslices/shop/web-1", SLICE("web-1", "198.18.1.1"));
	put("/t/other/shop/x", "ignored: not a kind of the layout");
	put("/u/services/shop/web", "ignored: outside the prefix");
	start_watching(srv.url);
	cr_expect(rfix_has(&f, "Namespace shop"));
	cr_expect(rfix_has(&f, "Service shop/web"));
	cr_expect(rfix_slice_ip_is(&f, &(struct rfix_ip_is){ "EndpointSlice shop/web-1", "198.18.1.1" }));
	cr_expect_eq(rfix_status(&f).rejected, 0);
	cr_expect_eq(rfix_status(&f).resyncs, 1);

	t0 = tproc_now_ms();
	put("/t/endpointslices/shop/web-1", SLICE("web-1", "198.18.1.2"));
	cr_assert(rfix_until(&f, 5000, rfix_slice_ip_is,
			     &(struct rfix_ip_is){ "EndpointSlice shop/web-1", "198.18.1.2" }));
	cr_log_info("put -> model in %llu ms", (unsigned long long)(tproc_now_ms() - t0));
	cr_assert_eq(tetcd_del(&srv, "/t/services/shop/web"), 0);
	cr_assert(rfix_until(&f, 5000, rfix_lacks, "Service shop/web"));
	put("/t/services/shop/web", SVC_WEB("198.19.0.11"));
	cr_assert(rfix_until(&f, 5000, rfix_has, "Service shop/web"));
}

Test(etcd, malformed_values_are_rejected_one_by_one_and_the_rest_applies)
{
	const struct obj *svc;
	char vip[ADDR_STRLEN];

	put("/t/namespaces/shop", NS_SHOP);
	put("/t/services/shop/web", SVC_WEB("198.19.0.10"));
	put("/t/services/shop/bad1", "this is not JSON");
	put("/t/services/shop/bad2", SVC_WEB("198.19.0.12"));	/* holds shop/web */
	put("/t/endpointslices/shop/bad3", SLICE("bad3", "not-an-ip"));
	start_watching(srv.url);
	cr_expect(rfix_has(&f, "Namespace shop"));
	cr_expect(rfix_has(&f, "Service shop/web"));
	cr_expect(rfix_lacks(&f, "Service shop/bad1"));
	cr_expect(rfix_lacks(&f, "Service shop/bad2"));
	cr_expect(rfix_lacks(&f, "EndpointSlice shop/bad3"));
	cr_expect_eq(rfix_status(&f).rejected, 3);

	/* A typo in a live object: the previous version stays in force, also
	 * through a new listing (a restarted backend feeding the same model).
	 */
	put("/t/services/shop/web", "{\"kind\": \"Service\", oops");
	cr_assert(rfix_until(&f, 5000, rfix_rejected_at_least, &(uint64_t){ 4 }));
	cr_expect(rfix_has(&f, "Service shop/web"));
	rfix_stop_backend(&f);
	rfix_start_backend(&f);
	cr_assert(rfix_until(&f, 10000, rfix_resynced_twice, NULL), "%s", rfix_status(&f).message);
	svc = rfix_find(&f, "Service shop/web");
	cr_assert_not_null(svc, "a relist dropped the previous version of a rejected object");
	cr_expect_str_eq(addr_fmt_ip(&svc->svc.vips[0], vip, sizeof(vip)), "198.19.0.10");
	put("/t/services/shop/web", SVC_WEB("198.19.0.11"));
	cr_assert(rfix_until(&f, 5000, rfix_has, "Service shop/web"));
}

Test(etcd, server_restart_mid_watch_keeps_the_last_state_then_resumes)
{
	uint64_t t0;

	put("/t/namespaces/shop", NS_SHOP);
	put("/t/services/shop/web", SVC_WEB("198.19.0.10"));
	put("/t/endpointslices/shop/web-1", SLICE("web-1", "198.18.1.1"));
	start_watching(srv.url);

	t0 = tproc_now_ms();
	tetcd_kill(&srv);
	cr_assert(rfix_until(&f, 5000, rfix_health_is, &stale), "%s", rfix_status(&f).message);
	cr_log_info("server killed -> stale in %llu ms", (unsigned long long)(tproc_now_ms() - t0));
	rfix_run(&f, 1000);
	cr_expect(rfix_has(&f, "Namespace shop"), "the last state must stay while stale");
	cr_expect(rfix_has(&f, "Service shop/web"));
	cr_expect(rfix_has(&f, "EndpointSlice shop/web-1"));

	t0 = tproc_now_ms();
	cr_assert_eq(tetcd_restart(&srv), 0);
	cr_assert(rfix_until(&f, 10000, rfix_health_is, &synced), "%s", rfix_status(&f).message);
	cr_log_info("server back -> synced in %llu ms", (unsigned long long)(tproc_now_ms() - t0));
	put("/t/endpointslices/shop/web-1", SLICE("web-1", "198.18.1.3"));
	cr_assert(rfix_until(&f, 5000, rfix_slice_ip_is,
			     &(struct rfix_ip_is){ "EndpointSlice shop/web-1", "198.18.1.3" }));
	cr_expect(rfix_has(&f, "Service shop/web"));
}

Test(etcd, an_outage_resumes_from_the_revision_or_relists_after_compaction)
{
	struct tgate gate;
	char url[64];

	cr_assert_eq(tgate_start(&gate, srv.client_port), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", gate.port);
	put("/t/namespaces/shop", NS_SHOP);
	put("/t/services/shop/web", SVC_WEB("198.19.0.10"));
	put("/t/endpointslices/shop/web-1", SLICE("web-1", "198.18.1.1"));
	start_watching(url);

	/* Cut off while a change happens: the watch resumes where it was. */
	tgate_set_open(&gate, false);
	cr_assert(rfix_until(&f, 5000, rfix_health_is, &stale));
	put("/t/endpointslices/shop/web-1", SLICE("web-1", "198.18.1.7"));
	tgate_set_open(&gate, true);
	cr_assert(rfix_until(&f, 10000, rfix_slice_ip_is,
			     &(struct rfix_ip_is){ "EndpointSlice shop/web-1", "198.18.1.7" }));
	cr_expect_eq(rfix_status(&f).resyncs, 1, "resuming needs no new listing");

	/* Cut off while the history is compacted past the last revision seen:
	 * the watch is refused and a new listing replaces the state.
	 */
	tgate_set_open(&gate, false);
	cr_assert(rfix_until(&f, 5000, rfix_health_is, &stale));
	cr_assert_eq(tetcd_del(&srv, "/t/endpointslices/shop/web-1"), 0);
	put("/t/endpointslices/shop/web-2", SLICE("web-2", "198.18.1.8"));
	cr_assert_eq(tetcd_compact(&srv, tetcd_revision(&srv)), 0);
	tgate_set_open(&gate, true);
	cr_assert(rfix_until(&f, 10000, rfix_resynced_twice, NULL), "%s", rfix_status(&f).message);
	cr_expect(rfix_lacks(&f, "EndpointSlice shop/web-1"));
	cr_expect(rfix_slice_ip_is(&f, &(struct rfix_ip_is){ "EndpointSlice shop/web-2", "198.18.1.8" }));
	cr_expect(rfix_has(&f, "Service shop/web"));
	rfix_stop(&f);
	tgate_stop(&gate);
}

/* This node's endpoint: shop/web on 198.18.1.@last:8080. */
static void set_local(struct rfix *fx, int n)
{
	struct selfreg_ep eps[2] = {
		{ .ns = "shop", .service = "web", .pod = "web-1", .node = "node-a" },
		{ .ns = "shop", .service = "web", .pod = "web-2", .node = "node-a" },
	};

	cr_assert_eq(addr_parse_ip_port("198.18.1.1:8080", &eps[0].addr), 0);
	cr_assert_eq(addr_parse_ip_port("198.18.1.2:8080", &eps[1].addr), 0);
	rfix_register_local(fx, eps, (size_t)n);
}

#define LOCAL_KEY "/t/endpointslices/shop/web-node-a"

struct holds {
	const char *text;	/* NULL: the key must be absent */
};

static bool etcd_key_holds(struct rfix *fx, const void *ctx)
{
	const struct holds *h = ctx;
	char val[4096];
	int found = tetcd_get(&srv, LOCAL_KEY, val, sizeof(val));

	(void)fx;
	return h->text ? found == 1 && strstr(val, h->text) : found == 0;
}

Test(etcd, this_nodes_endpoints_are_leased_read_back_and_revoked_on_stop)
{
	uint64_t t0;

	start_watching(srv.url);
	set_local(&f, 1);
	cr_assert(rfix_until(&f, 5000, etcd_key_holds, &(struct holds){ "198.18.1.1" }));
	cr_assert(rfix_until(&f, 5000, rfix_slice_ip_is,
			     &(struct rfix_ip_is){ "EndpointSlice shop/web-node-a", "198.18.1.1" }),
		  "the watch reads this node's slice back like any other");
	set_local(&f, 2);
	cr_assert(rfix_until(&f, 5000, etcd_key_holds, &(struct holds){ "198.18.1.2" }));
	set_local(&f, 0);
	cr_assert(rfix_until(&f, 5000, etcd_key_holds, &(struct holds){ NULL }));
	cr_assert(rfix_until(&f, 5000, rfix_lacks, "EndpointSlice shop/web-node-a"));

	set_local(&f, 1);
	cr_assert(rfix_until(&f, 5000, etcd_key_holds, &(struct holds){ "198.18.1.1" }));
	t0 = tproc_now_ms();
	rfix_stop_backend(&f);
	cr_expect_eq(tetcd_get(&srv, LOCAL_KEY, NULL, 0), 0, "a clean stop revokes the lease");
	cr_log_info("stop with revoke took %llu ms", (unsigned long long)(tproc_now_ms() - t0));
}

Test(etcd, a_killed_agents_endpoints_expire_with_its_lease)
{
	uint64_t t0, gone;
	bool registered;
	pid_t child;

	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		/* Nor may it outlive this test worker if that one dies first. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* The "agent": registers, then runs until killed. */
		struct rfix a;
		char source[128];

		rfix_init(&a);
		snprintf(source, sizeof(source), "etcd:%s", srv.url);
		rfix_start(&a, &reg_etcd_ops, source);
		set_local(&a, 1);
		for (;;)
			rfix_run(&a, 1000);
	}
	t0 = tproc_now_ms();
	while (tproc_now_ms() - t0 < 10000 && tetcd_get(&srv, LOCAL_KEY, NULL, 0) != 1)
		usleep(20000);
	registered = tetcd_get(&srv, LOCAL_KEY, NULL, 0) == 1;
	/* Killed whatever the outcome: a live child would keep the runner's
	 * output pipe open and hang the whole suite.
	 */
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	cr_assert(registered, "the child never registered");
	t0 = tproc_now_ms();
	while (tproc_now_ms() - t0 < 10000 && tetcd_get(&srv, LOCAL_KEY, NULL, 0) == 1)
		usleep(50000);
	gone = tproc_now_ms() - t0;
	cr_assert_eq(tetcd_get(&srv, LOCAL_KEY, NULL, 0), 0, "still registered after 10 s");
	cr_log_info("SIGKILL -> registration gone in %llu ms (lease TTL 2 s)",
		    (unsigned long long)gone);
	cr_expect_leq(gone, 4000);
}

Test(etcd, stop_is_prompt_while_the_server_hangs)
{
	uint64_t took;

	start_watching(srv.url);
	set_local(&f, 1);
	cr_assert(rfix_until(&f, 5000, etcd_key_holds, &(struct holds){ "198.18.1.1" }));
	/* Frozen, not dead: connections stay open and nothing answers. */
	kill(srv.pid, SIGSTOP);
	took = tproc_now_ms();
	rfix_stop_backend(&f);
	took = tproc_now_ms() - took;
	kill(srv.pid, SIGCONT);
	cr_log_info("stop against a frozen server took %llu ms", (unsigned long long)took);
	cr_expect_leq(took, 3500, "stop took %llu ms", (unsigned long long)took);
}

Test(etcd_args, bad_values_are_refused_at_start)
{
	static const char *const bad[] = { "", "ftp://127.0.0.1:2379", "http://",
					   "http://127.0.0.1:2379,,http://127.0.0.1:2380",
					   "127.0.0.1:2379" };
	struct rfix a;
	void *state = NULL;

	rfix_init(&a);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(reg_etcd_ops.start("etcd:x", bad[i], &a.opts, NULL, &state), -EINVAL,
			     "'%s' accepted", bad[i]);
	a.opts.etcd_prefix = "";
	cr_expect_eq(reg_etcd_ops.start("etcd:x", "http://127.0.0.1:2379", &a.opts, NULL, &state),
		     -EINVAL, "an empty prefix accepted");
	cr_expect_null(state);
}
