// SPDX-License-Identifier: GPL-2.0-only
/* Handlers of the admin API: each renders a part of the agent's state as JSON.
 * Read-only; they run on the agent's loop and never block. This file holds
 * the route table and the status, pods and services views; conns.c and
 * trace.c hold the other two, reply.c what every handler shares.
 */
#include <errno.h>
#include <json-c/json.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include "agent.h"
#include "model/catalogue.h"
#include "cmds.h"
#include "reply.h"
#include "config.h"
#include "datapath/capture.h"
#include "datapath/dp.h"
#include "dns/responder.h"
#include "http.h"
#include "loop.h"
#include "metrics.h"
#include "pods.h"
#include "proxy/counters.h"
#include "proxy/proxy.h"
#include "proxy/state.h"
#include "proxy/workers.h"
#include "registry/file.h"
#include "registry/registry.h"


static const char *health_name(enum reg_health h)
{
	return h == REG_HEALTH_SYNCED ? "synced" : h == REG_HEALTH_STALE ? "stale" : "starting";
}

static json_object *registry_json(const struct agent *a)
{
	uint64_t now = loop_now_ms(a->loop);
	json_object *arr = json_object_new_array(), *r;
	struct reg_source_status st[AGENT_MAX_REGISTRIES];
	size_t n = a->sink ? reg_sink_status(a->sink, st, AGENT_MAX_REGISTRIES) : 0;

	for (unsigned int i = 0; i < a->n_regs; i++) {
		const struct agent_registry *reg = &a->regs[i];
		struct reg_file_stats fst;
		const struct reg_file_stats *fs =
			reg_file_backend_stats(reg->ops, reg->state, &fst) ? &fst : NULL;

		r = json_object_new_object();
		json_object_object_add(r, "name", json_object_new_string(reg->spec));
		if (fs) {

			json_object_object_add(r, "health", json_object_new_string(
								    fs->last_error[0] ? "stale" : "synced"));
			json_object_object_add(r, "loads", json_object_new_uint64(fs->loads));
			json_object_object_add(r, "load_errors", json_object_new_uint64(fs->load_errors));
			json_object_object_add(r, "objects_rejected",
					       json_object_new_uint64(fs->objects_rejected));
			json_object_object_add(r, "last_error", json_object_new_string(fs->last_error));
		}
		for (size_t j = 0; j < n && j < AGENT_MAX_REGISTRIES && !fs; j++) {
			if (strcmp(st[j].source, reg->spec))
				continue;
			json_object_object_add(r, "health",
					       json_object_new_string(health_name(st[j].health)));
			json_object_object_add(r, "message", json_object_new_string(st[j].message));
			json_object_object_add(r, "events", json_object_new_uint64(st[j].events));
			json_object_object_add(r, "resyncs", json_object_new_uint64(st[j].resyncs));
			json_object_object_add(r, "objects_rejected",
					       json_object_new_uint64(st[j].rejected));
			/* How old the newest change is: a quiet registry and a
			 * stale one look alike here; "health" tells them apart.
			 */
			json_object_object_add(r, "last_change_age_s",
					       st[j].last_change_ms && now >= st[j].last_change_ms ?
						       json_object_new_uint64((now - st[j].last_change_ms) / 1000) :
						       NULL);
		}
		json_object_array_add(arr, r);
	}
	return arr;
}

/* The object at the '.'-separated @path below @o, made when missing; NULL
 * when out of memory.
 */
static json_object *group_json(json_object *o, const char *path)
{
	char name[64];

	while (o && *path) {
		size_t len = strcspn(path, ".");
		json_object *sub;

		snprintf(name, sizeof(name), "%.*s", (int)len, path);
		if (!json_object_object_get_ex(o, name, &sub)) {
			sub = json_object_new_object();
			if (sub && json_object_object_add(o, name, sub)) {
				json_object_put(sub);
				sub = NULL;
			}
		}
		o = sub;
		path += len + (path[len] == '.');
	}
	return o;
}

void admin_counters_json(json_object *o, const struct counter_table *t, const void *ctr)
{
	for (size_t r = 0; r < t->n; r++) {
		const struct counter_def *d = &t->defs[r];
		json_object *g = group_json(o, d->group), *v;

		if (!g)
			continue;
		if (d->n == 1) {
			v = json_object_new_uint64(counter_get(d, ctr, 0));
		} else {
			v = json_object_new_object();
			for (size_t i = 0; v && i < d->n; i++)
				json_object_object_add(v, d->sub[i],
						       json_object_new_uint64(counter_get(d, ctr, i)));
		}
		json_object_object_add(g, d->key, v);
	}
}

