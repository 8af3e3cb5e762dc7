// SPDX-License-Identifier: GPL-2.0-only
/* The model: registry objects per source, each source an array per kind
 * sorted by namespace/name and an index of all its objects by key hash.
 * model_build() merges the sources and hands the result to
 * catalogue_build(). Single-threaded; written by registries only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "fnv.h"
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
/* The smallest index (slots; a power of two). */
#define MODEL_INDEX_MIN 64

/* One kind's objects of a source. */
struct kind_objs {
	struct obj **v;		/* sorted by obj_key_cmp(), unique keys */
	size_t n, cap;
};

/* A slot of a source's index: open addressing on key_hash() with linear
 * probing, at most half full. A build looks up each Service and
 * EndpointSlice it touches a few times; a binary search over 20,000 keys,
 * two strcmp() a step, was a sixth of the loop's CPU.
 */
struct index_slot {
	struct obj *obj;	/* NULL: free */
	uint64_t hash;		/* key_hash() of obj's key: compared before the key */
};

struct source {
	char *name;
	/* Per kind, so that a listing in key order appends, whatever the
	 * kinds it interleaves (a Service, its slices, the next Service).
	 */
	struct kind_objs kinds[OBJ_KIND_COUNT];
	struct index_slot *index;	/* NULL until the first object */
	size_t index_mask;		/* slots - 1 */
	size_t n_index;			/* objects in the index: all of the source's */
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

