// SPDX-License-Identifier: GPL-2.0-only
/* agent/proxy/balancer.c: least outstanding with two choices, weighted round
 * robin and random, ejected endpoints skipped, panic mode, retries avoiding
 * tried endpoints; and agent/proxy/state.c keeping endpoint state across
 * catalogue snapshots.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "model/catalogue.h"
#include "model/model.h"
#include "proxy/balancer.h"
#include "proxy/state.h"
#include "registry/decode.h"
#include "registry/yaml.h"
#include "model_put.h"

#define NOW 100000

struct fixture {
	struct svc_state s;
	struct ep_state ep[8];
	struct ep_state *eps[8];
};

/* @n endpoints 198.18.0.1.., the first @ready ready, weight 1, policy @lb. */
static void make(struct fixture *f, size_t n, size_t ready, enum lb_algo lb)
{
	memset(f, 0, sizeof(*f));
	policy_builtin(&f->s.pol);
	f->s.pol.lb = lb;
	for (size_t i = 0; i < n; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "198.18.0.%zu", i + 1);
		cr_assert_eq(addr_parse_ip(ip, &f->ep[i].addr), 0);
		f->ep[i].addr.port = 8080;
		f->ep[i].weight = 1;
		f->ep[i].ready = i < ready;
		f->ep[i].svc = &f->s;
		f->eps[i] = &f->ep[i];
	}
	f->s.eps = f->eps;
	f->s.n_eps = n;
	f->s.n_ready = ready;
}

static size_t pick(struct fixture *f, uint64_t *rng, bool *panic)
{
	struct ep_state *e = balancer_pick(&f->s, NOW, NULL, 0, rng, panic);

	cr_assert_not_null(e);
	return (size_t)(e - f->ep);
}

static void eject(struct ep_state *e)
{
	e->ol.ejected = true;
	e->ol.until_ms = NOW + 1000;
}

Test(balancer, round_robin_is_fair_and_ordered)
{
	struct fixture f;
	uint64_t rng = 1;
	bool panic;

	make(&f, 3, 3, LB_ROUND_ROBIN);
	for (size_t i = 0; i < 300; i++)
		cr_assert_eq(pick(&f, &rng, &panic), i % 3);
	cr_assert_not(panic);
}

Test(balancer, round_robin_honours_weights)
{
	struct fixture f;
	size_t count[2] = { 0 };
	uint64_t rng = 1;
	bool panic;

	make(&f, 2, 2, LB_ROUND_ROBIN);
	f.ep[0].weight = 3;
	for (size_t i = 0; i < 400; i++)
		count[pick(&f, &rng, &panic)]++;
	cr_assert_eq(count[0], 300);
	cr_assert_eq(count[1], 100);
}

Test(balancer, random_honours_weights)
{
	struct fixture f;
	size_t count[2] = { 0 };
	uint64_t rng = 42;
	bool panic;

	make(&f, 2, 2, LB_RANDOM);
	f.ep[1].weight = 4;
	for (size_t i = 0; i < 10000; i++)
		count[pick(&f, &rng, &panic)]++;
	/* 1:4 within a few percent. */
	cr_assert(count[1] > 7700 && count[1] < 8300, "weight 4 got %zu of 10000", count[1]);
}

Test(balancer, least_request_spreads_evenly_when_idle)
{
	struct fixture f;
	size_t count[3] = { 0 };
	uint64_t rng = 7;
	bool panic;

	make(&f, 3, 3, LB_LEAST_REQUEST);
	for (size_t i = 0; i < 300; i++)
		count[pick(&f, &rng, &panic)]++;
	/* Ties go to the round-robin choice: exact. */
	for (size_t k = 0; k < 3; k++)
		cr_assert_eq(count[k], 100);
}

Test(balancer, least_request_avoids_the_loaded_endpoint)
{
	struct fixture f;
	size_t count[4] = { 0 };
	uint64_t rng = 9;
	bool panic;

	make(&f, 4, 4, LB_LEAST_REQUEST);
	f.ep[2].active = 50;
	for (size_t i = 0; i < 4000; i++)
		count[pick(&f, &rng, &panic)]++;
	/* It wins only when both choices land on it: about 1 in 16 of its
	 * round-robin turns at most.
	 */
	cr_assert_lt(count[2], 100, "the loaded endpoint got %zu of 4000", count[2]);
}