/* gcc says AddressSanitizer with a macro, clang (before 16) with a feature. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_ASAN 1
#endif
#endif

#ifdef HEAP_ASAN
/* The sanitizer's allocator stands in for malloc; gcc does not install
 * <sanitizer/allocator_interface.h>, which declares this.
 */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

/* Bytes the agent holds allocated on its heap now: what a leak or a table
 * that never shrinks makes grow. The resident size also counts what the
 * allocator keeps mapped but free, and under AddressSanitizer its
 * quarantine of freed blocks, both of which grow for a while with no leak.
 */
static uint64_t heap_bytes(void)
{
#ifdef HEAP_ASAN
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();

	/* Blocks in use in the arenas, and the ones mmap()ed on their own. */
	return mi.uordblks + mi.hblkhd;
#endif
}

static json_object *kernel_json(const struct agent *a)
{
	json_object *o = json_object_new_object();
	struct utsname u;

	if (uname(&u) == 0) {
		json_object_object_add(o, "release", json_object_new_string(u.release));
		json_object_object_add(o, "machine", json_object_new_string(u.machine));
	}
	/* The agent does not start without what its mode needs (the probe of
	 * capture_open()), so a running agent has it all; listed so the
	 * operator need not know. /v1/capture has the full table.
	 */
	json_object_object_add(
		o, "features",
		json_object_new_string(capture_mode(a->capture) == CAPTURE_EBPF ?
					       "btf cgroup2 connect4/6 sockops getsockopt getpeername sk_lookup sk_storage netns_cookie bpf_link" :
					       "nf_tables nat socket-cgroupv2 redirect"));
	return o;
}

static json_object *programs_json(const struct agent *a)
{
	json_object *arr = json_object_new_array();
	struct dp_link_status st[16];
	struct dp *dp = capture_dp(a->capture);
	size_t n = dp ? dp_links(dp, st, sizeof(st) / sizeof(st[0])) : 0;

	for (size_t i = 0; i < n; i++) {
		json_object *p = json_object_new_object();

		json_object_object_add(p, "name", json_object_new_string(st[i].prog));
		json_object_object_add(p, "attached", json_object_new_boolean(st[i].attached));
		json_object_object_add(p, "link_id", json_object_new_uint64(st[i].link_id));
		json_object_object_add(p, "prog_id", json_object_new_uint64(st[i].prog_id));
		json_object_array_add(arr, p);
	}
	return arr;
}

/* GET /v1/capture: the mode in force and why, and what each mode needs from
 * the kernel against what this node has (the probes run again, now).
 */
static int cmd_capture(const struct http_request *req, struct http_response *resp, void *ctx)
{
	static const char *const known[] = { NULL };
	struct agent *a = ctx;
	struct capture_need needs[48];
	size_t n = capture_needs(needs, sizeof(needs) / sizeof(needs[0]));
	json_object *o, *arr = json_object_new_array();

	if (admin_bad_query(req, resp, known)) {
		json_object_put(arr);
		return 0;
	}
	o = json_object_new_object();
	json_object_object_add(o, "mode",
			       json_object_new_string(capture_mode_name(capture_mode(a->capture))));
	json_object_object_add(o, "reason", json_object_new_string(capture_why(a->capture)));
	json_object_object_add(o, "asked", json_object_new_string(a->cfg->mode));
	for (size_t i = 0; i < n; i++) {
		json_object *f = json_object_new_object();

		json_object_object_add(f, "mode",
				       json_object_new_string(capture_mode_name(needs[i].mode)));
		json_object_object_add(f, "name", json_object_new_string(needs[i].name));
		json_object_object_add(f, "what", json_object_new_string(needs[i].what));
		json_object_object_add(f, "present", json_object_new_boolean(needs[i].present));
		json_object_array_add(arr, f);
	}
	json_object_object_add(o, "needs", arr);
	return admin_json(resp, o);
}

/* VIP allocation (--vip-range, docs/dns.md): the ranges, the counts, and
 * each service that lost its home address to another or got none.
 */
