// SPDX-License-Identifier: GPL-2.0-only
/* Handlers of the admin API: each renders a part of the agent's state as JSON.
 * Read-only; they run on the agent's loop and never block.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "catalogue.h"
#include "cmds.h"
#include "config.h"
#include "datapath/dp.h"
#include "http.h"
#include "loop.h"
#include "pods.h"
#include "proxy/proxy.h"
#include "proxy/state.h"
#include "registry/file.h"
#include "registry/registry.h"

static int respond(struct http_response *resp, json_object *o)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	resp->body = strdup(text);
	json_object_put(o);
	if (!resp->body)
		return -ENOMEM;
	resp->body_len = strlen(resp->body);
	return 0;
}

static const char *health_name(enum reg_health h)
{
	return h == REG_HEALTH_SYNCED ? "synced" : h == REG_HEALTH_STALE ? "stale" : "starting";
}

static json_object *registry_json(const struct agent *a)
{
	json_object *arr = json_object_new_array(), *r;
	struct reg_source_status st[AGENT_MAX_REGISTRIES];
	size_t n = a->sink ? reg_sink_status(a->sink, st, AGENT_MAX_REGISTRIES) : 0;

	for (unsigned int i = 0; i < a->n_regs; i++) {
		const struct agent_registry *reg = &a->regs[i];

		r = json_object_new_object();
		json_object_object_add(r, "name", json_object_new_string(reg->spec));
		if (reg->file) {
			const struct reg_file_stats *fs = reg_file_stats(reg->file);

			json_object_object_add(r, "health", json_object_new_string(
								    fs->last_error[0] ? "stale" : "synced"));
			json_object_object_add(r, "loads", json_object_new_uint64(fs->loads));
			json_object_object_add(r, "load_errors", json_object_new_uint64(fs->load_errors));
			json_object_object_add(r, "objects_rejected",
					       json_object_new_uint64(fs->objects_rejected));
			json_object_object_add(r, "last_error", json_object_new_string(fs->last_error));
		}
		for (size_t j = 0; j < n && j < AGENT_MAX_REGISTRIES; j++) {
			if (strcmp(st[j].source, reg->spec))
				continue;
			json_object_object_add(r, "health",
					       json_object_new_string(health_name(st[j].health)));
			json_object_object_add(r, "message", json_object_new_string(st[j].message));
			json_object_object_add(r, "events", json_object_new_uint64(st[j].events));
			json_object_object_add(r, "resyncs", json_object_new_uint64(st[j].resyncs));
			json_object_object_add(r, "objects_rejected",
					       json_object_new_uint64(st[j].rejected));
		}
		json_object_array_add(arr, r);
	}
	return arr;
}

static const char *const class_names[PROXY_STATUS_CLASSES] = { "1xx", "2xx", "3xx", "4xx", "5xx" };

static json_object *http_json(const struct proxy_stats *ps)
{
	json_object *o = json_object_new_object(), *cls = json_object_new_object();

	json_object_object_add(o, "requests", json_object_new_uint64(ps->requests));
	for (size_t i = 0; i < PROXY_STATUS_CLASSES; i++)
		json_object_object_add(cls, class_names[i], json_object_new_uint64(ps->responses[i]));
	json_object_object_add(o, "responses", cls);
	json_object_object_add(o, "local_replies", json_object_new_uint64(ps->local_replies));
	json_object_object_add(o, "request_timeouts", json_object_new_uint64(ps->request_timeouts));
	return o;
}

static json_object *resilience_json(const struct proxy_stats *ps)
{
	json_object *o = json_object_new_object(), *open = json_object_new_object();

	json_object_object_add(o, "retries", json_object_new_uint64(ps->retries));
	json_object_object_add(o, "retry_budget_exhausted",
			       json_object_new_uint64(ps->retry_budget_exhausted));
	json_object_object_add(open, "max_connections",
			       json_object_new_uint64(ps->overflow_connections));
	json_object_object_add(open, "max_pending", json_object_new_uint64(ps->overflow_pending));
	json_object_object_add(open, "max_requests", json_object_new_uint64(ps->overflow_requests));
	json_object_object_add(o, "circuit_open", open);
	json_object_object_add(o, "ejections", json_object_new_uint64(ps->ejections));
	json_object_object_add(o, "panic", json_object_new_uint64(ps->panic));
	return o;
}

static int cmd_status(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct agent *a = ctx;
	const struct proxy_stats *ps = proxy_stats(a->proxy);
	json_object *o = json_object_new_object(), *pods, *conns, *bpf, *counters;
	uint64_t vals[64];
	int n;

	(void)req;
	json_object_object_add(o, "api", json_object_new_int(ADMIN_API_VERSION));
	json_object_object_add(o, "version", json_object_new_string(WEFT_VERSION));
	json_object_object_add(o, "mode", json_object_new_string("ebpf"));
	json_object_object_add(o, "uptime_s",
			       json_object_new_uint64((loop_now_ms(a->loop) - a->start_ms) / 1000));
	json_object_object_add(o, "cgroup", json_object_new_string(a->cgroup));
	json_object_object_add(o, "bpffs", json_object_new_string(a->cfg->bpffs));
	json_object_object_add(o, "node", json_object_new_string(a->cfg->node_name));
	pods = json_object_new_object();
	json_object_object_add(pods, "known", json_object_new_uint64(pods_count(a->pods, false)));
	json_object_object_add(pods, "meshed", json_object_new_uint64(pods_count(a->pods, true)));
	json_object_object_add(o, "pods", pods);
	json_object_object_add(o, "services", json_object_new_uint64(catalogue_n_services(a->cat)));
	json_object_object_add(o, "catalogue_generation",
			       json_object_new_uint64(catalogue_generation(a->cat)));
	conns = json_object_new_object();
	json_object_object_add(conns, "active", json_object_new_uint64(ps->active));
	json_object_object_add(conns, "total", json_object_new_uint64(ps->total));
	json_object_object_add(conns, "to_service", json_object_new_uint64(ps->to_service));
	json_object_object_add(conns, "passthrough", json_object_new_uint64(ps->passthrough));
	json_object_object_add(conns, "no_endpoint", json_object_new_uint64(ps->no_endpoint));
	json_object_object_add(conns, "orig_dst_errors", json_object_new_uint64(ps->orig_dst_errors));
	json_object_object_add(conns, "connect_errors", json_object_new_uint64(ps->connect_errors));
	json_object_object_add(conns, "connect_timeouts",
			       json_object_new_uint64(ps->connect_timeouts));
	json_object_object_add(conns, "resets", json_object_new_uint64(ps->resets));
	json_object_object_add(conns, "over_limit", json_object_new_uint64(ps->over_limit));
	json_object_object_add(conns, "idle_timeouts", json_object_new_uint64(ps->idle_timeouts));
	json_object_object_add(conns, "detected_http", json_object_new_uint64(ps->detected_http));
	json_object_object_add(conns, "detected_tcp", json_object_new_uint64(ps->detected_tcp));
	json_object_object_add(conns, "detect_timeouts", json_object_new_uint64(ps->detect_timeouts));
	json_object_object_add(conns, "upstream_active", json_object_new_uint64(ps->upstream_active));
	json_object_object_add(conns, "upstream_reused", json_object_new_uint64(ps->upstream_reused));
	json_object_object_add(o, "connections", conns);
	json_object_object_add(o, "http", http_json(ps));
	json_object_object_add(o, "resilience", resilience_json(ps));
	json_object_object_add(o, "registries", registry_json(a));
	bpf = json_object_new_object();
	counters = json_object_new_object();
	n = dp_counters(a->dp, vals, sizeof(vals) / sizeof(vals[0]));
	for (int i = 0; i < n; i++)
		json_object_object_add(counters, dp_counter_name((size_t)i),
				       json_object_new_uint64(vals[i]));
	json_object_object_add(bpf, "counters", counters);
	json_object_object_add(o, "bpf", bpf);
	return respond(resp, o);
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
	json_object_object_add(o, "reason", json_object_new_string(pod->reason));
	json_object_object_add(o, "netns_cookie", json_object_new_uint64(pod->netns_cookie));
	if (pod->lfd4 != -1) {
		snprintf(buf, sizeof(buf), "127.0.0.1:%u", a->cfg->proxy_port);
		json_object_array_add(ls, json_object_new_string(buf));
	}
	if (pod->lfd6 != -1) {
		snprintf(buf, sizeof(buf), "[::1]:%u", a->cfg->proxy_port);
		json_object_array_add(ls, json_object_new_string(buf));
	}
	json_object_object_add(o, "listeners", ls);
	if (pod->meshed) {
		json_object *ports = json_object_new_array(), *cidrs = json_object_new_array();
		struct dp_pod d;

		pods_datapath_entry(a->pods, pod, &d);
		for (size_t i = 0; i < DP_MAX_EXCL_PORTS && d.excl_ports[i]; i++)
			json_object_array_add(ports, json_object_new_int(d.excl_ports[i]));
		for (size_t i = 0; i < DP_MAX_EXCL_CIDRS && d.excl_cidrs[i].net.family; i++) {
			struct cidr c = { .net = d.excl_cidrs[i].net,
					  .prefix_len = d.excl_cidrs[i].prefix_len };

			json_object_array_add(cidrs, json_object_new_string(
							     cidr_fmt(&c, buf, sizeof(buf))));
		}
		json_object_object_add(o, "exclude_ports", ports);
		json_object_object_add(o, "exclude_cidrs", cidrs);
	}
	json_object_object_add(conns, "active", json_object_new_uint64(pod->conns_active));
	json_object_object_add(conns, "total", json_object_new_uint64(pod->conns_total));
	json_object_object_add(o, "connections", conns);
	return o;
}

static int cmd_pods(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct agent *a = ctx;
	json_object *o = json_object_new_object(), *arr = json_object_new_array();

	(void)req;
	for (const struct pod *pod = pods_first(a->pods); pod; pod = pod->next)
		json_object_array_add(arr, pod_json(pod, a));
	json_object_object_add(o, "api", json_object_new_int(ADMIN_API_VERSION));
	json_object_object_add(o, "pods", arr);
	return respond(resp, o);
}

static json_object *policy_json(const struct policy *p)
{
	json_object *o = json_object_new_object(), *w = json_object_new_object();
	char buf[ADDR_STRLEN];

	json_object_object_add(o, "lb", json_object_new_string(policy_lb_name(p->lb)));
	json_object_object_add(o, "protocol", json_object_new_string(policy_proto_name(p->protocol)));
	json_object_object_add(o, "protocol_detect_timeout_ms", json_object_new_uint64(p->detect_ms));
	json_object_object_add(o, "connect_timeout_ms", json_object_new_uint64(p->connect_timeout_ms));
	json_object_object_add(o, "idle_timeout_ms", json_object_new_uint64(p->idle_timeout_ms));
	json_object_object_add(o, "request_timeout_ms", json_object_new_uint64(p->request_timeout_ms));
	json_object_object_add(o, "retries", json_object_new_uint64(p->retries));
	json_object_object_add(o, "retry_budget_percent", json_object_new_uint64(p->retry_budget_pct));
	json_object_object_add(o, "retry_budget_min_per_s", json_object_new_uint64(p->retry_budget_min));
	json_object_object_add(o, "retry_backoff_ms", json_object_new_uint64(p->retry_backoff_ms));
	json_object_object_add(o, "max_connections", json_object_new_uint64(p->max_connections));
	json_object_object_add(o, "max_pending", json_object_new_uint64(p->max_pending));
	json_object_object_add(o, "max_requests", json_object_new_uint64(p->max_requests));
	json_object_object_add(o, "outlier_consecutive_failures",
			       json_object_new_uint64(p->outlier_failures));
	json_object_object_add(o, "outlier_base_ejection_ms", json_object_new_uint64(p->outlier_base_ms));
	json_object_object_add(o, "outlier_max_ejection_ms", json_object_new_uint64(p->outlier_max_ms));
	json_object_object_add(o, "outlier_max_ejected_percent",
			       json_object_new_uint64(p->outlier_max_pct));
	for (size_t i = 0; i < p->n_weights; i++)
		json_object_object_add(w, addr_fmt_ip(&p->weights[i].ip, buf, sizeof(buf)),
				       json_object_new_uint64(p->weights[i].weight));
	json_object_object_add(o, "weights", w);
	return o;
}

static json_object *classes_json(const uint64_t *cls)
{
	json_object *o = json_object_new_object();

	for (size_t i = 0; i < STATUS_CLASSES; i++)
		json_object_object_add(o, class_names[i], json_object_new_uint64(cls[i]));
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
	json_object_object_add(t, "connections", json_object_new_uint64(e->ctr.conns));
	json_object_object_add(t, "requests", json_object_new_uint64(e->ctr.requests));
	json_object_object_add(t, "responses", classes_json(e->ctr.cls));
	json_object_object_add(t, "connect_failures", json_object_new_uint64(e->ctr.connect_failures));
	json_object_object_add(t, "failures", json_object_new_uint64(e->ctr.failures));
	json_object_object_add(t, "ejections", json_object_new_uint64(e->ctr.ejections));
	json_object_object_add(t, "reused", json_object_new_uint64(e->ctr.reused));
	json_object_object_add(o, "total", t);
	return o;
}

static json_object *service_json(const struct svc_state *s, uint64_t now)
{
	json_object *o = json_object_new_object(), *eps = json_object_new_array();
	json_object *t = json_object_new_object(), *open = json_object_new_object();
	char buf[ADDR_STRLEN];

	json_object_object_add(o, "namespace", json_object_new_string(s->ns));
	json_object_object_add(o, "name", json_object_new_string(s->name));
	json_object_object_add(o, "port_name", json_object_new_string(s->port_name));
	json_object_object_add(o, "vip", json_object_new_string(addr_fmt(&s->vip, buf, sizeof(buf))));
	json_object_object_add(o, "policy", policy_json(&s->pol));
	json_object_object_add(o, "active", json_object_new_uint64(s->clients));
	json_object_object_add(o, "requests_active", json_object_new_uint64(s->requests));
	json_object_object_add(o, "upstream_open", json_object_new_uint64(s->conns));
	json_object_object_add(o, "upstream_pending", json_object_new_uint64(s->pending));
	json_object_object_add(o, "ejected", json_object_new_uint64(svc_n_ejected(s, now)));
	json_object_object_add(t, "connections", json_object_new_uint64(s->ctr.conns));
	json_object_object_add(t, "requests", json_object_new_uint64(s->ctr.requests));
	json_object_object_add(t, "responses", classes_json(s->ctr.cls));
	json_object_object_add(t, "retries", json_object_new_uint64(s->ctr.retries));
	json_object_object_add(t, "retry_budget_exhausted",
			       json_object_new_uint64(s->ctr.budget_exhausted));
	json_object_object_add(open, "max_connections",
			       json_object_new_uint64(s->ctr.overflow[OVF_CONNECTIONS]));
	json_object_object_add(open, "max_pending", json_object_new_uint64(s->ctr.overflow[OVF_PENDING]));
	json_object_object_add(open, "max_requests",
			       json_object_new_uint64(s->ctr.overflow[OVF_REQUESTS]));
	json_object_object_add(t, "circuit_open", open);
	json_object_object_add(t, "panic", json_object_new_uint64(s->ctr.panic));
	json_object_object_add(t, "ejections", json_object_new_uint64(s->ctr.ejections));
	json_object_object_add(t, "no_endpoint", json_object_new_uint64(s->ctr.no_endpoint));
	json_object_object_add(t, "connect_timeouts", json_object_new_uint64(s->ctr.connect_timeouts));
	json_object_object_add(t, "request_timeouts", json_object_new_uint64(s->ctr.request_timeouts));
	json_object_object_add(t, "detected_http", json_object_new_uint64(s->ctr.detected_http));
	json_object_object_add(t, "detected_tcp", json_object_new_uint64(s->ctr.detected_tcp));
	json_object_object_add(o, "total", t);
	for (size_t i = 0; i < s->n_eps; i++)
		json_object_array_add(eps, endpoint_json(s->eps[i], now));
	json_object_object_add(o, "endpoints", eps);
	return o;
}

static int cmd_services(const struct http_request *req, struct http_response *resp, void *ctx)
{
	struct agent *a = ctx;
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	uint64_t now = proxy_now_ms(a->proxy);
	const struct svc_state *s;

	(void)req;
	for (size_t i = 0; (s = proxy_service_at(a->proxy, i)); i++)
		json_object_array_add(arr, service_json(s, now));
	json_object_object_add(o, "api", json_object_new_int(ADMIN_API_VERSION));
	json_object_object_add(o, "services", arr);
	return respond(resp, o);
}

static const struct http_route routes[] = {
	{ "GET", "/v1/status", cmd_status },
	{ "GET", "/v1/pods", cmd_pods },
	{ "GET", "/v1/services", cmd_services },
};

const struct http_route *admin_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}
