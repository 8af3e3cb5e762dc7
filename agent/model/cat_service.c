// SPDX-License-Identifier: GPL-2.0-only
/* One Service of the catalogue built into one immutable, reference counted
 * object (catalogue_build.h): its ports, each port's endpoints resolved from
 * the Service's EndpointSlices, and the node and zone strings those
 * endpoints name, stored once each, all in a single allocation. Snapshots
 * share the object until the builder replaces it; its lifetime (the
 * reference counting) is catalogue.c's, with the snapshots'.
 */
#include <assert.h>
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "model/catalogue_build.h"

/* An endpoint being resolved, with the order it was found in (slice name,
 * then position), so duplicates resolve the same way on every build, and
 * where its strings come from.
 */
struct ep_tmp {
	struct cat_endpoint ep;
	size_t seq;
	const char *node, *zone;	/* the slice's, borrowed */
};

/* One port's resolved endpoints: tmp[first .. first + n). */
struct port_tmp {
	size_t first, n, n_ready;
};

/* Strings stored once: the distinct node and zone names of the endpoints. */
#define STR_DEDUP_WINDOW 64	/* how far back a string is looked for */

struct strs {
	const char **v;
	size_t n, cap, bytes;
};

/* Scratch state of one cat_svc_build(). */
struct svc_build {
	struct ep_tmp *eps;
	size_t n_eps, cap_eps;
	/* One per VIP and TCP port: room for as many as a Service may have
	 * was 4.8 KB to zero for every Service built, most having one or two.
	 */
	struct port_tmp *ports;
	struct strs strs;
	const struct cat_people *people;
};

static int slot_take(struct cat_slots *s, uint32_t *out)
{
	if (s->n_free) {
		*out = s->free[--s->n_free];
		return 0;
	}
	if (s->next == UINT32_MAX)
		return -E2BIG;
	*out = s->next++;
	return 0;
}

void cat_svc_release_slots(const struct cat_svc_obj *o, struct cat_slots *slots)
{
	for (size_t i = 0; i < o->svc.n_ports; i++) {
		/* Never fails: cat_svc_build() reserved room for every slot out. */
		if (slots->n_free < slots->cap_free)
			slots->free[slots->n_free++] = o->svc.ports[i].slot;
	}
}