static json_object *vips_json(const struct agent *a)
{
	struct cat_vip_stats st = catalogue_vip_stats(a->cat);
	json_object *o = json_object_new_object(), *ranges = json_object_new_array();
	json_object *moved = json_object_new_array();
	const struct cat_service *svc;
	char buf[ADDR_STRLEN + 8];

	for (size_t i = 0; i < a->cfg->n_vip_ranges; i++)
		json_object_array_add(ranges, json_object_new_string(
			cidr_fmt(&a->cfg->vip_ranges[i], buf, sizeof(buf))));
	for (size_t i = 0; (svc = catalogue_service_at(a->cat, i)); i++) {
		json_object *m;

		if (svc->vip_source != CAT_VIP_PROBED && svc->vip_source != CAT_VIP_EXHAUSTED)
			continue;
		m = json_object_new_object();
		json_object_object_add(m, "namespace", json_object_new_string(svc->ns));
		json_object_object_add(m, "name", json_object_new_string(svc->name));
		json_object_object_add(m, "outcome", json_object_new_string(
			svc->vip_source == CAT_VIP_PROBED ? "collision" : "exhausted"));
		json_object_array_add(moved, m);
	}
	json_object_object_add(o, "ranges", ranges);
	json_object_object_add(o, "allocated", json_object_new_uint64(st.allocated));
	json_object_object_add(o, "collisions", json_object_new_uint64(st.collisions));
	json_object_object_add(o, "exhausted", json_object_new_uint64(st.exhausted));
	json_object_object_add(o, "displaced", moved);
	return o;
}

/* DNS capture (docs/dns.md): the responders' port (0: off) and counters. */
static json_object *dns_json(const struct agent *a)
{
	json_object *o = json_object_new_object();
	struct dnsr_counters n = { 0 };

	if (a->dnsr)
		dnsr_counters(a->dnsr, &n);
	json_object_object_add(o, "port", json_object_new_uint64(a->dnsr ? a->cfg->dns_port : 0));
	for (size_t i = 0; i < dnsr_n_counter_defs; i++)
		json_object_object_add(o, dnsr_counter_defs[i].name,
				       json_object_new_uint64(
					       dnsr_counter_get(&n, &dnsr_counter_defs[i])));
	return o;
}

/* What taking up published catalogues cost the workers since the start: a
 * worker binds each snapshot between two of its events, so the longest bind
 * is the longest any connection on it waited for a publish.
 */
static json_object *binds_json(const struct agent *a, const struct workers_publish_stats *pub)
{
	const struct reg_sink_gate_stats *gate = a->sink ? reg_sink_gate_stats(a->sink) : NULL;
	json_object *o = json_object_new_object();

	json_object_object_add(o, "binds", json_object_new_uint64(pub->binds));
	json_object_object_add(o, "avg_us",
			       json_object_new_uint64(pub->binds ? pub->total_us / pub->binds : 0));
	json_object_object_add(o, "max_us", json_object_new_uint64(pub->max_us));
	json_object_object_add(o, "max_cpu_us", json_object_new_uint64(pub->max_cpu_us));
	json_object_object_add(o, "max_changes", json_object_new_uint64(pub->max_changes));
	/* The registry's parts published once the workers had bound the one
	 * before, and those that went without after the bounded wait.
	 */
	json_object_object_add(o, "publish_waits", json_object_new_uint64(gate ? gate->waits : 0));
	json_object_object_add(o, "publish_waits_expired",
			       json_object_new_uint64(gate ? gate->expired : 0));
	return o;
}

