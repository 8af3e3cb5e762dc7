// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/proxy/state.h. A bind walks the old and the new
 * snapshot's Services side by side (both sorted by namespace, name) and
 * visits only those that are not the same object in both: their old ports'
 * states leave their slots, their new ports take the old port's state of
 * the same VIP:port if it had one (states are created on first use, by
 * state_svc_get()) and their endpoints are joined with the endpoint states
 * by address.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "model/catalogue.h"
#include "proxy/state.h"

void state_init(struct state *st)
{
	*st = (struct state){ 0 };
}

static void svc_free(struct svc_state *s)
{
	while (s->all) {
		struct ep_state *e = s->all;

		s->all = e->next;
		free(e);
	}
	free(s->eps);
	free(s->by_pod);
	free(s);
}

void state_done(struct state *st)
{
	while (st->svcs) {
		struct svc_state *s = st->svcs;

		st->svcs = s->next;
		svc_free(s);
	}
	free(st->by_slot);
	free(st->touched);
	*st = (struct state){ 0 };
}

static void svc_unlink(struct state *st, struct svc_state *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		st->svcs = s->next;
	if (s->next)
		s->next->prev = s->prev;
}

void svc_ref(struct svc_state *s)
{
	s->refs++;
}

void svc_unref(struct state *st, struct svc_state *s)
{
	/* A touched state is freed by state_gc_touched(), which holds it. */
	if (--s->refs || s->live || s->touched)
		return;
	svc_unlink(st, s);
	svc_free(s);
}

void ep_ref(struct ep_state *e)
{
	e->refs++;
}

void ep_unref(struct state *st, struct ep_state *e)
{
	struct svc_state *s = e->svc;

	if (--e->refs || e->live)
		return;
	for (struct ep_state **p = &s->all; *p; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			break;
		}
	}
	free(e);
	svc_unref(st, s);
}

void state_gc_touched(struct state *st)
{
	for (size_t i = 0; i < st->n_touched; i++) {
		struct svc_state *s = st->touched[i];
		struct ep_state **ep = &s->all;

		s->touched = false;
		while (*ep) {
			struct ep_state *e = *ep;

			if (e->live || e->refs) {
				ep = &e->next;
				continue;
			}
			*ep = e->next;
			free(e);
			s->refs--;
		}
		if (s->live || s->refs)
			continue;
		svc_unlink(st, s);
		svc_free(s);
	}
	st->n_touched = 0;
}

struct svc_state *state_svc(const struct state *st, const struct catalogue *c,
			    const struct cat_svc_port *sp)
{
	(void)c;
	return sp->slot < st->n_slots ? st->by_slot[sp->slot] : NULL;
}

static struct svc_pod *by_pod_find(const struct svc_state *s, const struct px_pod *pod)
{
	for (uint32_t i = 0; i < s->n_by_pod; i++)
		if (s->by_pod[i].pod == pod)
			return &s->by_pod[i];
	return NULL;
}

int svc_pod_add(struct svc_state *s, struct px_pod *pod)
{
	struct svc_pod *sp = by_pod_find(s, pod);

	if (sp) {
		sp->conns++;
		return 0;
	}
	if (s->n_by_pod == s->cap_by_pod) {
		uint32_t cap = s->cap_by_pod ? 2 * s->cap_by_pod : 4;
		struct svc_pod *n = realloc(s->by_pod, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->by_pod = n;
		s->cap_by_pod = cap;
	}
	s->by_pod[s->n_by_pod++] = (struct svc_pod){ .pod = pod, .conns = 1 };
	return 0;
}

void svc_pod_del(struct svc_state *s, const struct px_pod *pod)
{
	struct svc_pod *sp = by_pod_find(s, pod);

	if (!sp || --sp->conns)
		return;
	*sp = s->by_pod[--s->n_by_pod];
}

uint32_t svc_pod_conns(const struct svc_state *s, const struct px_pod *pod)
{
	const struct svc_pod *sp = by_pod_find(s, pod);

	return sp ? sp->conns : 0;
}

uint32_t svc_pod_share(const struct svc_state *s, const struct px_pod *pod)
{
	uint32_t n = s->n_by_pod + (by_pod_find(s, pod) ? 0 : 1);
	uint32_t share = s->pol.max_connections / n;

	return share ? share : 1;
}

struct px_pod *svc_pod_hog(const struct svc_state *s)
{
	const struct svc_pod *hog = NULL;

	for (uint32_t i = 0; i < s->n_by_pod; i++)
		if (!hog || s->by_pod[i].conns > hog->conns)
			hog = &s->by_pod[i];
	return hog ? hog->pod : NULL;
}

size_t svc_n_ejected(const struct svc_state *s, uint64_t now_ms)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_ready; i++)
		n += outlier_is_ejected(&s->eps[i]->ol, now_ms);
	return n;
}