		for (size_t k = 0; k < OBJ_KIND_COUNT; k++) {
			for (size_t j = 0; j < s->kinds[k].n; j++)
				obj_free(s->kinds[k].v[j]);
			free(s->kinds[k].v);
		}
		free(s->index);
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

/* ---------------------------------------------------------------- index */

/* FNV-1a over the kind, the namespace and the name (NUL between them). */
static uint64_t key_hash(enum obj_kind kind, const char *ns, const char *name)
{
	uint64_t h = fnv1a64_str(fnv1a64_byte(FNV1A64_OFFSET, (unsigned char)kind), ns);

	return fnv1a64_str(fnv1a64_byte(h, '\0'), name);
}

static size_t home_slot(const struct source *s, uint64_t h)
{
	return (size_t)fnv_fold(h) & s->index_mask;
}

static struct obj *index_find(const struct source *s, uint64_t h, enum obj_kind kind,
			      const char *ns, const char *name)
{
	if (!s->index)
		return NULL;
	for (size_t i = home_slot(s, h); s->index[i].obj; i = (i + 1) & s->index_mask) {
		const struct obj_key *k = &s->index[i].obj->key;

		if (s->index[i].hash == h && k->kind == kind && !strcmp(k->name, name) &&
		    !strcmp(k->ns, ns))
			return s->index[i].obj;
	}
	return NULL;
}

/* Insert @o (not in the index yet); index_reserve() made room. */
static void index_put(struct source *s, struct obj *o, uint64_t h)
{
	size_t i = home_slot(s, h);

	while (s->index[i].obj)
		i = (i + 1) & s->index_mask;
	s->index[i] = (struct index_slot){ o, h };
	s->n_index++;
}

/* Room for one more object, the index at most half full. 0 or -ENOMEM. */
static int index_reserve(struct source *s)
{
	size_t size = s->index ? s->index_mask + 1 : MODEL_INDEX_MIN;
	struct index_slot *old = s->index;
	size_t old_size = size;

	if (old && 2 * (s->n_index + 1) <= size)
		return 0;
	if (old)
		size *= 2;
	s->index = calloc(size, sizeof(*s->index));
	if (!s->index) {
		s->index = old;
		return -ENOMEM;
	}
	s->index_mask = size - 1;
	s->n_index = 0;
	for (size_t i = 0; old && i < old_size; i++)
		if (old[i].obj)
			index_put(s, old[i].obj, old[i].hash);
	free(old);
	return 0;
}

/* Take @o out of the index (backward-shift deletion: the entries after it
 * that probed past its slot move up, so lookups never stop early).
 */
static void index_del(struct source *s, const struct obj *o, uint64_t h)
{
	size_t i = home_slot(s, h), j, k;

	while (s->index[i].obj != o)
		i = (i + 1) & s->index_mask;
	s->index[i].obj = NULL;
	s->n_index--;
	for (j = (i + 1) & s->index_mask; s->index[j].obj; j = (j + 1) & s->index_mask) {
		k = home_slot(s, s->index[j].hash);
		/* Stays if its home lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		s->index[i] = s->index[j];
		s->index[j].obj = NULL;
		i = j;
	}
}

/* ---------------------------------------------------------------- arrays */

/* The index of the first object of @ko not below @key. */
static size_t lower_bound(const struct kind_objs *ko, const struct obj_key *key)
{
	size_t lo = 0, hi = ko->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (obj_key_cmp(&ko->v[mid]->key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Insert @o (its key not in @ko). Listings come in key order (the API
 * server's, etcd's, a file's usual one): the end is tried first.
 */
static int kind_insert(struct kind_objs *ko, struct obj *o)
{
	size_t pos = ko->n;

	if (array_reserve(&ko->v, &ko->cap, ko->n, sizeof(*ko->v), 16))
		return -ENOMEM;
	if (ko->n && obj_key_cmp(&ko->v[ko->n - 1]->key, &o->key) > 0)
		pos = lower_bound(ko, &o->key);
	memmove(&ko->v[pos + 1], &ko->v[pos], (ko->n - pos) * sizeof(*ko->v));
	ko->v[pos] = o;
	ko->n++;
	return 0;
}

/* ---------------------------------------------------------------- changes */

const struct obj *model_find(const struct model *m, const char *source, enum obj_kind kind,
			     const char *ns, const char *name)
{
	const struct source *s = find_source(m, source);

	if (!s || (unsigned int)kind >= OBJ_KIND_COUNT)
		return NULL;
	return index_find(s, key_hash(kind, ns, name), kind, ns, name);
}

int model_upsert(struct model *m, const char *source, struct obj *obj)
{
	const struct obj_key *k = &obj->key;
	uint64_t h = key_hash(k->kind, k->ns, k->name);
	struct source *s;
	struct obj *old;
	int err;

	err = get_source(m, source, &s);
	if (err)
		goto out_free_obj;
	note_dirty(m, k);
	old = index_find(s, h, k->kind, k->ns, k->name);
	if (old) {
		/* The object stays where the array and the index have it. */
		obj_move(old, obj);
		return 0;
	}
	err = index_reserve(s);
	if (!err)
		err = kind_insert(&s->kinds[k->kind], obj);
	if (err)
		goto out_free_obj;
	index_put(s, obj, h);
	return 0;
out_free_obj:
	obj_free(obj);
	return err;
}

int model_remove(struct model *m, const char *source, enum obj_kind kind, const char *ns,
		 const char *name)
{
	struct source *s = find_source(m, source);
	uint64_t h = key_hash(kind, ns, name);
	struct kind_objs *ko;
	struct obj *o;
	size_t pos;

	if (!s || (unsigned int)kind >= OBJ_KIND_COUNT || !(o = index_find(s, h, kind, ns, name)))
		return 0;
	note_dirty(m, &o->key);
	ko = &s->kinds[kind];
	pos = lower_bound(ko, &o->key);
	index_del(s, o, h);
	memmove(&ko->v[pos], &ko->v[pos + 1], (ko->n - pos - 1) * sizeof(*ko->v));
	ko->n--;
	obj_free(o);
	return 0;
}

int model_retain(struct model *m, const char *source, enum obj_kind kind, model_keep_fn keep,
		 void *ctx, size_t max)
{
	struct source *s = find_source(m, source);
	struct kind_objs *ko;
	size_t r = 0, w = 0, removed = 0;

	if (!s || (unsigned int)kind >= OBJ_KIND_COUNT)
		return 0;
	ko = &s->kinds[kind];
	/* Compaction keeps the array sorted. A listing's end removes in parts:
	 * past the part's last removal, the rest only moves up.
	 */
	for (; r < ko->n && removed < max; r++) {
		struct obj *o = ko->v[r];

		if (!keep(o, ctx)) {
			note_dirty(m, &o->key);
			index_del(s, o, key_hash(o->key.kind, o->key.ns, o->key.name));
			obj_free(o);
			removed++;
			continue;
		}
		ko->v[w++] = o;
	}
	if (r < ko->n)
		memmove(&ko->v[w], &ko->v[r], (ko->n - r) * sizeof(*ko->v));
	ko->n = w + (ko->n - r);
	return (int)removed;
}

/* ---------------------------------------------------------------- builds */

/* An object with where it came from, to sort with a tie-break. */
struct ranked {
	struct obj *obj;
	size_t rank;
};

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
	uint64_t h = key_hash(kind, ns, name);
	const struct obj *o;

	for (size_t i = 0; i < m->n_sources; i++)
		if ((o = index_find(&m->sources[i], h, kind, ns, name)))
			return o;
	return NULL;
}

/* Every winning object of @kind, sorted by key. */
static long winners_of(void *ctx, enum obj_kind kind, const struct obj ***out)
{
	const struct model *m = ctx;
	const struct obj **merged = NULL;
	struct ranked *all = NULL;
	size_t total = 0, n = 0;

	*out = NULL;
	for (size_t i = 0; i < m->n_sources; i++)
		total += m->sources[i].kinds[kind].n;
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
		const struct kind_objs *ko = &m->sources[i].kinds[kind];

		for (size_t j = 0; j < ko->n; j++)
			all[total++] = (struct ranked){ ko->v[j], i };
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