static int cmd_status(const struct http_request *req, struct http_response *resp, void *ctx)
{
	static const char *const known[] = { NULL };
	struct agent *a = ctx;
	struct workers_publish_stats pub;
	struct proxy_stats stats;
	json_object *o, *pods, *bpf, *counters;
	uint64_t vals[64];
	int n;

	if (admin_bad_query(req, resp, known))
		return 0;
	/* Read while the workers run: /v1/status never parks them. */
	workers_stats(a->workers, &stats);
	workers_publish_stats(a->workers, &pub);
	o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_string(WEFT_VERSION));
	/* Which agent answers: during a hand-over two run on the node. */
	json_object_object_add(o, "pid", json_object_new_int64((int64_t)getpid()));
	json_object_object_add(o, "workers", json_object_new_uint64(workers_count(a->workers)));
	json_object_object_add(o, "sandbox", json_object_new_boolean(workers_sandboxed(a->workers)));
	json_object_object_add(o, "mode",
			       json_object_new_string(capture_mode_name(capture_mode(a->capture))));
	json_object_object_add(o, "mode_reason", json_object_new_string(capture_why(a->capture)));
	json_object_object_add(o, "inbound_port", json_object_new_uint64(a->cfg->inbound_port));
	json_object_object_add(o, "uptime_s",
			       json_object_new_uint64((loop_now_ms(a->loop) - a->start_ms) / 1000));
	json_object_object_add(o, "cgroup", json_object_new_string(a->cgroup));
	json_object_object_add(o, "bpffs", json_object_new_string(a->cfg->bpffs));
	json_object_object_add(o, "node", json_object_new_string(a->cfg->node_name));
	json_object_object_add(o, "kernel", kernel_json(a));
	json_object_object_add(o, "heap_bytes", json_object_new_uint64(heap_bytes()));
	json_object_object_add(o, "metrics", json_object_new_string(a->metrics_addr));
	pods = json_object_new_object();
	json_object_object_add(pods, "known", json_object_new_uint64(pods_count(a->pods, false)));
	json_object_object_add(pods, "meshed", json_object_new_uint64(pods_count(a->pods, true)));
	/* ADDs waiting for their Pod object, and pods that escaped (see
	 * /v1/escaped).
	 */
	json_object_object_add(pods, "waiting", json_object_new_uint64(pods_waiting(a->pods)));
	json_object_object_add(pods, "escaped",
			       json_object_new_uint64(pods_escaped(a->pods, NULL, NULL)));
	json_object_object_add(o, "pods", pods);
	json_object_object_add(o, "services", json_object_new_uint64(catalogue_n_services(a->cat)));
	json_object_object_add(o, "vips", vips_json(a));
	json_object_object_add(o, "dns", dns_json(a));
	json_object_object_add(o, "catalogue_generation",
			       json_object_new_uint64(catalogue_generation(a->cat)));
	json_object_object_add(o, "catalogue_binds", binds_json(a, &pub));
	/* "connections", "http" and "resilience". */
	admin_counters_json(o, &counters_proxy, &stats);
	json_object_object_add(o, "registries", registry_json(a));
	bpf = json_object_new_object();
	counters = json_object_new_object();
	n = capture_dp(a->capture) ?
		    dp_counters(capture_dp(a->capture), vals, sizeof(vals) / sizeof(vals[0])) :
		    0;
	for (int i = 0; i < n; i++)
		json_object_object_add(counters, dp_counter_name((size_t)i),
				       json_object_new_uint64(vals[i]));
	json_object_object_add(bpf, "counters", counters);
	json_object_object_add(bpf, "programs", programs_json(a));
	json_object_object_add(o, "bpf", bpf);
	return admin_json(resp, o);
}

/* A query of at most "?KEY=NAMESPACE/NAME": admin_query_ref(), after
 * refusing any other parameter (-1 with @resp filled).
 */
static int only_ref(const struct http_request *req, struct http_response *resp, const char *key,
		    char *ns, char *name)
{
	const char *const known[] = { key, NULL };

	if (admin_bad_query(req, resp, known))
		return -1;
	return admin_query_ref(req, resp, key, ns, name);
}

static void escaped_json(const struct cat_pod *cp, void *ctx)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "namespace", json_object_new_string(cp->ns));
	json_object_object_add(o, "name", json_object_new_string(cp->name));
	json_object_object_add(o, "uid", json_object_new_string(cp->uid));
	json_object_object_add(o, "node", json_object_new_string(cp->node));
	json_object_array_add(ctx, o);
}

/* GET /v1/escaped: this node's running pods of meshed namespaces that were
 * never enrolled, and what was done about them.
 */
static int cmd_escaped(const struct http_request *req, struct http_response *resp, void *ctx)
{
	static const char *const known[] = { NULL };
	struct agent *a = ctx;
	struct reg_evict_stats es;
	json_object *o, *arr, *ev;

	if (admin_bad_query(req, resp, known))
		return 0;
	o = json_object_new_object();
	arr = json_object_new_array();
	(void)pods_escaped(a->pods, escaped_json, arr);
	json_object_object_add(o, "pods", arr);
	json_object_object_add(o, "evict", json_object_new_boolean(a->cfg->evict_escaped));
	agent_evict_stats(a, &es);
	ev = json_object_new_object();
	json_object_object_add(ev, "requested", json_object_new_uint64(es.requested));
	json_object_object_add(ev, "evicted", json_object_new_uint64(es.evicted));
	json_object_object_add(ev, "refused", json_object_new_uint64(es.refused));
	json_object_object_add(ev, "failed", json_object_new_uint64(es.failed));
	json_object_object_add(o, "evictions", ev);
	return admin_json(resp, o);
}

