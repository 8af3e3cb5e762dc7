// SPDX-License-Identifier: GPL-2.0-only
/* Registry objects: names, keys, allocation, deep copy and the owned list.
 * Filled by registry/decode.c, owned by the model afterwards.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "model/objects.h"

const char *obj_kind_name(enum obj_kind kind)
{
	switch (kind) {
	case OBJ_NAMESPACE:
		return "Namespace";
	case OBJ_SERVICE:
		return "Service";
	case OBJ_ENDPOINTSLICE:
		return "EndpointSlice";
	case OBJ_POD:
		return "Pod";
	}
	return "?";
}

const char *obj_proto_name(enum obj_proto proto)
{
	switch (proto) {
	case OBJ_PROTO_TCP:
		return "TCP";
	case OBJ_PROTO_UDP:
		return "UDP";
	case OBJ_PROTO_SCTP:
		return "SCTP";
	}
	return "?";
}

int obj_key_cmp(const struct obj_key *a, const struct obj_key *b)
{
	int c;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	c = strcmp(a->ns, b->ns);
	if (c)
		return c;
	return strcmp(a->name, b->name);
}

const char *obj_key_fmt(const struct obj_key *k, char *buf, size_t len)
{
	if (k->ns[0])
		snprintf(buf, len, "%s %s/%s", obj_kind_name(k->kind), k->ns, k->name);
	else
		snprintf(buf, len, "%s %s", obj_kind_name(k->kind), k->name);
	return buf;
}

/* An object is allocated to the size of its kind's member of the union: a
 * Service or an EndpointSlice takes less than half of a Pod's room, and a
 * cluster has many of them.
 */
static size_t obj_size(enum obj_kind kind)
{
	size_t head = offsetof(struct obj, nspace);

	switch (kind) {
	case OBJ_NAMESPACE:
		return head + sizeof(struct obj_namespace);
	case OBJ_SERVICE:
		return head + sizeof(struct obj_service);
	case OBJ_ENDPOINTSLICE:
		return head + sizeof(struct obj_slice);
	case OBJ_POD:
		return head + sizeof(struct obj_pod);
	}
	return sizeof(struct obj);
}

struct obj *obj_new(enum obj_kind kind)
{
	struct obj *o = calloc(1, obj_size(kind));

	if (!o)
		return NULL;
	o->key.kind = kind;
	return o;
}

/* Copy @n elements of @size bytes into a fresh array; NULL only on ENOMEM
 * with @n > 0 (an empty array stays NULL).
 */
static void *dup_array(const void *src, size_t n, size_t size, int *err)
{
	void *p;

	if (!n)
		return NULL;
	p = calloc(n, size);
	if (!p) {
		*err = -ENOMEM;
		return NULL;
	}
	memcpy(p, src, n * size);
	return p;
}

static int dup_service(struct obj_service *dst, const struct obj_service *src)
{
	int err = 0;

	dst->ports = dup_array(src->ports, src->n_ports, sizeof(*src->ports), &err);
	dst->policy = dup_array(src->policy, src->policy ? 1 : 0, sizeof(*src->policy), &err);
	if (src->allow_from && !(dst->allow_from = strdup(src->allow_from)))
		err = -ENOMEM;
	return err;
}

/* Where a string of the pool being filled is: the last few distinct ones,
 * since endpoints come in runs on the same node and zone.
 */
#define POOL_DEDUP_WINDOW 8

static const char *pool_find(const char *const *recent, size_t n, const char *str)
{
	for (size_t i = 0; i < n && i < POOL_DEDUP_WINDOW; i++)
		if (recent[i] && !strcmp(recent[i], str))
			return recent[i];
	return NULL;
}

/* Append @str to @pool at *@used unless one of @recent has it. */
static const char *pool_put(char *pool, size_t *used, const char **recent, size_t *n_recent,
			    const char *str)
{
	const char *hit = pool_find(recent, *n_recent, str);
	size_t len;

	if (hit)
		return hit;
	len = strlen(str) + 1;
	memcpy(pool + *used, str, len);
	hit = pool + *used;
	*used += len;
	recent[*n_recent % POOL_DEDUP_WINDOW] = hit;
	(*n_recent)++;
	return hit;
}

/* Pack @s into fresh pools; @owned: the addrs and strings @s points at are
 * its own (freed once moved) rather than another slice's.
 */
