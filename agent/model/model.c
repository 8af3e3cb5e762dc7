// SPDX-License-Identifier: GPL-2.0-only
/* The model: registry objects per source, each source a sorted array keyed
 * by kind/namespace/name. model_build() merges the sources and hands the
 * result to catalogue_build(). Single-threaded; written by registries only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "model/catalogue_build.h"
#include "model/model.h"

/* Registry backends are few (file, kubernetes, etcd, zookeeper): a bound
 * catches a caller inventing a source name per event.
 */
#define MODEL_SOURCES_MAX 32
/* Past this many changed keys between two builds, rebuilding everything is
 * as cheap as sorting the changes out, and the log stops growing.
 */
#define MODEL_DIRTY_MAX 65536

struct source {
	char *name;
	struct obj **objs;	/* sorted by obj_key_cmp(), unique keys */
	size_t n, cap;
};

struct model {
	/* In the order sources were first written: that order settles conflicts. */
	struct source sources[MODEL_SOURCES_MAX];
	size_t n_sources;
	uint64_t generation;	/* of the last catalogue built */
	struct cidr vip_ranges[2];	/* one per family at most */
	size_t n_vip_ranges;
	struct cat_builder *builder;
	/* What changed since the last build: keys, or everything. */
	struct obj_key *dirty;
	size_t n_dirty, cap_dirty;
	bool dirty_all;
};

struct model *model_new(void)
{
	struct model *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->builder = cat_builder_new();
	if (!m->builder) {
		free(m);
		return NULL;
	}
	m->dirty_all = true;
	return m;
}

/* Note that @k changed. A key too many turns into "everything". */
static void note_dirty(struct model *m, const struct obj_key *k)
{
	if (m->dirty_all)
		return;
	if (m->n_dirty == MODEL_DIRTY_MAX ||
	    array_reserve(&m->dirty, &m->cap_dirty, m->n_dirty, sizeof(*m->dirty), 64)) {
		m->dirty_all = true;
		m->n_dirty = 0;
		return;
	}
	m->dirty[m->n_dirty++] = *k;
}

void model_free(struct model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_sources; i++) {
		struct source *s = &m->sources[i];

		for (size_t j = 0; j < s->n; j++)
			obj_free(s->objs[j]);
		free(s->objs);
		free(s->name);
	}
	cat_builder_free(m->builder);
	free(m->dirty);
	free(m);
}

int model_set_vip_ranges(struct model *m, const struct cidr *ranges, size_t n)
{
	if (n > 2 || (n == 2 && ranges[0].net.family == ranges[1].net.family))
		return -EINVAL;
	memcpy(m->vip_ranges, ranges, n * sizeof(*ranges));
	m->n_vip_ranges = n;
	m->dirty_all = true;
	return 0;
}

static struct source *find_source(const struct model *m, const char *name)
{
	for (size_t i = 0; i < m->n_sources; i++)
		if (!strcmp(m->sources[i].name, name))
			return (struct source *)&m->sources[i];
	return NULL;
}

static int get_source(struct model *m, const char *name, struct source **out)
{
	struct source *s = find_source(m, name);

	if (!s) {
		if (m->n_sources == MODEL_SOURCES_MAX)
			return -ENOSPC;
		s = &m->sources[m->n_sources];
		*s = (struct source){ .name = strdup(name) };
		if (!s->name)
			return -ENOMEM;
		m->n_sources++;
	}
	*out = s;
	return 0;
}

int model_declare_source(struct model *m, const char *source)
{
	struct source *s;

	return get_source(m, source, &s);
}

/* Binary search: true if found; *pos is its index, or where it would go. */
static bool source_lookup(const struct source *s, const struct obj_key *key, size_t *pos)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = obj_key_cmp(&s->objs[mid]->key, key);

		if (!c) {
			*pos = mid;
			return true;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return false;
}

static bool make_key(struct obj_key *k, enum obj_kind kind, const char *ns, const char *name)
{
	*k = (struct obj_key){ .kind = kind };
	if (strlen(ns) >= sizeof(k->ns) || strlen(name) >= sizeof(k->name))
		return false;
	strcpy(k->ns, ns);
	strcpy(k->name, name);
	return true;
}

const struct obj *model_find(const struct model *m, const char *source, enum obj_kind kind,
				 const char *ns, const char *name)
{
	const struct source *s = find_source(m, source);
	struct obj_key k;
	size_t pos;

	if (!s || !make_key(&k, kind, ns, name) || !source_lookup(s, &k, &pos))
		return NULL;
	return s->objs[pos];
}