Test(balancer, least_request_compares_load_per_weight)
{
	struct fixture f;
	size_t count[2] = { 0 };
	uint64_t rng = 11;
	bool panic;

	make(&f, 2, 2, LB_LEAST_REQUEST);
	f.ep[0].weight = 10;
	f.ep[0].active = 5;	/* 0.5 per weight unit */
	f.ep[1].active = 1;	/* 1 per weight unit */
	for (size_t i = 0; i < 1000; i++)
		count[pick(&f, &rng, &panic)]++;
	cr_assert_gt(count[0], 900, "the heavier endpoint got %zu", count[0]);
}

Test(balancer, skips_not_ready_and_ejected_endpoints)
{
	struct fixture f;
	uint64_t rng = 3;
	bool panic;

	make(&f, 5, 3, LB_RANDOM);
	eject(&f.ep[1]);
	for (size_t i = 0; i < 1000; i++) {
		size_t k = pick(&f, &rng, &panic);

		cr_assert(k == 0 || k == 2, "picked %zu", k);
		cr_assert_not(panic);
	}
}

Test(balancer, panic_uses_every_ready_endpoint_when_all_are_ejected)
{
	struct fixture f;
	size_t count[3] = { 0 };
	uint64_t rng = 5;
	bool panic = false;

	make(&f, 3, 3, LB_ROUND_ROBIN);
	for (size_t k = 0; k < 3; k++)
		eject(&f.ep[k]);
	for (size_t i = 0; i < 30; i++) {
		count[pick(&f, &rng, &panic)]++;
		cr_assert(panic);
	}
	for (size_t k = 0; k < 3; k++)
		cr_assert_eq(count[k], 10);
	/* Back after the deadline: no panic. */
	cr_assert_not_null(balancer_pick(&f.s, NOW + 2000, NULL, 0, &rng, &panic));
	cr_assert_not(panic);
}

Test(balancer, retry_avoids_tried_endpoints_while_others_remain)
{
	struct fixture f;
	struct ep_state *tried[2];
	uint64_t rng = 13;
	bool panic;

	make(&f, 3, 3, LB_LEAST_REQUEST);
	tried[0] = &f.ep[0];
	tried[1] = &f.ep[2];
	for (size_t i = 0; i < 100; i++)
		cr_assert_eq(balancer_pick(&f.s, NOW, tried, 2, &rng, &panic), &f.ep[1]);
	/* Every endpoint tried: try them again rather than give up. */
	make(&f, 1, 1, LB_LEAST_REQUEST);
	tried[0] = &f.ep[0];
	cr_assert_eq(balancer_pick(&f.s, NOW, tried, 1, &rng, &panic), &f.ep[0]);
}

Test(balancer, null_when_none_ready)
{
	struct fixture f;
	uint64_t rng = 1;
	bool panic;

	make(&f, 2, 0, LB_LEAST_REQUEST);
	cr_assert_null(balancer_pick(&f.s, NOW, NULL, 0, &rng, &panic));
	make(&f, 0, 0, LB_ROUND_ROBIN);
	cr_assert_null(balancer_pick(&f.s, NOW, NULL, 0, &rng, &panic));
}

/* ---------------------------------------------------------------- state */

static struct catalogue *build(struct model *m, const char *yaml)
{
	tmodel_put(m, "test", yaml);
	return model_build(m);
}

#define SVC_YAML(annotations, eps)                                                                 \
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop, annotations: {" \
	annotations "}}\n"                                                                       \
	"spec: {clusterIP: 198.19.0.10, ports: [{port: 80, targetPort: 8080}]}\n---\n"           \
	"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"                                 \
	"metadata: {name: web-a, namespace: shop, labels: {kubernetes.io/service-name: web}}\n"  \
	"addressType: IPv4\nendpoints:\n" eps

