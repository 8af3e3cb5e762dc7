// SPDX-License-Identifier: GPL-2.0-only
/* Catalogue snapshots: their lifetime, their read API, the namespaces and
 * pods part (cat_people) and the assembly of a snapshot from built Services
 * (catalogue_build.h). Read without locks by the proxy workers and the
 * enrollment code until the last reference goes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/catalogue_build.h"
#include "log.h"

/* The catalogue copies registry strings as they are: no truncation. */
_Static_assert(CAT_NAME_MAX == OBJ_NAME_MAX, "name size");

struct catalogue *catalogue_ref(struct catalogue *c)
{
	if (c)
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

static void catalogue_free(struct catalogue *c)
{
	for (size_t i = 0; c->svcs && i < c->n_services; i++)
		cat_svc_unref(c->svcs[i]);
	free(c->svcs);
	free(c->port_base);
	free(c->table);
	cat_people_unref(c->people);
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
	struct cat_people *p = cat_people_build(NULL, 0);
	struct catalogue *c;

	if (!p)
		return NULL;
	c = catalogue_assemble(0, p, NULL, 0, (struct cat_vip_stats){ 0 }, NULL);
	cat_people_unref(p);
	return c;
}

uint64_t catalogue_generation(const struct catalogue *c)
{
	return c->generation;
}

uint64_t catalogue_changes(const struct catalogue *c)
{
	return c->changes;
}

struct cat_svc_port *catalogue_find_vip(const struct catalogue *c, const struct addr *dst)
{
	struct cat_svc_port *sp;
	size_t h;

	if (!c->table)
		return NULL;
	for (h = addr_hash(dst) & c->table_mask; (sp = c->table[h]); h = (h + 1) & c->table_mask)
		if (addr_equal(&sp->vip, dst))
			return sp;
	return NULL;
}

static int ns_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct cat_ns *)elem)->name);
}

static bool people_ns_meshed(const struct cat_people *p, const char *ns)
{
	const struct cat_ns *n;

	if (!p->n_nss)
		return false;
	n = bsearch(ns, p->nss, p->n_nss, sizeof(*p->nss), ns_cmp);
	return n && n->meshed;
}

bool catalogue_ns_meshed(const struct catalogue *c, const char *ns)
{
	return people_ns_meshed(c->people, ns);
}

bool catalogue_pod_switch_or(const struct catalogue *c, const char *ns, const struct cat_pod *p,
			     enum obj_switch sw, bool dflt)
{
	const struct cat_ns *n;

	if (sw >= OBJ_SW_COUNT)
		return dflt;
	if (p && p->sw[sw] != OBJ_UNSET)
		return p->sw[sw] == OBJ_YES;
	if (!c->people->n_nss)
		return dflt;
	n = bsearch(ns, c->people->nss, c->people->n_nss, sizeof(*c->people->nss), ns_cmp);
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

	if (!c->people->n_nss)
		return OBJ_MTLS_UNSET;
	n = bsearch(ns, c->people->nss, c->people->n_nss, sizeof(*c->people->nss), ns_cmp);
	return n ? n->mtls_mode : OBJ_MTLS_UNSET;
}

const char *catalogue_ns_allow_from(const struct catalogue *c, const char *ns)
{
	const struct cat_ns *n;

	if (!c->people->n_nss)
		return "";
	n = bsearch(ns, c->people->nss, c->people->n_nss, sizeof(*c->people->nss), ns_cmp);
	return n ? n->allow_from : "";
}

static bool people_pod_meshed(const struct cat_people *people, const struct cat_pod *p)
{
	return !p->opted_out && !p->host_network && !p->terminating &&
	       p->phase != OBJ_POD_SUCCEEDED && p->phase != OBJ_POD_FAILED &&
	       people_ns_meshed(people, p->ns);
}

bool catalogue_pod_meshed(const struct catalogue *c, const struct cat_pod *p)
{
	return people_pod_meshed(c->people, p);
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

	if (!c->people->n_pods)
		return NULL;
	return bsearch(&k, c->people->pods, c->people->n_pods, sizeof(*c->people->pods), pod_cmp);
}