int model_upsert(struct model *m, const char *source, struct obj *obj)
{
	struct source *s;
	size_t pos;
	int err;

	err = get_source(m, source, &s);
	if (err)
		goto out_free_obj;
	note_dirty(m, &obj->key);
	if (source_lookup(s, &obj->key, &pos)) {
		obj_free(s->objs[pos]);
		s->objs[pos] = obj;
		return 0;
	}
	err = array_reserve(&s->objs, &s->cap, s->n, sizeof(*s->objs), 16);
	if (err)
		goto out_free_obj;
	memmove(&s->objs[pos + 1], &s->objs[pos], (s->n - pos) * sizeof(*s->objs));
	s->objs[pos] = obj;
	s->n++;
	return 0;
out_free_obj:
	obj_free(obj);
	return err;
}

int model_remove(struct model *m, const char *source, enum obj_kind kind, const char *ns,
		 const char *name)
{
	struct source *s = find_source(m, source);
	struct obj_key k;
	size_t pos;

	if (!s || !make_key(&k, kind, ns, name) || !source_lookup(s, &k, &pos))
		return 0;
	note_dirty(m, &k);
	obj_free(s->objs[pos]);
	memmove(&s->objs[pos], &s->objs[pos + 1], (s->n - pos - 1) * sizeof(*s->objs));
	s->n--;
	return 0;
}

/* An object with where it came from, to sort with a tie-break. */
struct ranked {
	struct obj *obj;
	size_t rank;
};

int model_retain(struct model *m, const char *source, enum obj_kind kind, model_keep_fn keep,
		 void *ctx)
{
	struct source *s = find_source(m, source);
	size_t w = 0, removed = 0;

	if (!s)
		return 0;
	/* Compaction keeps the array sorted. */
	for (size_t r = 0; r < s->n; r++) {
		struct obj *o = s->objs[r];

		if (o->key.kind == kind && !keep(o, ctx)) {
			note_dirty(m, &o->key);
			obj_free(o);
			removed++;
			continue;
		}
		s->objs[w++] = o;
	}
	s->n = w;
	return (int)removed;
}

static int ranked_cmp(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	int c = obj_key_cmp(&x->obj->key, &y->obj->key);

	return c ? c : (x->rank > y->rank) - (x->rank < y->rank);
}

/* Conflict rule, until registries are merged for real (a later issue): when
 * two sources define the same kind/namespace/name, the source registered
 * first (first written to this model) wins, whole object, and the other
 * definition is not used at all. Simple to predict, and a later source can
 * never hijack what an earlier one serves.
 */
static const struct obj *winner(void *ctx, enum obj_kind kind, const char *ns, const char *name)
{
	const struct model *m = ctx;
	struct obj_key k;
	size_t pos;

	if (!make_key(&k, kind, ns, name))
		return NULL;
	for (size_t i = 0; i < m->n_sources; i++)
		if (source_lookup(&m->sources[i], &k, &pos))
			return m->sources[i].objs[pos];
	return NULL;
}

/* The first index of @s's objects of @kind (they are contiguous: kind sorts first). */
static size_t kind_lower_bound(const struct source *s, enum obj_kind kind)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->objs[mid]->key.kind < kind)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Every winning object of @kind, sorted by key. */
static long winners_of(void *ctx, enum obj_kind kind, const struct obj ***out)
{
	const struct model *m = ctx;
	const struct obj **merged = NULL;
	struct ranked *all = NULL;
	size_t total = 0, n = 0;

	*out = NULL;
	for (size_t i = 0; i < m->n_sources; i++) {
		const struct source *s = &m->sources[i];

		for (size_t j = kind_lower_bound(s, kind); j < s->n && s->objs[j]->key.kind == kind;
		     j++)
			total++;
	}
	if (!total)
		return 0;
	all = calloc(total, sizeof(*all));
	merged = calloc(total, sizeof(*merged));
	if (!all || !merged) {
		free(all);
		free(merged);
		return -ENOMEM;
	}
	total = 0;
	for (size_t i = 0; i < m->n_sources; i++) {
		const struct source *s = &m->sources[i];

		for (size_t j = kind_lower_bound(s, kind); j < s->n && s->objs[j]->key.kind == kind;
		     j++)
			all[total++] = (struct ranked){ s->objs[j], i };
	}
	/* One source is already in key order: only several need sorting. */
	if (m->n_sources > 1)
		qsort(all, total, sizeof(*all), ranked_cmp);
	for (size_t i = 0; i < total; i++)
		if (!n || obj_key_cmp(&merged[n - 1]->key, &all[i].obj->key))
			merged[n++] = all[i].obj;
	free(all);
	*out = merged;
	return (long)n;
}

struct catalogue *model_build(struct model *m)
{
	const struct cat_lookup l = { .find = winner, .collect = winners_of, .ctx = m };
	struct catalogue *c;

	c = cat_builder_build(m->builder, &l, m->dirty, m->n_dirty, m->dirty_all,
			      m->generation + 1, m->vip_ranges, m->n_vip_ranges);
	if (!c) {
		m->dirty_all = true;	/* the builder starts over */
		m->n_dirty = 0;
		return NULL;
	}
	m->generation++;
	m->dirty_all = false;
	m->n_dirty = 0;
	return c;
}
