// SPDX-License-Identifier: GPL-2.0-only
/* The incremental catalogue (agent/model/cat_builder.c): a change rebuilds
 * only the Services it touches, the others are shared with the previous
 * snapshot, and after any sequence of changes and builds the snapshot is
 * what a build from scratch of the same objects gives (VIPs included).
 * Also the proxy's binding of consecutive snapshots (agent/proxy/state.c):
 * untouched service ports keep their state, a state in use outlives its
 * Service.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "model/model.h"
#include "proxy/state.h"
#include "model_put.h"

#define N_SVCS 40

/* What the registry holds, as YAML per object ("" = absent). */
struct world {
	char svc[N_SVCS][512];
	char slice[N_SVCS][1024];
};

static void set_svc(struct world *w, size_t i, bool cluster_ip)
{
	char ip[64] = "";

	if (cluster_ip)
		snprintf(ip, sizeof(ip), "  clusterIP: 198.19.0.%zu\n", i + 1);
	snprintf(w->svc[i], sizeof(w->svc[i]),
		 "apiVersion: v1\nkind: Service\nmetadata: {name: s%zu, namespace: ns}\n"
		 "spec:\n%s  ports: [{name: http, port: 80, targetPort: 8080}]\n", i, ip);
}

/* Slice ns/e@i filed under Service s@owner with endpoints 198.18.@i.1..@n. */
static void set_slice(struct world *w, size_t i, size_t owner, unsigned int n, unsigned int seed)
{
	size_t k = (size_t)snprintf(w->slice[i], sizeof(w->slice[i]),
				    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
				    "metadata: {name: e%zu, namespace: ns, labels: "
				    "{kubernetes.io/service-name: s%zu}}\n"
				    "addressType: IPv4\nendpoints:\n", i, owner);

	for (unsigned int j = 0; j < n; j++)
		k += (size_t)snprintf(w->slice[i] + k, sizeof(w->slice[i]) - k,
				      "- {addresses: [198.18.%zu.%u], nodeName: node-%u, "
				      "conditions: {ready: %s}}\n",
				      i, j + 1, (seed + j) % 3, (seed + j) % 4 ? "true" : "false");
	snprintf(w->slice[i] + k, sizeof(w->slice[i]) - k, "ports: [{port: 8080}]\n");
}

/* Put object @i of @w (or remove it when absent) into @m. */
static void sync_svc(struct model *m, const struct world *w, size_t i)
{
	char name[16];

	snprintf(name, sizeof(name), "s%zu", i);
	if (w->svc[i][0])
		tmodel_put(m, "file", w->svc[i]);
	else
		cr_assert_eq(model_remove(m, "file", OBJ_SERVICE, "ns", name), 0);
}

static void sync_slice(struct model *m, const struct world *w, size_t i)
{
	char name[16];

	snprintf(name, sizeof(name), "e%zu", i);
	if (w->slice[i][0])
		tmodel_put(m, "file", w->slice[i]);
	else
		cr_assert_eq(model_remove(m, "file", OBJ_ENDPOINTSLICE, "ns", name), 0);
}

static struct model *model_ranged(const char *r)
{
	struct model *m = model_new();
	struct cidr c;

	cr_assert_not_null(m);
	cr_assert_eq(addr_parse_cidr(r, &c.net, &c.prefix_len), 0);
	cr_assert_eq(model_set_vip_ranges(m, &c, 1), 0);
	return m;
}