/* ---------------------------------------------------------------- binding */

static int ep_sort_cmp(const void *a, const void *b)
{
	return addr_cmp(&(*(const struct ep_state *const *)a)->addr,
			  &(*(const struct ep_state *const *)b)->addr);
}

static int ep_find_cmp(const void *key, const void *elem)
{
	return addr_cmp(key, &(*(const struct ep_state *const *)elem)->addr);
}

/* A zeroed state named after @sp, or NULL. */
static struct svc_state *svc_alloc(const struct cat_svc_port *sp)
{
	struct svc_state *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	/* The catalogue's strings fit: it copies the registry's, as bounded. */
	snprintf(s->ns, sizeof(s->ns), "%s", sp->svc->ns);
	snprintf(s->name, sizeof(s->name), "%s", sp->svc->name);
	snprintf(s->port_name, sizeof(s->port_name), "%s", sp->port_name);
	s->vip = sp->vip;
	return s;
}

static struct svc_state *svc_new(struct state *st, const struct cat_svc_port *sp)
{
	struct svc_state *s = svc_alloc(sp);

	if (!s)
		return NULL;
	s->next = st->svcs;
	if (s->next)
		s->next->prev = s;
	st->svcs = s;
	return s;
}

/* The endpoint states of @sp under @s, found or created, in @sp's order. */
static struct ep_state **bind_endpoints(struct svc_state *s, const struct cat_svc_port *sp)
{
	struct ep_state **old = NULL, **eps;
	size_t n_old = 0, k = 0;

	eps = calloc(sp->n_endpoints ? sp->n_endpoints : 1, sizeof(*eps));
	if (!eps)
		return NULL;
	for (struct ep_state *e = s->all; e; e = e->next)
		n_old++;
	if (n_old) {
		old = calloc(n_old, sizeof(*old));
		if (!old)
			goto out_free;
		for (struct ep_state *e = s->all; e; e = e->next)
			old[k++] = e;
		qsort(old, n_old, sizeof(*old), ep_sort_cmp);
	}
	for (size_t i = 0; i < sp->n_endpoints; i++) {
		const struct addr *a = &sp->endpoints[i].addr;
		struct ep_state **found = n_old ? bsearch(a, old, n_old, sizeof(*old), ep_find_cmp)
						: NULL;

		if (found) {
			eps[i] = *found;
			continue;
		}
		eps[i] = calloc(1, sizeof(**eps));
		if (!eps[i])
			goto out_free;
		eps[i]->svc = s;
		eps[i]->addr = *a;
		eps[i]->next = s->all;
		s->all = eps[i];
		svc_ref(s);
	}
	free(old);
	return eps;
out_free:
	/* States created here stay in s->all, not live: state_gc() frees them. */
	free(old);
	free(eps);
	return NULL;
}

/* What @e's pod (if a meshed one) must present over mTLS. The trust domain
 * is the mTLS table's, compared apart.
 */
static void peer_identity(struct ep_state *e, const struct cat_endpoint *ce)
{
	e->meshed = ce->pod != NULL;
	if (!e->meshed)
		return;
	snprintf(e->peer.ns, sizeof(e->peer.ns), "%s", ce->pod->ns);
	snprintf(e->peer.sa, sizeof(e->peer.sa), "%s", ce->pod->service_account);
}

