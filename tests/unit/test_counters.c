// SPDX-License-Identifier: GPL-2.0-only
/* The proxy's counter tables (proxy/counters.h) and the outputs they drive:
 * each table covers its struct's every field exactly once (so the worker
 * merge misses none), and every row appears exactly once in the admin JSON
 * and, when it names a metric, exactly once in the /metrics exposition.
 */
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "admin/cmds.h"
#include "admin/reply.h"
#include "admin/metrics.h"
#include "promtext.h"
#include "proxy/counters.h"
#include "proxy/proxy.h"
#include "proxy/state.h"

static const struct counter_table *const tables[] = { &counters_proxy, &counters_svc,
						      &counters_ep };
#define N_TABLES (sizeof(tables) / sizeof(tables[0]))

/* A value no other element of the table holds, different per instance @k. */
static uint64_t val(size_t k, size_t row, size_t i)
{
	return 100000 * (k + 1) + 100 * (row + 1) + i + 1;
}

static void *filled(const struct counter_table *t, size_t k)
{
	char *ctr = calloc(1, t->size);

	cr_assert_not_null(ctr);
	for (size_t r = 0; r < t->n; r++)
		for (size_t i = 0; i < t->defs[r].n; i++) {
			uint64_t v = val(k, r, i);

			memcpy(ctr + t->defs[r].off + i * sizeof(v), &v, sizeof(v));
		}
	return ctr;
}

static size_t elements(const struct counter_table *t, bool metrics_only)
{
	size_t n = 0;

	for (size_t r = 0; r < t->n; r++)
		if (!metrics_only || t->defs[r].metric)
			n += t->defs[r].n;
	return n;
}

static size_t json_leaves(json_object *o)
{
	size_t n = 0;

	if (!json_object_is_type(o, json_type_object))
		return 1;
	json_object_object_foreach(o, k, v)
	{
		(void)k;
		n += json_leaves(v);
	}
	return n;
}

Test(counters, tables_describe_their_structs)
{
	cr_expect_eq(counters_proxy.size, sizeof(struct proxy_stats));
	cr_expect_eq(counters_svc.size, sizeof(struct svc_ctr));
	cr_expect_eq(counters_ep.size, sizeof(struct ep_ctr));
}

Test(counters, rows_cover_every_field_exactly_once)
{
	for (size_t ti = 0; ti < N_TABLES; ti++) {
		const struct counter_table *t = tables[ti];
		unsigned char *seen = calloc(1, t->size);

		cr_assert_not_null(seen);
		for (size_t r = 0; r < t->n; r++) {
			const struct counter_def *d = &t->defs[r];

			cr_expect(d->key && d->key[0] && d->help && d->help[0] && d->group,
				  "%s row %zu: key, help and group are required", t->name, r);
			cr_assert_eq(d->off % sizeof(uint64_t), 0, "%s.%s: misaligned", t->name,
				     d->key);
			cr_assert_leq(d->off + d->n * sizeof(uint64_t), t->size,
				      "%s.%s: past the end", t->name, d->key);
			cr_expect(d->n >= 1);
			cr_expect(d->n == 1 ? !d->sub && !d->label : d->sub && d->label,
				  "%s.%s: arrays, and only arrays, name their elements", t->name,
				  d->key);
			for (size_t b = d->off; b < d->off + d->n * sizeof(uint64_t); b++)
				cr_expect_eq(seen[b]++, 0, "%s.%s: byte %zu has two rows", t->name,
					     d->key, b);
		}
		for (size_t b = 0; b < t->size; b++)
			cr_expect_eq(seen[b], 1,
				     "%s: byte %zu of the struct has no row (a field "
				     "missing from the table)",
				     t->name, b);
		free(seen);
	}
}

Test(counters, metric_names_are_unique_and_well_formed)
{
	for (size_t ti = 0; ti < N_TABLES; ti++) {
		for (size_t r = 0; r < tables[ti]->n; r++) {
			const struct counter_def *d = &tables[ti]->defs[r];
			size_t len;

			if (!d->metric)
				continue;
			len = strlen(d->metric);
			cr_expect(!strncmp(d->metric, "weft_", 5), "%s", d->metric);
			cr_expect_eq(d->type == CTR_COUNTER,
				     len > 6 && !strcmp(d->metric + len - 6, "_total"),
				     "%s: counters, and only counters, end in _total", d->metric);
			for (size_t tj = 0; tj < N_TABLES; tj++)
				for (size_t s = 0; s < tables[tj]->n; s++) {
					const char *m = tables[tj]->defs[s].metric;

					if ((tj != ti || s != r) && m)
						cr_expect_str_neq(m, d->metric, "two rows name %s",
								  m);
				}
		}
	}
}