Test(state, endpoint_state_survives_a_catalogue_swap)
{
	struct model *m = model_new();
	struct catalogue *c1, *c2;
	struct svc_state *s1, *s2;
	struct ep_state *kept;
	struct state st;
	struct policy def;
	struct addr vip;
	uint64_t rng = 1;
	bool panic;

	policy_builtin(&def);
	state_init(&st);
	cr_assert_eq(addr_parse_ip_port("198.19.0.10:80", &vip), 0);
	c1 = build(m, SVC_YAML("weft.io/lb: round-robin",
			       "- {addresses: [198.18.1.1]}\n- {addresses: [198.18.1.2]}\n"));
	cr_assert_eq(state_bind(&st, NULL, c1, &def), 0);
	state_gc_touched(&st);
	s1 = state_svc_get(&st, c1, catalogue_find_vip(c1, &vip), &def);
	cr_assert_not_null(s1);
	cr_assert_eq(s1->pol.lb, LB_ROUND_ROBIN);
	cr_assert_eq(s1->n_ready, 2);
	kept = s1->eps[1];
	kept->ol.consecutive = 4;
	kept->active = 2;
	/* A new snapshot drops .1, keeps .2, adds .3, and changes the policy. */
	c2 = build(m, SVC_YAML("weft.io/lb: random, weft.io/weights: \"198.18.1.3=5\"",
			       "- {addresses: [198.18.1.2]}\n- {addresses: [198.18.1.3]}\n"));
	cr_assert_eq(state_bind(&st, c1, c2, &def), 0);
	state_gc_touched(&st);
	s2 = state_svc(&st, c2, catalogue_find_vip(c2, &vip));
	cr_assert_eq(s2, s1, "the service port's state carried over");
	cr_assert_eq(s2->pol.lb, LB_RANDOM);
	cr_assert_eq(s2->eps[0], kept, "the endpoint's state carried over");
	cr_assert_eq(kept->ol.consecutive, 4);
	cr_assert_eq(kept->active, 2);
	cr_assert_eq(s2->eps[1]->weight, 5);
	cr_assert_eq(s2->eps[0]->weight, 1);
	cr_assert_not_null(balancer_pick(s2, NOW, NULL, 0, &rng, &panic));
	catalogue_unref(c1);
	catalogue_unref(c2);
	state_done(&st);
	model_free(m);
}

Test(state, a_referenced_endpoint_outlives_its_removal)
{
	struct model *m = model_new();
	struct catalogue *c1, *c2;
	struct ep_state *gone;
	struct svc_state *s;
	struct state st;
	struct policy def;

	policy_builtin(&def);
	state_init(&st);
	c1 = build(m, SVC_YAML("", "- {addresses: [198.18.1.1]}\n- {addresses: [198.18.1.2]}\n"));
	cr_assert_eq(state_bind(&st, NULL, c1, &def), 0);
	state_gc_touched(&st);
	s = state_svc_get(&st, c1, catalogue_svc_port_at(c1, 0), &def);
	gone = s->eps[0];
	ep_ref(gone);	/* as an open upstream connection would */
	c2 = build(m, SVC_YAML("", "- {addresses: [198.18.1.2]}\n"));
	cr_assert_eq(state_bind(&st, c1, c2, &def), 0);
	state_gc_touched(&st);
	cr_assert_not(gone->live);
	cr_assert_eq(s->n_eps, 1);
	/* The last reference frees it (ASan would flag a leak or a bad free). */
	ep_unref(&st, gone);
	catalogue_unref(c1);
	catalogue_unref(c2);
	state_done(&st);
	model_free(m);
}

Test(state, a_service_that_left_offers_no_endpoint_to_its_last_clients)
{
	struct model *m = model_new();
	struct catalogue *c1, *c2;
	struct svc_state *s;
	struct state st;
	struct policy def;
	uint64_t rng = 1;
	bool panic;

	policy_builtin(&def);
	state_init(&st);
	c1 = build(m, SVC_YAML("", "- {addresses: [198.18.1.1]}\n"));
	cr_assert_eq(state_bind(&st, NULL, c1, &def), 0);
	state_gc_touched(&st);
	s = state_svc_get(&st, c1, catalogue_svc_port_at(c1, 0), &def);
	svc_ref(s);	/* as a client connection would */
	cr_assert_eq(model_remove(m, "test", OBJ_SERVICE, "shop", "web"), 0);
	c2 = model_build(m);
	cr_assert_eq(state_bind(&st, c1, c2, &def), 0);
	state_gc_touched(&st);
	cr_assert_not(s->live);
	/* A retry now finds nothing rather than a freed endpoint state. */
	cr_assert_null(balancer_pick(s, NOW, NULL, 0, &rng, &panic));
	svc_unref(&st, s);
	catalogue_unref(c1);
	catalogue_unref(c2);
	state_done(&st);
	model_free(m);
}
