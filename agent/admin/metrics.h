/* SPDX-License-Identifier: GPL-2.0-only */
/* Prometheus metrics (text exposition format 0.0.4) on the optional TCP
 * listener --metrics-addr: GET /metrics only, rendered on the agent's loop
 * from the same state the admin API shows. Label cardinality is bounded:
 * at most METRICS_MAX_SERVICE_PORTS service ports get series of their own
 * (the rest are summed into service="_other"), at most METRICS_MAX_ENDPOINTS
 * endpoints (the rest are left out; their service's series still count
 * them), at most METRICS_MAX_INBOUND_PORTS pod inbound ports (the rest are
 * left out), and weft_metrics_limited says how many were folded or left out.
 */
#ifndef WEFT_ADMIN_METRICS_H
#define WEFT_ADMIN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/workers.h"

struct http_route;
struct counter_table;

#define METRICS_MAX_SERVICE_PORTS 500
#define METRICS_MAX_ENDPOINTS 2000
#define METRICS_MAX_INBOUND_PORTS 2000	/* pods' inbound ports, all pods together */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The route table of the metrics listener; the context is the struct agent *. */
const struct http_route *metrics_routes(size_t *n);

/* A growing text buffer for one exposition. Errors stick: after one failed
 * append the rest are no-ops and @err stays -ENOMEM.
 */
struct prom {
	char *buf;	/* malloc'd, NUL-terminated */
	size_t len, cap;
	int err;
};

/* Start a metric family: "# HELP" and "# TYPE" lines. @type is "counter",
 * "gauge" or "histogram". Every sample of the family must follow at once.
 */
void prom_family(struct prom *p, const char *name, const char *type, const char *help);

/* One sample "NAME{LABELS} VALUE". @labels is already rendered
 * ('a="x",b="y"', see prom_label()) or "" for none.
 */
void prom_u64(struct prom *p, const char *name, const char *labels, uint64_t v);
void prom_f64(struct prom *p, const char *name, const char *labels, double v);

/* A family of one unlabelled sample: prom_family() then prom_u64(). */
void prom_scalar(struct prom *p, const char *name, const char *type, const char *help,
		 uint64_t v);

/* Append 'KEY="VALUE"' to the label list @buf of @len bytes (with a comma
 * when @buf is not empty), escaping '\', '"' and newlines as the format
 * requires. Truncates rather than overflow; 0, or -ENAMETOOLONG when cut.
 */
int prom_label(char *buf, size_t len, const char *key, const char *value);

/* One instance of a counter struct for prom_counters(). */
struct prom_counted {
	const char *labels;	/* rendered (see prom_label()), "" for none */
	const void *ctr;	/* a struct of the table's kind */
};

/* Every family of table @t whose row has a metric name, in table order:
 * HELP, TYPE, then one sample per instance in @rows[0..@n), one per element
 * (with the row's label) for an array.
 */
void prom_counters(struct prom *p, const struct counter_table *t, const struct prom_counted *rows,
		   size_t n);

/* A histogram's samples: NAME_bucket{LABELS,le=...} (cumulative, the bounds
 * @bounds_us[0..@n_bounds) in seconds and +Inf), NAME_sum in seconds and
 * NAME_count. @counts has n_bounds + 1 per-bucket (not cumulative) counts.
 */
void prom_histogram(struct prom *p, const char *name, const char *labels,
		    const uint64_t *bounds_us, size_t n_bounds, const uint64_t *counts,
		    uint64_t sum_us);

/* One pod's inbound port for prom_inbound_families(). */
struct prom_inbound {
	const char *ns, *pod;
	struct px_inbound_port ctr;
};

/* The weft_pod_inbound_* families, one sample (or one per direction or
 * status class) per row of @rows[0..@n), labelled namespace, pod, port.
 */
void prom_inbound_families(struct prom *p, const struct prom_inbound *rows, size_t n);

#endif /* WEFT_ADMIN_METRICS_H */
