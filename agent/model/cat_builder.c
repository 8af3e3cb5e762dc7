// SPDX-License-Identifier: GPL-2.0-only
/* The incremental catalogue builder (catalogue_build.h). It keeps one entry
 * per Service name that has a Service object or EndpointSlices, in
 * (namespace, name) order, with the slices filed under it and the object last
 * built for it; and a hash of every slice to the Service it is filed under,
 * so a slice that changes Service dirties both. A build turns the changed
 * keys into dirty entries, re-runs VIP allocation only when its inputs (who
 * wants a VIP, of which families, which VIPs the registries took) changed,
 * rebuilds the dirty entries' objects, and assembles a snapshot from every
 * entry's object: the cost of a change is the touched Services' endpoints
 * plus pointer work over the service list.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "model/catalogue_build.h"
#include "model/vip_alloc.h"

/* An EndpointSlice and the Service it is filed under. */
struct slice_rec {
	struct slice_rec *next;		/* hash chain */
	struct svc_entry *owner;
	const char *ns, *name;		/* in key[] */
	char key[];
};

struct svc_entry {
	const char *ns, *name;		/* in key[] */
	struct slice_rec **slices;
	size_t n_slices, cap_slices;
	struct cat_svc_obj *obj;	/* NULL: no Service object */
	bool dirty;
	/* VIP allocation: its inputs and what it gave */
	bool has_svc, wants;
	unsigned int fams;		/* bit 0: IPv4, bit 1: IPv6 */
	struct addr reg[OBJ_SVC_IPS_MAX];	/* the registry's VIPs */
	size_t n_reg;
	struct addr alloc[OBJ_SVC_IPS_MAX];	/* from the ranges */
	size_t n_alloc;
	enum cat_vip_source src;
	char key[];
};

struct cat_builder {
	struct svc_entry **entries;	/* sorted by namespace, name */
	size_t n, cap;
	struct slice_rec **buckets;
	size_t n_buckets, n_recs;
	struct cat_people *people;	/* NULL: nothing built yet */
	/* The people before: objects may still point at its pods (a
	 * reference), those older are rebuilt.
	 */
	struct cat_people *prev_people;
	struct catalogue *last;		/* the snapshot built last (a reference): the
					 * next one is patched from it */
	struct cat_slots slots;
	struct cat_vip_stats vip_stats;
	struct svc_entry **dirty;
	size_t n_dirty, cap_dirty;
	uint64_t changes;		/* dirty entries rebuilt so far: catalogue_changes() */
};

static char *key_pair(char *buf, const char *ns, const char *name, const char **ns_out,
		      const char **name_out)
{
	size_t l = strlen(ns) + 1;

	memcpy(buf, ns, l);
	strcpy(buf + l, name);
	*ns_out = buf;
	*name_out = buf + l;
	return buf;
}

/* ---------------------------------------------------------------- entries */

static int entry_cmp(const char *ns, const char *name, const struct svc_entry *e)
{
	int c = strcmp(ns, e->ns);

	return c ? c : strcmp(name, e->name);
}

