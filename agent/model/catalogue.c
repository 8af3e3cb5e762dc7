// SPDX-License-Identifier: GPL-2.0-only
/* Catalogue snapshots: built once from the model's merged objects
 * (catalogue_build(), called by model_build() only), then read without locks
 * by the proxy workers and the enrollment code until the last reference goes.
 * Endpoints are resolved here, from Services and their EndpointSlices.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "model/catalogue_build.h"
#include "model/vip_alloc.h"
#include "log.h"

/* The catalogue copies registry strings as they are: same sizes, no truncation. */
_Static_assert(sizeof(((struct cat_service *)0)->ns) == OBJ_NS_MAX, "ns size");
_Static_assert(sizeof(((struct cat_service *)0)->name) == OBJ_NAME_MAX, "name size");
_Static_assert(sizeof(((struct cat_endpoint *)0)->node) == OBJ_NAME_MAX, "node size");
_Static_assert(sizeof(((struct cat_endpoint *)0)->zone) == OBJ_ZONE_MAX, "zone size");
_Static_assert(sizeof(((struct cat_svc_port *)0)->port_name) == OBJ_PORT_NAME_MAX, "port name");

struct cat_ns {
	char name[OBJ_NS_MAX];
	bool meshed;
	enum obj_tristate sw[OBJ_SW_COUNT];
	enum obj_mtls_mode mtls_mode;
	char allow_from[OBJ_ANNOT_VALUE_MAX];
};


/* Reference counted because two owners are unavoidable: the agent holds the
 * current snapshot while workers on other threads finish the connections that
 * started on an older one. Immutable once built.
 */
struct catalogue {
	atomic_uint refs;
	uint64_t generation;
	struct cat_ns *nss;		/* sorted by name */
	size_t n_nss;
	struct cat_pod *pods;		/* sorted by namespace, name */
	size_t n_pods;
	struct cat_service *services;	/* sorted by namespace, name */
	size_t n_services;
	struct cat_svc_port *ports;	/* sorted by namespace, name, VIP, port */
	size_t n_ports;
	uint32_t *table;		/* open addressing on addr_hash(vip) with linear
					 * probing: index + 1 in ports, 0 = free */
	size_t table_mask;		/* table size - 1 (a power of two); no table
					 * when n_ports is 0 */
	struct cat_vip_stats vip_stats;
};

/* An endpoint being resolved, with the order it was found in (slice name,
 * then position), so duplicates resolve the same way on every build.
 */
struct ep_tmp {
	struct cat_endpoint ep;
	size_t seq;
};

/* A meshed pod's IP, to give endpoints their pod's identity. */
struct pod_ip {
	struct addr ip;			/* port 0 */
	const struct cat_pod *pod;	/* NULL: two live pods claim the IP */
};

/* Scratch state of one catalogue_build(). */
struct build {
	struct catalogue *c;
	struct pod_ip *pod_ips;		/* sorted by ip, unique */
	size_t n_pod_ips;
	const struct obj **slices;	/* sorted by namespace, service, name */
	size_t n_slices;
	struct ep_tmp *eps;		/* endpoints of the service port being resolved */
	size_t n_eps, cap_eps;
};

struct catalogue *catalogue_ref(struct catalogue *c)
{
	if (c)
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

static void catalogue_free(struct catalogue *c)
{
	for (size_t i = 0; c->ports && i < c->n_ports; i++)
		free(c->ports[i].endpoints);
	for (size_t i = 0; c->services && i < c->n_services; i++)
		free((void *)c->services[i].policy);
	free(c->ports);
	free(c->services);
	free(c->pods);
	free(c->nss);
	free(c->table);
	free(c);
}

void catalogue_unref(struct catalogue *c)
{
	/* acq_rel: the last owner must see every other owner's reads done. */
	if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		catalogue_free(c);
}

struct catalogue *catalogue_new_empty(void)
{
	struct catalogue *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	atomic_init(&c->refs, 1);
	return c;
}

uint64_t catalogue_generation(const struct catalogue *c)
{
	return c->generation;
}

struct cat_svc_port *catalogue_find_vip(const struct catalogue *c, const struct addr *dst)
{
	size_t h;
	uint32_t idx;

