/* SPDX-License-Identifier: GPL-2.0-only */
/* The proxy's counters, each named once: one table per counter struct
 * (node-wide struct proxy_stats, per-service struct svc_ctr, per-endpoint
 * struct ep_ctr) gives every field its admin JSON key, its Prometheus family
 * and its place in the struct. The worker merge, /v1/status, /v1/services
 * and /metrics walk these tables. The node-wide counters are updated with
 * ctr_inc(), ctr_add() and ctr_dec() (below), so that the main thread may
 * read them while the workers run; the per-service and per-endpoint ones are
 * plain fields, read with the workers parked.
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

/* Single-writer counters, as the kernel's 64-bit per-CPU statistics
 * (include/linux/u64_stats_sync.h on 64-bit): one thread, the worker that
 * owns the struct, writes a field; any thread may read it at any time.
 * The write is a relaxed atomic load and store, not a read-modify-write:
 * no lock prefix, the same instructions as a plain increment on x86-64 and
 * arm64, yet neither torn nor a data race under C11. A reader's relaxed
 * atomic load gets the field's exact value at some recent instant; two
 * fields read one after the other are not one snapshot (a connection
 * counted in total may not be in active yet), as with any Prometheus
 * exporter. A second writer would lose counts: writes from another thread
 * still need the owner parked (workers_isolate()).
 */
static inline void ctr_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline void ctr_inc(uint64_t *c)
{
	ctr_add(c, 1);
}

static inline void ctr_dec(uint64_t *c)
{
	ctr_add(c, (uint64_t)-1);
}

/* Raise @c to @v if @v is above it (the owner only, as ctr_add()). */
static inline void ctr_max(uint64_t *c, uint64_t v)
{
	if (v > __atomic_load_n(c, __ATOMIC_RELAXED))
		__atomic_store_n(c, v, __ATOMIC_RELAXED);
}

/* A field a ctr_*() writer may be changing, read whole. */
static inline uint64_t ctr_read(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Element @i of row @d in the struct @ctr that @d's table describes, read
 * with ctr_read(): the struct may be a worker's live one.
 */
static inline uint64_t counter_get(const struct counter_def *d, const void *ctr, size_t i)
{
	return ctr_read(&((const uint64_t *)(const void *)((const char *)ctr + d->off))[i]);
}

/* Add every field of @src (read with counter_get()) to the same field of
 * @dst, both structs of table @t; @dst is the caller's own. Never blocks.
 */
void counters_add(const struct counter_table *t, void *dst, const void *src);

#endif /* WEFT_PROXY_COUNTERS_H */