/* Binary search: true if found; *pos is its index, or where it would go. */
static bool entry_lookup(const struct cat_builder *b, const char *ns, const char *name,
			 size_t *pos)
{
	size_t lo = 0, hi = b->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = entry_cmp(ns, name, b->entries[mid]);

		if (!c) {
			*pos = mid;
			return true;
		}
		if (c > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return false;
}

static struct svc_entry *entry_get(struct cat_builder *b, const char *ns, const char *name)
{
	struct svc_entry *e;
	size_t pos;

	if (entry_lookup(b, ns, name, &pos))
		return b->entries[pos];
	if (array_reserve(&b->entries, &b->cap, b->n, sizeof(*b->entries), 64))
		return NULL;
	e = calloc(1, sizeof(*e) + strlen(ns) + strlen(name) + 2);
	if (!e)
		return NULL;
	key_pair(e->key, ns, name, &e->ns, &e->name);
	memmove(&b->entries[pos + 1], &b->entries[pos], (b->n - pos) * sizeof(*b->entries));
	b->entries[pos] = e;
	b->n++;
	return e;
}

static int mark_dirty(struct cat_builder *b, struct svc_entry *e)
{
	if (e->dirty)
		return 0;
	if (array_reserve(&b->dirty, &b->cap_dirty, b->n_dirty, sizeof(*b->dirty), 64))
		return -ENOMEM;
	e->dirty = true;
	b->dirty[b->n_dirty++] = e;
	return 0;
}

static void entry_drop_obj(struct cat_builder *b, struct svc_entry *e)
{
	if (!e->obj)
		return;
	cat_svc_release_slots(e->obj, &b->slots);
	cat_svc_unref(e->obj);
	e->obj = NULL;
}

/* ---------------------------------------------------------------- slices */

static size_t rec_hash(const char *ns, const char *name)
{
	uint64_t h = vip_name_hash(ns, name);

	return (size_t)(h ^ h >> 32);
}

static struct slice_rec **rec_slot(const struct cat_builder *b, const char *ns, const char *name)
{
	struct slice_rec **p;

	if (!b->n_buckets)
		return NULL;
	for (p = &b->buckets[rec_hash(ns, name) & (b->n_buckets - 1)]; *p; p = &(*p)->next)
		if (!strcmp((*p)->ns, ns) && !strcmp((*p)->name, name))
			return p;
	return p;
}

static int rec_grow(struct cat_builder *b)
{
	size_t n = b->n_buckets ? 2 * b->n_buckets : 1024;
	struct slice_rec **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	for (size_t i = 0; i < b->n_buckets; i++) {
		while (b->buckets[i]) {
			struct slice_rec *r = b->buckets[i];
			size_t h = rec_hash(r->ns, r->name) & (n - 1);

			b->buckets[i] = r->next;
			r->next = nb[h];
			nb[h] = r;
		}
	}
	free(b->buckets);
	b->buckets = nb;
	b->n_buckets = n;
	return 0;
}

static void rec_detach(struct slice_rec *r)
{
	struct svc_entry *e = r->owner;

	for (size_t i = 0; i < e->n_slices; i++) {
		if (e->slices[i] == r) {
			e->slices[i] = e->slices[--e->n_slices];
			break;
		}
	}
	r->owner = NULL;
}

static int rec_attach(struct slice_rec *r, struct svc_entry *e)
{
	if (array_reserve(&e->slices, &e->cap_slices, e->n_slices, sizeof(*e->slices), 2))
		return -ENOMEM;
	e->slices[e->n_slices++] = r;
	r->owner = e;
	return 0;
}

/* File slice @ns/@name under Service @ns/@service (it may be filed under
 * another one): both get dirty.
 */
static int rec_file(struct cat_builder *b, const char *ns, const char *name, const char *service)
{
	struct slice_rec **p, *r;
	struct svc_entry *e;
	int err;

	if (b->n_recs >= b->n_buckets) {
		err = rec_grow(b);
		if (err)
			return err;
	}
	p = rec_slot(b, ns, name);
	r = *p;
	if (r && !strcmp(r->owner->name, service))
		return mark_dirty(b, r->owner);
	e = entry_get(b, ns, service);
	if (!e)
		return -ENOMEM;
	if (!r) {
		r = calloc(1, sizeof(*r) + strlen(ns) + strlen(name) + 2);
		if (!r)
			return -ENOMEM;
		key_pair(r->key, ns, name, &r->ns, &r->name);
		*p = r;
		b->n_recs++;
	} else {
		err = mark_dirty(b, r->owner);
		if (err)
			return err;
		rec_detach(r);
	}
	err = rec_attach(r, e);
	return err ? err : mark_dirty(b, e);
}

/* Slice @ns/@name is gone: its Service gets dirty. */
static int rec_forget(struct cat_builder *b, const char *ns, const char *name)
{
	struct slice_rec **p = rec_slot(b, ns, name), *r;
	int err;

	if (!p || !*p)
		return 0;
	r = *p;
	err = mark_dirty(b, r->owner);
	if (err)
		return err;
	rec_detach(r);
	*p = r->next;
	b->n_recs--;
	free(r);
	return 0;
}

/* ---------------------------------------------------------------- reset */

static void builder_reset(struct cat_builder *b)
{
	for (size_t i = 0; i < b->n_buckets; i++) {
		while (b->buckets[i]) {
			struct slice_rec *r = b->buckets[i];

			b->buckets[i] = r->next;
			free(r);
		}
	}
	free(b->buckets);
	b->buckets = NULL;
	b->n_buckets = b->n_recs = 0;
	for (size_t i = 0; i < b->n; i++) {
		cat_svc_unref(b->entries[i]->obj);
		free(b->entries[i]->slices);
		free(b->entries[i]);
	}
	b->n = 0;
	b->n_dirty = 0;
	cat_people_unref(b->people);
	b->people = NULL;
	cat_people_unref(b->prev_people);
	b->prev_people = NULL;
	catalogue_unref(b->last);
	b->last = NULL;
	/* Snapshots still alive keep their objects and slots: the proxy
	 * re-keys every port of a snapshot whose services all changed.
	 */
	free(b->slots.free);
	b->slots = (struct cat_slots){ 0 };
	b->vip_stats = (struct cat_vip_stats){ 0 };
}

struct cat_builder *cat_builder_new(void)
{
	return calloc(1, sizeof(struct cat_builder));
}

void cat_builder_free(struct cat_builder *b)
{
	if (!b)
		return;
	builder_reset(b);
	free(b->entries);
	free(b->dirty);
	free(b);
}

/* ---------------------------------------------------------------- VIPs */

static bool wants_vip(const struct obj *o)
{
	return o && !o->svc.n_vips && !o->svc.headless;
}

static int vip_cmp(const void *a, const void *b)
{
	return addr_cmp(a, b);
}

/* The objects of @e's slices, by name (*@out malloc'ed). */
static int entry_slices(const struct cat_lookup *l, const struct svc_entry *e,
			const struct obj ***out, size_t *n)
{
	const struct obj **v;

	*out = NULL;
	*n = 0;
	if (!e->n_slices)
		return 0;
	v = calloc(e->n_slices, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < e->n_slices; i++) {
		const struct obj *s = l->find(l->ctx, OBJ_ENDPOINTSLICE, e->ns, e->slices[i]->name);

		if (s)
			v[(*n)++] = s;
	}
	for (size_t i = 1; i < *n; i++)	/* few slices per Service: insertion sort */
		for (size_t j = i; j > 0 && strcmp(v[j - 1]->key.name, v[j]->key.name) > 0; j--) {
			const struct obj *t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	*out = v;
	return 0;
}

/* Record @e's allocation inputs; true when they differ from the last ones. */
static bool take_inputs(struct svc_entry *e, const struct obj *svc, const struct obj *const *sl,
			size_t n_sl, const struct cidr *ranges, size_t n_ranges)
{
	bool wants = n_ranges && wants_vip(svc), changed;
	unsigned int fams = 0;
	size_t n_reg = svc ? svc->svc.n_vips : 0;

	for (size_t i = 0; wants && i < n_sl; i++)
		fams |= sl[i]->slice.family == AF_INET6 ? 2u : 1u;
	if (wants && !fams)
		fams = ranges[0].net.family == AF_INET6 ? 2u : 1u;
	/* A Service coming or going with neither changes nothing: who wants
	 * an address and which ones are taken is all allocation looks at.
	 */
	changed = e->wants != wants || e->fams != fams || e->n_reg != n_reg ||
		  (n_reg && memcmp(e->reg, svc->svc.vips, n_reg * sizeof(*e->reg)));
	e->has_svc = svc;
	e->wants = wants;
	e->fams = fams;
	e->n_reg = n_reg;
	if (n_reg)
		memcpy(e->reg, svc->svc.vips, n_reg * sizeof(*e->reg));
	return changed;
}

static enum cat_vip_source source_of(enum vip_outcome o)
{
	static const enum cat_vip_source from[] = {
		[VIP_NONE] = CAT_VIP_REGISTRY,
		[VIP_HOME] = CAT_VIP_ALLOCATED,
		[VIP_PROBED] = CAT_VIP_PROBED,
		[VIP_EXHAUSTED] = CAT_VIP_EXHAUSTED,
	};

	return from[o];
}

/* Whether an entry wants a VIP from the ranges or holds what they gave.
 * When none does, allocation gives nothing to anyone and nothing moves,
 * whatever VIPs the registries hold: a cluster whose Services all have a
 * cluster IP skips it (it went over every Service, allocating, for every
 * part of a sync or a removal).
 */
static bool vips_in_play(const struct cat_builder *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->entries[i]->wants || b->entries[i]->n_alloc ||
		    b->entries[i]->src != CAT_VIP_REGISTRY)
			return true;
	return false;
}

/* Allocate every wanting entry's VIPs from @ranges as a build from scratch
 * would (vip_alloc() over every Service in name order, every registry VIP
 * taken); entries whose result moved get dirty.
 */
static int allocate_vips(struct cat_builder *b, const struct cidr *ranges, size_t n_ranges)
{
	struct addr *taken = NULL, (*alloc)[OBJ_SVC_IPS_MAX] = NULL;
	struct vip_req *reqs = NULL;
	size_t *who = NULL, *n_alloc = NULL, n_taken = 0;
	enum cat_vip_source *src = NULL;
	int err = -ENOMEM;

	b->vip_stats = (struct cat_vip_stats){ 0 };
	if (!vips_in_play(b))
		return 0;
	taken = calloc(b->n * OBJ_SVC_IPS_MAX, sizeof(*taken));
	reqs = calloc(b->n, sizeof(*reqs));
	who = calloc(b->n, sizeof(*who));
	alloc = calloc(b->n, sizeof(*alloc));
	n_alloc = calloc(b->n, sizeof(*n_alloc));
	src = calloc(b->n, sizeof(*src));
	if (!taken || !reqs || !who || !alloc || !n_alloc || !src)
		goto out_free;
	for (size_t i = 0; i < b->n; i++)
		for (size_t v = 0; b->entries[i]->has_svc && v < b->entries[i]->n_reg; v++)
			taken[n_taken++] = b->entries[i]->reg[v];
	err = 0;
	for (size_t r = 0; r < n_ranges && !err; r++) {
		unsigned int bit = ranges[r].net.family == AF_INET6 ? 2u : 1u;
		size_t n_reqs = 0;

		for (size_t i = 0; i < b->n; i++) {
			if (!b->entries[i]->wants || !(b->entries[i]->fams & bit))
				continue;
			reqs[n_reqs] = (struct vip_req){ .ns = b->entries[i]->ns,
							 .name = b->entries[i]->name };
			who[n_reqs++] = i;
		}
		err = vip_alloc(&ranges[r], taken, n_taken, reqs, n_reqs);
		for (size_t k = 0; k < n_reqs && !err; k++) {
			size_t i = who[k];

			if (source_of(reqs[k].outcome) > src[i])
				src[i] = source_of(reqs[k].outcome);
			if (reqs[k].outcome == VIP_HOME || reqs[k].outcome == VIP_PROBED)
				alloc[i][n_alloc[i]++] = reqs[k].out;
		}
	}
	for (size_t i = 0; i < b->n && !err; i++) {
		struct svc_entry *e = b->entries[i];

		if (e->src != src[i] || e->n_alloc != n_alloc[i] ||
		    memcmp(e->alloc, alloc[i], n_alloc[i] * sizeof(alloc[i][0]))) {
			e->src = src[i];
			e->n_alloc = n_alloc[i];
			memcpy(e->alloc, alloc[i], n_alloc[i] * sizeof(alloc[i][0]));
			err = mark_dirty(b, e);
		}
		b->vip_stats.allocated += e->src == CAT_VIP_ALLOCATED || e->src == CAT_VIP_PROBED;
		b->vip_stats.collisions += e->src == CAT_VIP_PROBED;
		b->vip_stats.exhausted += e->src == CAT_VIP_EXHAUSTED;
	}
out_free:
	free(src);
	free(n_alloc);
	free(alloc);
	free(who);
	free(reqs);
	free(taken);
	return err;
}

/* ---------------------------------------------------------------- building */

/* Replace b->people from every Namespace and Pod. */
static int rebuild_people(struct cat_builder *b, const struct cat_lookup *l)
{
	const struct obj **nss = NULL, **pods = NULL, **all = NULL;
	long n_ns = l->collect(l->ctx, OBJ_NAMESPACE, &nss);
	long n_pods = n_ns < 0 ? -1 : l->collect(l->ctx, OBJ_POD, &pods);
	struct cat_people *p = NULL;
	int err = -ENOMEM;

	if (n_ns < 0 || n_pods < 0)
		goto out_free;
	all = calloc((size_t)(n_ns + n_pods) + 1, sizeof(*all));
	if (!all)
		goto out_free;
	/* Namespaces sort before Pods: the concatenation is in key order. */
	if (n_ns)
		memcpy(all, nss, (size_t)n_ns * sizeof(*all));
	if (n_pods)
		memcpy(all + n_ns, pods, (size_t)n_pods * sizeof(*all));
	p = cat_people_build(all, (size_t)(n_ns + n_pods));
	if (!p)
		goto out_free;
	cat_people_unref(b->people);
	b->people = p;
	err = 0;
out_free:
	free(all);
	free(pods);
	free(nss);
	return err;
}

static int pod_ip_cmp(const void *a, const void *b)
{
	return addr_cmp(&((const struct pod_ip *)a)->ip, &((const struct pod_ip *)b)->ip);
}

/* Whether two IPs' pods say the same (both none, or equal records). */
static bool same_pod(const struct cat_pod *x, const struct cat_pod *y)
{
	return x == y || (x && y && !memcmp(x, y, sizeof(*x)));
}

/* The IPs whose pod differs between @old and @cur (their pod_ips, sorted),
 * into *@out (malloc'ed, sorted; port 0). -ENOMEM or the count.
 */
static long changed_pod_ips(const struct cat_people *old, const struct cat_people *cur,
			    struct pod_ip **out)
{
	size_t i = 0, j = 0, n = 0;
	struct pod_ip *v = calloc(old->n_pod_ips + cur->n_pod_ips + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	while (i < old->n_pod_ips || j < cur->n_pod_ips) {
		const struct pod_ip *a = i < old->n_pod_ips ? &old->pod_ips[i] : NULL;
		const struct pod_ip *c = j < cur->n_pod_ips ? &cur->pod_ips[j] : NULL;
		int cmp = !a ? 1 : !c ? -1 : addr_cmp(&a->ip, &c->ip);

		if (cmp < 0) {
			v[n++] = *a;
			i++;
		} else if (cmp > 0) {
			v[n++] = *c;
			j++;
		} else {
			if (!same_pod(a->pod, c->pod))
				v[n++] = *c;
			i++;
			j++;
		}
	}
	*out = v;
	return (long)n;
}

/* Whether one of @o's endpoints is at one of @ips (@n, sorted). */
static bool obj_hits(const struct cat_svc_obj *o, const struct pod_ip *ips, size_t n)
{
	for (size_t p = 0; p < o->svc.n_ports; p++) {
		const struct cat_svc_port *sp = &o->svc.ports[p];

		for (size_t e = 0; e < sp->n_endpoints; e++) {
			struct pod_ip k = { .ip = sp->endpoints[e].addr };

			k.ip.port = 0;
			if (bsearch(&k, ips, n, sizeof(*ips), pod_ip_cmp))
				return true;
		}
	}
	return false;
}

/* The Namespaces or Pods changed, the people went from @old to b->people:
 * dirty the Services with an endpoint whose IP's pod changed (it became or
 * stopped being a meshed pod, or its record changed), and those still
 * pointing at the people before @old, so that at most two stay alive.
 * Every other Service keeps its object: its endpoints' pods read the same
 * in @old as now. A namespace label flip costs what it changes.
 */
static int dirty_by_people(struct cat_builder *b, struct cat_people *old)
{
	struct pod_ip *ips = NULL;
	long n = changed_pod_ips(old, b->people, &ips);
	int err = 0;

	if (n < 0)
		return (int)n;
	for (size_t i = 0; i < b->n && !err; i++) {
		const struct cat_svc_obj *o = b->entries[i]->obj;

		if (!o || !(o->people || n))
			continue;
		if ((o->people && o->people != old && o->people != b->people) ||
		    (n && obj_hits(o, ips, (size_t)n)))
			err = mark_dirty(b, b->entries[i]);
	}
	free(ips);
	return err;
}

/* Every Service and EndpointSlice filed, every entry dirty. */
static int file_everything(struct cat_builder *b, const struct cat_lookup *l)
{
	const struct obj **v = NULL;
	long n = l->collect(l->ctx, OBJ_ENDPOINTSLICE, &v);
	int err = 0;

	if (n < 0)
		return -ENOMEM;
	for (long i = 0; i < n && !err; i++)
		err = rec_file(b, v[i]->key.ns, v[i]->key.name, v[i]->slice.service);
	free(v);
	v = NULL;
	n = err ? 0 : l->collect(l->ctx, OBJ_SERVICE, &v);
	if (n < 0)
		return -ENOMEM;
	for (long i = 0; i < n && !err; i++) {
		struct svc_entry *e = entry_get(b, v[i]->key.ns, v[i]->key.name);

		err = e ? mark_dirty(b, e) : -ENOMEM;
	}
	free(v);
	return err;
}

static int file_change(struct cat_builder *b, const struct cat_lookup *l, const struct obj_key *k)
{
	const struct obj *o;
	struct svc_entry *e;

	switch (k->kind) {
	case OBJ_SERVICE:
		e = entry_get(b, k->ns, k->name);
		return e ? mark_dirty(b, e) : -ENOMEM;
	case OBJ_ENDPOINTSLICE:
		o = l->find(l->ctx, OBJ_ENDPOINTSLICE, k->ns, k->name);
		return o ? rec_file(b, k->ns, k->name, o->slice.service)
			 : rec_forget(b, k->ns, k->name);
	case OBJ_NAMESPACE:
	case OBJ_POD:
		break;		/* the caller rebuilt the people */
	}
	return 0;
}

/* Rebuild dirty entry @e (its inputs taken). */
static int rebuild_entry(struct cat_builder *b, const struct cat_lookup *l, struct svc_entry *e,
			 const struct obj *const *sl, size_t n_sl)
{
	const struct obj *svc = l->find(l->ctx, OBJ_SERVICE, e->ns, e->name);
	struct addr vips[OBJ_SVC_IPS_MAX * 2];
	struct cat_svc_obj *o;
	size_t n_vips = 0;

	entry_drop_obj(b, e);
	if (!svc)
		return 0;
	memcpy(vips, e->reg, e->n_reg * sizeof(*vips));
	n_vips = e->n_reg;
	memcpy(vips + n_vips, e->alloc, e->n_alloc * sizeof(*vips));
	n_vips += e->n_alloc;
	if (n_vips > OBJ_SVC_IPS_MAX)
		n_vips = OBJ_SVC_IPS_MAX;
	qsort(vips, n_vips, sizeof(*vips), vip_cmp);
	o = cat_svc_build(svc, sl, n_sl, vips, n_vips, e->src, b->people, &b->slots);
	if (!o)
		return -errno;
	e->obj = o;
	return 0;
}

/* Take the dirty entries' inputs, re-allocate VIPs if they moved, rebuild
 * the dirty entries.
 */
static int rebuild_dirty(struct cat_builder *b, const struct cat_lookup *l, bool all,
			 const struct cidr *ranges, size_t n_ranges)
{
	bool realloc_vips = all;
	size_t n_first = b->n_dirty;
	int err = 0;

	for (size_t i = 0; i < n_first && !err; i++) {
		struct svc_entry *e = b->dirty[i];
		const struct obj *svc = l->find(l->ctx, OBJ_SERVICE, e->ns, e->name);
		const struct obj **sl = NULL;
		size_t n_sl = 0;

		/* Only the families of a Service wanting a VIP need its slices. */
		if (n_ranges && wants_vip(svc))
			err = entry_slices(l, e, &sl, &n_sl);
		if (!err && take_inputs(e, svc, sl, n_sl, ranges, n_ranges))
			realloc_vips = true;
		free(sl);
	}
	if (!err && realloc_vips && n_ranges)
		err = allocate_vips(b, ranges, n_ranges);	/* may add dirty entries */
	for (size_t i = 0; i < b->n_dirty && !err; i++) {
		struct svc_entry *e = b->dirty[i];
		const struct obj **sl;
		size_t n_sl;

		err = entry_slices(l, e, &sl, &n_sl);
		if (!err)
			err = rebuild_entry(b, l, e, sl, n_sl);
		free(sl);
	}
	return err;
}

/* Forget entries left with neither a Service nor a slice; clear the marks. */
static void sweep(struct cat_builder *b)
{
	size_t w = 0;
	bool gone = false;

	for (size_t i = 0; i < b->n_dirty; i++) {
		b->dirty[i]->dirty = false;
		gone |= !b->dirty[i]->obj && !b->dirty[i]->n_slices && !b->dirty[i]->has_svc;
	}
	b->n_dirty = 0;
	if (!gone)
		return;
	for (size_t i = 0; i < b->n; i++) {
		struct svc_entry *e = b->entries[i];

		if (!e->obj && !e->n_slices && !e->has_svc) {
			free(e->slices);
			free(e);
			continue;
		}
		b->entries[w++] = e;
	}
	b->n = w;
}

static struct catalogue *assemble(struct cat_builder *b, uint64_t generation)
{
	struct cat_svc_obj **v = calloc(b->n ? b->n : 1, sizeof(*v));
	struct catalogue *c;
	size_t n = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; i < b->n; i++)
		if (b->entries[i]->obj)
			v[n++] = b->entries[i]->obj;
	c = catalogue_assemble(generation, b->people, v, n, b->vip_stats, b->last);
	free(v);
	if (c) {
		c->changes = b->changes;	/* not shared with anyone yet */
		catalogue_unref(b->last);
		b->last = catalogue_ref(c);
	}
	return c;
}

struct catalogue *cat_builder_build(struct cat_builder *b, const struct cat_lookup *l,
				    const struct obj_key *dirty, size_t n_dirty, bool all,
				    uint64_t generation, const struct cidr *vip_ranges,
				    size_t n_ranges)
{
	bool people = false;
	struct catalogue *c = NULL;
	int err = 0;

	if (all || !b->people) {
		builder_reset(b);
		all = true;
	}
	for (size_t i = 0; i < n_dirty; i++)
		people |= dirty[i].kind == OBJ_NAMESPACE || dirty[i].kind == OBJ_POD;
	if (all || people) {
		struct cat_people *old = b->people ? cat_people_ref(b->people) : NULL;

		err = rebuild_people(b, l);
		/* Endpoints point at the pods they are: those whose pod changed
		 * are rebuilt.
		 */
		if (!err && !all && old)
			err = dirty_by_people(b, old);
		cat_people_unref(b->prev_people);
		b->prev_people = old;
	}
	if (!err && all)
		err = file_everything(b, l);
	for (size_t i = 0; i < n_dirty && !err && !all; i++)
		err = file_change(b, l, &dirty[i]);
	if (!err)
		err = rebuild_dirty(b, l, all, vip_ranges, n_ranges);
	if (!err) {
		b->changes += b->n_dirty;
		sweep(b);
		c = assemble(b, generation);
		err = c ? 0 : -ENOMEM;
	}
	if (err) {
		builder_reset(b);
		errno = -err;
	}
	return c;
}