/* Everything a reader of @c can see, as text. */
static char *dump(const struct catalogue *c)
{
	size_t cap = 1 << 16, n = 0;
	char *out = malloc(cap), a[ADDR_STRLEN];
	const struct cat_service *s;
	struct cat_vip_stats st = catalogue_vip_stats(c);

	cr_assert_not_null(out);
#define PUT(...)                                                                   \
	do {                                                                       \
		n += (size_t)snprintf(out + n, cap - n, __VA_ARGS__);              \
		cr_assert_lt(n, cap, "dump too long");                             \
	} while (0)
	PUT("stats %zu %zu %zu ports %zu\n", st.allocated, st.collisions, st.exhausted,
	    catalogue_n_svc_ports(c));
	for (size_t i = 0; (s = catalogue_service_at(c, i)); i++) {
		PUT("%s/%s src=%d", s->ns, s->name, (int)s->vip_source);
		for (size_t v = 0; v < s->n_vips; v++)
			PUT(" %s", addr_fmt_ip(&s->vips[v], a, sizeof(a)));
		PUT("\n");
		for (size_t p = 0; p < s->n_ports; p++) {
			const struct cat_svc_port *sp = &s->ports[p];
			size_t idx = catalogue_svc_port_index(c, sp);

			cr_assert_eq(catalogue_svc_port_at(c, idx), sp);
			PUT("  %s %s ready=%zu found=%d:", addr_fmt(&sp->vip, a, sizeof(a)),
			    sp->port_name, sp->n_ready, catalogue_find_vip(c, &sp->vip) == sp);
			for (size_t e = 0; e < sp->n_endpoints; e++)
				PUT(" %s%s@%s", addr_fmt(&sp->endpoints[e].addr, a, sizeof(a)),
				    sp->endpoints[e].ready ? "" : "!", sp->endpoints[e].node);
			PUT("\n");
		}
	}
#undef PUT
	return out;
}

/* A model filled from scratch with @w, built once. */
static char *dump_fresh(const struct world *w, const char *range)
{
	struct model *m = model_ranged(range);
	struct catalogue *c;
	char *d;

	for (size_t i = 0; i < N_SVCS; i++) {
		if (w->svc[i][0])
			tmodel_put(m, "file", w->svc[i]);
		if (w->slice[i][0])
			tmodel_put(m, "file", w->slice[i]);
	}
	c = model_build(m);
	cr_assert_not_null(c);
	d = dump(c);
	catalogue_unref(c);
	model_free(m);
	return d;
}

static const struct cat_svc_port *port_of(const struct catalogue *c, size_t i)
{
	char name[16];
	const struct cat_service *s;

	snprintf(name, sizeof(name), "s%zu", i);
	s = catalogue_find_service(c, "ns", name);
	return s && s->n_ports ? &s->ports[0] : NULL;
}

Test(catalogue_inc, a_change_rebuilds_only_its_service)
{
	struct model *m = model_ranged("198.19.64.0/24");
	static struct world w;
	struct catalogue *c1, *c2;

	for (size_t i = 0; i < N_SVCS; i++) {
		set_svc(&w, i, i % 2);
		set_slice(&w, i, i, 3, (unsigned int)i);
		sync_svc(m, &w, i);
		sync_slice(m, &w, i);
	}
	c1 = model_build(m);
	cr_assert_not_null(c1);
	set_slice(&w, 7, 7, 5, 99);
	sync_slice(m, &w, 7);
	c2 = model_build(m);
	cr_assert_not_null(c2);
	for (size_t i = 0; i < N_SVCS; i++) {
		char name[16];

		snprintf(name, sizeof(name), "s%zu", i);
		if (i == 7)
			cr_expect_neq(catalogue_find_service(c1, "ns", name),
				      catalogue_find_service(c2, "ns", name));
		else
			cr_expect_eq(catalogue_find_service(c1, "ns", name),
				     catalogue_find_service(c2, "ns", name),
				     "%s was rebuilt for a change to s7", name);
	}
	cr_expect_eq(port_of(c1, 7)->n_endpoints, 3);
	cr_expect_eq(port_of(c2, 7)->n_endpoints, 5);
	/* The old snapshot is intact: a reader holding it sees what it saw. */
	cr_expect_str_eq(port_of(c1, 7)->endpoints[0].node, "node-1");
	/* A build with no change shares every Service. */
	catalogue_unref(c1);
	c1 = model_build(m);
	for (size_t i = 0; i < catalogue_n_services(c2); i++)
		cr_expect_eq(catalogue_service_at(c1, i), catalogue_service_at(c2, i));
	catalogue_unref(c1);
	catalogue_unref(c2);
	model_free(m);
}

