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
};

struct model *model_new(void)
{
	return calloc(1, sizeof(struct model));
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
	free(m);
}

int model_set_vip_ranges(struct model *m, const struct cidr *ranges, size_t n)
{
	if (n > 2 || (n == 2 && ranges[0].net.family == ranges[1].net.family))
		return -EINVAL;
	memcpy(m->vip_ranges, ranges, n * sizeof(*ranges));
	m->n_vip_ranges = n;
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

struct catalogue *model_build(struct model *m)
{
	const struct obj **merged = NULL;
	struct catalogue *c = NULL;
	struct ranked *all = NULL;
	size_t total = 0, n = 0;

	for (size_t i = 0; i < m->n_sources; i++)
		total += m->sources[i].n;
	if (total) {
		all = calloc(total, sizeof(*all));
		merged = calloc(total, sizeof(*merged));
		if (!all || !merged) {
			errno = ENOMEM;
			goto out_free;
		}
	}
	for (size_t i = 0, k = 0; i < m->n_sources; i++)
		for (size_t j = 0; j < m->sources[i].n; j++)
			all[k++] = (struct ranked){ m->sources[i].objs[j], i };
	if (total)
		qsort(all, total, sizeof(*all), ranked_cmp);
	/* Conflict rule, until registries are merged for real (a later issue):
	 * when two sources define the same kind/namespace/name, the source
	 * registered first (first written to this model) wins, whole object,
	 * and the other definition is not used at all. Simple to predict, and
	 * a later source can never hijack what an earlier one serves.
	 */
	for (size_t i = 0; i < total; i++)
		if (!n || obj_key_cmp(&merged[n - 1]->key, &all[i].obj->key))
			merged[n++] = all[i].obj;
	c = catalogue_build(merged, n, m->generation + 1, m->vip_ranges, m->n_vip_ranges);
	if (c)
		m->generation++;
out_free:
	free(merged);
	free(all);
	return c;
}