	if (!c->table)
		return NULL;
	for (h = addr_hash(dst) & c->table_mask; (idx = c->table[h]); h = (h + 1) & c->table_mask)
		if (addr_equal(&c->ports[idx - 1].vip, dst))
			return &c->ports[idx - 1];
	return NULL;
}

static int ns_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct cat_ns *)elem)->name);
}

bool catalogue_ns_meshed(const struct catalogue *c, const char *ns)
{
	const struct cat_ns *n;

	if (!c->n_nss)
		return false;
	n = bsearch(ns, c->nss, c->n_nss, sizeof(*c->nss), ns_cmp);
	return n && n->meshed;
}

bool catalogue_pod_switch_or(const struct catalogue *c, const char *ns, const struct cat_pod *p,
			     enum obj_switch sw, bool dflt)
{
	const struct cat_ns *n;

	if (sw >= OBJ_SW_COUNT)
		return dflt;
	if (p && p->sw[sw] != OBJ_UNSET)
		return p->sw[sw] == OBJ_YES;
	if (!c->n_nss)
		return dflt;
	n = bsearch(ns, c->nss, c->n_nss, sizeof(*c->nss), ns_cmp);
	if (!n || n->sw[sw] == OBJ_UNSET)
		return dflt;
	return n->sw[sw] == OBJ_YES;
}

bool catalogue_pod_switch(const struct catalogue *c, const char *ns, const struct cat_pod *p,
			  enum obj_switch sw)
{
	return catalogue_pod_switch_or(c, ns, p, sw, false);
}

enum obj_mtls_mode catalogue_ns_mtls_mode(const struct catalogue *c, const char *ns)
{
	const struct cat_ns *n;

	if (!c->n_nss)
		return OBJ_MTLS_UNSET;
	n = bsearch(ns, c->nss, c->n_nss, sizeof(*c->nss), ns_cmp);
	return n ? n->mtls_mode : OBJ_MTLS_UNSET;
}

const char *catalogue_ns_allow_from(const struct catalogue *c, const char *ns)
{
	const struct cat_ns *n;

	if (!c->n_nss)
		return "";
	n = bsearch(ns, c->nss, c->n_nss, sizeof(*c->nss), ns_cmp);
	return n ? n->allow_from : "";
}

bool catalogue_pod_meshed(const struct catalogue *c, const struct cat_pod *p)
{
	return !p->opted_out && !p->host_network && !p->terminating &&
	       p->phase != OBJ_POD_SUCCEEDED && p->phase != OBJ_POD_FAILED &&
	       catalogue_ns_meshed(c, p->ns);
}

struct pod_ref {
	const char *ns;
	const char *name;
};

static int pod_cmp(const void *key, const void *elem)
{
	const struct pod_ref *k = key;
	const struct cat_pod *p = elem;
	int c = strcmp(k->ns, p->ns);

	return c ? c : strcmp(k->name, p->name);
}

const struct cat_pod *catalogue_find_pod(const struct catalogue *c, const char *ns,
					 const char *name)
{
	struct pod_ref k = { ns, name };

	if (!c->n_pods)
		return NULL;
	return bsearch(&k, c->pods, c->n_pods, sizeof(*c->pods), pod_cmp);
}

size_t catalogue_n_pods(const struct catalogue *c)
{
	return c->n_pods;
}

const struct cat_pod *catalogue_pod_at(const struct catalogue *c, size_t i)
{
	return i < c->n_pods ? &c->pods[i] : NULL;
}

bool catalogue_pod_opted_out(const struct catalogue *c, const char *ns, const char *name)
{
	const struct cat_pod *p = catalogue_find_pod(c, ns, name);

	return p && p->opted_out;
}