/* The pod meshed at 198.18.@i.1 (slice e@i's first endpoint), as YAML. */
static void pod_yaml(char *buf, size_t len, size_t i, const char *sa)
{
	snprintf(buf, len,
		 "apiVersion: v1\nkind: Pod\nmetadata: {name: p%zu, namespace: ns}\n"
		 "spec: {nodeName: node-0, serviceAccountName: %s}\n"
		 "status: {phase: Running, podIP: 198.18.%zu.1}\n", i, sa, i);
}

/* The identity a client would expect of s@i's first endpoint, "" if none. */
static const char *first_ep_sa(const struct catalogue *c, size_t i)
{
	const struct cat_svc_port *sp = port_of(c, i);

	for (size_t e = 0; sp && e < sp->n_endpoints; e++)
		if (sp->endpoints[e].addr.ip.v4.s_addr == htonl(0xc6120001u | (uint32_t)i << 8))
			return sp->endpoints[e].pod && catalogue_pod_meshed(c, sp->endpoints[e].pod)
				       ? sp->endpoints[e].pod->service_account
				       : "";
	return "?";
}

/* Namespace and Pod changes rebuild the Services whose endpoints' pods they
 * change, no other; what readers see is what a fresh build gives.
 */
Test(catalogue_inc, a_pod_change_rebuilds_only_the_services_it_backs)
{
	struct model *m = model_ranged("198.19.64.0/24");
	static struct world w;
	struct catalogue *c[5];
	char pod[512];

	for (size_t i = 0; i < N_SVCS; i++) {
		set_svc(&w, i, true);
		set_slice(&w, i, i, 3, (unsigned int)i);
		sync_svc(m, &w, i);
		sync_slice(m, &w, i);
	}
	tmodel_put(m, "file", "apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n");
	c[0] = model_build(m);
	/* A namespace no endpoint lives in: every Service shared. */
	tmodel_put(m, "file",
		   "apiVersion: v1\nkind: Namespace\nmetadata: {name: other, labels: "
		   "{weft.io/mesh: enabled}}\n");
	c[1] = model_build(m);
	/* A pod of an unmeshed namespace is no identity yet: still shared. */
	pod_yaml(pod, sizeof(pod), 5, "api");
	tmodel_put(m, "file", pod);
	c[2] = model_build(m);
	/* Meshing its namespace gives s5's endpoint an identity: s5 alone. */
	tmodel_put(m, "file",
		   "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns, labels: "
		   "{weft.io/mesh: enabled}}\n");
	c[3] = model_build(m);
	/* Its service account changes: s5 again, alone. */
	pod_yaml(pod, sizeof(pod), 5, "api-v2");
	tmodel_put(m, "file", pod);
	c[4] = model_build(m);
	for (size_t k = 0; k < 5; k++)
		cr_assert_not_null(c[k]);
	for (size_t k = 1; k < 5; k++) {
		for (size_t i = 0; i < N_SVCS; i++) {
			char name[16];
			bool rebuilt = i == 5 && k >= 3;

			snprintf(name, sizeof(name), "s%zu", i);
			cr_expect_eq(catalogue_find_service(c[k - 1], "ns", name) ==
					     catalogue_find_service(c[k], "ns", name),
				     !rebuilt, "build %zu: %s %s", k, name,
				     rebuilt ? "kept its old pods" : "was rebuilt");
		}
	}
	cr_expect_str_eq(first_ep_sa(c[2], 5), "");
	cr_expect_str_eq(first_ep_sa(c[3], 5), "api");
	cr_expect_str_eq(first_ep_sa(c[4], 5), "api-v2");
	cr_expect_str_eq(first_ep_sa(c[4], 6), "");
	/* The pod goes: s5's endpoint has no identity any more. */
	cr_assert_eq(model_remove(m, "file", OBJ_POD, "ns", "p5"), 0);
	catalogue_unref(c[0]);
	c[0] = model_build(m);
	cr_assert_not_null(c[0]);
	cr_expect_str_eq(first_ep_sa(c[0], 5), "");
	for (size_t k = 0; k < 5; k++)
		catalogue_unref(c[k]);
	model_free(m);
}

/* The VIP table is patched from the previous snapshot's: entries that
 * move, leave or are claimed twice must read as a fresh build's.
 */
