// SPDX-License-Identifier: GPL-2.0-only
/* The unchanged Kubernetes backend (reg_k8s_ops) against the fake API server
 * of tests/k8s-apiserver/ over TLS on 127.0.0.1: initial sync, changes,
 * dropped watches, 410 Gone (event and HTTP), token rotation, an outage,
 * malformed objects, pagination, client certificates, no node name, a
 * prompt stop, and pod evictions (201, 404, 409, 429; a bounded queue). The backend feeds a real sink, model and loop, as in the
 * agent. Run from the top of the tree.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../k8s-apiserver/k8s_fake.h"
#include "log.h"
#include "loop.h"
#include "model/model.h"
#include "registry/k8s.h"
#include "registry/registry.h"

#define SRC "kubernetes"
#define NODE "node-a"
#define WAIT_MS 15000		/* generous: things happen within milliseconds */

static struct {
	struct kfake f;
	struct loop *loop;
	struct model *model;
	struct reg_sink *sink;
	void *state;
	struct reg_opts opts;
	unsigned int publishes;
} h;

static void on_changed(void *ctx)
{
	(void)ctx;
	h.publishes++;
}

static void fake_up(const struct kfake_opts *o)
{
	cr_assert_eq(kfake_start(&h.f, o), 0, "the fake API server did not start");
}

/* Start the backend as the agent does, after the fake server is up. */
static void agent_up(const char *node)
{
	int err;

	h.loop = loop_new();
	h.model = model_new();
	cr_assert(h.loop && h.model);
	cr_assert_eq(model_declare_source(h.model, SRC), 0);
	h.sink = reg_sink_new(h.loop, h.model, on_changed, NULL);
	cr_assert_not_null(h.sink);
	h.opts.kubeconfig = h.f.kubeconfig;
	h.opts.node_name = node;
	err = reg_k8s_ops.start(SRC, "", &h.opts, h.sink, &h.state);
	cr_assert_eq(err, 0, "start: %s", strerror(-err));
}

static void setup(void)
{
	/* The bad-input tests log warnings on purpose; K8S_TEST_LOG=1 shows
	 * the backend's own account of each test.
	 */
	log_set_level(getenv("K8S_TEST_LOG") ? LOG_LEVEL_INFO : LOG_LEVEL_ERR);
	memset(&h, 0, sizeof(h));
}

static void teardown(void)
{
	reg_k8s_ops.stop(h.state, true);
	h.state = NULL;
	reg_sink_free(h.sink);
	model_free(h.model);
	loop_free(h.loop);
	kfake_stop(&h.f);
}

TestSuite(k8s_client, .init = setup, .fini = teardown, .timeout = 90);

/* ---- waiting on the loop ---- */

typedef bool (*pred_fn)(const void *arg);

struct waiter {
	pred_fn pred;
	const void *arg;
	struct timespec deadline;
	bool ok;
	struct loop_timer tick;
};

