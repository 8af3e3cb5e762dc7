// SPDX-License-Identifier: GPL-2.0-only
/* The workers' merged view of service ports kept past the release
 * (workers_view_keep(), what /metrics renders from after letting the
 * workers go), and the node-wide counters read while the workers run: two
 * worker threads, a catalogue of a few Services, no traffic.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "loop.h"
#include "model/catalogue.h"
#include "model/model.h"
#include "model_put.h"
#include "proxy/counters.h"
#include "proxy/proxy.h"
#include "proxy/state.h"
#include "proxy/workers.h"

#define N_SVCS 5

struct view_fix {
	struct loop *loop;
	struct model *model;
	struct catalogue *cat;
	struct workers *ws;
};

/* Service s@i with one port and @i + 1 endpoints. */
static void put_service(struct model *m, unsigned int i)
{
	char yaml[2048];
	int k;

	snprintf(yaml, sizeof(yaml),
		 "apiVersion: v1\nkind: Service\nmetadata: {name: s%u, namespace: ns}\n"
		 "spec:\n  clusterIP: 198.19.0.%u\n  ports: [{name: http, port: 80, "
		 "targetPort: 8080}]\n",
		 i, i + 1);
	tmodel_put(m, "file", yaml);
	k = snprintf(yaml, sizeof(yaml),
		     "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		     "metadata: {name: e%u, namespace: ns, labels: "
		     "{kubernetes.io/service-name: s%u}}\naddressType: IPv4\nendpoints:\n",
		     i, i);
	for (unsigned int j = 0; j <= i; j++)
		k += snprintf(yaml + k, sizeof(yaml) - (size_t)k,
			      "- {addresses: [198.18.%u.%u], conditions: {ready: true}}\n", i,
			      j + 1);
	snprintf(yaml + k, sizeof(yaml) - (size_t)k, "ports: [{port: 8080}]\n");
	tmodel_put(m, "file", yaml);
}

static void start(struct view_fix *f)
{
	memset(f, 0, sizeof(*f));
	f->loop = loop_new();
	f->model = model_new();
	cr_assert(f->loop && f->model);
	for (unsigned int i = 0; i < N_SVCS; i++)
		put_service(f->model, i);
	f->cat = model_build(f->model);
	cr_assert_not_null(f->cat);
	cr_assert_eq(catalogue_n_svc_ports(f->cat), N_SVCS);
	f->ws = workers_new(f->loop, 2, &(struct proxy_opts){ .home_netns_fd = -1 });
	cr_assert_not_null(f->ws, "workers_new: %s", strerror(errno));
	workers_set_catalogue(f->ws, f->cat);
}

static void stop(struct view_fix *f)
{
	workers_free(f->ws);
	catalogue_unref(f->cat);
	model_free(f->model);
	loop_free(f->loop);
}

/* Port @i of the view is the catalogue's, with zero counters. */
static void expect_port(const struct view_fix *f, const struct svc_state *s, size_t i)
{
	const struct cat_svc_port *sp = catalogue_svc_port_at(f->cat, i);

	cr_assert_not_null(s, "port %zu: no state", i);
	cr_expect_str_eq(s->ns, sp->svc->ns);
	cr_expect_str_eq(s->name, sp->svc->name);
	cr_expect(addr_equal(&s->vip, &sp->vip), "port %zu: another VIP", i);
	cr_expect_eq(s->n_eps, sp->n_endpoints);
	for (size_t j = 0; j < s->n_eps; j++)
		cr_expect(addr_equal(&s->eps[j]->addr, &sp->endpoints[j].addr),
			  "port %zu endpoint %zu: another address", i, j);
	cr_expect_eq(s->ctr.conns, 0);
}

Test(workers_view, a_kept_view_is_read_after_the_release)
{
	struct view_fix f;
	const struct svc_state *s;

	start(&f);
	/* The isolation lets both workers take the snapshot first. */
	workers_isolate(f.ws);
	cr_assert_eq(workers_view_keep(f.ws), 0);
	workers_release(f.ws);
	/* The workers run; the view is read, its ports made on demand. */
	for (size_t i = 0; i < N_SVCS; i++)
		expect_port(&f, workers_service_at(f.ws, i), i);
	cr_expect_null(workers_service_at(f.ws, N_SVCS), "a port past the snapshot's");
	/* Asked again, the same state: made once. */
	s = workers_service_at(f.ws, 2);
	cr_expect_eq(workers_service_at(f.ws, 2), s);
	workers_view_done(f.ws);
	/* Done, the next isolation makes a view of its own. */
	workers_isolate(f.ws);
	expect_port(&f, workers_service_at(f.ws, 3), 3);
	workers_release(f.ws);
	stop(&f);
}

Test(workers_view, a_view_that_is_not_kept_goes_at_the_release)
{
	struct view_fix f;

	start(&f);
	workers_isolate(f.ws);
	expect_port(&f, workers_service_at(f.ws, 0), 0);
	workers_release(f.ws);
	/* Nothing kept: done is a no-op, and a new isolation works. */
	workers_view_done(f.ws);
	workers_isolate(f.ws);
	cr_assert_eq(workers_view_keep(f.ws), 0);
	workers_release(f.ws);
	expect_port(&f, workers_service_at(f.ws, N_SVCS - 1), N_SVCS - 1);
	workers_view_done(f.ws);
	stop(&f);
}

/* The counters' single-writer helpers: what the hot path and the readers use. */
Test(workers_view, counters_are_read_while_the_workers_run)
{
	struct view_fix f;
	struct proxy_stats st;
	struct workers_publish_stats pub;
	uint64_t c = 0;

	ctr_inc(&c);
	ctr_add(&c, 41);
	ctr_dec(&c);
	cr_expect_eq(ctr_read(&c), 41);
	ctr_max(&c, 7);
	cr_expect_eq(ctr_read(&c), 41);
	ctr_max(&c, 50);
	cr_expect_eq(ctr_read(&c), 50);

	start(&f);
	/* No isolation: both workers' loops run while these are read. */
	workers_stats(f.ws, &st);
	cr_expect_eq(st.total, 0);
	cr_expect_eq(st.active, 0);
	for (int i = 0; i < 500; i++) {
		workers_publish_stats(f.ws, &pub);
		if (pub.binds == 2)
			break;
		usleep(10000);	/* the workers bind on their own threads */
	}
	cr_expect_eq(pub.binds, 2, "each worker's bind of the one snapshot: %llu",
		     (unsigned long long)pub.binds);
	stop(&f);
}