static int ep_addr_seq_cmp(const void *a, const void *b)
{
	const struct ep_tmp *x = a, *y = b;
	int c = addr_cmp(&x->ep.addr, &y->ep.addr);

	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static int svc_port_cmp(const void *a, const void *b)
{
	const struct obj_svc_port *x = *(const struct obj_svc_port *const *)a;
	const struct obj_svc_port *y = *(const struct obj_svc_port *const *)b;

	return (x->port > y->port) - (x->port < y->port);
}

static int pod_ip_cmp(const void *a, const void *b)
{
	return addr_cmp(&((const struct pod_ip *)a)->ip, &((const struct pod_ip *)b)->ip);
}

/* The meshed pod whose IP is @ip (any port), or NULL. */
static const struct cat_pod *pod_by_ip(const struct cat_people *p, const struct addr *ip)
{
	struct pod_ip k = { .ip = *ip };
	const struct pod_ip *hit;

	k.ip.port = 0;
	if (!p->n_pod_ips)
		return NULL;
	hit = bsearch(&k, p->pod_ips, p->n_pod_ips, sizeof(*p->pod_ips), pod_ip_cmp);
	return hit ? hit->pod : NULL;
}

static int push_ep(struct svc_build *b, const struct obj_endpoint *e, uint16_t port)
{
	struct ep_tmp *t;

	if (array_reserve(&b->eps, &b->cap_eps, b->n_eps, sizeof(*b->eps), 64))
		return -ENOMEM;
	t = &b->eps[b->n_eps];
	*t = (struct ep_tmp){ .seq = b->n_eps, .node = e->node, .zone = e->zone };
	/* The API calls an endpoint's addresses fungible and lets consumers use
	 * only the first (the EndpointSlice controller writes exactly one);
	 * listing the others would give one pod several shares of the traffic.
	 */
	t->ep.addr = e->addrs[0];
	t->ep.addr.port = port;
	t->ep.ready = e->ready;
	t->ep.pod = pod_by_ip(b->people, &e->addrs[0]);
	b->n_eps++;
	return 0;
}

/* The target port of service port @p in slice @s: the slice port of the same
 * name and protocol, else a numeric targetPort; 0 if it cannot be told (a
 * named targetPort the slice does not resolve).
 */
static uint16_t slice_target_port(const struct obj_slice *s, const struct obj_svc_port *p)
{
	for (size_t i = 0; i < s->n_ports; i++) {
		const struct obj_slice_port *sp = &s->ports[i];

		if (sp->proto == p->proto && !strcmp(sp->name, p->name) && sp->port)
			return sp->port;
	}
	return p->target_port;
}

/* Resolve the endpoints of service port @p on a VIP of @family from
 * @slices into b->eps[first..] (ready ones first, each group by address).
 */
static int resolve_endpoints(struct svc_build *b, const struct obj *const *slices, size_t n,
			     const struct obj_svc_port *p, int family, struct port_tmp *pt)
{
	size_t first = b->n_eps, w = first;
	int err;

	pt->first = first;
	for (size_t i = 0; i < n; i++) {
		const struct obj_slice *s = &slices[i]->slice;
		uint16_t port = slice_target_port(s, p);

		if (!port)
			continue;
		for (size_t j = 0; j < s->n_endpoints; j++) {
			/* A VIP is served by endpoints of its own family, as kube-proxy
			 * does: an IPv4 client of a dual-stack service has no route to
			 * the IPv6 pods, and the IPv6 VIP has its own slices.
			 */
			if (s->endpoints[j].addrs[0].family != family)
				continue;
			err = push_ep(b, &s->endpoints[j], port);
			if (err)
				return err;
		}
	}
	if (b->n_eps == first)
		return 0;
	/* One IP:port listed by two slices (a pod moving between slices) is one
	 * endpoint, ready if any copy says so; the first copy's node and zone stay.
	 */
	qsort(&b->eps[first], b->n_eps - first, sizeof(*b->eps), ep_addr_seq_cmp);
	for (size_t r = first; r < b->n_eps; r++) {
		if (w > first && addr_equal(&b->eps[w - 1].ep.addr, &b->eps[r].ep.addr))
			b->eps[w - 1].ep.ready |= b->eps[r].ep.ready;
		else
			b->eps[w++] = b->eps[r];
	}
	b->n_eps = w;
	pt->n = w - first;
	/* Ready ones first, so a balancer indexes them without scanning: a
	 * stable partition keeps each group by address.
	 */
	for (size_t r = first; r < w; r++)
		pt->n_ready += b->eps[r].ep.ready;
	if (pt->n_ready && pt->n_ready < pt->n) {
		struct ep_tmp *sorted = malloc(pt->n * sizeof(*sorted));
		size_t out = 0;

		if (!sorted)
			return -ENOMEM;
		for (int pass = 1; pass >= 0; pass--)
			for (size_t r = first; r < w; r++)
				if (b->eps[r].ep.ready == (pass == 1))
					sorted[out++] = b->eps[r];
		memcpy(&b->eps[first], sorted, pt->n * sizeof(*sorted));
		free(sorted);
	}
	return 0;
}

/* The index of @str in b->strs, added if new. Strings are looked for among
 * the last STR_DEDUP_WINDOW distinct ones: a service's endpoints name few
 * nodes and zones, in runs.
 */
static int str_intern(struct strs *s, const char *str, size_t *idx)
{
	size_t from = s->n > STR_DEDUP_WINDOW ? s->n - STR_DEDUP_WINDOW : 0;

	for (size_t i = s->n; i-- > from;) {
		if (!strcmp(s->v[i], str)) {
			*idx = i;
			return 0;
		}
	}
	if (array_reserve(&s->v, &s->cap, s->n, sizeof(*s->v), 8))
		return -ENOMEM;
	s->v[s->n] = str;
	s->bytes += strlen(str) + 1;
	*idx = s->n++;
	return 0;
}

static size_t align_up(size_t n, size_t a)
{
	return (n + a - 1) / a * a;
}

/* Copy Service @svc's own fields but its strings into @s. */
static void copy_service(struct cat_service *s, const struct addr *vips, size_t n_vips,
			 enum cat_vip_source vip_source)
{
	memcpy(s->vips, vips, n_vips * sizeof(*vips));
	s->n_vips = n_vips;
	s->vip_source = vip_source;
}

/* The service's own strings, interned after its endpoints' in b->strs. */
enum { SVC_STR_NS, SVC_STR_NAME, SVC_STR_ALLOW, SVC_STR_COUNT };

/* Lay the resolved ports and endpoints out after the object in one block. */
static struct cat_svc_obj *lay_out(struct svc_build *b, const struct obj *svc,
				   const struct obj_svc_port *const *tcp, size_t n_tcp,
				   const struct addr *vips, size_t n_vips,
				   enum cat_vip_source vip_source, struct cat_slots *slots)
{
	size_t n_ports = n_vips * n_tcp, *node_idx = NULL, *zone_idx = NULL;
	size_t own_idx[SVC_STR_COUNT], port_idx[OBJ_SVC_PORTS_MAX];
	const char **at = NULL;
	size_t off_pol, off_ports, off_eps, off_strs, size;
	struct cat_svc_obj *o = NULL;
	char *pool;
	int err = -ENOMEM;

	node_idx = calloc(b->n_eps ? b->n_eps : 1, sizeof(*node_idx));
	zone_idx = calloc(b->n_eps ? b->n_eps : 1, sizeof(*zone_idx));
	if (!node_idx || !zone_idx)
		goto out_free;
	for (size_t i = 0; i < b->n_eps; i++) {
		if (str_intern(&b->strs, b->eps[i].node, &node_idx[i]) ||
		    str_intern(&b->strs, b->eps[i].zone, &zone_idx[i]))
			goto out_free;
	}
	if (str_intern(&b->strs, svc->key.ns, &own_idx[SVC_STR_NS]) ||
	    str_intern(&b->strs, svc->key.name, &own_idx[SVC_STR_NAME]) ||
	    str_intern(&b->strs, svc->svc.allow_from ? svc->svc.allow_from : "",
		       &own_idx[SVC_STR_ALLOW]))
		goto out_free;
	for (size_t i = 0; i < n_tcp; i++)
		if (str_intern(&b->strs, tcp[i]->name, &port_idx[i]))
			goto out_free;
	at = calloc(b->strs.n, sizeof(*at));
	if (!at)
		goto out_free;
	/* The slots are taken before anything can fail past this point, and
	 * room is made for giving them back.
	 */
	while (slots->cap_free < slots->next + n_ports) {
		if (array_reserve(&slots->free, &slots->cap_free, slots->cap_free,
				  sizeof(*slots->free), 64))
			goto out_free;
	}
	off_pol = align_up(sizeof(*o), alignof(max_align_t));
	off_ports = align_up(off_pol + (svc->svc.policy ? sizeof(*svc->svc.policy) : 0),
			     alignof(max_align_t));
	off_eps = align_up(off_ports + n_ports * sizeof(struct cat_svc_port),
			   alignof(max_align_t));
	off_strs = off_eps + b->n_eps * sizeof(struct cat_endpoint);
	size = off_strs + b->strs.bytes;
	o = calloc(1, size);
	if (!o)
		goto out_free;
	atomic_init(&o->refs, 1);
	copy_service(&o->svc, vips, n_vips, vip_source);
	if (svc->svc.policy) {
		struct policy_override *pol = (void *)((char *)o + off_pol);

		*pol = *svc->svc.policy;
		o->svc.policy = pol;
	}
	o->svc.ports = (void *)((char *)o + off_ports);
	o->svc.n_ports = n_ports;
	pool = (char *)o + off_strs;
	for (size_t i = 0; i < b->strs.n; i++) {
		size_t len = strlen(b->strs.v[i]) + 1;

		memcpy(pool, b->strs.v[i], len);
		at[i] = pool;
		pool += len;
	}
	o->svc.ns = at[own_idx[SVC_STR_NS]];
	o->svc.name = at[own_idx[SVC_STR_NAME]];
	o->svc.allow_from = at[own_idx[SVC_STR_ALLOW]];
	for (size_t i = 0; i < b->n_eps; i++) {
		struct cat_endpoint *ep = (struct cat_endpoint *)((char *)o + off_eps) + i;

		*ep = b->eps[i].ep;
		ep->node = at[node_idx[i]];
		ep->zone = at[zone_idx[i]];
	}
	for (size_t v = 0, k = 0; v < n_vips; v++) {
		for (size_t i = 0; i < n_tcp; i++, k++) {
			struct cat_svc_port *sp = &o->svc.ports[k];
			const struct port_tmp *pt = &b->ports[k];

			sp->svc = &o->svc;
			sp->vip = vips[v];
			sp->vip.port = tcp[i]->port;
			sp->vip_allocated = vip_source != CAT_VIP_REGISTRY;
			sp->port_name = at[port_idx[i]];
			sp->endpoints = (struct cat_endpoint *)((char *)o + off_eps) + pt->first;
			sp->n_endpoints = pt->n;
			sp->n_ready = pt->n_ready;
			err = slot_take(slots, &sp->slot);
			if (err) {
				o->svc.n_ports = k;
				cat_svc_release_slots(o, slots);
				free(o);
				o = NULL;
				goto out_free;
			}
		}
	}
	err = 0;
out_free:
	free(at);
	free(zone_idx);
	free(node_idx);
	if (err)
		errno = -err;
	return o;
}

struct cat_svc_obj *cat_svc_build(const struct obj *svc, const struct obj *const *slices,
				  size_t n, const struct addr *vips, size_t n_vips,
				  enum cat_vip_source vip_source, struct cat_people *people,
				  struct cat_slots *slots)
{
	const struct obj_svc_port *tcp[OBJ_SVC_PORTS_MAX];
	struct svc_build sb = { .people = people }, *b = &sb;
	struct cat_svc_obj *o = NULL;
	size_t n_tcp = 0;
	int err = 0;

	assert(svc->svc.n_ports <= OBJ_SVC_PORTS_MAX && n_vips <= OBJ_SVC_IPS_MAX);
	/* Only TCP is proxied; other ports stay in the registry for reporting. */
	for (size_t i = 0; i < svc->svc.n_ports; i++)
		if (svc->svc.ports[i].proto == OBJ_PROTO_TCP)
			tcp[n_tcp++] = &svc->svc.ports[i];
	qsort(tcp, n_tcp, sizeof(tcp[0]), svc_port_cmp);
	b->ports = calloc(n_vips * n_tcp + 1, sizeof(*b->ports));
	if (!b->ports)
		return NULL;
	/* Room for every endpoint once per VIP and port, the most there can
	 * be: one allocation the size of the Service, where growing from 64
	 * took a 5 KB block from malloc's bins for every Service built.
	 */
	for (size_t i = 0; i < n; i++)
		b->cap_eps += slices[i]->slice.n_endpoints;
	b->cap_eps *= n_vips * n_tcp;
	b->eps = malloc((b->cap_eps ? b->cap_eps : 1) * sizeof(*b->eps));
	if (!b->eps) {
		free(b->ports);
		return NULL;
	}
	for (size_t v = 0, k = 0; v < n_vips && !err; v++)
		for (size_t i = 0; i < n_tcp && !err; i++, k++)
			err = resolve_endpoints(b, slices, n, tcp[i], vips[v].family, &b->ports[k]);
	if (!err) {
		o = lay_out(b, svc, tcp, n_tcp, vips, n_vips, vip_source, slots);
		if (o) {
			/* Only an object pointing at pods keeps their snapshot alive. */
			for (size_t i = 0; i < b->n_eps && !o->people; i++)
				if (b->eps[i].ep.pod)
					o->people = cat_people_ref(people);
		} else
			err = -errno;
	}
	free(b->strs.v);
	free(b->eps);
	free(b->ports);
	if (err)
		errno = -err;
	return o;
}
