// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/proxy/state.h. A bind joins the snapshot's service
 * ports (sorted by namespace, name, VIP) with the existing states sorted the
 * same way, and each port's endpoints with its states by address: O(n log n)
 * per snapshot, nothing on the connection path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	free(st->by_port);
	*st = (struct state){ 0 };
}

void svc_ref(struct svc_state *s)
{
	s->refs++;
}

void svc_unref(struct state *st, struct svc_state *s)
{
	if (--s->refs || s->live)
		return;
	for (struct svc_state **p = &st->svcs; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
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

void state_gc(struct state *st)
{
	struct svc_state **sp = &st->svcs;

	while (*sp) {
		struct svc_state *s = *sp;
		struct ep_state **ep = &s->all;

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
		if (s->live || s->refs) {
			sp = &s->next;
			continue;
		}
		*sp = s->next;
		svc_free(s);
	}
}

struct svc_state *state_svc(const struct state *st, const struct catalogue *c,
			    const struct cat_svc_port *sp)
{
	size_t i = catalogue_svc_port_index(c, sp);

	return i < st->n_ports ? st->by_port[i] : NULL;
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

struct svc_key {
	const char *ns, *name;
	const struct addr *vip;
};

static int svc_key_cmp(const struct svc_key *k, const struct svc_state *s)
{
	int c = strcmp(k->ns, s->ns);

	if (!c)
		c = strcmp(k->name, s->name);
	return c ? c : addr_cmp(k->vip, &s->vip);
}

static int svc_sort_cmp(const void *a, const void *b)
{
	const struct svc_state *x = *(const struct svc_state *const *)a;
	const struct svc_state *y = *(const struct svc_state *const *)b;
	struct svc_key k = { x->ns, x->name, &x->vip };

	return svc_key_cmp(&k, y);
}

static int svc_find_cmp(const void *key, const void *elem)
{
	return svc_key_cmp(key, *(const struct svc_state *const *)elem);
}

static int ep_sort_cmp(const void *a, const void *b)
{
	return addr_cmp(&(*(const struct ep_state *const *)a)->addr,
			  &(*(const struct ep_state *const *)b)->addr);
}

static int ep_find_cmp(const void *key, const void *elem)
{
	return addr_cmp(key, &(*(const struct ep_state *const *)elem)->addr);
}

/* Every element of a list as a sorted array; NULL (and *n = 0) when empty.
 * -ENOMEM is reported through *err.
 */
static struct svc_state **sorted_svcs(struct svc_state *list, size_t *n, int *err)
{
	struct svc_state **arr;
	size_t k = 0;

	*n = 0;
	for (struct svc_state *s = list; s; s = s->next)
		(*n)++;
	if (!*n)
		return NULL;
	arr = calloc(*n, sizeof(*arr));
	if (!arr) {
		*err = -ENOMEM;
		return NULL;
	}
	for (struct svc_state *s = list; s; s = s->next)
		arr[k++] = s;
	qsort(arr, *n, sizeof(*arr), svc_sort_cmp);
	return arr;
}

static struct svc_state *svc_new(struct state *st, const struct cat_svc_port *sp)
{
	struct svc_state *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	memcpy(s->ns, sp->svc->ns, sizeof(s->ns));
	memcpy(s->name, sp->svc->name, sizeof(s->name));
	memcpy(s->port_name, sp->port_name, sizeof(s->port_name));
	s->vip = sp->vip;
	s->next = st->svcs;
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

int state_bind(struct state *st, const struct catalogue *c, const struct policy *defaults)
{
	size_t n = catalogue_n_svc_ports(c), n_old = 0;
	struct svc_state **by_port = NULL, **old;
	struct ep_state ***eps = NULL;
	const struct cat_service *prev = NULL;
	int err = 0;

	old = sorted_svcs(st->svcs, &n_old, &err);
	if (err)
		return err;
	if (n) {
		by_port = calloc(n, sizeof(*by_port));
		eps = calloc(n, sizeof(*eps));
		if (!by_port || !eps) {
			err = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct cat_svc_port *sp = catalogue_svc_port_at(c, i);
		struct svc_key k = { sp->svc->ns, sp->svc->name, &sp->vip };
		struct svc_state **found =
			n_old ? bsearch(&k, old, n_old, sizeof(*old), svc_find_cmp) : NULL;

		by_port[i] = found ? *found : svc_new(st, sp);
		if (!by_port[i] || !(eps[i] = bind_endpoints(by_port[i], sp))) {
			err = -ENOMEM;
			goto out;
		}
	}
	/* Commit: nothing can fail from here on. */
	for (struct svc_state *s = st->svcs; s; s = s->next) {
		s->live = false;
		for (struct ep_state *e = s->all; e; e = e->next)
			e->live = false;
	}
	for (size_t i = 0; i < n; i++) {
		const struct cat_svc_port *sp = catalogue_svc_port_at(c, i);
		struct svc_state *s = by_port[i];

		/* A Service's override applies to all its ports alike. */
		if (sp->svc != prev)
			policy_apply(&s->pol, defaults, sp->svc->policy);
		else
			s->pol = by_port[i - 1]->pol;
		prev = sp->svc;
		s->live = true;
		free(s->eps);
		s->eps = eps[i];
		eps[i] = NULL;
		s->n_eps = sp->n_endpoints;
		s->n_ready = sp->n_ready;
		memcpy(s->port_name, sp->port_name, sizeof(s->port_name));
		s->vip_allocated = sp->vip_allocated;
		for (size_t j = 0; j < s->n_eps; j++) {
			s->eps[j]->live = true;
			s->eps[j]->ready = sp->endpoints[j].ready;
			peer_identity(s->eps[j], &sp->endpoints[j]);
			s->eps[j]->weight = policy_weight_of(&s->pol, &s->eps[j]->addr);
		}
	}
	/* A service port that left keeps its clients but offers no endpoint:
	 * its endpoint states may go before its last connection does.
	 */
	for (struct svc_state *s = st->svcs; s; s = s->next) {
		if (s->live)
			continue;
		free(s->eps);
		s->eps = NULL;
		s->n_eps = s->n_ready = 0;
	}
	free(st->by_port);
	st->by_port = by_port;
	st->n_ports = n;
	by_port = NULL;
out:
	for (size_t i = 0; eps && i < n; i++)
		free(eps[i]);
	free(eps);
	free(by_port);
	free(old);
	return err;
}