/* Room for @extra more touched states. */
static int reserve_touched(struct state *st, size_t extra)
{
	size_t cap = st->cap_touched ? st->cap_touched : 64;
	struct svc_state **n;

	while (cap < st->n_touched + extra)
		cap *= 2;
	if (cap == st->cap_touched)
		return 0;
	n = realloc(st->touched, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	st->touched = n;
	st->cap_touched = cap;
	return 0;
}

static int touch(struct state *st, struct svc_state *s)
{
	int err;

	if (s->touched)
		return 0;
	err = reserve_touched(st, 1);
	if (err)
		return err;
	st->touched[st->n_touched++] = s;
	s->touched = true;
	return 0;
}

/* A Service of the new snapshot to bind: its ports' states and endpoint
 * arrays, prepared before anything is committed.
 */
struct bind_svc {
	const struct cat_service *svc, *prev;	/* prev: its version in the old snapshot */
	struct svc_state **states;		/* svc->n_ports */
	struct ep_state ***eps;			/* svc->n_ports */
};

/* What differs between two snapshots: Services gone (or replaced) and
 * Services come (or replacing).
 */
struct bind_diff {
	const struct cat_service **gone;
	size_t n_gone, cap_gone;
	struct bind_svc *come;		/* replaced Services, with their old version */
	size_t n_come, cap_come;
	/* Services new by name: no state to carry, their slots free in the
	 * table (held by no port of the old snapshot, or by one that left and
	 * is unbound first). Only counted: a sync brings thousands at once.
	 */
	size_t n_new;
};

static int add_gone(struct bind_diff *d, const struct cat_service *a)
{
	if (array_reserve(&d->gone, &d->cap_gone, d->n_gone, sizeof(*d->gone), 16))
		return -ENOMEM;
	d->gone[d->n_gone++] = a;
	return 0;
}

static int add_come(struct bind_diff *d, const struct cat_service *b,
		    const struct cat_service *prev)
{
	if (array_reserve(&d->come, &d->cap_come, d->n_come, sizeof(*d->come), 16))
		return -ENOMEM;
	d->come[d->n_come++] = (struct bind_svc){ .svc = b, .prev = prev };
	return 0;
}

static int svc_name_cmp(const struct cat_service *a, const struct cat_service *b)
{
	int c = strcmp(a->ns, b->ns);

	return c ? c : strcmp(a->name, b->name);
}

/* Walk both snapshots' Services in order; same object = untouched. Only
 * what differs is recorded: a publish of one change costs the walk.
 */
static int diff_services(const struct catalogue *old, const struct catalogue *c,
			 struct bind_diff *d)
{
	size_t n_old = old ? catalogue_n_services(old) : 0, n_new = catalogue_n_services(c);
	size_t i = 0, j = 0;
	int err = 0;

	while ((i < n_old || j < n_new) && !err) {
		const struct cat_service *a = i < n_old ? catalogue_service_at(old, i) : NULL;
		const struct cat_service *b = j < n_new ? catalogue_service_at(c, j) : NULL;
		int cmp = !a ? 1 : !b ? -1 : a == b ? 0 : svc_name_cmp(a, b);

		if (a && a == b) {
			i++;
			j++;
		} else if (cmp < 0) {
			err = add_gone(d, a);
			i++;
		} else if (cmp > 0) {
			d->n_new++;
			j++;
		} else {
			err = add_gone(d, a);
			if (!err)
				err = add_come(d, b, a);
			i++;
			j++;
		}
	}
	return err;
}

static void diff_free(struct bind_diff *d)
{
	for (size_t i = 0; i < d->n_come; i++) {
		for (size_t k = 0; d->come[i].eps && k < d->come[i].svc->n_ports; k++)
			free(d->come[i].eps[k]);
		free(d->come[i].eps);
		free(d->come[i].states);
	}
	free(d->come);
	free(d->gone);
}

/* The state bound to @prev's port of VIP:port @vip, if any. */
static struct svc_state *prev_state(const struct state *st, const struct cat_service *prev,
				    const struct addr *vip)
{
	for (size_t k = 0; prev && k < prev->n_ports; k++)
		if (addr_equal(&prev->ports[k].vip, vip))
			return prev->ports[k].slot < st->n_slots ? st->by_slot[prev->ports[k].slot]
								 : NULL;
	return NULL;
}

/* Find or create the states of @b's ports and their endpoints. */
static int prepare(struct state *st, struct bind_svc *b)
{
	size_t n = b->svc->n_ports;
	bool any = false;

	/* Most Services of a big catalogue never saw a connection: their
	 * bind must cost no allocation (a sync brings thousands at once).
	 */
	for (size_t k = 0; k < n && !any; k++)
		any = prev_state(st, b->prev, &b->svc->ports[k].vip);
	if (!any)
		return 0;
	b->states = calloc(n ? n : 1, sizeof(*b->states));
	b->eps = calloc(n ? n : 1, sizeof(*b->eps));
	if (!b->states || !b->eps)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++) {
		const struct cat_svc_port *sp = &b->svc->ports[k];
		struct svc_state *s = prev_state(st, b->prev, &sp->vip);

		/* Created on first use only (state_svc_get()): a port no
		 * connection has reached yet costs the bind nothing.
		 */
		if (!s)
			continue;
		if (touch(st, s))
			return -ENOMEM;
		b->states[k] = s;
		b->eps[k] = bind_endpoints(s, sp);
		if (!b->eps[k])
			return -ENOMEM;
	}
	return 0;
}