/* The pod's inbound side per port the clients dialled, summed over the
 * workers (the caller isolated them); empty without inbound capture.
 */
/* Inbound ports shown per pod: above a worker's INBOUND_PORTS_MAX, since
 * workers may each count different ports.
 */
#define POD_INBOUND_PORTS_MAX 256

static json_object *pod_inbound_json(const struct pod *pod)
{
	static const char *const classes[] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
	json_object *arr = json_object_new_array();
	struct px_inbound_port *ports;
	size_t n;

	if (!pod->capture)
		return arr;
	ports = calloc(POD_INBOUND_PORTS_MAX, sizeof(*ports));
	if (!ports)
		return arr;
	n = workers_capture_inbound(pod->capture, ports, POD_INBOUND_PORTS_MAX);
	for (size_t i = 0; i < n && i < POD_INBOUND_PORTS_MAX; i++) {
		const struct px_inbound_port *p = &ports[i];
		json_object *o = json_object_new_object(), *r = json_object_new_object();

		json_object_object_add(o, "port", json_object_new_int(p->port));
		json_object_object_add(o, "connections", json_object_new_uint64(p->conns_total));
		json_object_object_add(o, "active", json_object_new_uint64(p->conns_active));
		json_object_object_add(o, "bytes_in", json_object_new_uint64(p->bytes_in));
		json_object_object_add(o, "bytes_out", json_object_new_uint64(p->bytes_out));
		json_object_object_add(o, "requests", json_object_new_uint64(p->requests));
		for (size_t k = 0; k < PROXY_STATUS_CLASSES; k++)
			json_object_object_add(r, classes[k],
					       json_object_new_uint64(p->responses[k]));
		json_object_object_add(o, "responses", r);
		json_object_object_add(o, "connect_errors",
				       json_object_new_uint64(p->connect_errors));
		json_object_array_add(arr, o);
	}
	free(ports);
	return arr;
}

/* weft.io/fail-open of a meshed pod and the heartbeat its capture checks:
 * null when the pod does not fail open (or --fail-open-after is 0).
 */
static json_object *fail_open_json(const struct agent *a, const struct capture_target *t,
				   const struct capture_pod *d)
{
	struct capture_beat b;
	json_object *o;
	int err = capture_pod_beat(a->capture, t, d, &b);

	if (!err && !b.fail_open)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "after_ms",
			       json_object_new_uint64(capture_fail_open_after_ms(a->capture)));
	if (err) {
		json_object_object_add(o, "heartbeat",
				       json_object_new_string(strerror(-err)));
		return o;
	}
	/* "stale": the pod's traffic goes around the mesh right now. */
	json_object_object_add(o, "heartbeat", json_object_new_string(b.stale ? "stale" : "fresh"));
	json_object_object_add(o, "age_ms", json_object_new_uint64(b.age_ms));
	json_object_object_add(o, "left_ms", json_object_new_uint64(b.left_ms));
	if (capture_mode(a->capture) == CAPTURE_NFT)
		json_object_object_add(o, "connections_failed_open",
				       json_object_new_uint64(b.failed_open));
	return o;
}