Test(catalogue_inc, vip_table_patches_read_as_a_full_build)
{
	static const char *r = "198.19.64.0/24";
	struct model *m = model_ranged(r);
	static struct world w;
	unsigned int rnd = 777;

	for (int step = 0; step < 300; step++) {
		size_t i;
		struct catalogue *c;
		char *inc, *full;

		rnd = rnd * 1103515245u + 12345u;
		i = (rnd >> 8) % 12;
		if ((rnd >> 20) % 4 == 0) {
			w.svc[i][0] = '\0';
		} else {
			/* 12 Services, 24 cluster IPs: now and then two claim one. */
			snprintf(w.svc[i], sizeof(w.svc[i]),
				 "apiVersion: v1\nkind: Service\nmetadata: {name: s%zu, namespace: ns}\n"
				 "spec:\n  clusterIP: 198.19.0.%u\n  ports: [{name: http, port: %u, "
				 "targetPort: 8080}]\n", i, 1 + (rnd >> 12) % 24, 80 + (rnd >> 16) % 2);
		}
		sync_svc(m, &w, i);
		if ((rnd >> 24) % 3 == 0)
			continue;
		c = model_build(m);
		cr_assert_not_null(c);
		inc = dump(c);
		full = dump_fresh(&w, r);
		cr_assert_str_eq(inc, full, "step %d: incremental and full builds differ", step);
		free(inc);
		free(full);
		catalogue_unref(c);
	}
	model_free(m);
}

/* A /28 has 14 usable addresses for up to 40 services that want one:
 * homes collide, probes cascade, the range runs out; whatever the order of
 * changes, every snapshot must equal a build from scratch.
 */
Test(catalogue_inc, churn_gives_what_a_full_build_gives)
{
	static const char *r = "198.19.7.0/28";
	struct model *m = model_ranged(r);
	static struct world w;
	unsigned int rnd = 12345;

	for (int step = 0; step < 400; step++) {
		size_t i;
		unsigned int what;
		struct catalogue *c;
		char *inc, *full;

		rnd = rnd * 1103515245u + 12345u;
		i = (rnd >> 8) % N_SVCS;
		what = (rnd >> 20) % 6;
		switch (what) {
		case 0:	/* a Service comes or goes */
			if (w.svc[i][0])
				w.svc[i][0] = '\0';
			else
				set_svc(&w, i, (rnd >> 4) % 5 == 0);
			sync_svc(m, &w, i);
			break;
		case 1:	/* its slice goes */
			w.slice[i][0] = '\0';
			sync_slice(m, &w, i);
			break;
		case 2:	/* the slice moves to another Service */
			set_slice(&w, i, (i + 1 + (rnd >> 12) % 3) % N_SVCS, 2, rnd);
			sync_slice(m, &w, i);
			break;
		default:	/* endpoint churn */
			set_slice(&w, i, i, 1 + (rnd >> 14) % 6, rnd);
			sync_slice(m, &w, i);
			break;
		}
		/* Several changes per build, now and then. */
		if ((rnd >> 16) % 3 == 0)
			continue;
		c = model_build(m);
		cr_assert_not_null(c);
		inc = dump(c);
		full = dump_fresh(&w, r);
		cr_assert_str_eq(inc, full, "step %d: incremental and full builds differ", step);
		free(inc);
		free(full);
		catalogue_unref(c);
	}
	model_free(m);
}

Test(catalogue_inc, removal_and_readd)
{
	struct model *m = model_ranged("198.19.64.0/24");
	static struct world w;
	struct catalogue *c1, *c2, *c3;
	struct addr vip;

	for (size_t i = 0; i < 3; i++) {
		set_svc(&w, i, false);
		set_slice(&w, i, i, 2, 0);
		sync_svc(m, &w, i);
		sync_slice(m, &w, i);
	}
	c1 = model_build(m);
	cr_assert_not_null(port_of(c1, 1));
	vip = port_of(c1, 1)->vip;
	w.svc[1][0] = '\0';
	sync_svc(m, &w, 1);
	c2 = model_build(m);
	cr_expect_null(port_of(c2, 1));
	cr_expect_null(catalogue_find_vip(c2, &vip));
	cr_expect_eq(catalogue_n_services(c2), 2);
	/* Back, its slice still there: same VIP, same endpoints. */
	set_svc(&w, 1, false);
	sync_svc(m, &w, 1);
	c3 = model_build(m);
	cr_assert_not_null(port_of(c3, 1));
	cr_expect(addr_equal(&port_of(c3, 1)->vip, &vip));
	cr_expect_eq(catalogue_find_vip(c3, &vip), port_of(c3, 1));
	cr_expect_eq(port_of(c3, 1)->n_endpoints, 2);
	cr_expect_eq(catalogue_find_service(c3, "ns", "s0"), catalogue_find_service(c1, "ns", "s0"));
	catalogue_unref(c1);
	catalogue_unref(c2);
	catalogue_unref(c3);
	model_free(m);
}

