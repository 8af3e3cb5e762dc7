// SPDX-License-Identifier: GPL-2.0-only
/* agent/proxy/balancer.c: round robin over the ready endpoints of a service
 * port, alone and from several threads at once, on hand-made service ports
 * and on one built by the model.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "model.h"
#include "proxy/balancer.h"
#include "registry/decode.h"
#include "registry/yaml.h"

#define THREADS 4
#define PICKS_PER_THREAD 30000

/* A service port with @n endpoints 198.18.0.1.. of which the first @ready are
 * ready (the catalogue's invariant: ready ones first).
 */
static void make_port(struct cat_svc_port *sp, struct cat_endpoint *eps, size_t n, size_t ready)
{
	memset(sp, 0, sizeof(*sp));
	for (size_t i = 0; i < n; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "198.18.0.%zu", i + 1);
		eps[i] = (struct cat_endpoint){ .ready = i < ready };
		cr_assert_eq(addr_parse_ip(ip, &eps[i].addr), 0);
		eps[i].addr.port = 8080;
	}
	sp->endpoints = eps;
	sp->n_endpoints = n;
	sp->n_ready = ready;
	atomic_init(&sp->rr_next, 0);
}

static size_t index_of(const struct cat_svc_port *sp, const struct cat_endpoint *ep)
{
	cr_assert_not_null(ep);
	cr_assert(ep >= sp->endpoints && ep < sp->endpoints + sp->n_endpoints,
		  "the pick points into the service port");
	return (size_t)(ep - sp->endpoints);
}

Test(balancer, round_robin_is_fair_and_ordered)
{
	struct cat_endpoint eps[3];
	struct cat_svc_port sp;
	size_t count[3] = { 0 };

	make_port(&sp, eps, 3, 3);
	for (size_t i = 0; i < 3000; i++) {
		size_t k = index_of(&sp, balancer_pick_rr(&sp));

		cr_assert_eq(k, i % 3, "pick %zu went to %zu", i, k);
		count[k]++;
	}
	for (size_t k = 0; k < 3; k++)
		cr_assert_eq(count[k], 1000);
}

Test(balancer, skips_endpoints_that_are_not_ready)
{
	struct cat_endpoint eps[5];
	struct cat_svc_port sp;
	size_t count[5] = { 0 };

	make_port(&sp, eps, 5, 2);
	for (size_t i = 0; i < 1000; i++)
		count[index_of(&sp, balancer_pick_rr(&sp))]++;
	cr_assert_eq(count[0], 500);
	cr_assert_eq(count[1], 500);
	for (size_t k = 2; k < 5; k++)
		cr_assert_eq(count[k], 0, "not-ready endpoint %zu was picked", k);
}

Test(balancer, null_when_none_ready)
{
	struct cat_endpoint eps[2];
	struct cat_svc_port sp;

	make_port(&sp, eps, 2, 0);
	cr_assert_null(balancer_pick_rr(&sp));
	make_port(&sp, eps, 0, 0);
	cr_assert_null(balancer_pick_rr(&sp), "no endpoints at all");
}

struct worker {
	struct cat_svc_port *sp;
	size_t count[4];
};

static void *pick_many(void *arg)
{
	struct worker *w = arg;

	for (size_t i = 0; i < PICKS_PER_THREAD; i++) {
		const struct cat_endpoint *ep = balancer_pick_rr(w->sp);

		w->count[ep - w->sp->endpoints]++;
	}
	return NULL;
}

Test(balancer, fair_under_concurrent_callers)
{
	struct worker w[THREADS] = { 0 };
	struct cat_endpoint eps[4];
	pthread_t t[THREADS];
	struct cat_svc_port sp;

	make_port(&sp, eps, 4, 3);
	for (size_t i = 0; i < THREADS; i++) {
		w[i].sp = &sp;
		cr_assert_eq(pthread_create(&t[i], NULL, pick_many, &w[i]), 0);
	}
	for (size_t i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_join(t[i], NULL), 0);
	/* Every caller takes a distinct cursor slot: the totals are exact even
	 * though the threads interleave.
	 */
	for (size_t k = 0; k < 3; k++) {
		size_t total = 0;

		for (size_t i = 0; i < THREADS; i++)
			total += w[i].count[k];
		cr_assert_eq(total, THREADS * PICKS_PER_THREAD / 3, "endpoint %zu: %zu", k, total);
	}
	for (size_t i = 0; i < THREADS; i++)
		cr_assert_eq(w[i].count[3], 0, "the not-ready endpoint was picked");
}

Test(balancer, on_a_built_catalogue)
{
	const char *yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
			   "spec: {clusterIP: 198.19.0.10, ports: [{port: 80, targetPort: 8080}]}\n"
			   "---\n"
			   "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			   "metadata: {name: web-a, namespace: shop, labels: "
			   "{kubernetes.io/service-name: web}}\n"
			   "addressType: IPv4\nendpoints:\n"
			   "- {addresses: [198.18.1.9], conditions: {ready: false}}\n"
			   "- {addresses: [198.18.1.2]}\n"
			   "- {addresses: [198.18.1.1], conditions: {ready: false}}\n"
			   "- {addresses: [198.18.1.3]}\n";
	char err[REG_PARSE_ERR_MAX], a[ADDR_STRLEN];
	struct model *m = model_new();
	struct cat_svc_port *sp;
	struct catalogue *c;
	struct addr dst;
	json_object *docs;

	cr_assert_eq(reg_yaml_parse(yaml, strlen(yaml), &docs, err, sizeof(err)), 0, "%s", err);
	for (size_t i = 0; i < json_object_array_length(docs); i++) {
		struct reg_obj *o;

		cr_assert_eq(reg_decode(json_object_array_get_idx(docs, i), &o, err, sizeof(err)),
			     0, "%s", err);
		cr_assert_eq(model_upsert(m, "test", o), 0);
	}
	json_object_put(docs);
	c = model_build(m);
	cr_assert_eq(addr_parse_ip_port("198.19.0.10:80", &dst), 0);
	sp = catalogue_find_vip(c, &dst);
	cr_assert_not_null(sp);
	cr_assert_str_eq(addr_fmt(&balancer_pick_rr(sp)->addr, a, sizeof(a)), "198.18.1.2:8080");
	cr_assert_str_eq(addr_fmt(&balancer_pick_rr(sp)->addr, a, sizeof(a)), "198.18.1.3:8080");
	cr_assert_str_eq(addr_fmt(&balancer_pick_rr(sp)->addr, a, sizeof(a)), "198.18.1.2:8080");
	catalogue_unref(c);
	model_free(m);
}