static json_object *pod_json(const struct pod *pod, const struct agent *a)
{
	json_object *o = json_object_new_object(), *ips = json_object_new_array();
	json_object *ls = json_object_new_array(), *conns = json_object_new_object();
	char buf[ADDR_STRLEN];

	json_object_object_add(o, "namespace", json_object_new_string(pod->spec.ns));
	json_object_object_add(o, "name", json_object_new_string(pod->spec.name));
	json_object_object_add(o, "uid", json_object_new_string(pod->spec.uid));
	json_object_object_add(o, "container_id", json_object_new_string(pod->spec.container_id));
	json_object_object_add(o, "netns", json_object_new_string(pod->spec.netns));
	for (unsigned int i = 0; i < pod->spec.n_ips; i++)
		json_object_array_add(ips, json_object_new_string(
						   addr_fmt_ip(&pod->spec.ips[i], buf, sizeof(buf))));
	json_object_object_add(o, "ips", ips);
	json_object_object_add(o, "meshed", json_object_new_boolean(pod->meshed));
	json_object_object_add(o, "dns_captured", json_object_new_boolean(pods_dns_captured(pod)));
	json_object_object_add(o, "reason", json_object_new_string(pod->reason));
	json_object_object_add(o, "netns_cookie", json_object_new_uint64(pod->netns_cookie));
	/* Containers enrolled with this netns, this one included (docs/cni.md). */
	json_object_object_add(o, "netns_enrolments",
			       json_object_new_int((int)pods_netns_refs(pod)));
	json_object_object_add(o, "listener_blocked",
			       pods_listener_blocked(pod)
				       ? json_object_new_string(pods_listener_blocked(pod))
				       : NULL);
	json_object_object_add(o, "listener_retries",
			       json_object_new_uint64(pods_listener_retries(pod)));
	if (pod->capture && workers_capture_has_listener(pod->capture, AF_INET)) {
		snprintf(buf, sizeof(buf), "127.0.0.1:%u", a->cfg->proxy_port);
		json_object_array_add(ls, json_object_new_string(buf));
	}
	if (pod->capture && workers_capture_has_listener(pod->capture, AF_INET6)) {
		snprintf(buf, sizeof(buf), "[::1]:%u", a->cfg->proxy_port);
		json_object_array_add(ls, json_object_new_string(buf));
	}
	if (pod->capture) {
		int in4, in6;

		workers_capture_inbound_fds(pod->capture, &in4, &in6);
		if (in4 >= 0) {
			snprintf(buf, sizeof(buf), "0.0.0.0:%u", a->cfg->inbound_port);
			json_object_array_add(ls, json_object_new_string(buf));
		}
		if (in6 >= 0) {
			snprintf(buf, sizeof(buf), "[::]:%u", a->cfg->inbound_port);
			json_object_array_add(ls, json_object_new_string(buf));
		}
	}
	json_object_object_add(o, "listeners", ls);
	json_object_object_add(
		o, "listening",
		json_object_new_boolean(!pod->capture || workers_capture_listening(pod->capture)));
	if (pod->meshed) {
		json_object *ports = json_object_new_array(), *cidrs = json_object_new_array();
		json_object *in_ports = json_object_new_array();
		const struct capture_target t = {
			.netns_fd = pod->netns_fd, .netns_cookie = pod->netns_cookie,
			.lfd4 = -1, .lfd6 = -1,
		};
		struct capture_pod d;
		char problem[200] = "";
		int err;

		pods_capture_entry(a->pods, pod, &d);
		/* What the kernel holds, not what the agent meant to write. */
		err = capture_pod_verify(a->capture, &t, &d, problem, sizeof(problem));
		if (err && err != -EIO)
			snprintf(problem, sizeof(problem), "cannot read it back: %s", strerror(-err));
		json_object_object_add(o, "capture_in_place", json_object_new_boolean(!err));
		json_object_object_add(o, "capture_problem",
				       err ? json_object_new_string(problem) : NULL);
		for (size_t i = 0; i < d.n_excl_out_ports; i++)
			json_object_array_add(ports, json_object_new_int(d.excl_out_ports[i]));
		for (size_t i = 0; i < d.n_excl_out_cidrs; i++)
			json_object_array_add(cidrs, json_object_new_string(cidr_fmt(
							     &d.excl_out_cidrs[i], buf, sizeof(buf))));
		for (size_t i = 0; i < d.n_excl_in_ports; i++)
			json_object_array_add(in_ports, json_object_new_int(d.excl_in_ports[i]));
		json_object_object_add(o, "exclude_ports", ports);
		json_object_object_add(o, "exclude_cidrs", cidrs);
		json_object_object_add(o, "exclude_inbound_ports", in_ports);
		/* weft.io/deny-raw-sockets, and whether the mode can do it. */
		json_object_object_add(
			o, "raw_sockets",
			json_object_new_string(!d.deny_raw ? "allowed"
					       : capture_mode(a->capture) == CAPTURE_NFT
						       ? "allowed: nft mode cannot refuse them"
						       : "refused"));
		json_object_object_add(o, "fail_open", fail_open_json(a, &t, &d));
	}
	{
		/* Summed over the workers' shares of the pod; the caller isolated them. */
		uint64_t active = 0, total = 0;

		if (pod->capture)
			workers_capture_counts(pod->capture, &active, &total);
		json_object_object_add(conns, "active", json_object_new_uint64(active));
		json_object_object_add(conns, "total", json_object_new_uint64(total));
	}
	json_object_object_add(o, "connections", conns);
	json_object_object_add(o, "inbound", pod_inbound_json(pod));
	return o;
}