/* The proxy's side: 300 snapshots with churn on a few Services; the others
 * keep their state object throughout, and a state a connection holds stays
 * until the connection lets go.
 */
Test(catalogue_inc, proxy_state_survives_many_publishes)
{
	struct model *m = model_ranged("198.19.64.0/24");
	static struct world w;
	struct policy def;
	struct state st;
	struct catalogue *old = NULL, *c;
	struct svc_state *kept, *held;

	policy_init(&def, NULL);
	state_init(&st);
	for (size_t i = 0; i < 10; i++) {
		set_svc(&w, i, false);
		set_slice(&w, i, i, 3, 0);
		sync_svc(m, &w, i);
		sync_slice(m, &w, i);
	}
	c = model_build(m);
	cr_assert_eq(state_bind(&st, NULL, c, &def), 0);
	state_gc_touched(&st);
	/* States exist once connections used the ports (0..3 and 9 here). */
	kept = state_svc_get(&st, c, port_of(c, 0), &def);
	held = state_svc_get(&st, c, port_of(c, 9), &def);
	cr_assert(kept && held);
	for (size_t i = 1; i <= 3; i++)
		cr_assert_not_null(state_svc_get(&st, c, port_of(c, i), &def));
	kept->ctr.requests = 42;
	svc_ref(held);		/* a client connection */
	w.svc[9][0] = '\0';
	sync_svc(m, &w, 9);
	for (unsigned int k = 0; k < 300; k++) {
		old = c;
		set_slice(&w, 1 + k % 3, 1 + k % 3, 1 + k % 7, k);
		sync_slice(m, &w, 1 + k % 3);
		c = model_build(m);
		cr_assert_not_null(c);
		cr_assert_eq(state_bind(&st, old, c, &def), 0);
		state_gc_touched(&st);
		catalogue_unref(old);
		cr_assert_eq(state_svc(&st, c, port_of(c, 0)), kept, "publish %u", k);
		cr_assert_eq(kept->ctr.requests, 42);
		cr_assert_eq(state_svc(&st, c, port_of(c, 1 + k % 3))->n_eps, 1 + k % 7);
		cr_assert_eq(st.n_ports, catalogue_n_svc_ports(c));
		/* The admin API's array follows the snapshot's port order. */
		for (size_t i = 0; i < st.n_ports; i++)
			cr_assert_eq(state_svc_at(&st, c, i), state_svc(&st, c, catalogue_svc_port_at(c, i)),
				     "publish %u, port %zu", k, i);
	}
	cr_expect_not(held->live);
	cr_expect_eq(held->n_eps, 0);
	svc_unref(&st, held);	/* the connection ends: freed (ASan checks) */
	state_done(&st);
	catalogue_unref(c);
	model_free(m);
}

/* A publish, bound and collected as the proxy does (proxy_set_catalogue()). */
static struct catalogue *publish(struct model *m, struct state *st, struct catalogue *old,
				 const struct policy *def)
{
	struct catalogue *c = model_build(m);

	cr_assert_not_null(c);
	cr_assert_eq(state_bind(st, old, c, def), 0);
	state_gc_touched(st);
	catalogue_unref(old);
	return c;
}

static size_t n_states(const struct state *st)
{
	size_t n = 0;

	for (const struct svc_state *s = st->svcs; s; s = s->next)
		n++;
	return n;
}

/* States are created on first use only: a bind creates none, the first
 * use creates the port's and its endpoints', later publishes carry it,
 * and the Service's removal frees it; ports never used cost nothing.
 */