static bool past(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static void on_tick(struct loop_timer *t, uint64_t now)
{
	struct waiter *w = (struct waiter *)((char *)t - offsetof(struct waiter, tick));

	(void)now;
	if (w->pred(w->arg)) {
		w->ok = true;
		loop_stop(h.loop);
	} else if (past(&w->deadline)) {
		loop_stop(h.loop);
	} else {
		cr_assert_eq(loop_timer_set(h.loop, t, 5, on_tick), 0);
	}
}

/* Run the agent's loop (the sink applies events there) until @pred holds or
 * @ms pass. Returns whether it held.
 */
static bool wait_for(pred_fn pred, const void *arg, int ms)
{
	struct waiter w = { .pred = pred, .arg = arg };

	clock_gettime(CLOCK_MONOTONIC, &w.deadline);
	w.deadline.tv_sec += ms / 1000;
	w.deadline.tv_nsec += (long)(ms % 1000) * 1000000;
	if (w.deadline.tv_nsec >= 1000000000) {
		w.deadline.tv_sec++;
		w.deadline.tv_nsec -= 1000000000;
	}
	cr_assert_eq(loop_timer_set(h.loop, &w.tick, 1, on_tick), 0);
	cr_assert_eq(loop_run(h.loop), 0);
	loop_timer_del(h.loop, &w.tick);	/* @w is on this stack */
	return w.ok;
}

/* Let the loop run @ms whatever happens. */
static bool never(const void *arg)
{
	(void)arg;
	return false;
}

static void run_for(int ms)
{
	(void)wait_for(never, NULL, ms);
}

static struct reg_source_status status(void)
{
	struct reg_source_status st[4] = { 0 };
	size_t n = reg_sink_status(h.sink, st, 4);

	for (size_t i = 0; i < n && i < 4; i++)
		if (!strcmp(st[i].source, SRC))
			return st[i];
	return (struct reg_source_status){ .health = REG_HEALTH_STARTING };
}

static bool is_health(const void *arg)
{
	return status().health == *(const enum reg_health *)arg;
}

static void wait_health(enum reg_health want)
{
	cr_assert(wait_for(is_health, &want, WAIT_MS), "health is %d ('%s'), not %d", status().health,
		  status().message, want);
}

static bool message_has(const void *arg)
{
	return strstr(status().message, arg) != NULL;
}

struct key {
	enum obj_kind kind;
	const char *ns, *name;
};

static const struct obj *find(enum obj_kind kind, const char *ns, const char *name)
{
	return model_find(h.model, SRC, kind, ns, name);
}

static bool present(const void *arg)
{
	const struct key *k = arg;

	return find(k->kind, k->ns, k->name) != NULL;
}

static bool absent(const void *arg)
{
	return !present(arg);
}

#define KEY(kind, ns, name) (&(const struct key){ (kind), (ns), (name) })

static void wait_present(enum obj_kind kind, const char *ns, const char *name)
{
	cr_assert(wait_for(present, KEY(kind, ns, name), WAIT_MS), "%s %s/%s never arrived",
		  obj_kind_name(kind), ns, name);
}

static void wait_absent(enum obj_kind kind, const char *ns, const char *name)
{
	cr_assert(wait_for(absent, KEY(kind, ns, name), WAIT_MS), "%s %s/%s never went away",
		  obj_kind_name(kind), ns, name);
}

/* The first endpoint address of EndpointSlice @ns/@name, or "". */
static const char *slice_ep(const char *ns, const char *name)
{
	static char buf[64];
	const struct obj *o = find(OBJ_ENDPOINTSLICE, ns, name);

	buf[0] = '\0';
	if (o && o->slice.n_endpoints)
		addr_fmt_ip(&o->slice.endpoints[0].addrs[0], buf, sizeof(buf));
	return buf;
}

struct slice_want {
	const char *ns, *name, *ip;
};

static bool slice_is(const void *arg)
{
	const struct slice_want *s = arg;

	return !strcmp(slice_ep(s->ns, s->name), s->ip);
}

static void wait_slice(const char *ns, const char *name, const char *ip)
{
	struct slice_want s = { ns, name, ip };

	cr_assert(wait_for(slice_is, &s, WAIT_MS), "EndpointSlice %s/%s has '%s', not %s", ns, name,
		  slice_ep(ns, name), ip);
}

/* ---- objects ---- */

#define NS(name, label)                                                                            \
	"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"" name "\","     \
	"\"labels\":{\"weft.io/mesh\":\"" label "\"}}}"
#define SVC(ns, name, vip, port)                                                                   \
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"" name "\","       \
	"\"namespace\":\"" ns "\"},\"spec\":{\"clusterIP\":\"" vip "\",\"ports\":[{\"name\":"     \
	"\"http\",\"port\":" port ",\"targetPort\":8080}]}}"
#define SLICE(ns, name, svc, ip)                                                                   \
	"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":"       \
	"{\"name\":\"" name "\",\"namespace\":\"" ns "\",\"labels\":{\"kubernetes.io/service-"   \
	"name\":\"" svc "\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"" ip      \
	"\"],\"conditions\":{\"ready\":true}}],\"ports\":[{\"name\":\"http\",\"port\":8080}]}"
#define POD(ns, name, node, ip)                                                                    \
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name "\","           \
	"\"namespace\":\"" ns "\"},\"spec\":{\"nodeName\":\"" node "\"},\"status\":{\"podIP\":"   \
	"\"" ip "\"}}"

static const char CLUSTER[] = "[" NS("shop", "enabled") "," NS("plain", "disabled") ","
	SVC("shop", "web", "198.19.0.10", "80") "," SVC("shop", "api", "198.19.0.20", "80") ","
	SLICE("shop", "web-1", "web", "198.18.2.11") "," SLICE("shop", "api-1", "api", "198.18.2.14") ","
	POD("shop", "client-a", NODE, "198.18.1.2") "," POD("shop", "elsewhere", "node-b", "198.18.9.2")
	"]";

/* A fake server with CLUSTER and a backend synced to it. */
static void synced_cluster(const struct kfake_opts *o)
{
	fake_up(o);
	cr_assert_eq(kfake_apply(&h.f, CLUSTER), 0);
	agent_up(NODE);
	wait_health(REG_HEALTH_SYNCED);
}

/* ---- tests ---- */

Test(k8s_client, initial_sync_lists_every_resource_and_only_this_nodes_pods)
{
	const struct obj *svc;
	char sel[256];

	synced_cluster(NULL);
	cr_assert_not_null(find(OBJ_NAMESPACE, "", "shop"));
	cr_assert(find(OBJ_NAMESPACE, "", "shop")->nspace.meshed);
	cr_assert(!find(OBJ_NAMESPACE, "", "plain")->nspace.meshed);
	svc = find(OBJ_SERVICE, "shop", "web");
	cr_assert_not_null(svc);
	cr_assert_eq(svc->svc.n_ports, 1);
	cr_assert_eq(svc->svc.ports[0].port, 80);
	cr_assert_str_eq(slice_ep("shop", "web-1"), "198.18.2.11");
	cr_assert_str_eq(slice_ep("shop", "api-1"), "198.18.2.14");
	cr_assert_not_null(find(OBJ_POD, "shop", "client-a"));
	cr_assert_null(find(OBJ_POD, "shop", "elsewhere"), "a pod of another node was listed");
	/* One listing per resource, then watches; Pods by field selector. */
	cr_assert_eq(kfake_stat(&h.f, "lists", "services"), 1);
	cr_assert_eq(kfake_stat(&h.f, "lists", "pods"), 1);
	cr_assert_geq(kfake_stat(&h.f, "watches", "endpointslices"), 1);
	json_object *s = kfake_stats(&h.f), *fs;

	cr_assert(json_object_object_get_ex(s, "field_selectors", &fs));
	snprintf(sel, sizeof(sel), "%s", json_object_to_json_string(fs));
	json_object_put(s);
	cr_assert(strstr(sel, "spec.nodeName=" NODE), "field selectors: %s", sel);
	cr_assert_eq(status().resyncs, 4, "one resync per listed resource");
	cr_assert_eq(status().rejected, 0);
}

Test(k8s_client, added_modified_deleted_propagate)
{
	synced_cluster(NULL);
	cr_assert_eq(kfake_apply(&h.f, "[" SVC("shop", "cart", "198.19.0.30", "80") ","
				 SLICE("shop", "cart-1", "cart", "198.18.2.30") "]"), 0);
	wait_present(OBJ_SERVICE, "shop", "cart");
	wait_slice("shop", "cart-1", "198.18.2.30");
	cr_assert_eq(kfake_apply(&h.f, "[" SLICE("shop", "web-1", "web", "198.18.2.12") "]"), 0);
	wait_slice("shop", "web-1", "198.18.2.12");
	cr_assert_eq(kfake_delete(&h.f, "Service", "shop", "api"), 0);
	wait_absent(OBJ_SERVICE, "shop", "api");
	cr_assert_eq(kfake_delete(&h.f, "Namespace", "", "plain"), 0);
	wait_absent(OBJ_NAMESPACE, "", "plain");
	/* A pod scheduled here arrives; one scheduled elsewhere never does. */
	cr_assert_eq(kfake_apply(&h.f, "[" POD("shop", "late", NODE, "198.18.1.3") ","
				 POD("shop", "late-b", "node-b", "198.18.9.3") "]"), 0);
	wait_present(OBJ_POD, "shop", "late");
	cr_assert_null(find(OBJ_POD, "shop", "late-b"));
	/* Events, not listings. */
	cr_assert_eq(kfake_stat(&h.f, "lists", "services"), 1);
	cr_assert_eq(kfake_stat(&h.f, "lists", "endpointslices"), 1);
}

static void dropped_watch_resumes(bool abrupt)
{
	char rv[64];
	long long watches;

	synced_cluster(NULL);
	watches = kfake_stat(&h.f, "watches", "endpointslices");
	cr_assert_eq(kfake_control(&h.f, "drop", abrupt ? "{\"abrupt\":true}" : "{}"), 0);
	cr_assert_eq(kfake_apply(&h.f, "[" SLICE("shop", "web-1", "web", "198.18.2.13") "]"), 0);
	wait_slice("shop", "web-1", "198.18.2.13");
	/* Reconnected from where it was, without listing again. */
	cr_assert_gt(kfake_stat(&h.f, "watches", "endpointslices"), watches);
	cr_assert_eq(kfake_stat(&h.f, "lists", "endpointslices"), 1);
	cr_assert_eq(kfake_stat(&h.f, "lists", "services"), 1);
	cr_assert_eq(kfake_last_watch_rv(&h.f, "endpointslices", rv, sizeof(rv)), 0);
	cr_assert(rv[0] && strcmp(rv, "0"), "the watch resumed from '%s'", rv);
	cr_assert_eq(status().resyncs, 4);
	wait_health(REG_HEALTH_SYNCED);
}

Test(k8s_client, dropped_watch_resumes_from_the_last_version_without_relisting)
{
	dropped_watch_resumes(true);
}

Test(k8s_client, watch_ended_by_the_server_resumes_without_relisting)
{
	dropped_watch_resumes(false);
}

/* While the backend is cut off, objects change and the history is
 * compacted: the reconnecting watch is told 410 and a listing must bring
 * both the additions and the deletions.
 */
static void gone_relists(const char *mode)
{
	struct kfake_opts o = { .gone = mode };
	long long lists;

	synced_cluster(&o);
	lists = kfake_stat(&h.f, "lists", "services");
	cr_assert_eq(kfake_control(&h.f, "down", "{\"down\":true}"), 0);
	cr_assert_eq(kfake_delete(&h.f, "Service", "shop", "api"), 0);
	cr_assert_eq(kfake_delete(&h.f, "EndpointSlice", "shop", "api-1"), 0);
	cr_assert_eq(kfake_apply(&h.f, "[" SVC("shop", "cart", "198.19.0.30", "80") "]"), 0);
	cr_assert_eq(kfake_control(&h.f, "compact", NULL), 0);
	wait_health(REG_HEALTH_STALE);
	/* Outage: nothing was removed meanwhile. */
	cr_assert_not_null(find(OBJ_SERVICE, "shop", "api"));
	cr_assert_eq(kfake_control(&h.f, "down", "{\"down\":false}"), 0);
	wait_absent(OBJ_SERVICE, "shop", "api");
	wait_absent(OBJ_ENDPOINTSLICE, "shop", "api-1");
	wait_present(OBJ_SERVICE, "shop", "cart");
	wait_health(REG_HEALTH_SYNCED);
	cr_assert_gt(kfake_stat(&h.f, "lists", "services"), lists);
	cr_assert_geq(kfake_stat(&h.f, "gone", NULL), 1);
	cr_assert_not_null(find(OBJ_SERVICE, "shop", "web"), "an untouched Service was lost");
}

Test(k8s_client, gone_as_an_error_event_relists_and_applies_deletions)
{
	gone_relists("event");
}

Test(k8s_client, gone_as_http_410_relists_and_applies_deletions)
{
	gone_relists("http");
}

Test(k8s_client, rotated_token_is_read_again_on_reconnect)
{
	long long unauthorized;

	synced_cluster(NULL);
	/* kubelet writes the new token, the server stops taking the old one
	 * and cuts the watches: reconnecting must send the new one.
	 */
	cr_assert_eq(kfake_write_token(&h.f, "rotated-1"), 0);
	cr_assert_eq(kfake_control(&h.f, "token", "{\"token\":\"rotated-1\"}"), 0);
	cr_assert_eq(kfake_control(&h.f, "drop", "{\"abrupt\":true}"), 0);
	cr_assert_eq(kfake_apply(&h.f, "[" SLICE("shop", "web-1", "web", "198.18.2.12") "]"), 0);
	wait_slice("shop", "web-1", "198.18.2.12");
	cr_assert_eq(kfake_stat(&h.f, "unauthorized", NULL), 0, "the old token was sent");
	/* Now the server moves first: 401s until the file changes too. */
	cr_assert_eq(kfake_control(&h.f, "token", "{\"token\":\"rotated-2\"}"), 0);
	cr_assert_eq(kfake_control(&h.f, "drop", "{\"abrupt\":true}"), 0);
	cr_assert(wait_for(message_has, "401", WAIT_MS), "health message: '%s'", status().message);
	cr_assert_eq(status().health, REG_HEALTH_STALE);
	unauthorized = kfake_stat(&h.f, "unauthorized", NULL);
	cr_assert_geq(unauthorized, 1);
	cr_assert_eq(kfake_write_token(&h.f, "rotated-2"), 0);
	cr_assert_eq(kfake_apply(&h.f, "[" SLICE("shop", "web-1", "web", "198.18.2.13") "]"), 0);
	wait_slice("shop", "web-1", "198.18.2.13");
	wait_health(REG_HEALTH_SYNCED);
	cr_assert_not_null(find(OBJ_SERVICE, "shop", "api"), "the 401s removed objects");
}

Test(k8s_client, server_down_reports_stale_and_keeps_the_catalogue)
{
	synced_cluster(NULL);
	kfake_kill(&h.f);
	wait_health(REG_HEALTH_STALE);
	cr_assert_neq(status().message[0], '\0', "a stale registry says why");
	/* A few retries later, still everything. */
	run_for(2500);
	cr_assert_eq(status().health, REG_HEALTH_STALE);
	cr_assert_not_null(find(OBJ_SERVICE, "shop", "web"));
	cr_assert_not_null(find(OBJ_SERVICE, "shop", "api"));
	cr_assert_str_eq(slice_ep("shop", "web-1"), "198.18.2.11");
	cr_assert_not_null(find(OBJ_NAMESPACE, "", "shop"));
	cr_assert_not_null(find(OBJ_POD, "shop", "client-a"));
}

#define BAD_SVC(name)                                                                              \
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"" name "\","       \
	"\"namespace\":\"shop\"},\"spec\":{\"clusterIP\":\"198.19.0.40\",\"ports\":[{\"name\":"   \
	"\"http\",\"port\":\"http\"}]}}"

Test(k8s_client, malformed_objects_are_rejected_one_by_one)
{
	fake_up(NULL);
	cr_assert_eq(kfake_apply(&h.f, CLUSTER), 0);
	cr_assert_eq(kfake_apply(&h.f, "[" BAD_SVC("broken") "]"), 0);
	agent_up(NODE);
	wait_health(REG_HEALTH_SYNCED);
	/* In a listing: the rest applies. */
	cr_assert_null(find(OBJ_SERVICE, "shop", "broken"));
	cr_assert_not_null(find(OBJ_SERVICE, "shop", "web"));
	cr_assert_eq(status().rejected, 1);
	/* In a watch event: the previous version stays in force. */
	cr_assert_eq(kfake_apply(&h.f, "[" BAD_SVC("web") "," SVC("shop", "cart", "198.19.0.30", "80")
				 "]"), 0);
	wait_present(OBJ_SERVICE, "shop", "cart");
	cr_assert_eq(status().rejected, 2);
	cr_assert_eq(find(OBJ_SERVICE, "shop", "web")->svc.ports[0].port, 80);
	/* And in a relisting after 410 too: a typo never removes a Service. */
	cr_assert_eq(kfake_control(&h.f, "down", "{\"down\":true}"), 0);
	cr_assert_eq(kfake_apply(&h.f, "[" SVC("shop", "cart2", "198.19.0.31", "80") "]"), 0);
	cr_assert_eq(kfake_control(&h.f, "compact", NULL), 0);
	cr_assert_eq(kfake_control(&h.f, "down", "{\"down\":false}"), 0);
	wait_present(OBJ_SERVICE, "shop", "cart2");
	cr_assert_eq(kfake_stat(&h.f, "lists", "services"), 2, "no relist after 410");
	wait_health(REG_HEALTH_SYNCED);
	cr_assert_not_null(find(OBJ_SERVICE, "shop", "web"), "the relist removed a rejected Service");
	cr_assert_eq(find(OBJ_SERVICE, "shop", "web")->svc.ports[0].port, 80);
	cr_assert_geq(status().rejected, 4);
}

static bool n_services(const void *arg)
{
	char name[32];
	int want = *(const int *)arg;

	for (int i = 0; i < want; i++) {
		snprintf(name, sizeof(name), "svc-%d", i);
		if (!find(OBJ_SERVICE, "bench", name))
			return false;
	}
	return true;
}

Test(k8s_client, big_listings_come_in_pages)
{
	int want = 1201;

	fake_up(NULL);
	cr_assert_eq(kfake_control(&h.f, "bulk", "{\"namespace\":\"bench\",\"services\":1201,"
				   "\"endpoints_per_slice\":2}"), 0);
	agent_up(NODE);
	wait_health(REG_HEALTH_SYNCED);
	cr_assert(wait_for(n_services, &want, WAIT_MS));
	cr_assert_eq(kfake_stat(&h.f, "lists", "services"), 1);
	cr_assert_eq(kfake_stat(&h.f, "list_pages", "services"), 13, "limit=100: 13 pages of 1201");
	cr_assert_eq(kfake_stat(&h.f, "list_pages", "endpointslices"), 13);
	cr_assert_not_null(find(OBJ_ENDPOINTSLICE, "bench", "svc-1200-0"));
}

Test(k8s_client, expired_continue_token_starts_the_listing_over)
{
	int want = 1201;

	fake_up(NULL);
	cr_assert_eq(kfake_control(&h.f, "bulk", "{\"namespace\":\"bench\",\"services\":1201,"
				   "\"endpoints_per_slice\":1}"), 0);
	cr_assert_eq(kfake_control(&h.f, "expire_continue", NULL), 0);
	agent_up(NODE);
	wait_health(REG_HEALTH_SYNCED);
	cr_assert(wait_for(n_services, &want, WAIT_MS));
	/* The first continue of the first listing (namespaces has one page,
	 * so it is services') got 410: services were listed twice.
	 */
	cr_assert_eq(kfake_stat(&h.f, "lists", "services"), 2);
	cr_assert_eq(kfake_stat(&h.f, "gone", NULL), 1);
}

Test(k8s_client, an_html_error_page_with_retry_after_is_reported_and_waited_for)
{
	struct timespec a, b;
	long ms;

	fake_up(NULL);
	cr_assert_eq(kfake_apply(&h.f, CLUSTER), 0);
	/* A proxy in front of the API server answers 503 with HTML once. */
	cr_assert_eq(kfake_control(&h.f, "fail", "{\"status\":503,\"count\":1,"
				   "\"retry_after\":2}"), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	agent_up(NODE);
	cr_assert(wait_for(message_has, "list namespaces: HTTP 503", WAIT_MS), "health message: '%s'",
		  status().message);
	cr_assert_eq(status().health, REG_HEALTH_STALE);
	wait_health(REG_HEALTH_SYNCED);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	cr_assert_geq(ms, 1900, "synced after %ld ms: Retry-After: 2 was not honoured", ms);
	cr_assert_not_null(find(OBJ_SERVICE, "shop", "web"));
}

Test(k8s_client, client_certificate_and_inline_ca_from_the_kubeconfig)
{
	struct kfake_opts o = { .auth = KFAKE_AUTH_CLIENT_CERT };

	synced_cluster(&o);
	cr_assert_not_null(find(OBJ_SERVICE, "shop", "web"));
	cr_assert_eq(kfake_stat(&h.f, "unauthorized", NULL), 0);
}

Test(k8s_client, empty_node_name_watches_no_pods)
{
	fake_up(NULL);
	cr_assert_eq(kfake_apply(&h.f, CLUSTER), 0);
	agent_up("");
	wait_health(REG_HEALTH_SYNCED);
	cr_assert_not_null(find(OBJ_SERVICE, "shop", "web"));
	cr_assert_null(find(OBJ_POD, "shop", "client-a"));
	cr_assert_eq(kfake_stat(&h.f, "lists", "pods"), 0);
	cr_assert_eq(kfake_stat(&h.f, "watches", "pods"), 0);
}

Test(k8s_client, bookmarks_move_the_position_of_quiet_watches)
{
	json_object *times, *evs = NULL, *e, *v;
	char rv[64];
	long long before, applied = -1;
	double written;

	synced_cluster(NULL);
	/* Services change; namespaces do not, but their bookmarks follow. */
	cr_assert_eq(kfake_apply_rv(&h.f, "[" SVC("shop", "cart", "198.19.0.30", "80") "]",
				    &applied),
		     0);
	wait_present(OBJ_SERVICE, "shop", "cart");
	run_for(2500);	/* more than the fake server's bookmark interval */
	before = kfake_stat(&h.f, "watches", "namespaces");
	cr_assert_eq(kfake_control(&h.f, "drop", "{\"abrupt\":true}"), 0);
	for (int i = 0; i < 200 && kfake_stat(&h.f, "watches", "namespaces") == before; i++)
		run_for(25);
	cr_assert_eq(kfake_last_watch_rv(&h.f, "namespaces", rv, sizeof(rv)), 0);
	cr_assert_eq(strtoll(rv, NULL, 10), applied,
		     "the namespaces watch did not resume from the bookmark (%s, not %lld)", rv,
		     applied);
	/* The fake server's record of the change (what bench-registry reads):
	 * recorded, then written to the services watch the agent holds.
	 */
	times = kfake_event_times(&h.f, applied - 1);
	cr_assert_not_null(times);
	cr_assert(json_object_object_get_ex(times, "events", &evs));
	cr_assert_eq(json_object_array_length(evs), 1);
	e = json_object_array_get_idx(evs, 0);
	cr_assert(json_object_object_get_ex(e, "rv", &v));
	cr_assert_eq(json_object_get_int64(v), applied);
	cr_assert(json_object_object_get_ex(e, "written", &v) && v, "never written to the watch");
	written = json_object_get_double(v);
	cr_assert(json_object_object_get_ex(e, "recorded", &v));
	cr_assert_geq(written, json_object_get_double(v));
	json_object_put(times);
}

Test(k8s_client, stop_is_prompt_with_watches_open)
{
	struct timespec a, b;
	long ms;

	synced_cluster(NULL);
	clock_gettime(CLOCK_MONOTONIC, &a);
	reg_k8s_ops.stop(h.state, true);
	h.state = NULL;
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	cr_assert_lt(ms, 1000, "stop took %ld ms", ms);
}

Test(k8s_client, bad_configuration_fails_at_start)
{
	struct reg_opts opts = { .kubeconfig = "/nonexistent/kubeconfig", .node_name = NODE };
	void *state = NULL;

	h.loop = loop_new();
	h.model = model_new();
	h.sink = reg_sink_new(h.loop, h.model, on_changed, NULL);
	cr_assert_not_null(h.sink);
	cr_assert_eq(reg_k8s_ops.start(SRC, "", &opts, h.sink, &state), -ENOENT);
	cr_assert_null(state);
	opts.kubeconfig = "";
	unsetenv("KUBERNETES_SERVICE_HOST");
	cr_assert_eq(reg_k8s_ops.start(SRC, "", &opts, h.sink, &state), -EINVAL,
		     "no kubeconfig and not in a cluster");
	cr_assert_eq(reg_k8s_ops.start(SRC, "extra", &opts, h.sink, &state), -EINVAL);
}

/* ---- evictions ---- */

static struct reg_evict_stats evict_stats(void)
{
	struct reg_evict_stats s;

	reg_k8s_ops.evict_stats(h.state, &s);
	return s;
}

/* Every eviction asked has an outcome. */
static bool evictions_done(const void *arg)
{
	struct reg_evict_stats s = evict_stats();

	(void)arg;
	return s.evicted + s.refused + s.failed == s.requested;
}

Test(k8s_client, evictions_are_posted_and_their_outcomes_counted)
{
	struct reg_evict_stats s;
	json_object *st, *arr;

	synced_cluster(NULL);
	/* A pod that does not exist (404) and a uid that is not the pod's
	 * (409): failed, and the pod stays.
	 */
	cr_assert_eq(reg_k8s_ops.evict_pod(h.state, "shop", "nobody", ""), 0);
	cr_assert_eq(reg_k8s_ops.evict_pod(h.state, "shop", "client-a", "not-its-uid"), 0);
	cr_assert(wait_for(evictions_done, NULL, WAIT_MS));
	s = evict_stats();
	cr_assert_eq(s.requested, 2);
	cr_assert_eq(s.failed, 2, "404 and 409 are failures");
	cr_assert_not_null(find(OBJ_POD, "shop", "client-a"));
	/* A disruption budget says no (429), then yes (201): the pod goes. */
	cr_assert_eq(kfake_control(&h.f, "evictions", "{\"refuse\":1}"), 0);
	cr_assert_eq(reg_k8s_ops.evict_pod(h.state, "shop", "client-a", ""), 0);
	cr_assert(wait_for(evictions_done, NULL, WAIT_MS));
	cr_assert_eq(evict_stats().refused, 1);
	cr_assert_not_null(find(OBJ_POD, "shop", "client-a"));
	cr_assert_eq(reg_k8s_ops.evict_pod(h.state, "shop", "client-a", ""), 0);
	cr_assert(wait_for(evictions_done, NULL, WAIT_MS));
	cr_assert_eq(evict_stats().evicted, 1);
	wait_absent(OBJ_POD, "shop", "client-a");
	st = kfake_stats(&h.f);
	cr_assert(st && json_object_object_get_ex(st, "evictions", &arr));
	cr_assert_eq(json_object_array_length(arr), 1);
	cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(arr, 0)),
			 "shop/client-a");
	json_object_put(st);
}

Test(k8s_client, the_eviction_queue_is_bounded)
{
	int err = 0;

	/* The server is down: the thread cannot drain the queue quickly. */
	synced_cluster(NULL);
	cr_assert_eq(kfake_control(&h.f, "down", "{\"down\":true}"), 0);
	for (int i = 0; i < 1000 && !err; i++)
		err = reg_k8s_ops.evict_pod(h.state, "shop", "client-a", "");
	cr_assert_eq(err, -EBUSY, "1000 evictions were queued at once");
}