static int cmd_pods(const struct http_request *req, struct http_response *resp, void *ctx)
{
	char ns[OBJ_NS_MAX], name[OBJ_NAME_MAX];
	struct agent *a = ctx;
	json_object *o, *arr;
	int rc = only_ref(req, resp, "pod", ns, name);

	if (rc < 0)
		return 0;
	if (rc && !admin_find_pod(a, ns, name))
		return admin_error(resp, 404, "no pod %s/%s is known to the agent (see meshctl pods)",
				   ns, name);
	o = json_object_new_object();
	arr = json_object_new_array();
	workers_isolate(a->workers);
	for (const struct pod *pod = pods_first(a->pods); pod; pod = pod->next) {
		if (rc && (strcmp(pod->spec.ns, ns) || strcmp(pod->spec.name, name)))
			continue;
		json_object_array_add(arr, pod_json(pod, a));
	}
	workers_release(a->workers);
	json_object_object_add(o, "pods", arr);
	return admin_json(resp, o);
}

/* One member per knob of the policy table, under its JSON key. */
static json_object *policy_json(const struct policy *p)
{
	json_object *o = json_object_new_object(), *v;
	char buf[ADDR_STRLEN];

	for (size_t i = 0; i < POLICY_KNOBS; i++) {
		const struct policy_knob *k = &policy_knobs[i];
		uint32_t n = policy_knob_get(k, p);

		switch (k->kind) {
		case POLICY_ENUM:
			v = json_object_new_string(policy_knob_value_name(k, n));
			break;
		case POLICY_WEIGHTS:
			v = json_object_new_object();
			for (size_t j = 0; j < n; j++)
				json_object_object_add(v, addr_fmt_ip(&p->weights[j].ip, buf,
								      sizeof(buf)),
						       json_object_new_uint64(p->weights[j].weight));
			break;
		default:
			v = json_object_new_uint64(n);
			break;
		}
		json_object_object_add(o, k->json, v);
	}
	return o;
}

static json_object *endpoint_json(const struct ep_state *e, uint64_t now)
{
	json_object *o = json_object_new_object(), *t = json_object_new_object();
	bool ejected = outlier_is_ejected(&e->ol, now);
	char buf[ADDR_STRLEN];

	json_object_object_add(o, "address", json_object_new_string(addr_fmt(&e->addr, buf, sizeof(buf))));
	json_object_object_add(o, "ready", json_object_new_boolean(e->ready));
	json_object_object_add(o, "weight", json_object_new_uint64(e->weight));
	/* probation: back after an ejection; its next failure ejects it again. */
	json_object_object_add(o, "health", json_object_new_string(ejected	    ? "ejected"
								    : e->ol.ejected ? "probation"
										    : "healthy"));
	json_object_object_add(o, "ejected_for_ms",
			       json_object_new_uint64(ejected ? e->ol.until_ms - now : 0));
	json_object_object_add(o, "consecutive_failures", json_object_new_uint64(e->ol.consecutive));
	json_object_object_add(o, "ejection_multiplier", json_object_new_uint64(e->ol.ejections));
	json_object_object_add(o, "active", json_object_new_uint64(e->active));
	json_object_object_add(o, "open", json_object_new_uint64(e->conns));
	json_object_object_add(o, "idle", json_object_new_uint64(e->n_idle));
	admin_counters_json(t, &counters_ep, &e->ctr);
	json_object_object_add(o, "total", t);
	return o;
}

static json_object *quantiles_json(const struct lat_hist *h, uint64_t window_s)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "window_s", json_object_new_uint64(window_s));
	json_object_object_add(o, "count", json_object_new_uint64(h->n));
	json_object_object_add(o, "p50_us", json_object_new_uint64(lat_quantile_us(h, 0.50)));
	json_object_object_add(o, "p90_us", json_object_new_uint64(lat_quantile_us(h, 0.90)));
	json_object_object_add(o, "p99_us", json_object_new_uint64(lat_quantile_us(h, 0.99)));
	return o;
}

/* The histogram since start (for rates over any interval: meshctl top) and
 * quantiles of the recent windows (meshctl service).
 */
