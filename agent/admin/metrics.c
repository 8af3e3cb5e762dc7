// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/admin/metrics.h: the exposition writer and the
 * GET /metrics handler. Each family is written whole (HELP, TYPE, then all
 * its samples), as the format requires, from a bounded table of rows built
 * once per scrape from the proxy's service and endpoint states and the pods'
 * inbound ports. The proxy's
 * counter families come from its counter tables (proxy/counters.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "ca_client.h"
#include "identity/identity.h"
#include "model/catalogue.h"
#include "cmds.h"
#include "config.h"
#include "reply.h"
#include "datapath/capture.h"
#include "datapath/dp.h"
#include "dns/responder.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "pods.h"
#include "proxy/counters.h"
#include "proxy/proxy.h"
#include "proxy/state.h"
#include "proxy/workers.h"
#include "registry/file.h"
#include "registry/registry.h"

#define LABELS_MAX   512
#define PROM_INITIAL 65536

/* ---------------------------------------------------------------- writer */

static void prom_append(struct prom *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void prom_append(struct prom *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (int tries = 0; !p->err && tries < 2; tries++) {
		size_t room = p->cap - p->len;

		va_start(ap, fmt);
		n = vsnprintf(p->buf ? p->buf + p->len : NULL, p->buf ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			p->err = -EINVAL;
			return;
		}
		if (p->buf && (size_t)n < room) {
			p->len += (size_t)n;
			return;
		}
		size_t cap = p->cap ? p->cap : PROM_INITIAL;
		char *grown;

		while (cap < p->len + (size_t)n + 1)
			cap *= 2;
		grown = realloc(p->buf, cap);
		if (!grown) {
			p->err = -ENOMEM;
			return;
		}
		p->buf = grown;
		p->cap = cap;
	}
}

void prom_family(struct prom *p, const char *name, const char *type, const char *help)
{
	prom_append(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_u64(struct prom *p, const char *name, const char *labels, uint64_t v)
{
	prom_append(p, "%s%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
		    (unsigned long long)v);
}

void prom_scalar(struct prom *p, const char *name, const char *type, const char *help, uint64_t v)
{
	prom_family(p, name, type, help);
	prom_u64(p, name, "", v);
}

void prom_f64(struct prom *p, const char *name, const char *labels, double v)
{
	prom_append(p, "%s%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
		    v);
}

int prom_label(char *buf, size_t len, const char *key, const char *value)
{
	size_t o0 = strlen(buf), o = o0;
	int n = snprintf(buf + o, len - o, "%s%s=\"", o ? "," : "", key);

	if (n < 0 || (size_t)n >= len - o)
		goto out_cut;
	o += (size_t)n;
	for (const char *v = value; *v; v++) {
		const char *esc = *v == '\\'   ? "\\\\"
				  : *v == '"'  ? "\\\""
				  : *v == '\n' ? "\\n"
					       : NULL;
		size_t need = esc ? 2 : 1;

		if (o + need + 2 > len)
			goto out_cut;
		if (esc) {
			memcpy(buf + o, esc, 2);
		} else {
			buf[o] = *v;
		}
		o += need;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return 0;

out_cut:
	/* Never leave half a label: drop this one whole. */
	buf[o0] = '\0';
	return -ENAMETOOLONG;
}

void prom_histogram(struct prom *p, const char *name, const char *labels, const uint64_t *bounds_us,
		    size_t n_bounds, const uint64_t *counts, uint64_t sum_us)
{
	uint64_t cum = 0;

	for (size_t i = 0; i <= n_bounds; i++) {
		cum += counts[i];
		if (i < n_bounds)
			prom_append(p, "%s_bucket{%s%sle=\"%.6g\"} %llu\n", name, labels,
				    labels[0] ? "," : "", (double)bounds_us[i] / 1e6,
				    (unsigned long long)cum);
		else
			prom_append(p, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels,
				    labels[0] ? "," : "", (unsigned long long)cum);
	}
	prom_append(p, "%s_sum%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels,
		    labels[0] ? "}" : "", (double)sum_us / 1e6);
	prom_append(p, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
		    labels[0] ? "}" : "", (unsigned long long)cum);
}

static void with_label(char *out, const char *labels, const char *k, const char *v)
{
	snprintf(out, LABELS_MAX, "%s", labels);
	(void)prom_label(out, LABELS_MAX, k, v);
}

void prom_counters(struct prom *p, const struct counter_table *t, const struct prom_counted *rows,
		   size_t n)
{
	char l[LABELS_MAX];

	for (size_t r = 0; r < t->n; r++) {
		const struct counter_def *d = &t->defs[r];

		if (!d->metric)
			continue;
		prom_family(p, d->metric, d->type == CTR_GAUGE ? "gauge" : "counter", d->help);
		for (size_t k = 0; k < n; k++) {
			if (d->n == 1) {
				prom_u64(p, d->metric, rows[k].labels, counter_get(d, rows[k].ctr, 0));
				continue;
			}
			for (size_t i = 0; i < d->n; i++) {
				with_label(l, rows[k].labels, d->label, d->sub[i]);
				prom_u64(p, d->metric, l, counter_get(d, rows[k].ctr, i));
			}
		}
	}
}

/* ---------------------------------------------------------------- rows */

/* One service port's numbers, or the sum of those beyond the cap. */
struct svc_row {
	char labels[LABELS_MAX];
	const struct svc_state *s; /* NULL for the "_other" row */
	uint64_t active, ejected;
	/* Circuit-breaker occupancy and the limits (each worker allows the
	 * policy's value: the node-wide limit is that times the workers).
	 */
	uint64_t conns, pending, inflight, idle;
	uint64_t max_conns, max_pending, max_requests;
	struct svc_ctr ctr;
	struct lat_hist lc, lr;
};

struct denials;

struct ep_row {
	char labels[LABELS_MAX];
	const struct ep_state *e;
};

struct scrape {
	const struct agent *a;
	uint64_t now;
	struct svc_row *svcs;
	size_t n_svcs;
	struct ep_row *eps;
	size_t n_eps;
	struct prom_counted *svc_ctrs, *ep_ctrs;	/* parallel to svcs, eps */
	size_t svcs_folded, eps_left_out;
	struct proxy_stats stats; /* summed over the workers */
	struct prom_inbound *ins;	/* pods' inbound ports, at most METRICS_MAX_INBOUND_PORTS */
	size_t n_ins, ins_left_out;
	struct px_pod_load *loads;	/* per captured pod, in pods_first() order */
	size_t n_loads;
	struct denials *denied;		/* allow-from refusals, merged over the workers */
	struct dp_map_use maps[8];	/* eBPF mode: the datapath's map occupancy */
	int n_maps;
};

static void svc_labels(char *buf, const char *ns, const char *name, const char *vip,
		       const char *port)
{
	buf[0] = '\0';
	(void)prom_label(buf, LABELS_MAX, "namespace", ns);
	(void)prom_label(buf, LABELS_MAX, "service", name);
	(void)prom_label(buf, LABELS_MAX, "port", port);
	(void)prom_label(buf, LABELS_MAX, "vip", vip);
}

static void hist_add(struct lat_hist *into, const struct lat_hist *h)
{
	for (size_t i = 0; i < LAT_BUCKETS; i++)
		into->count[i] += h->count[i];
	into->sum_us += h->sum_us;
	into->n += h->n;
}

/* The service and endpoint rows, from the workers' merged view (kept past
 * workers_release(): workers_view_keep()).
 */
static int build_rows(struct scrape *sc)
{
	const struct svc_state *s;
	size_t n = 0, n_eps = 0;
	char vip[ADDR_STRLEN], port[OBJ_PORT_NAME_MAX], ep[ADDR_STRLEN];
	struct svc_row *other;

	for (; workers_service_at(sc->a->workers, n); n++)
		n_eps += workers_service_at(sc->a->workers, n)->n_eps;
	sc->svcs = calloc((n < METRICS_MAX_SERVICE_PORTS ? n : METRICS_MAX_SERVICE_PORTS) + 1,
			  sizeof(*sc->svcs));
	sc->eps = calloc(n_eps < METRICS_MAX_ENDPOINTS ? n_eps + 1 : METRICS_MAX_ENDPOINTS,
			 sizeof(*sc->eps));
	sc->svc_ctrs = calloc((n < METRICS_MAX_SERVICE_PORTS ? n : METRICS_MAX_SERVICE_PORTS) + 1,
			      sizeof(*sc->svc_ctrs));
	sc->ep_ctrs = calloc(n_eps < METRICS_MAX_ENDPOINTS ? n_eps + 1 : METRICS_MAX_ENDPOINTS,
			     sizeof(*sc->ep_ctrs));
	if (!sc->svcs || !sc->eps || !sc->svc_ctrs || !sc->ep_ctrs)
		return -ENOMEM;
	other = NULL;
	for (size_t i = 0; (s = workers_service_at(sc->a->workers, i)); i++) {
		struct svc_row *r;

		addr_fmt(&s->vip, vip, sizeof(vip));
		if (sc->n_svcs < METRICS_MAX_SERVICE_PORTS) {
			r = &sc->svcs[sc->n_svcs++];
			r->s = s;
			if (s->port_name[0])
				snprintf(port, sizeof(port), "%s", s->port_name);
			else
				snprintf(port, sizeof(port), "%u", s->vip.port);
			svc_labels(r->labels, s->ns, s->name, vip, port);
		} else {
			/* Past the cap: summed, so totals and rates stay right. */
			if (!other) {
				other = &sc->svcs[sc->n_svcs++];
				svc_labels(other->labels, "", "_other", "", "");
			}
			r = other;
			sc->svcs_folded++;
		}
		r->active += s->clients;
		r->ejected += svc_n_ejected(s, sc->now);
		r->conns += s->conns;
		r->pending += s->pending;
		r->inflight += s->requests;
		for (size_t j = 0; j < s->n_eps; j++)
			r->idle += s->eps[j]->n_idle;
		r->max_conns += (uint64_t)s->pol.max_connections * workers_count(sc->a->workers);
		r->max_pending += (uint64_t)s->pol.max_pending * workers_count(sc->a->workers);
		r->max_requests += (uint64_t)s->pol.max_requests * workers_count(sc->a->workers);
		counters_add(&counters_svc, &r->ctr, &s->ctr);
		hist_add(&r->lc, &s->lat_connect.total);
		hist_add(&r->lr, &s->lat_request.total);
		for (size_t j = 0; j < s->n_eps; j++) {
			struct ep_row *e;

			if (sc->n_eps == METRICS_MAX_ENDPOINTS || r == other) {
				sc->eps_left_out++;
				continue;
			}
			e = &sc->eps[sc->n_eps++];
			e->e = s->eps[j];
			snprintf(e->labels, sizeof(e->labels), "%s", r->labels);
			(void)prom_label(e->labels, sizeof(e->labels), "endpoint",
					 addr_fmt(&s->eps[j]->addr, ep, sizeof(ep)));
		}
	}
	for (size_t i = 0; i < sc->n_svcs; i++)
		sc->svc_ctrs[i] = (struct prom_counted){ sc->svcs[i].labels, &sc->svcs[i].ctr };
	for (size_t i = 0; i < sc->n_eps; i++)
		sc->ep_ctrs[i] = (struct prom_counted){ sc->eps[i].labels, &sc->eps[i].e->ctr };
	return 0;
}

/* Every meshed pod's inbound ports, up to METRICS_MAX_INBOUND_PORTS rows;
 * the rest are left out and counted. Under isolation.
 */
static int build_inbound_rows(struct scrape *sc)
{
	struct px_inbound_port *ports;

	sc->ins = calloc(METRICS_MAX_INBOUND_PORTS, sizeof(*sc->ins));
	ports = calloc(METRICS_MAX_INBOUND_PORTS, sizeof(*ports));
	if (!sc->ins || !ports) {
		free(ports);
		return -ENOMEM;
	}
	for (const struct pod *pod = pods_first(sc->a->pods); pod; pod = pod->next) {
		size_t room = METRICS_MAX_INBOUND_PORTS - sc->n_ins, n;

		if (!pod->capture)
			continue;
		n = workers_capture_inbound(pod->capture, ports, room);
		if (n > room) {
			sc->ins_left_out += n - room;
			n = room;
		}
		for (size_t i = 0; i < n; i++)
			sc->ins[sc->n_ins++] = (struct prom_inbound){ pod->spec.ns, pod->spec.name,
								      ports[i] };
	}
	free(ports);
	return 0;
}

/* ---------------------------------------------------------------- per pod */

/* Each captured pod's load, in pods_first() order. Under isolation. */
static int copy_pod_loads(struct scrape *sc)
{
	size_t n = 0;

	for (const struct pod *pod = pods_first(sc->a->pods); pod; pod = pod->next)
		n += pod->capture != NULL;
	sc->loads = calloc(n ? n : 1, sizeof(*sc->loads));
	if (!sc->loads)
		return -ENOMEM;
	for (const struct pod *pod = pods_first(sc->a->pods); pod; pod = pod->next)
		if (pod->capture)
			workers_capture_load(pod->capture, &sc->loads[sc->n_loads++]);
	return 0;
}

#define POD_FAMILY(p, sc, nm, type, help, field)                                                 \
	do {                                                                                       \
		size_t k_ = 0;                                                                     \
                                                                                                   \
		prom_family(p, nm, type, help);                                                    \
		for (const struct pod *pod_ = pods_first((sc)->a->pods); pod_;                     \
		     pod_ = pod_->next) {                                                          \
			char l_[LABELS_MAX] = "";                                                  \
                                                                                                   \
			if (!pod_->capture || k_ == (sc)->n_loads)                                 \
				continue;                                                          \
			(void)prom_label(l_, sizeof(l_), "namespace", pod_->spec.ns);              \
			(void)prom_label(l_, sizeof(l_), "pod", pod_->spec.name);                  \
			prom_u64(p, nm, l_, (sc)->loads[k_++].field);                              \
		}                                                                                  \
	} while (0)

/* Each meshed pod's outbound connections against its limit, as copied by
 * copy_pod_loads().
 */
static void pod_families(struct prom *p, const struct scrape *sc)
{
	POD_FAMILY(p, sc, "weft_pod_connections_active", "gauge",
		   "Outbound client connections the pod holds open through the proxy.", conns_out);
	POD_FAMILY(p, sc, "weft_pod_connections_limit", "gauge",
		   "What the pod may hold at once (--pod-max-conns or its fair share of --max-conns), "
		   "summed over the workers.",
		   limit);
	POD_FAMILY(p, sc, "weft_pod_connections_refused_total", "counter",
		   "The pod's outbound connections reset by its limit or by --max-conns.", refused);
	POD_FAMILY(p, sc, "weft_pod_local_errors_total", "counter",
		   "The pod's connections or requests failed for the agent's own resources.",
		   local_errors);
}

/* ---------------------------------------------------------------- families */

#define SVC_FAMILY(p, sc, name, type, help, expr)                                                  \
	do {                                                                                       \
		prom_family(p, name, type, help);                                                  \
		for (size_t i_ = 0; i_ < (sc)->n_svcs; i_++) {                                     \
			const struct svc_row *r = &(sc)->svcs[i_];                                 \
			prom_u64(p, name, r->labels, (expr));                                      \
		}                                                                                  \
	} while (0)

#define EP_FAMILY(p, sc, name, type, help, expr)                                                   \
	do {                                                                                       \
		prom_family(p, name, type, help);                                                  \
		for (size_t i_ = 0; i_ < (sc)->n_eps; i_++) {                                      \
			const struct ep_state *e = (sc)->eps[i_].e;                                \
			prom_u64(p, name, (sc)->eps[i_].labels, (expr));                           \
		}                                                                                  \
	} while (0)

/* A latency histogram family of the service rows: connects, or @requests. */
static void latency_family(struct prom *p, const struct scrape *sc, const char *name,
			   const char *help, bool requests)
{
	prom_family(p, name, "histogram", help);
	for (size_t i = 0; i < sc->n_svcs; i++) {
		const struct lat_hist *h = requests ? &sc->svcs[i].lr : &sc->svcs[i].lc;

		prom_histogram(p, name, sc->svcs[i].labels, lat_bounds_us, LAT_BUCKETS - 1,
			       h->count, h->sum_us);
	}
}

static void service_families(struct prom *p, const struct scrape *sc)
{
	prom_counters(p, &counters_svc, sc->svc_ctrs, sc->n_svcs);
	SVC_FAMILY(p, sc, "weft_service_active_connections", "gauge",
		   "Client connections to the service port open now.", r->active);
	SVC_FAMILY(p, sc, "weft_service_ejected_endpoints", "gauge", "Ready endpoints ejected now.",
		   r->ejected);
	SVC_FAMILY(p, sc, "weft_service_upstream_connections", "gauge",
		   "Upstream connections open (busy, connecting, pooled): what max-connections counts.",
		   r->conns);
	SVC_FAMILY(p, sc, "weft_service_upstream_connections_limit", "gauge",
		   "max-connections, summed over the workers (each allows it).", r->max_conns);
	SVC_FAMILY(p, sc, "weft_service_pending_connects", "gauge",
		   "Upstream connects in progress: what max-pending counts.", r->pending);
	SVC_FAMILY(p, sc, "weft_service_pending_connects_limit", "gauge",
		   "max-pending, summed over the workers.", r->max_pending);
	SVC_FAMILY(p, sc, "weft_service_requests_in_flight", "gauge",
		   "HTTP requests in flight: what max-requests counts.", r->inflight);
	SVC_FAMILY(p, sc, "weft_service_requests_in_flight_limit", "gauge",
		   "max-requests, summed over the workers.", r->max_requests);
	SVC_FAMILY(p, sc, "weft_service_pool_idle_connections", "gauge",
		   "Idle upstream connections in the pool, all endpoints.", r->idle);
	latency_family(p, sc, "weft_service_connect_duration_seconds",
		       "Upstream connect time, from connect() to established.", false);
	latency_family(p, sc, "weft_service_request_duration_seconds",
		       "HTTP requests: from dispatch to the final response's head, "
		       "retries included.",
		       true);
}

static void endpoint_families(struct prom *p, const struct scrape *sc)
{
	uint64_t now = sc->now;

	prom_counters(p, &counters_ep, sc->ep_ctrs, sc->n_eps);
	EP_FAMILY(p, sc, "weft_endpoint_active_connections", "gauge",
		  "Upstream connections busy for a client.", e->active);
	EP_FAMILY(p, sc, "weft_endpoint_pool_idle_connections", "gauge",
		  "Idle upstream connections to the endpoint in the pool.", e->n_idle);
	EP_FAMILY(p, sc, "weft_endpoint_ready", "gauge",
		  "1 when the registry says the endpoint is ready.", e->ready ? 1 : 0);
	EP_FAMILY(p, sc, "weft_endpoint_ejected", "gauge",
		  "1 while outlier detection keeps the endpoint out.",
		  outlier_is_ejected(&e->ol, now) ? 1 : 0);
}

static const char *const health_names[] = { "starting", "synced", "stale" };

static void registry_families(struct prom *p, const struct agent *a, uint64_t now)
{
	struct reg_source_status st[AGENT_MAX_REGISTRIES];
	size_t n = a->sink ? reg_sink_status(a->sink, st, AGENT_MAX_REGISTRIES) : 0;
	char l[LABELS_MAX], src[LABELS_MAX];

	if (n > AGENT_MAX_REGISTRIES)
		n = AGENT_MAX_REGISTRIES;
	prom_family(p, "weft_registry_health", "gauge",
		    "1 for the registry source's state (starting, synced, stale), else 0.");
	for (unsigned int i = 0; i < a->n_regs; i++) {
		const struct agent_registry *reg = &a->regs[i];
		struct reg_file_stats fst;
		const struct reg_file_stats *fs =
			reg_file_backend_stats(reg->ops, reg->state, &fst) ? &fst : NULL;
		int h = -1;

		if (fs)
			h = fs->last_error[0] ? REG_HEALTH_STALE : REG_HEALTH_SYNCED;
		for (size_t j = 0; j < n && !fs; j++)
			if (!strcmp(st[j].source, reg->spec))
				h = (int)st[j].health;
		src[0] = '\0';
		(void)prom_label(src, sizeof(src), "source", reg->spec);
		for (int k = 0; k < 3; k++) {
			with_label(l, src, "state", health_names[k]);
			prom_u64(p, "weft_registry_health", l, h == k);
		}
	}
	prom_family(p, "weft_registry_last_change_age_seconds", "gauge",
		    "Seconds since the source last changed the catalogue (watched sources).");
	for (size_t j = 0; j < n; j++) {
		if (!st[j].last_change_ms || now < st[j].last_change_ms)
			continue;
		src[0] = '\0';
		(void)prom_label(src, sizeof(src), "source", st[j].source);
		prom_f64(p, "weft_registry_last_change_age_seconds", src,
			 (double)(now - st[j].last_change_ms) / 1000);
	}
	prom_family(p, "weft_registry_objects_rejected_total", "counter",
		    "Objects the source sent that were rejected.");
	for (unsigned int i = 0; i < a->n_regs; i++) {
		const struct agent_registry *reg = &a->regs[i];
		struct reg_file_stats fst;
		const struct reg_file_stats *fs =
			reg_file_backend_stats(reg->ops, reg->state, &fst) ? &fst : NULL;
		uint64_t v = fs ? fs->objects_rejected : 0;

		for (size_t j = 0; j < n && !fs; j++)
			if (!strcmp(st[j].source, a->regs[i].spec))
				v = st[j].rejected;
		src[0] = '\0';
		(void)prom_label(src, sizeof(src), "source", a->regs[i].spec);
		prom_u64(p, "weft_registry_objects_rejected_total", src, v);
	}
	if (a->sink) {
		const struct reg_latency *lat = reg_sink_latency(a->sink);

		prom_family(p, "weft_registry_propagation_seconds", "histogram",
			    "Watched sources: from an event's receipt to the catalogue published.");
		prom_histogram(p, "weft_registry_propagation_seconds", "", reg_lat_bounds_us,
			       REG_LAT_BUCKETS - 1, lat->count, lat->sum_us);
	}
}

/* Count the eBPF mode's maps that fill per pod or per connection into @sc,
 * before the workers are isolated: a count walks every key (tens of
 * milliseconds for full maps), which must not stall traffic. nft mode has
 * none: its per-pod state is one table per pod netns, its connections
 * conntrack's.
 */
static void count_maps(struct scrape *sc)
{
	struct dp *dp = capture_dp(sc->a->capture);

	sc->n_maps = dp ? dp_map_usage(dp, sc->maps, sizeof(sc->maps) / sizeof(sc->maps[0])) : 0;
	if (sc->n_maps < 0) {
		log_warn("metrics: cannot count the datapath's map entries: %s",
			 strerror(-sc->n_maps));
		sc->n_maps = 0;
	}
}

/* The maps counted by count_maps(), against their capacity. */
static void map_families(struct prom *p, const struct scrape *sc)
{
	const struct dp_map_use *use = sc->maps;
	int n = sc->n_maps;
	char l[LABELS_MAX];

	prom_family(p, "weft_bpf_map_entries", "gauge",
		    "Entries in use in each map the datapath fills per pod or per connection.");
	for (int i = 0; i < n; i++) {
		l[0] = '\0';
		(void)prom_label(l, sizeof(l), "map", use[i].map);
		prom_u64(p, "weft_bpf_map_entries", l, use[i].entries);
	}
	prom_family(p, "weft_bpf_map_capacity", "gauge",
		    "max_entries of each of those maps. The LRU ones (mesh_orig_dst, "
		    "mesh_in_agent) evict their oldest entry when full; mesh_pods refuses an "
		    "enrolment, mesh_inbound a pod's listeners.");
	for (int i = 0; i < n; i++) {
		l[0] = '\0';
		(void)prom_label(l, sizeof(l), "map", use[i].map);
		prom_u64(p, "weft_bpf_map_capacity", l, use[i].capacity);
	}
}

/* Meshed pods whose capture fails open (weft.io/fail-open, fail-open on). */
static size_t pods_fail_open(const struct agent *a)
{
	struct capture_pod d;
	size_t n = 0;

	if (!capture_fail_open_after_ms(a->capture))
		return 0;
	for (const struct pod *pod = pods_first(a->pods); pod; pod = pod->next) {
		if (!pod->meshed)
			continue;
		pods_capture_entry(a->pods, pod, &d);
		n += d.fail_open;
	}
	return n;
}

static void agent_families(struct prom *p, const struct agent *a, const struct scrape *sc)
{
	struct dp *dp = capture_dp(a->capture);	/* NULL in nft mode: no programs */
	struct dp_link_status links[16];
	size_t n_links = dp ? dp_links(dp, links, sizeof(links) / sizeof(links[0])) : 0;
	uint64_t vals[64];
	int n = dp ? dp_counters(dp, vals, sizeof(vals) / sizeof(vals[0])) : 0;
	struct reg_evict_stats es;
	char l[LABELS_MAX];

	l[0] = '\0';
	(void)prom_label(l, sizeof(l), "version", WEFT_VERSION);
	prom_family(p, "weft_build_info", "gauge", "The agent's release; always 1.");
	prom_u64(p, "weft_build_info", l, 1);
	prom_family(p, "weft_capture_mode", "gauge",
		    "The capture mode in force (--mode, or what auto chose); always 1.");
	l[0] = '\0';
	(void)prom_label(l, sizeof(l), "mode", capture_mode_name(capture_mode(a->capture)));
	prom_u64(p, "weft_capture_mode", l, 1);
	prom_scalar(p, "weft_uptime_seconds", "gauge", "Seconds since the agent started.",
		    (sc->now - a->start_ms) / 1000);
	prom_scalar(p, "weft_pods_enrolled", "gauge", "Pods the agent knows (CNI ADD or restored).",
		    pods_count(a->pods, false));
	prom_scalar(p, "weft_pods_meshed", "gauge", "Pods whose traffic is captured.",
		    pods_count(a->pods, true));
	prom_scalar(p, "weft_pods_unmeshed", "gauge",
		    "Running pods of meshed namespaces on this node that were never enrolled "
		    "(started while weft-cni was not chained; see /v1/escaped).",
		    pods_escaped(a->pods, NULL, NULL));
	prom_scalar(p, "weft_pods_fail_open", "gauge",
		    "Meshed pods that go uncaptured while the agent's heartbeat is stale "
		    "(weft.io/fail-open, --fail-open-after); their decisions are counted in "
		    "weft_bpf_decisions_total{reason=\"fail_open\"} in eBPF mode.",
		    pods_fail_open(a));
	prom_scalar(p, "weft_pods_add_waiting", "gauge",
		    "CNI ADDs waiting for their Pod object from the Kubernetes API.",
		    pods_waiting(a->pods));
	agent_evict_stats(a, &es);
	prom_family(p, "weft_pod_evictions_total", "counter",
		    "Evictions of pods that escaped the mesh, by outcome (--evict-escaped).");
	prom_u64(p, "weft_pod_evictions_total", "result=\"requested\"", es.requested);
	prom_u64(p, "weft_pod_evictions_total", "result=\"evicted\"", es.evicted);
	prom_u64(p, "weft_pod_evictions_total", "result=\"refused\"", es.refused);
	prom_u64(p, "weft_pod_evictions_total", "result=\"failed\"", es.failed);
	prom_scalar(p, "weft_catalogue_services", "gauge", "Services in the catalogue in force.",
		    catalogue_n_services(a->cat));
	prom_scalar(p, "weft_vips_allocated", "gauge",
		    "Services whose VIPs were allocated from --vip-range.",
		    catalogue_vip_stats(a->cat).allocated);
	prom_scalar(p, "weft_vip_collisions", "gauge",
		    "Allocated services whose home address was taken, moved to the next free one.",
		    catalogue_vip_stats(a->cat).collisions);
	prom_scalar(p, "weft_vips_exhausted", "gauge",
		    "Services left without a VIP because --vip-range is full.",
		    catalogue_vip_stats(a->cat).exhausted);
	if (a->dnsr) {
		struct dnsr_counters dn;

		dnsr_counters(a->dnsr, &dn);
		for (size_t i = 0; i < dnsr_n_counter_defs; i++) {
			const struct dnsr_counter_def *d = &dnsr_counter_defs[i];
			char name[64];
			bool total = !strcmp(d->type, "counter");

			snprintf(name, sizeof(name), "weft_dns_%s%s", d->name, total ? "_total" : "");
			prom_scalar(p, name, d->type, d->help, dnsr_counter_get(&dn, d));
		}
	}
	prom_scalar(p, "weft_catalogue_generation", "gauge",
		    "Generation of the catalogue in force.", catalogue_generation(a->cat));
	prom_family(p, "weft_bpf_program_attached", "gauge",
		    "1 when the program's pinned link is attached to a live cgroup.");
	for (size_t i = 0; i < n_links; i++) {
		l[0] = '\0';
		(void)prom_label(l, sizeof(l), "program", links[i].prog);
		prom_u64(p, "weft_bpf_program_attached", l, links[i].attached);
	}
	prom_family(p, "weft_bpf_decisions_total", "counter",
		    "Decisions of the BPF programs by reason (mesh_metrics).");
	for (int i = 0; i < n; i++) {
		l[0] = '\0';
		(void)prom_label(l, sizeof(l), "reason", dp_counter_name((size_t)i));
		prom_u64(p, "weft_bpf_decisions_total", l, vals[i]);
	}
	map_families(p, sc);
	prom_counters(p, &counters_proxy, &(struct prom_counted){ "", &sc->stats }, 1);
	prom_scalar(p, "weft_proxy_connections_limit", "gauge",
		    "--max-conns summed over the workers (each allows it): the bound of "
		    "weft_proxy_connections_active.",
		    (uint64_t)a->cfg->max_conns * workers_count(a->workers));
	prom_family(p, "weft_metrics_limited", "gauge",
		    "Objects beyond the series caps at this scrape: service ports summed into "
		    "service=\"_other\", endpoints and pods' inbound ports left out.");
	prom_u64(p, "weft_metrics_limited", "kind=\"service_port\"", sc->svcs_folded);
	prom_u64(p, "weft_metrics_limited", "kind=\"endpoint\"", sc->eps_left_out);
	prom_u64(p, "weft_metrics_limited", "kind=\"inbound_port\"", sc->ins_left_out);
}

/* The labels of @r, then @key="@value" if @key. */
static void in_labels(char *l, const struct prom_inbound *r, const char *key, const char *value)
{
	char port[8];

	snprintf(port, sizeof(port), "%u", r->ctr.port);
	l[0] = '\0';
	(void)prom_label(l, LABELS_MAX, "namespace", r->ns);
	(void)prom_label(l, LABELS_MAX, "pod", r->pod);
	(void)prom_label(l, LABELS_MAX, "port", port);
	if (key)
		(void)prom_label(l, LABELS_MAX, key, value);
}

#define IN_FAMILY(p, rows, n, name, type, help, field)                                             \
	do {                                                                                       \
		prom_family(p, name, type, help);                                                  \
		for (size_t i_ = 0; i_ < (n); i_++) {                                              \
			in_labels(l, &(rows)[i_], NULL, NULL);                                     \
			prom_u64(p, name, l, (rows)[i_].ctr.field);                                \
		}                                                                                  \
	} while (0)

void prom_inbound_families(struct prom *p, const struct prom_inbound *rows, size_t n)
{
	static const char *const classes[] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
	char l[LABELS_MAX];

	IN_FAMILY(p, rows, n, "weft_pod_inbound_connections_total", "counter",
		  "Inbound connections accepted for the pod's application, by port.", conns_total);
	IN_FAMILY(p, rows, n, "weft_pod_inbound_connections_active", "gauge",
		  "Inbound connections open, by port.", conns_active);
	prom_family(p, "weft_pod_inbound_bytes_total", "counter",
		    "Bytes relayed for inbound connections: in, client to application; out, "
		    "application to client.");
	for (size_t i = 0; i < n; i++) {
		in_labels(l, &rows[i], "direction", "in");
		prom_u64(p, "weft_pod_inbound_bytes_total", l, rows[i].ctr.bytes_in);
		in_labels(l, &rows[i], "direction", "out");
		prom_u64(p, "weft_pod_inbound_bytes_total", l, rows[i].ctr.bytes_out);
	}
	IN_FAMILY(p, rows, n, "weft_pod_inbound_requests_total", "counter",
		  "HTTP/1.x requests seen on inbound connections.", requests);
	prom_family(p, "weft_pod_inbound_responses_total", "counter",
		    "HTTP/1.x responses of the application on inbound connections, by status class.");
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < PROXY_STATUS_CLASSES; k++) {
			in_labels(l, &rows[i], "class", classes[k]);
			prom_u64(p, "weft_pod_inbound_responses_total", l,
				 rows[i].ctr.responses[k]);
		}
	}
	IN_FAMILY(p, rows, n, "weft_pod_inbound_connect_errors_total", "counter",
		  "Inbound connections the application refused or never answered.",
		  connect_errors);
}

/* allow-from refusals by caller, merged over the workers: at most
 * PROXY_DENIALS_MAX + 1 per worker. The identities are copied: a worker's
 * table changes as soon as it runs again.
 */
struct denials {
	size_t n, cap;
	struct {
		char id[SPIFFE_ID_MAX];
		uint64_t n;
	} e[];
};

static void merge_denial(const char *id, uint64_t n, void *ctx)
{
	struct denials *d = ctx;

	for (size_t i = 0; i < d->n; i++) {
		if (!strcmp(d->e[i].id, id)) {
			d->e[i].n += n;
			return;
		}
	}
	if (d->n < d->cap) {
		snprintf(d->e[d->n].id, sizeof(d->e[d->n].id), "%s", id);
		d->e[d->n++].n = n;
	}
}

/* The workers' refusals into sc->denied (left NULL on ENOMEM: the family is
 * shown empty, as before). Under isolation.
 */
static void copy_denials(struct scrape *sc)
{
	unsigned int nw = workers_count(sc->a->workers);
	size_t cap = (size_t)nw * (PROXY_DENIALS_MAX + 1);
	struct denials *d = calloc(1, sizeof(*d) + cap * sizeof(d->e[0]));

	if (!d)
		return;
	d->cap = cap;
	for (unsigned int i = 0; i < nw; i++)
		proxy_mtls_denials(workers_proxy(sc->a->workers, i), merge_denial, d);
	sc->denied = d;
}

static void denial_family(struct prom *p, const struct scrape *sc)
{
	const struct denials *d = sc->denied;
	char l[LABELS_MAX];

	prom_family(p, "weft_mtls_denied_by_identity_total", "counter",
		    "mTLS connections refused by weft.io/allow-from, by the caller's SPIFFE ID "
		    "(\"other\" beyond 32 callers per worker).");
	for (size_t i = 0; d && i < d->n; i++) {
		l[0] = '\0';
		if (!prom_label(l, sizeof(l), "identity", d->e[i].id))
			prom_u64(p, "weft_mtls_denied_by_identity_total", l, d->e[i].n);
	}
}

/* This node's workload certificates: how many, and when each expires (an
 * alert on expiry minus time() catches renewal that stopped).
 */
static void identity_families(struct prom *p, const struct agent *a)
{
	size_t n = a->ids ? idset_count(a->ids) : 0;
	char l[LABELS_MAX];

	prom_scalar(p, "weft_identities", "gauge",
		    "Workload identities with a certificate on this node (0 without --ca-cert or --ca-url).", n);
	prom_family(p, "weft_identity_cert_expiry_timestamp_seconds", "gauge",
		    "When each identity's certificate expires, seconds since the epoch; renewed at "
		    "half its lifetime.");
	for (size_t i = 0; i < n; i++) {
		const struct svid *s = idset_at(a->ids, i);

		l[0] = '\0';
		if (prom_label(l, sizeof(l), "identity", s->uri))
			continue;
		prom_u64(p, "weft_identity_cert_expiry_timestamp_seconds", l,
			 (uint64_t)s->not_after);
	}
	if (a->ca_client) {
		struct ca_client_stats st;

		ca_client_stats(a->ca_client, &st);
		prom_family(p, "weft_ca_requests_total", "counter",
			    "This agent's requests to weft-ca (--ca-url) by result: ok, refused "
			    "(a 4xx: weft-ca's reason is in the log and meshctl identities), failed "
			    "(no answer, or a 5xx).");
		prom_u64(p, "weft_ca_requests_total", "result=\"ok\"", st.ok);
		prom_u64(p, "weft_ca_requests_total", "result=\"refused\"", st.refused);
		prom_u64(p, "weft_ca_requests_total", "result=\"failed\"", st.failed);
		prom_scalar(p, "weft_identities_pending", "gauge",
			    "Identities whose certificate weft-ca has not answered yet.",
			    a->ids ? idset_pending(a->ids) : 0);
	}
}

static int cmd_metrics(const struct http_request *req, struct http_response *resp, void *ctx)
{
	static const char *const known[] = { NULL };
	const struct agent *a = ctx;
	struct scrape sc = { .a = a, .now = loop_now_ms(a->loop) };
	struct prom p = { 0 };
	int err;

	if (admin_bad_query(req, resp, known))
		return 0;
	count_maps(&sc);
	/* Read while the workers run (proxy/counters.h). */
	workers_stats(a->workers, &sc.stats);
	/* The workers are parked only while what they own is copied: the
	 * service ports they hold state for, merged (kept past the release),
	 * the pods' inbound ports and loads, the allow-from refusals. The
	 * other ports' blank rows, the labels and the text are made after the
	 * release.
	 */
	workers_isolate(a->workers);
	err = workers_view_keep(a->workers);
	if (!err)
		err = build_inbound_rows(&sc);
	if (!err)
		err = copy_pod_loads(&sc);
	if (!err)
		copy_denials(&sc);
	workers_release(a->workers);
	if (!err)
		err = build_rows(&sc);
	if (!err) {
		agent_families(&p, a, &sc);
		registry_families(&p, a, sc.now);
		service_families(&p, &sc);
		endpoint_families(&p, &sc);
		prom_inbound_families(&p, sc.ins, sc.n_ins);
		pod_families(&p, &sc);
		identity_families(&p, a);
		denial_family(&p, &sc);
		err = p.err;
	}
	workers_view_done(a->workers);
	free(sc.svcs);
	free(sc.eps);
	free(sc.svc_ctrs);
	free(sc.ep_ctrs);
	free(sc.ins);
	free(sc.loads);
	free(sc.denied);
	if (err) {
		free(p.buf);
		return err;
	}
	resp->body = p.buf;
	resp->body_len = p.len;
	resp->content_type = METRICS_CONTENT_TYPE;
	return 0;
}

static const struct http_route routes[] = {
	{ "GET", "/metrics", cmd_metrics },
};

const struct http_route *metrics_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}