size_t catalogue_n_namespaces(const struct catalogue *c)
{
	return c->n_nss;
}

const char *catalogue_ns_at(const struct catalogue *c, size_t i, bool *meshed)
{
	if (i >= c->n_nss)
		return NULL;
	*meshed = c->nss[i].meshed;
	return c->nss[i].name;
}

static int svc_cmp(const void *key, const void *elem)
{
	const struct pod_ref *k = key;
	const struct cat_service *s = elem;
	int c = strcmp(k->ns, s->ns);

	return c ? c : strcmp(k->name, s->name);
}

const struct cat_service *catalogue_find_service(const struct catalogue *c, const char *ns,
						 const char *name)
{
	struct pod_ref k = { ns, name };

	if (!c->n_services)
		return NULL;
	return bsearch(&k, c->services, c->n_services, sizeof(*c->services), svc_cmp);
}

const struct cat_service *catalogue_service_at(const struct catalogue *c, size_t i)
{
	return i < c->n_services ? &c->services[i] : NULL;
}

struct cat_vip_stats catalogue_vip_stats(const struct catalogue *c)
{
	return c->vip_stats;
}

size_t catalogue_n_services(const struct catalogue *c)
{
	return c->n_services;
}

size_t catalogue_n_svc_ports(const struct catalogue *c)
{
	return c->n_ports;
}

struct cat_svc_port *catalogue_svc_port_at(const struct catalogue *c, size_t i)
{
	return i < c->n_ports ? &c->ports[i] : NULL;
}

size_t catalogue_svc_port_index(const struct catalogue *c, const struct cat_svc_port *sp)
{
	if (!c->n_ports || sp < c->ports || sp >= c->ports + c->n_ports)
		return c->n_ports;
	return (size_t)(sp - c->ports);
}

/* ---------------------------------------------------------------- building */

static int slice_cmp(const void *a, const void *b)
{
	const struct obj *x = *(const struct obj *const *)a;
	const struct obj *y = *(const struct obj *const *)b;
	int c = strcmp(x->key.ns, y->key.ns);

	if (!c)
		c = strcmp(x->slice.service, y->slice.service);
	return c ? c : strcmp(x->key.name, y->key.name);
}