static json_object *latency_json(const struct lat *l, uint64_t now)
{
	json_object *o = json_object_new_object(), *b = json_object_new_array();
	json_object *c = json_object_new_array();
	struct lat_hist recent;

	for (size_t i = 0; i < LAT_BUCKETS - 1; i++)
		json_object_array_add(b, json_object_new_uint64(lat_bounds_us[i]));
	for (size_t i = 0; i < LAT_BUCKETS; i++)
		json_object_array_add(c, json_object_new_uint64(l->total.count[i]));
	json_object_object_add(o, "count", json_object_new_uint64(l->total.n));
	json_object_object_add(o, "sum_us", json_object_new_uint64(l->total.sum_us));
	json_object_object_add(o, "bounds_us", b);
	json_object_object_add(o, "counts", c);
	lat_recent(l, now, &recent);
	json_object_object_add(o, "recent", quantiles_json(&recent, 2 * LAT_WINDOW_MS / 1000));
	return o;
}

static json_object *service_json(const struct svc_state *s, uint64_t now)
{
	json_object *o = json_object_new_object(), *eps = json_object_new_array();
	json_object *t = json_object_new_object(), *lat;
	char buf[ADDR_STRLEN];

	json_object_object_add(o, "namespace", json_object_new_string(s->ns));
	json_object_object_add(o, "name", json_object_new_string(s->name));
	json_object_object_add(o, "port_name", json_object_new_string(s->port_name));
	json_object_object_add(o, "vip", json_object_new_string(addr_fmt(&s->vip, buf, sizeof(buf))));
	json_object_object_add(o, "vip_allocated", json_object_new_boolean(s->vip_allocated));
	json_object_object_add(o, "policy", policy_json(&s->pol));
	json_object_object_add(o, "active", json_object_new_uint64(s->clients));
	json_object_object_add(o, "requests_active", json_object_new_uint64(s->requests));
	json_object_object_add(o, "upstream_open", json_object_new_uint64(s->conns));
	json_object_object_add(o, "upstream_pending", json_object_new_uint64(s->pending));
	json_object_object_add(o, "ejected", json_object_new_uint64(svc_n_ejected(s, now)));
	admin_counters_json(t, &counters_svc, &s->ctr);
	json_object_object_add(o, "total", t);
	lat = json_object_new_object();
	json_object_object_add(lat, "connect", latency_json(&s->lat_connect, now));
	json_object_object_add(lat, "request", latency_json(&s->lat_request, now));
	json_object_object_add(o, "latency", lat);
	for (size_t i = 0; i < s->n_eps; i++)
		json_object_array_add(eps, endpoint_json(s->eps[i], now));
	json_object_object_add(o, "endpoints", eps);
	return o;
}

static int cmd_services(const struct http_request *req, struct http_response *resp, void *ctx)
{
	char ns[OBJ_NS_MAX], name[OBJ_NAME_MAX];
	struct agent *a = ctx;
	const struct svc_state *s;
	uint64_t now;
	json_object *o, *arr;
	size_t found = 0;
	int rc = only_ref(req, resp, "service", ns, name);

	if (rc < 0)
		return 0;
	o = json_object_new_object();
	arr = json_object_new_array();
	workers_isolate(a->workers);
	now = proxy_now_ms(workers_proxy(a->workers, 0));
	for (size_t i = 0; (s = workers_service_at(a->workers, i)); i++) {
		if (rc && (strcmp(s->ns, ns) || strcmp(s->name, name)))
			continue;
		json_object_array_add(arr, service_json(s, now));
		found++;
	}
	workers_release(a->workers);
	if (rc && !found) {
		json_object_put(o);
		json_object_put(arr);
		return admin_error(resp, 404, "no service %s/%s in the catalogue (see meshctl services)",
				   ns, name);
	}
	json_object_object_add(o, "services", arr);
	return admin_json(resp, o);
}

static const struct http_route routes[] = {
	{ "GET", "/v1/status", cmd_status },
	{ "GET", "/v1/capture", cmd_capture },
	{ "GET", "/v1/pods", cmd_pods },
	{ "GET", "/v1/escaped", cmd_escaped },
	{ "GET", "/v1/services", cmd_services },
	{ "GET", "/v1/conns", admin_conns },
	{ "GET", "/v1/trace", admin_trace },
	{ "GET", "/v1/resolve", admin_resolve },
	{ "GET", "/v1/identities", admin_identities },
};

const struct http_route *admin_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}