Test(counters, add_sums_every_field)
{
	for (size_t ti = 0; ti < N_TABLES; ti++) {
		const struct counter_table *t = tables[ti];
		uint64_t *a = filled(t, 0), *b = filled(t, 1);

		counters_add(t, a, b);
		for (size_t i = 0; i < t->size / sizeof(uint64_t); i++) {
			uint64_t *want = filled(t, 0);

			cr_expect_eq(a[i], want[i] + b[i], "%s: u64 %zu not summed", t->name, i);
			free(want);
		}
		free(a);
		free(b);
	}
}

/* The value at @d's group path and key below @o, or NULL. */
static json_object *json_at(json_object *o, const struct counter_def *d)
{
	char path[128];
	json_object *v = o;

	snprintf(path, sizeof(path), "%s", d->group);
	for (char *save, *p = strtok_r(path, ".", &save); v && p; p = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(v, p, &v))
			return NULL;
	return v && json_object_object_get_ex(v, d->key, &v) ? v : NULL;
}

Test(counters, every_row_is_in_the_admin_json_exactly_once)
{
	for (size_t ti = 0; ti < N_TABLES; ti++) {
		const struct counter_table *t = tables[ti];
		void *ctr = filled(t, 0);
		json_object *o = json_object_new_object();

		admin_counters_json(o, t, ctr);
		cr_expect_eq(json_leaves(o), elements(t, false), "%s: %s", t->name,
			     json_object_to_json_string(o));
		for (size_t r = 0; r < t->n; r++) {
			const struct counter_def *d = &t->defs[r];
			json_object *v = json_at(o, d), *e;

			cr_assert_not_null(v, "%s: no %s.%s", t->name, d->group, d->key);
			if (d->n == 1) {
				cr_expect_eq(json_object_get_uint64(v), val(0, r, 0), "%s.%s",
					     t->name, d->key);
				continue;
			}
			cr_expect_eq(json_object_object_length(v), (int)d->n);
			for (size_t i = 0; i < d->n; i++) {
				cr_assert(json_object_object_get_ex(v, d->sub[i], &e), "%s.%s.%s",
					  t->name, d->key, d->sub[i]);
				cr_expect_eq(json_object_get_uint64(e), val(0, r, i));
			}
		}
		json_object_put(o);
		free(ctr);
	}
}

Test(counters, every_metric_row_is_in_the_exposition_exactly_once)
{
	static const char *const labels[] = { "svc=\"a\"", "svc=\"b\"" };

	for (size_t ti = 0; ti < N_TABLES; ti++) {
		const struct counter_table *t = tables[ti];
		/* The node-wide table has one unlabelled instance, the others many. */
		size_t n_inst = t == &counters_proxy ? 1 : 2;
		struct prom_counted rows[2];
		struct prom p = { 0 };
		struct prom_doc *d;
		size_t families = 0;
		char err[256] = "";

		for (size_t k = 0; k < n_inst; k++)
			rows[k] =
				(struct prom_counted){ n_inst == 1 ? "" : labels[k], filled(t, k) };
		prom_counters(&p, t, rows, n_inst);
		cr_assert_eq(p.err, 0);
		/* Strict: a family twice or a series twice is refused. */
		d = promtext_parse(p.buf, err, sizeof(err));
		cr_assert_not_null(d, "%s: %s\n%s", t->name, err, p.buf);
		for (size_t r = 0; r < t->n; r++) {
			const struct counter_def *def = &t->defs[r];
			char l[128];

			if (!def->metric)
				continue;
			families++;
			cr_expect_str_eq(promtext_type(d, def->metric),
					 def->type == CTR_GAUGE ? "gauge" : "counter");
			for (size_t k = 0; k < n_inst; k++)
				for (size_t i = 0; i < def->n; i++) {
					if (def->n == 1)
						snprintf(l, sizeof(l), "%s", rows[k].labels);
					else
						snprintf(l, sizeof(l), "%s%s%s=\"%s\"",
							 rows[k].labels,
							 rows[k].labels[0] ? "," : "", def->label,
							 def->sub[i]);
					cr_expect_eq(promtext_value(d, def->metric, l),
						     (double)val(k, r, i), "%s{%s}", def->metric,
						     l);
				}
		}
		cr_expect_eq(promtext_families(d), families, "%s", t->name);
		cr_expect_eq(promtext_samples(d), n_inst * elements(t, true), "%s", t->name);
		promtext_free(d);
		free(p.buf);
		for (size_t k = 0; k < n_inst; k++)
			free((void *)rows[k].ctr);
	}
}