Test(catalogue_inc, proxy_state_is_created_on_first_use)
{
	struct model *m = model_ranged("198.19.64.0/24");
	static struct world w;
	struct policy def;
	struct state st;
	struct catalogue *c;
	struct svc_state *s, *blank;

	policy_init(&def, NULL);
	state_init(&st);
	for (size_t i = 0; i < 10; i++) {
		set_svc(&w, i, false);
		set_slice(&w, i, i, 3, 1);
		sync_svc(m, &w, i);
		sync_slice(m, &w, i);
	}
	c = publish(m, &st, NULL, &def);
	cr_assert_eq(st.n_ports, 10);
	cr_expect_eq(n_states(&st), 0, "a bind creates no state");
	for (size_t i = 0; i < 10; i++) {
		cr_expect_null(state_svc(&st, c, port_of(c, i)));
		cr_expect_null(state_svc_at(&st, c, i));
	}
	/* What the admin API shows of an unused port: the catalogue's, zero counters. */
	blank = state_blank(port_of(c, 4), &def);
	cr_assert_not_null(blank);
	cr_expect_str_eq(blank->name, "s4");
	cr_expect_eq(blank->n_eps, 3);
	cr_expect_eq(blank->n_ready, port_of(c, 4)->n_ready);
	cr_expect_eq(blank->ctr.requests, 0);
	cr_expect(addr_equal(&blank->eps[2]->addr, &port_of(c, 4)->endpoints[2].addr));
	state_blank_free(blank);
	cr_expect_eq(n_states(&st), 0);

	/* The first connection to s3. */
	s = state_svc_get(&st, c, port_of(c, 3), &def);
	cr_assert_not_null(s);
	cr_expect_eq(n_states(&st), 1);
	cr_expect(s->live);
	cr_expect_eq(s->n_eps, 3);
	cr_expect_eq(s->n_ready, port_of(c, 3)->n_ready);
	cr_expect(s->eps[0]->live);
	cr_expect_eq(state_svc_get(&st, c, port_of(c, 3), &def), s, "found, not created twice");
	cr_expect_eq(state_svc(&st, c, port_of(c, 3)), s);
	cr_expect_eq(state_svc_at(&st, c, catalogue_svc_port_index(c, port_of(c, 3))), s);
	s->ctr.requests = 7;
	s->eps[0]->ol.consecutive = 2;

	/* Publishes that change s3, an unused s4, and add s10: s3 carries over. */
	set_slice(&w, 3, 3, 5, 1);
	sync_slice(m, &w, 3);
	c = publish(m, &st, c, &def);
	set_slice(&w, 4, 4, 6, 1);
	sync_slice(m, &w, 4);
	set_svc(&w, 10, false);
	set_slice(&w, 10, 10, 2, 1);
	sync_svc(m, &w, 10);
	sync_slice(m, &w, 10);
	c = publish(m, &st, c, &def);
	cr_assert_eq(state_svc(&st, c, port_of(c, 3)), s, "carried across publishes");
	cr_expect_eq(s->ctr.requests, 7);
	cr_expect_eq(s->n_eps, 5);
	cr_expect_eq(s->eps[0]->ol.consecutive, 2, "198.18.3.1 kept its outlier state");
	cr_expect_null(state_svc(&st, c, port_of(c, 4)), "a changed, unused port stays stateless");
	cr_expect_null(state_svc(&st, c, port_of(c, 10)));
	cr_expect_eq(n_states(&st), 1);
	for (size_t i = 0; i < st.n_ports; i++)
		cr_expect_eq(state_svc_at(&st, c, i), state_svc(&st, c, catalogue_svc_port_at(c, i)));

	/* s3 leaves the registry: its state goes with it. */
	w.svc[3][0] = '\0';
	sync_svc(m, &w, 3);
	c = publish(m, &st, c, &def);
	cr_expect_eq(n_states(&st), 0, "dropped with the service");
	for (size_t i = 0; i < st.n_ports; i++)
		cr_expect_null(state_svc_at(&st, c, i));
	state_done(&st);
	catalogue_unref(c);
	model_free(m);
}
