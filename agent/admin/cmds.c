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
	json_object_object_add(o, "connections", conns);
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

static const struct http_route routes[] = {
	{ "GET", "/v1/status", cmd_status },
	{ "GET", "/v1/pods", cmd_pods },
};

const struct http_route *admin_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}