size_t catalogue_n_pods(const struct catalogue *c)
{
	return c->people->n_pods;
}

const struct cat_pod *catalogue_pod_at(const struct catalogue *c, size_t i)
{
	return i < c->people->n_pods ? &c->people->pods[i] : NULL;
}

bool catalogue_pod_opted_out(const struct catalogue *c, const char *ns, const char *name)
{
	const struct cat_pod *p = catalogue_find_pod(c, ns, name);

	return p && p->opted_out;
}

size_t catalogue_n_namespaces(const struct catalogue *c)
{
	return c->people->n_nss;
}

const char *catalogue_ns_at(const struct catalogue *c, size_t i, bool *meshed)
{
	if (i >= c->people->n_nss)
		return NULL;
	*meshed = c->people->nss[i].meshed;
	return c->people->nss[i].name;
}

static int svc_cmp(const void *key, const void *elem)
{
	const struct pod_ref *k = key;
	const struct cat_service *s = &(*(struct cat_svc_obj *const *)elem)->svc;
	int c = strcmp(k->ns, s->ns);

	return c ? c : strcmp(k->name, s->name);
}

static struct cat_svc_obj *const *find_service(const struct catalogue *c, const char *ns,
					       const char *name)
{
	struct pod_ref k = { ns, name };

	if (!c->n_services)
		return NULL;
	return bsearch(&k, c->svcs, c->n_services, sizeof(*c->svcs), svc_cmp);
}

const struct cat_service *catalogue_find_service(const struct catalogue *c, const char *ns,
						 const char *name)
{
	struct cat_svc_obj *const *o = find_service(c, ns, name);

	return o ? &(*o)->svc : NULL;
}