static int ep_addr_seq_cmp(const void *a, const void *b)
{
	const struct ep_tmp *x = a, *y = b;
	int c = addr_cmp(&x->ep.addr, &y->ep.addr);

	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static int vip_cmp(const void *a, const void *b)
{
	return addr_cmp(a, b);
}

static int svc_port_cmp(const void *a, const void *b)
{
	const struct obj_svc_port *x = *(const struct obj_svc_port *const *)a;
	const struct obj_svc_port *y = *(const struct obj_svc_port *const *)b;

	return (x->port > y->port) - (x->port < y->port);
}

/* Index of the first slice of Service @ns/@name in b->slices. */
static size_t slices_lower_bound(const struct build *b, const char *ns, const char *name)
{
	size_t lo = 0, hi = b->n_slices;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct obj *s = b->slices[mid];
		int c = strcmp(s->key.ns, ns);

		if (!c)
			c = strcmp(s->slice.service, name);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int pod_ip_cmp(const void *a, const void *b)
{
	return addr_cmp(&((const struct pod_ip *)a)->ip, &((const struct pod_ip *)b)->ip);
}

/* The meshed pods' IPs of b->c, sorted, for pod_by_ip(). Two live pods
 * claiming one IP (a registry mid-update) leave it without identity: a
 * client's agent must not expect either one's certificate.
 */
static int index_pod_ips(struct build *b)
{
	const struct catalogue *c = b->c;
	size_t n = 0, w = 0;

	for (size_t i = 0; i < c->n_pods; i++)
		n += c->pods[i].n_ips;
	if (!n)
		return 0;
	b->pod_ips = calloc(n, sizeof(*b->pod_ips));
	if (!b->pod_ips)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_pods; i++) {
		if (!catalogue_pod_meshed(c, &c->pods[i]))
			continue;
		for (size_t j = 0; j < c->pods[i].n_ips; j++)
			b->pod_ips[b->n_pod_ips++] = (struct pod_ip){ c->pods[i].ips[j], &c->pods[i] };
	}
	if (!b->n_pod_ips)
		return 0;
	qsort(b->pod_ips, b->n_pod_ips, sizeof(*b->pod_ips), pod_ip_cmp);
	for (size_t r = 0; r < b->n_pod_ips; r++) {
		if (w && addr_equal(&b->pod_ips[w - 1].ip, &b->pod_ips[r].ip)) {
			log_debug("catalogue: %s/%s and %s/%s share an IP: no identity for it",
				  b->pod_ips[r].pod->ns, b->pod_ips[r].pod->name,
				  b->pod_ips[w - 1].pod ? b->pod_ips[w - 1].pod->ns : "?",
				  b->pod_ips[w - 1].pod ? b->pod_ips[w - 1].pod->name : "?");
			b->pod_ips[w - 1].pod = NULL;
			continue;
		}
		b->pod_ips[w++] = b->pod_ips[r];
	}
	b->n_pod_ips = w;
	return 0;
}

/* The meshed pod whose IP is @ip (any port), or NULL. */
static const struct cat_pod *pod_by_ip(const struct build *b, const struct addr *ip)
{
	struct pod_ip k = { .ip = *ip };
	const struct pod_ip *hit;

	k.ip.port = 0;
	if (!b->n_pod_ips)
		return NULL;
	hit = bsearch(&k, b->pod_ips, b->n_pod_ips, sizeof(*b->pod_ips), pod_ip_cmp);
	return hit ? hit->pod : NULL;
}

static int push_ep(struct build *b, const struct obj_endpoint *e, uint16_t port)
{
	struct ep_tmp *t;

	if (array_reserve(&b->eps, &b->cap_eps, b->n_eps, sizeof(*b->eps), 64))
		return -ENOMEM;
	t = &b->eps[b->n_eps];
	*t = (struct ep_tmp){ .seq = b->n_eps };
	/* The API calls an endpoint's addresses fungible and lets consumers use
	 * only the first (the EndpointSlice controller writes exactly one);
	 * listing the others would give one pod several shares of the traffic.
	 */
	t->ep.addr = e->addrs[0];
	t->ep.addr.port = port;
	t->ep.ready = e->ready;
	memcpy(t->ep.node, e->node, sizeof(t->ep.node));
	memcpy(t->ep.zone, e->zone, sizeof(t->ep.zone));
	t->ep.pod = pod_by_ip(b, &e->addrs[0]);
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

/* Resolve the endpoints of service port @p of Service @svc into @sp. */
static int resolve_endpoints(struct build *b, const struct obj *svc,
			     const struct obj_svc_port *p, struct cat_svc_port *sp)
{
	size_t w = 0, out = 0;
	int err;

	b->n_eps = 0;
	for (size_t i = slices_lower_bound(b, svc->key.ns, svc->key.name); i < b->n_slices; i++) {
		const struct obj *s = b->slices[i];
		uint16_t port;

		if (strcmp(s->key.ns, svc->key.ns) || strcmp(s->slice.service, svc->key.name))
			break;
		port = slice_target_port(&s->slice, p);
		if (!port)
			continue;
		for (size_t j = 0; j < s->slice.n_endpoints; j++) {
			/* A VIP is served by endpoints of its own family, as kube-proxy
			 * does: an IPv4 client of a dual-stack service has no route to
			 * the IPv6 pods, and the IPv6 VIP has its own slices.
			 */
			if (s->slice.endpoints[j].addrs[0].family != sp->vip.family)
				continue;
			err = push_ep(b, &s->slice.endpoints[j], port);
			if (err)
				return err;
		}
	}
	if (!b->n_eps)
		return 0;
	/* One IP:port listed by two slices (a pod moving between slices) is one
	 * endpoint, ready if any copy says so; the first copy's node and zone stay.
	 */
	qsort(b->eps, b->n_eps, sizeof(*b->eps), ep_addr_seq_cmp);
	for (size_t r = 0; r < b->n_eps; r++) {
		if (w && addr_equal(&b->eps[w - 1].ep.addr, &b->eps[r].ep.addr))
			b->eps[w - 1].ep.ready |= b->eps[r].ep.ready;
		else
			b->eps[w++] = b->eps[r];
	}
	sp->endpoints = calloc(w, sizeof(*sp->endpoints));
	if (!sp->endpoints)
		return -ENOMEM;
	/* Ready ones first, so a balancer indexes them without scanning. */
	for (int pass = 1; pass >= 0; pass--)
		for (size_t r = 0; r < w; r++)
			if (b->eps[r].ep.ready == (pass == 1))
				sp->endpoints[out++] = b->eps[r].ep;
	sp->n_endpoints = w;
	for (size_t r = 0; r < w; r++)
		sp->n_ready += sp->endpoints[r].ready;
	return 0;
}

static size_t n_tcp_ports(const struct obj *o)
{
	size_t n = 0;

	for (size_t j = 0; j < o->svc.n_ports; j++)
		n += o->svc.ports[j].proto == OBJ_PROTO_TCP;
	return n;
}

/* Append the service ports of Service @o (already copied to @svc, VIPs
 * included): one per VIP and TCP port, VIPs then ports in ascending order.
 */
static int add_service_ports(struct build *b, const struct obj *o, struct cat_service *svc)
{
	const struct obj_svc_port *tcp[OBJ_SVC_PORTS_MAX];
	size_t n_tcp = 0;
	int err;

	assert(o->svc.n_ports <= OBJ_SVC_PORTS_MAX && svc->n_vips <= OBJ_SVC_IPS_MAX);
	/* Only TCP is proxied; other ports stay in the registry for reporting. */
	for (size_t i = 0; i < o->svc.n_ports; i++)
		if (o->svc.ports[i].proto == OBJ_PROTO_TCP)
			tcp[n_tcp++] = &o->svc.ports[i];
	qsort(tcp, n_tcp, sizeof(tcp[0]), svc_port_cmp);
	svc->first_port = b->c->n_ports;
	for (size_t v = 0; v < svc->n_vips; v++) {
		for (size_t i = 0; i < n_tcp; i++) {
			struct cat_svc_port *sp = &b->c->ports[b->c->n_ports++];

			sp->svc = svc;
			sp->vip = svc->vips[v];
			sp->vip.port = tcp[i]->port;
			sp->vip_allocated = svc->vip_source != CAT_VIP_REGISTRY;
			memcpy(sp->port_name, tcp[i]->name, sizeof(sp->port_name));
			err = resolve_endpoints(b, o, tcp[i], sp);
			if (err)
				return err;
		}
	}
	svc->n_ports = b->c->n_ports - svc->first_port;
	return 0;
}

static int build_table(struct catalogue *c)
{
	size_t size = 16;
	char buf[ADDR_STRLEN];

	if (!c->n_ports)
		return 0;
	while (size < 2 * c->n_ports)	/* load factor <= 1/2 keeps probes short */
		size *= 2;
	c->table = calloc(size, sizeof(*c->table));
	if (!c->table)
		return -ENOMEM;
	c->table_mask = size - 1;
	for (size_t i = 0; i < c->n_ports; i++) {
		const struct addr *vip = &c->ports[i].vip;
		size_t h = addr_hash(vip) & c->table_mask;
		uint32_t taken = 0;

		for (; c->table[h] && !taken; h = (h + 1) & c->table_mask)
			if (addr_equal(&c->ports[c->table[h] - 1].vip, vip))
				taken = c->table[h];
		if (taken) {
			const struct cat_service *first = c->ports[taken - 1].svc;

			/* Two Services claim one VIP:port: the first in listing order
			 * keeps it; the other stays listed but is not reachable.
			 */
			log_debug("catalogue: %s/%s: VIP %s already taken by %s/%s, ignoring",
				  c->ports[i].svc->ns, c->ports[i].svc->name,
				  addr_fmt(vip, buf, sizeof(buf)), first->ns, first->name);
			continue;
		}
		c->table[h] = (uint32_t)(i + 1);
	}
	return 0;
}

static int copy_service(const struct obj *o, struct cat_service *svc)
{
	memcpy(svc->ns, o->key.ns, sizeof(svc->ns));
	memcpy(svc->name, o->key.name, sizeof(svc->name));
	memcpy(svc->vips, o->svc.vips, sizeof(svc->vips));
	svc->n_vips = o->svc.n_vips;
	qsort(svc->vips, svc->n_vips, sizeof(svc->vips[0]), vip_cmp);
	memcpy(svc->allow_from, o->svc.allow_from, sizeof(svc->allow_from));
	if (o->svc.policy) {
		struct policy_override *p = malloc(sizeof(*p));

		if (!p)
			return -ENOMEM;
		*p = *o->svc.policy;
		svc->policy = p;
	}
	return 0;
}

/* Allocate the arrays of @c for the object counts in @count (the service
 * ports come later, once every service has its VIPs).
 */
static int alloc_arrays(struct catalogue *c, struct build *b, const size_t *count)
{
	if (count[OBJ_NAMESPACE] && !(c->nss = calloc(count[OBJ_NAMESPACE], sizeof(*c->nss))))
		return -ENOMEM;
	if (count[OBJ_POD] && !(c->pods = calloc(count[OBJ_POD], sizeof(*c->pods))))
		return -ENOMEM;
	if (count[OBJ_SERVICE] &&
	    !(c->services = calloc(count[OBJ_SERVICE], sizeof(*c->services))))
		return -ENOMEM;
	if (count[OBJ_ENDPOINTSLICE] &&
	    !(b->slices = calloc(count[OBJ_ENDPOINTSLICE], sizeof(*b->slices))))
		return -ENOMEM;
	return 0;
}

static void copy_object(struct build *b, const struct obj *o)
{
	struct catalogue *c = b->c;

	switch (o->key.kind) {
	case OBJ_NAMESPACE:
		memcpy(c->nss[c->n_nss].name, o->key.name, sizeof(c->nss[0].name));
		memcpy(c->nss[c->n_nss].sw, o->nspace.sw, sizeof(o->nspace.sw));
		c->nss[c->n_nss].mtls_mode = o->nspace.mtls_mode;
		memcpy(c->nss[c->n_nss].allow_from, o->nspace.allow_from,
		       sizeof(c->nss[0].allow_from));
		c->nss[c->n_nss++].meshed = o->nspace.meshed;
		break;
	case OBJ_POD:
		memcpy(c->pods[c->n_pods].ns, o->key.ns, sizeof(c->pods[0].ns));
		memcpy(c->pods[c->n_pods].name, o->key.name, sizeof(c->pods[0].name));
		memcpy(c->pods[c->n_pods].uid, o->uid, sizeof(c->pods[0].uid));
		memcpy(c->pods[c->n_pods].node, o->pod.node, sizeof(c->pods[0].node));
		memcpy(c->pods[c->n_pods].service_account, o->pod.service_account,
		       sizeof(c->pods[0].service_account));
		memcpy(c->pods[c->n_pods].ips, o->pod.ips, sizeof(o->pod.ips));
		c->pods[c->n_pods].n_ips = o->pod.n_ips;
		c->pods[c->n_pods].host_network = o->pod.host_network;
		c->pods[c->n_pods].phase = o->pod.phase;
		c->pods[c->n_pods].terminating = o->pod.terminating;
		c->pods[c->n_pods].opted_out = o->pod.opted_out;
		memcpy(c->pods[c->n_pods].sw, o->pod.sw, sizeof(o->pod.sw));
		memcpy(c->pods[c->n_pods].excl_ports, o->pod.excl_ports, sizeof(o->pod.excl_ports));
		c->pods[c->n_pods].n_excl_ports = o->pod.n_excl_ports;
		memcpy(c->pods[c->n_pods].excl_in_ports, o->pod.excl_in_ports,
		       sizeof(o->pod.excl_in_ports));
		c->pods[c->n_pods].n_excl_in_ports = o->pod.n_excl_in_ports;
		memcpy(c->pods[c->n_pods].excl_cidrs, o->pod.excl_cidrs, sizeof(o->pod.excl_cidrs));
		c->pods[c->n_pods].n_excl_cidrs = o->pod.n_excl_cidrs;
		memcpy(c->pods[c->n_pods].registers, o->pod.registers, sizeof(o->pod.registers));
		c->pods[c->n_pods++].n_registers = o->pod.n_registers;
		break;
	case OBJ_ENDPOINTSLICE:
		b->slices[b->n_slices++] = o;
		break;
	case OBJ_SERVICE:
		break;		/* copy_service() may fail: done by the caller */
	}
}

/* Bit 0: the Service @o has an IPv4 EndpointSlice, bit 1: an IPv6 one. */
static unsigned int slice_families(const struct build *b, const struct obj *o)
{
	unsigned int fams = 0;

	for (size_t i = slices_lower_bound(b, o->key.ns, o->key.name); i < b->n_slices; i++) {
		const struct obj *s = b->slices[i];

		if (strcmp(s->key.ns, o->key.ns) || strcmp(s->slice.service, o->key.name))
			break;
		fams |= s->slice.family == AF_INET6 ? 2u : 1u;
	}
	return fams;
}

static bool wants_vip(const struct obj *o)
{
	return o->key.kind == OBJ_SERVICE && !o->svc.n_vips && !o->svc.headless;
}

/* Record what @r's allocation gave its Service @svc. */
static void take_vip(struct cat_service *svc, const struct vip_req *r)
{
	static const enum cat_vip_source from[] = {
		[VIP_NONE] = CAT_VIP_REGISTRY,
		[VIP_HOME] = CAT_VIP_ALLOCATED,
		[VIP_PROBED] = CAT_VIP_PROBED,
		[VIP_EXHAUSTED] = CAT_VIP_EXHAUSTED,
	};

	if (from[r->outcome] > svc->vip_source)
		svc->vip_source = from[r->outcome];
	if (r->outcome == VIP_HOME || r->outcome == VIP_PROBED)
		svc->vips[svc->n_vips++] = r->out;
}

/* Give the Services that want a VIP one per family from @ranges (the
 * services are in name order, as vip_alloc() needs). Every VIP a registry
 * assigned is taken, so an allocated one never shadows it.
 */
static int allocate_vips(struct build *b, const struct obj *const *objs, size_t n,
			 const struct cidr *ranges, size_t n_ranges)
{
	struct catalogue *c = b->c;
	struct addr *taken = NULL;
	struct vip_req *reqs = NULL;
	size_t *who = NULL, n_taken = 0;
	unsigned int *fams = NULL;
	int err = 0;

	if (!n_ranges || !c->n_services)
		return 0;
	taken = calloc(c->n_services * OBJ_SVC_IPS_MAX, sizeof(*taken));
	reqs = calloc(c->n_services, sizeof(*reqs));
	who = calloc(c->n_services, sizeof(*who));
	fams = calloc(c->n_services, sizeof(*fams));
	if (!taken || !reqs || !who || !fams) {
		err = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0, s = 0; i < n; i++) {
		if (objs[i]->key.kind != OBJ_SERVICE)
			continue;
		for (size_t v = 0; v < objs[i]->svc.n_vips; v++)
			taken[n_taken++] = objs[i]->svc.vips[v];
		if (wants_vip(objs[i])) {
			fams[s] = slice_families(b, objs[i]);
			if (!fams[s])
				fams[s] = ranges[0].net.family == AF_INET6 ? 2u : 1u;
		}
		s++;
	}
	for (size_t r = 0; r < n_ranges && !err; r++) {
		unsigned int bit = ranges[r].net.family == AF_INET6 ? 2u : 1u;
		size_t n_reqs = 0;

		for (size_t s = 0; s < c->n_services; s++) {
			if (!(fams[s] & bit))
				continue;
			reqs[n_reqs] = (struct vip_req){ .ns = c->services[s].ns,
							 .name = c->services[s].name };
			who[n_reqs++] = s;
		}
		err = vip_alloc(&ranges[r], taken, n_taken, reqs, n_reqs);
		for (size_t i = 0; i < n_reqs && !err; i++)
			take_vip(&c->services[who[i]], &reqs[i]);
	}
	for (size_t s = 0; s < c->n_services && !err; s++) {
		struct cat_service *svc = &c->services[s];

		qsort(svc->vips, svc->n_vips, sizeof(svc->vips[0]), vip_cmp);
		c->vip_stats.allocated += svc->vip_source == CAT_VIP_ALLOCATED ||
					  svc->vip_source == CAT_VIP_PROBED;
		c->vip_stats.collisions += svc->vip_source == CAT_VIP_PROBED;
		c->vip_stats.exhausted += svc->vip_source == CAT_VIP_EXHAUSTED;
	}
out_free:
	free(fams);
	free(who);
	free(reqs);
	free(taken);
	return err;
}

struct catalogue *catalogue_build(const struct obj *const *objs, size_t n, uint64_t generation,
				  const struct cidr *vip_ranges, size_t n_ranges)
{
	size_t count[OBJ_KIND_COUNT] = { 0 }, n_ports = 0;
	struct build b = { 0 };
	struct catalogue *c;
	int err;

	c = catalogue_new_empty();
	if (!c)
		return NULL;
	c->generation = generation;
	b.c = c;
	for (size_t i = 0; i < n; i++)
		count[objs[i]->key.kind]++;
	err = alloc_arrays(c, &b, count);
	if (err)
		goto out_free;
	/* @objs is sorted by key, so each kind comes out sorted by ns/name. */
	for (size_t i = 0; i < n; i++) {
		copy_object(&b, objs[i]);
		if (objs[i]->key.kind == OBJ_SERVICE) {
			err = copy_service(objs[i], &c->services[c->n_services++]);
			if (err)
				goto out_free;
		}
	}
	if (b.n_slices)
		qsort(b.slices, b.n_slices, sizeof(*b.slices), slice_cmp);
	err = allocate_vips(&b, objs, n, vip_ranges, n_ranges);
	if (err)
		goto out_free;
	for (size_t i = 0, s = 0; i < n; i++)
		if (objs[i]->key.kind == OBJ_SERVICE)
			n_ports += c->services[s++].n_vips * n_tcp_ports(objs[i]);
	if (n_ports >= UINT32_MAX) {
		err = -E2BIG;
		goto out_free;
	}
	if (n_ports && !(c->ports = calloc(n_ports, sizeof(*c->ports)))) {
		err = -ENOMEM;
		goto out_free;
	}
	err = index_pod_ips(&b);
	for (size_t i = 0, s = 0; i < n && !err; i++)
		if (objs[i]->key.kind == OBJ_SERVICE)
			err = add_service_ports(&b, objs[i], &c->services[s++]);
	if (!err)
		err = build_table(c);
out_free:
	free(b.eps);
	free(b.slices);
	free(b.pod_ips);
	if (err) {
		catalogue_free(c);
		errno = -err;
		return NULL;
	}
	return c;
}
