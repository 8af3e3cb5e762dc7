// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/proxy/balancer.h. Two passes over the ready
 * endpoints, no scratch memory: the first sums the candidates' weights, the
 * second walks to the chosen slot. O(endpoints) per pick.
 */
#include "proxy/balancer.h"
#include "proxy/retry.h"

struct pick {
	struct svc_state *s;
	uint64_t now;
	struct ep_state *const *tried;
	size_t n_tried;
	bool with_ejected;	/* panic: ejected endpoints are candidates */
	bool with_tried;	/* every candidate was tried: allow them again */
};

static bool was_tried(const struct pick *p, const struct ep_state *e)
{
	for (size_t i = 0; i < p->n_tried; i++)
		if (p->tried[i] == e)
			return true;
	return false;
}

static bool candidate(const struct pick *p, const struct ep_state *e)
{
	if (!p->with_ejected && outlier_is_ejected(&e->ol, p->now))
		return false;
	return p->with_tried || !was_tried(p, e);
}

static uint64_t total_weight(const struct pick *p, size_t *count)
{
	uint64_t w = 0;

	*count = 0;
	for (size_t i = 0; i < p->s->n_ready; i++) {
		if (candidate(p, p->s->eps[i])) {
			w += p->s->eps[i]->weight;
			(*count)++;
		}
	}
	return w;
}

/* The candidate owning weight slot @slot (< total weight). */
static struct ep_state *at_slot(const struct pick *p, uint64_t slot)
{
	struct ep_state *last = NULL;

	for (size_t i = 0; i < p->s->n_ready; i++) {
		struct ep_state *e = p->s->eps[i];

		if (!candidate(p, e))
			continue;
		if (slot < e->weight)
			return e;
		slot -= e->weight;
		last = e;
	}
	return last;
}

/* Lower outstanding per weight wins: a->active / a->weight < b->active / b->weight. */
static bool less_loaded(const struct ep_state *a, const struct ep_state *b)
{
	return (uint64_t)a->active * b->weight < (uint64_t)b->active * a->weight;
}

struct ep_state *balancer_pick(struct svc_state *s, uint64_t now_ms, struct ep_state *const *tried,
			       size_t n_tried, uint64_t *rng, bool *panic)
{
	struct pick p = { .s = s, .now = now_ms, .tried = tried, .n_tried = n_tried };
	struct ep_state *a, *b;
	uint64_t w;
	size_t count;

	*panic = false;
	if (!s->n_ready)
		return NULL;
	if (svc_n_ejected(s, now_ms) == s->n_ready) {
		*panic = true;
		p.with_ejected = true;
	}
	w = total_weight(&p, &count);
	if (!w) {
		p.with_tried = true;
		w = total_weight(&p, &count);
		if (!w)
			return NULL;	/* unreachable: weights are >= 1 */
	}
	switch (s->pol.lb) {
	case LB_ROUND_ROBIN:
		return at_slot(&p, s->rr++ % w);
	case LB_RANDOM:
		return at_slot(&p, px_rand(rng) % w);
	case LB_LEAST_REQUEST:
		break;
	}
	/* The first choice walks the weighted round-robin order, the second is
	 * random: under load the less loaded of the two wins (the power of two
	 * choices); when loads tie, as at low concurrency, the round-robin one
	 * does, so light traffic spreads exactly evenly rather than by chance.
	 */
	a = at_slot(&p, s->rr++ % w);
	if (count < 2)
		return a;
	/* A few redraws make a duplicate rare even when one endpoint holds most
	 * of the weight.
	 */
	b = a;
	for (int i = 0; i < 4 && b == a; i++)
		b = at_slot(&p, px_rand(rng) % w);
	return less_loaded(b, a) ? b : a;
}