static void unbind_port(struct state *st, const struct cat_svc_port *sp)
{
	struct svc_state *s = sp->slot < st->n_slots ? st->by_slot[sp->slot] : NULL;

	if (!s)
		return;
	st->by_slot[sp->slot] = NULL;
	s->live = false;
	for (struct ep_state *e = s->all; e; e = e->next)
		e->live = false;
}

static void commit_port(struct state *st, const struct cat_svc_port *sp, struct svc_state *s,
			struct ep_state **eps, const struct policy *pol)
{
	st->by_slot[sp->slot] = s;
	s->pol = *pol;
	s->live = true;
	free(s->eps);
	s->eps = eps;
	s->n_eps = sp->n_endpoints;
	s->n_ready = sp->n_ready;
	snprintf(s->port_name, sizeof(s->port_name), "%s", sp->port_name);
	s->vip_allocated = sp->vip_allocated;
	for (size_t j = 0; j < s->n_eps; j++) {
		s->eps[j]->live = true;
		s->eps[j]->ready = sp->endpoints[j].ready;
		peer_identity(s->eps[j], &sp->endpoints[j]);
		s->eps[j]->weight = policy_weight_of(&s->pol, &s->eps[j]->addr);
	}
}

int state_bind(struct state *st, const struct catalogue *old, const struct catalogue *c,
	       const struct policy *defaults)
{
	size_t n = catalogue_n_svc_ports(c), n_slots = catalogue_n_slots(c);
	struct bind_diff d = { 0 };
	int err;

	if (n_slots > st->n_slots) {
		struct svc_state **grown = realloc(st->by_slot, n_slots * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		memset(grown + st->n_slots, 0, (n_slots - st->n_slots) * sizeof(*grown));
		st->by_slot = grown;
		st->n_slots = n_slots;
	}
	err = diff_services(old, c, &d);
	for (size_t i = 0; i < d.n_come && !err; i++)
		err = prepare(st, &d.come[i]);
	for (size_t i = 0; i < d.n_gone && !err; i++)
		err = reserve_touched(st, d.gone[i]->n_ports);
	if (err)
		goto out;
	/* Commit: nothing can fail from here on. Every port that left gives
	 * its slot up before any new one takes it: a slot moves between
	 * Services from one snapshot to the next.
	 */
	for (size_t i = 0; i < d.n_gone; i++) {
		for (size_t k = 0; k < d.gone[i]->n_ports; k++) {
			const struct cat_svc_port *sp = &d.gone[i]->ports[k];
			struct svc_state *s = sp->slot < st->n_slots ? st->by_slot[sp->slot] : NULL;

			if (s)
				(void)touch(st, s);	/* room reserved above */
			unbind_port(st, sp);
		}
	}
	for (size_t i = 0; i < d.n_come; i++) {
		const struct cat_service *svc = d.come[i].svc;
		struct policy pol;

		if (!d.come[i].states) {	/* no state: nothing to carry */
			for (size_t k = 0; k < svc->n_ports; k++)
				st->by_slot[svc->ports[k].slot] = NULL;
			continue;
		}
		/* A Service's override applies to all its ports alike. */
		policy_apply(&pol, defaults, svc->policy);
		for (size_t k = 0; k < svc->n_ports; k++) {
			if (!d.come[i].states[k]) {
				st->by_slot[svc->ports[k].slot] = NULL;
				continue;
			}
			commit_port(st, &svc->ports[k], d.come[i].states[k], d.come[i].eps[k], &pol);
			d.come[i].eps[k] = NULL;
		}
	}
	/* A service port that left keeps its clients but offers no endpoint:
	 * its endpoint states may go before its last connection does.
	 */
	for (size_t i = 0; i < st->n_touched; i++) {
		struct svc_state *s = st->touched[i];

		if (s->live)
			continue;
		free(s->eps);
		s->eps = NULL;
		s->n_eps = s->n_ready = 0;
	}
	/* The admin API finds a port's state by index through its slot
	 * (state_svc_at()): no array over every port to rebuild here.
	 */
	st->n_ports = n;
out:
	diff_free(&d);
	return err;
}

struct svc_state *state_svc_at(const struct state *st, const struct catalogue *c, size_t i)
{
	const struct cat_svc_port *sp = i < st->n_ports ? catalogue_svc_port_at(c, i) : NULL;

	return sp && sp->slot < st->n_slots ? st->by_slot[sp->slot] : NULL;
}

struct svc_state *state_svc_get(struct state *st, const struct catalogue *c,
				const struct cat_svc_port *sp, const struct policy *defaults)
{
	struct svc_state *s = state_svc(st, c, sp);
	struct ep_state **eps;
	struct policy pol;
	size_t at;

	if (s)
		return s;
	at = catalogue_svc_port_index(c, sp);
	if (sp->slot >= st->n_slots || at >= st->n_ports)
		return NULL;	/* not a port of the bound snapshot */
	s = svc_new(st, sp);
	if (!s)
		return NULL;
	eps = bind_endpoints(s, sp);
	if (!eps) {
		svc_unlink(st, s);
		svc_free(s);
		return NULL;
	}
	policy_apply(&pol, defaults, sp->svc->policy);
	commit_port(st, sp, s, eps, &pol);
	return s;
}

struct svc_state *state_blank(const struct cat_svc_port *sp, const struct policy *defaults)
{
	struct svc_state *s = svc_alloc(sp);

	if (!s)
		return NULL;
	s->vip_allocated = sp->vip_allocated;
	s->live = true;
	policy_apply(&s->pol, defaults, sp->svc->policy);
	s->eps = calloc(sp->n_endpoints ? sp->n_endpoints : 1, sizeof(*s->eps));
	if (!s->eps)
		goto fail;
	s->n_ready = sp->n_ready;
	for (; s->n_eps < sp->n_endpoints; s->n_eps++) {
		struct ep_state *e = calloc(1, sizeof(*e));
		const struct cat_endpoint *ce = &sp->endpoints[s->n_eps];

		if (!e)
			goto fail;
		e->svc = s;
		e->addr = ce->addr;
		e->live = true;
		e->ready = ce->ready;
		peer_identity(e, ce);
		e->weight = policy_weight_of(&s->pol, &e->addr);
		s->eps[s->n_eps] = e;
	}
	return s;
fail:
	state_blank_free(s);
	return NULL;
}

void state_blank_free(struct svc_state *s)
{
	if (!s)
		return;
	for (size_t j = 0; s->eps && j < s->n_eps; j++)
		free(s->eps[j]);
	free(s->eps);
	free(s);
}