const struct cat_service *catalogue_service_at(const struct catalogue *c, size_t i)
{
	return i < c->n_services ? &c->svcs[i]->svc : NULL;
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

uint32_t catalogue_n_slots(const struct catalogue *c)
{
	return c->n_slots;
}

struct cat_svc_port *catalogue_svc_port_at(const struct catalogue *c, size_t i)
{
	size_t lo = 0, hi = c->n_services;

	if (i >= c->n_ports)
		return NULL;
	/* The last service whose first port is <= i. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->port_base[mid] <= i)
			lo = mid;
		else
			hi = mid;
	}
	return &c->svcs[lo]->svc.ports[i - c->port_base[lo]];
}

size_t catalogue_svc_port_index(const struct catalogue *c, const struct cat_svc_port *sp)
{
	const struct cat_service *s = sp->svc;
	struct cat_svc_obj *const *o = find_service(c, s->ns, s->name);

	if (!o || &(*o)->svc != s || sp < s->ports || sp >= s->ports + s->n_ports)
		return c->n_ports;
	return c->port_base[o - c->svcs] + (size_t)(sp - s->ports);
}

/* ---------------------------------------------------------------- parts */

struct cat_svc_obj *cat_svc_ref(struct cat_svc_obj *o)
{
	atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
	return o;
}

void cat_svc_unref(struct cat_svc_obj *o)
{
	if (!o || atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) != 1)
		return;
	cat_people_unref(o->people);
	free(o);
}

struct cat_people *cat_people_ref(struct cat_people *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

void cat_people_unref(struct cat_people *p)
{
	if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(p->pod_ips);
	free(p->pods);
	free(p->nss);
	free(p);
}

static void copy_ns(struct cat_ns *n, const struct obj *o)
{
	memcpy(n->name, o->key.name, sizeof(n->name));
	memcpy(n->sw, o->nspace.sw, sizeof(o->nspace.sw));
	n->mtls_mode = o->nspace.mtls_mode;
	memcpy(n->allow_from, o->nspace.allow_from, sizeof(n->allow_from));
	n->meshed = o->nspace.meshed;
}

static void copy_pod(struct cat_pod *p, const struct obj *o)
{
	memcpy(p->ns, o->key.ns, sizeof(p->ns));
	memcpy(p->name, o->key.name, sizeof(p->name));
	memcpy(p->uid, o->pod.uid, sizeof(p->uid));
	memcpy(p->node, o->pod.node, sizeof(p->node));
	memcpy(p->service_account, o->pod.service_account, sizeof(p->service_account));
	memcpy(p->ips, o->pod.ips, sizeof(o->pod.ips));
	p->n_ips = o->pod.n_ips;
	p->host_network = o->pod.host_network;
	p->phase = o->pod.phase;
	p->terminating = o->pod.terminating;
	p->opted_out = o->pod.opted_out;
	memcpy(p->sw, o->pod.sw, sizeof(o->pod.sw));
	memcpy(p->excl_ports, o->pod.excl_ports, sizeof(o->pod.excl_ports));
	p->n_excl_ports = o->pod.n_excl_ports;
	memcpy(p->excl_in_ports, o->pod.excl_in_ports, sizeof(o->pod.excl_in_ports));
	p->n_excl_in_ports = o->pod.n_excl_in_ports;
	memcpy(p->excl_cidrs, o->pod.excl_cidrs, sizeof(o->pod.excl_cidrs));
	p->n_excl_cidrs = o->pod.n_excl_cidrs;
	memcpy(p->registers, o->pod.registers, sizeof(o->pod.registers));
	p->n_registers = o->pod.n_registers;
}

static int pod_ip_cmp(const void *a, const void *b)
{
	return addr_cmp(&((const struct pod_ip *)a)->ip, &((const struct pod_ip *)b)->ip);
}

/* The meshed pods' IPs, sorted. Two live pods claiming one IP (a registry
 * mid-update) leave it without identity: a client's agent must not expect
 * either one's certificate.
 */
static int index_pod_ips(struct cat_people *p)
{
	size_t n = 0, w = 0;

	for (size_t i = 0; i < p->n_pods; i++)
		n += p->pods[i].n_ips;
	if (!n)
		return 0;
	p->pod_ips = calloc(n, sizeof(*p->pod_ips));
	if (!p->pod_ips)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_pods; i++) {
		if (!people_pod_meshed(p, &p->pods[i]))
			continue;
		for (size_t j = 0; j < p->pods[i].n_ips; j++)
			p->pod_ips[p->n_pod_ips++] = (struct pod_ip){ p->pods[i].ips[j], &p->pods[i] };
	}
	if (!p->n_pod_ips)
		return 0;
	qsort(p->pod_ips, p->n_pod_ips, sizeof(*p->pod_ips), pod_ip_cmp);
	for (size_t r = 0; r < p->n_pod_ips; r++) {
		if (w && addr_equal(&p->pod_ips[w - 1].ip, &p->pod_ips[r].ip)) {
			log_debug("catalogue: %s/%s and %s/%s share an IP: no identity for it",
				  p->pod_ips[r].pod->ns, p->pod_ips[r].pod->name,
				  p->pod_ips[w - 1].pod ? p->pod_ips[w - 1].pod->ns : "?",
				  p->pod_ips[w - 1].pod ? p->pod_ips[w - 1].pod->name : "?");
			p->pod_ips[w - 1].pod = NULL;
			continue;
		}
		p->pod_ips[w++] = p->pod_ips[r];
	}
	p->n_pod_ips = w;
	return 0;
}

struct cat_people *cat_people_build(const struct obj *const *objs, size_t n)
{
	struct cat_people *p = calloc(1, sizeof(*p));
	size_t n_ns = 0, n_pods = 0;
	int err = -ENOMEM;

	if (!p)
		return NULL;
	atomic_init(&p->refs, 1);
	for (size_t i = 0; i < n; i++) {
		n_ns += objs[i]->key.kind == OBJ_NAMESPACE;
		n_pods += objs[i]->key.kind == OBJ_POD;
	}
	if (n_ns && !(p->nss = calloc(n_ns, sizeof(*p->nss))))
		goto out_free;
	if (n_pods && !(p->pods = calloc(n_pods, sizeof(*p->pods))))
		goto out_free;
	/* @objs is sorted by key, so each kind comes out sorted by ns/name. */
	for (size_t i = 0; i < n; i++) {
		if (objs[i]->key.kind == OBJ_NAMESPACE)
			copy_ns(&p->nss[p->n_nss++], objs[i]);
		else if (objs[i]->key.kind == OBJ_POD)
			copy_pod(&p->pods[p->n_pods++], objs[i]);
	}
	err = index_pod_ips(p);
	if (!err)
		return p;
out_free:
	cat_people_unref(p);
	errno = -err;
	return NULL;
}

/* ---------------------------------------------------------------- assembly */

/* The table size for @n_ports: load factor <= 1/2 keeps probes short. */
static size_t table_size(size_t n_ports)
{
	size_t size = 16;

	while (size < 2 * n_ports)
		size *= 2;
	return size;
}

/* Index every service port of @c by VIP. Two Services claiming one VIP:port:
 * the first in listing order keeps it; the other stays listed but is not
 * reachable (counted in c->n_dup_vips).
 */
static int build_table(struct catalogue *c)
{
	size_t size = table_size(c->n_ports);
	char buf[ADDR_STRLEN];

	if (!c->n_ports)
		return 0;
	c->table = calloc(size, sizeof(*c->table));
	if (!c->table)
		return -ENOMEM;
	c->table_mask = size - 1;
	for (size_t i = 0; i < c->n_services; i++) {
		struct cat_service *s = &c->svcs[i]->svc;

		for (size_t j = 0; j < s->n_ports; j++) {
			struct cat_svc_port *sp = &s->ports[j], *taken = NULL;
			size_t h = addr_hash(&sp->vip) & c->table_mask;

			if (sp->slot >= c->n_slots)
				c->n_slots = sp->slot + 1;
			for (; c->table[h] && !taken; h = (h + 1) & c->table_mask)
				if (addr_equal(&c->table[h]->vip, &sp->vip))
					taken = c->table[h];
			if (taken) {
				log_debug("catalogue: %s/%s: VIP %s already taken by %s/%s, ignoring",
					  s->ns, s->name, addr_fmt(&sp->vip, buf, sizeof(buf)),
					  taken->svc->ns, taken->svc->name);
				c->n_dup_vips++;
				continue;
			}
			c->table[h] = sp;
		}
	}
	return 0;
}

/* Remove @sp from @c's table if it is there (backward-shift deletion: the
 * entries after it that probed past its place move up, so lookups never
 * stop early).
 */
static void table_remove(struct catalogue *c, const struct cat_svc_port *sp)
{
	size_t i = addr_hash(&sp->vip) & c->table_mask, j, k;

	for (; c->table[i] && c->table[i] != sp; i = (i + 1) & c->table_mask)
		;
	if (!c->table[i])
		return;
	c->table[i] = NULL;
	for (j = (i + 1) & c->table_mask; c->table[j]; j = (j + 1) & c->table_mask) {
		k = addr_hash(&c->table[j]->vip) & c->table_mask;
		/* Stays if its home lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		c->table[i] = c->table[j];
		c->table[j] = NULL;
		i = j;
	}
}

/* Insert @sp into @c's table; false when its VIP:port is taken (the
 * caller then builds the table from scratch, which settles who has it).
 */
static bool table_insert(struct catalogue *c, struct cat_svc_port *sp)
{
	size_t h = addr_hash(&sp->vip) & c->table_mask;

	for (; c->table[h]; h = (h + 1) & c->table_mask)
		if (addr_equal(&c->table[h]->vip, &sp->vip))
			return false;
	c->table[h] = sp;
	return true;
}

static int svc_obj_name_cmp(const struct cat_svc_obj *a, const struct cat_svc_obj *b)
{
	int c = strcmp(a->svc.ns, b->svc.ns);

	return c ? c : strcmp(a->svc.name, b->svc.name);
}

/* Fill c->port_base and c->n_ports, and the table from @prev's when it
 * can be patched: a publish of one change then costs the walk over two
 * pointer arrays and the touched Services, not a visit to every Service
 * and every port (which the profile showed as cache misses: the largest
 * cost of a change at 10,000 Services). Returns 0, 1 when the table must be
 * built from scratch (no @prev, its size changes, a VIP:port is claimed
 * twice), or -ENOMEM.
 */
static int assemble_from(struct catalogue *c, const struct catalogue *prev)
{
	size_t i = 0, j = 0, ports = 0, n_old = prev ? prev->n_services : 0;
	bool patch = prev && prev->table && !prev->n_dup_vips;
	int err = 0;

	/* Port offsets: an unchanged Service's port count is @prev's. */
	while (j < c->n_services) {
		struct cat_svc_obj *b = c->svcs[j];
		int cmp = i >= n_old ? 1 : prev->svcs[i] == b ? 0 : svc_obj_name_cmp(prev->svcs[i], b);

		if (cmp < 0) {
			i++;
			continue;
		}
		c->port_base[j] = (uint32_t)ports;
		if (cmp == 0 && prev->svcs[i] == b)
			ports += prev->port_base[i + 1] - prev->port_base[i];
		else
			ports += b->svc.n_ports;
		if (ports >= UINT32_MAX)
			return -E2BIG;
		if (cmp == 0)
			i++;
		j++;
	}
	c->port_base[c->n_services] = (uint32_t)ports;
	c->n_ports = ports;
	if (!patch || !ports || table_size(ports) != prev->table_mask + 1)
		return 1;
	c->table = malloc((prev->table_mask + 1) * sizeof(*c->table));
	if (!c->table)
		return -ENOMEM;
	memcpy(c->table, prev->table, (prev->table_mask + 1) * sizeof(*c->table));
	c->table_mask = prev->table_mask;
	c->n_slots = prev->n_slots;
	/* Out with every port of a Service that left or changed, then in with
	 * the new ones, so a VIP moving between Services is never seen twice.
	 */
	for (int pass = 0; pass < 2 && !err; pass++) {
		for (i = 0, j = 0; (i < n_old || j < c->n_services) && !err;) {
			struct cat_svc_obj *a = i < n_old ? prev->svcs[i] : NULL;
			struct cat_svc_obj *b = j < c->n_services ? c->svcs[j] : NULL;
			int cmp = !a ? 1 : !b ? -1 : a == b ? 0 : svc_obj_name_cmp(a, b);

			if (a && a == b) {
				i++;
				j++;
				continue;
			}
			if (cmp <= 0 && pass == 0)
				for (size_t k = 0; k < a->svc.n_ports; k++)
					table_remove(c, &a->svc.ports[k]);
			if (cmp >= 0 && pass == 1) {
				for (size_t k = 0; k < b->svc.n_ports && !err; k++) {
					struct cat_svc_port *sp = &b->svc.ports[k];

					if (sp->slot >= c->n_slots)
						c->n_slots = sp->slot + 1;
					if (!table_insert(c, sp))
						err = 1;
				}
			}
			i += cmp <= 0;
			j += cmp >= 0;
		}
	}
	if (err) {
		free(c->table);
		c->table = NULL;
		c->n_slots = 0;
	}
	return err;
}

struct catalogue *catalogue_assemble(uint64_t generation, struct cat_people *people,
				     struct cat_svc_obj *const *svcs, size_t n,
				     struct cat_vip_stats vip_stats, const struct catalogue *prev)
{
	struct catalogue *c = calloc(1, sizeof(*c));
	int err = -ENOMEM;

	if (!c)
		return NULL;
	atomic_init(&c->refs, 1);
	c->generation = generation;
	c->vip_stats = vip_stats;
	c->people = cat_people_ref(people);
	c->port_base = malloc((n + 1) * sizeof(*c->port_base));
	if (!c->port_base || (n && !(c->svcs = malloc(n * sizeof(*c->svcs)))))
		goto out_free;
	for (size_t i = 0; i < n; i++)
		c->svcs[c->n_services++] = cat_svc_ref(svcs[i]);
	err = assemble_from(c, prev);
	if (err == 1)
		err = build_table(c);
	if (!err)
		return c;
out_free:
	catalogue_free(c);
	errno = -err;
	return NULL;
}
