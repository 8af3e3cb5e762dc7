/* SPDX-License-Identifier: GPL-2.0-only */
/* The proxy's counters, each named once: one table per counter struct
 * (node-wide struct proxy_stats, per-service struct svc_ctr, per-endpoint
 * struct ep_ctr) gives every field its admin JSON key, its Prometheus family
 * and its place in the struct. The worker merge, /v1/status, /v1/services
 * and /metrics walk these tables; the hot path increments plain fields.
 */
#ifndef WEFT_PROXY_COUNTERS_H
#define WEFT_PROXY_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

enum counter_type {
	CTR_COUNTER,	/* only grows: a Prometheus counter, named *_total */
	CTR_GAUGE,	/* goes up and down: a Prometheus gauge */
};

/* One field of a counter struct, or one array of them. Every row sums across
 * workers, gauges included (each worker counts its own share); state that
 * does not sum (outlier state, maxima) is kept out of these structs.
 */
struct counter_def {
	const char *group;	/* JSON objects the key lives in, '.'-separated,
				 * below the caller's object; "" for that object */
	const char *key;	/* JSON key */
	const char *metric;	/* Prometheus family; NULL: shown in JSON only */
	const char *help;	/* what it counts; the family's HELP */
	enum counter_type type;
	size_t off;		/* offsetof the field, or of an array's first element */
	size_t n;		/* 1, or the array's length */
	const char *const *sub;	/* n > 1: each element's JSON key and label value */
	const char *label;	/* n > 1: the label naming the element in the metric */
};

/* A counter struct described row by row. Its rows cover every byte of the
 * struct exactly once (tests/unit/test_counters.c checks this), so walking
 * the rows visits every field.
 */
struct counter_table {
	const char *name;	/* "proxy", "service", "endpoint" */
	size_t size;		/* sizeof the struct */
	size_t n;
	const struct counter_def *defs;
};

extern const struct counter_table counters_proxy;	/* struct proxy_stats */
extern const struct counter_table counters_svc;		/* struct svc_ctr */
extern const struct counter_table counters_ep;		/* struct ep_ctr */

/* Element @i of row @d in the struct @ctr that @d's table describes. */
static inline uint64_t counter_get(const struct counter_def *d, const void *ctr, size_t i)
{
	return ((const uint64_t *)(const void *)((const char *)ctr + d->off))[i];
}

/* Add every field of @src to the same field of @dst, both structs of table
 * @t. Never blocks.
 */
void counters_add(const struct counter_table *t, void *dst, const void *src);

#endif /* WEFT_PROXY_COUNTERS_H */