static int slice_pack(struct obj_slice *s, bool owned)
{
	const char *recent[POOL_DEDUP_WINDOW] = { 0 };
	size_t n_addrs = 0, bytes = 0, used = 0, at = 0, n_recent = 0;
	struct addr *addrs = NULL;
	char *strs = NULL;

	for (size_t i = 0; i < s->n_endpoints; i++) {
		n_addrs += s->endpoints[i].n_addrs;
		bytes += strlen(s->endpoints[i].node) + strlen(s->endpoints[i].zone) + 2;
	}
	if ((n_addrs && !(addrs = calloc(n_addrs, sizeof(*addrs)))) ||
	    (bytes && !(strs = malloc(bytes)))) {
		free(addrs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->n_endpoints; i++) {
		struct obj_endpoint *e = &s->endpoints[i];

		memcpy(&addrs[at], e->addrs, e->n_addrs * sizeof(*addrs));
		if (owned && !s->addr_pool)
			free(e->addrs);
		e->addrs = &addrs[at];
		at += e->n_addrs;
		e->node = pool_put(strs, &used, recent, &n_recent, e->node);
		e->zone = pool_put(strs, &used, recent, &n_recent, e->zone);
	}
	if (owned) {
		free(s->addr_pool);
		free(s->str_pool);
	}
	s->addr_pool = addrs;
	s->str_pool = strs;
	return 0;
}

int obj_slice_pack(struct obj_slice *s)
{
	return slice_pack(s, true);
}

static int dup_slice(struct obj_slice *dst, const struct obj_slice *src)
{
	int err = 0;

	/* The shallow copy points at @src's pools until packed into its own. */
	dst->addr_pool = NULL;
	dst->str_pool = NULL;
	dst->endpoints = dup_array(src->endpoints, src->n_endpoints, sizeof(*src->endpoints), &err);
	if (!err && dst->endpoints)
		err = slice_pack(dst, false);
	if (err && dst->endpoints) {
		/* Nothing of its own to free: obj_free() must not see @src's. */
		free(dst->endpoints);
		dst->endpoints = NULL;
		dst->n_endpoints = 0;
	}
	dst->ports = dup_array(src->ports, src->n_ports, sizeof(*src->ports), &err);
	return err;
}

struct obj *obj_dup(const struct obj *o)
{
	struct obj *c = malloc(obj_size(o->key.kind));
	int err = 0;

	if (!c)
		return NULL;
	memcpy(c, o, obj_size(o->key.kind));
	/* Detach every borrowed pointer before filling, so obj_free() on a
	 * half-built copy never frees @o's arrays.
	 */
	switch (o->key.kind) {
	case OBJ_SERVICE:
		c->svc.ports = NULL;
		c->svc.policy = NULL;
		c->svc.allow_from = NULL;
		err = dup_service(&c->svc, &o->svc);
		break;
	case OBJ_ENDPOINTSLICE:
		c->slice.endpoints = NULL;
		c->slice.ports = NULL;
		c->slice.addr_pool = NULL;
		c->slice.str_pool = NULL;
		err = dup_slice(&c->slice, &o->slice);
		break;
	case OBJ_NAMESPACE:
	case OBJ_POD:
		break;
	}
	if (err) {
		obj_free(c);
		errno = -err;
		return NULL;
	}
	return c;
}

/* Free what @o owns, not @o. */
static void free_content(struct obj *o)
{
	switch (o->key.kind) {
	case OBJ_SERVICE:
		free(o->svc.ports);
		free(o->svc.policy);
		free(o->svc.allow_from);
		break;
	case OBJ_ENDPOINTSLICE:
		for (size_t i = 0; !o->slice.addr_pool && o->slice.endpoints &&
				   i < o->slice.n_endpoints; i++)
			free(o->slice.endpoints[i].addrs);
		free(o->slice.addr_pool);
		free(o->slice.str_pool);
		free(o->slice.endpoints);
		free(o->slice.ports);
		break;
	case OBJ_NAMESPACE:
	case OBJ_POD:
		break;
	}
}

void obj_free(struct obj *o)
{
	if (!o)
		return;
	free_content(o);
	free(o);
}

void obj_move(struct obj *dst, struct obj *src)
{
	assert(dst->key.kind == src->key.kind);
	free_content(dst);
	memcpy(dst, src, obj_size(src->key.kind));
	free(src);
}

void obj_list_init(struct obj_list *l)
{
	*l = (struct obj_list){ 0 };
}

void obj_list_done(struct obj_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		obj_free(l->items[i]);
	free(l->items);
	obj_list_init(l);
}

int obj_list_add(struct obj_list *l, struct obj *o)
{
	if (array_reserve(&l->items, &l->cap, l->n, sizeof(*l->items), 16))
		return -ENOMEM;
	l->items[l->n++] = o;
	return 0;
}
