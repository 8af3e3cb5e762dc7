// SPDX-License-Identifier: GPL-2.0-only
/* The fairness arithmetic of the proxy (docs/resilience.md "Fairness and
 * bounds"): a pod's automatic share of --max-conns, and a service port's
 * max-connections divided among the client pods holding connections to it.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "proxy/conn.h"
#include "proxy/state.h"

/* Stand-ins for pods: only their addresses are compared. */
static struct px_pod pods[3];

Test(fairshare, pod_limit_is_a_share_of_max_conns_with_a_floor_or_the_option)
{
	struct proxy px = { .opts = { .max_conns = 40 } };

	px.n_pods = 0;
	cr_assert_eq(px_pod_limit(&px), 40, "no pod yet: the whole node");
	px.n_pods = 1;
	cr_assert_eq(px_pod_limit(&px), 40, "a pod alone may use it all");
	px.n_pods = 2;
	cr_assert_eq(px_pod_limit(&px), 20);
	px.n_pods = 3;
	cr_assert_eq(px_pod_limit(&px), PX_POD_CONNS_FLOOR, "40 / 3 is under the floor");
	px.opts.max_conns = 10;
	cr_assert_eq(px_pod_limit(&px), 10, "the floor never exceeds --max-conns");
	px.opts.max_conns = 65536;
	px.n_pods = 100;
	cr_assert_eq(px_pod_limit(&px), 655);
	px.opts.pod_max_conns = 7;
	cr_assert_eq(px_pod_limit(&px), 7, "--pod-max-conns wins");
}

Test(fairshare, admission_refuses_a_pod_over_its_share_before_the_node_is_full)
{
	struct proxy px = { .opts = { .max_conns = 40 }, .n_pods = 2 };

	pods[0].conns_out = 19;
	cr_assert(conn_admit(&px, &pods[0]));
	pods[0].conns_out = 20;
	px.stats.active = 20;
	cr_assert_not(conn_admit(&px, &pods[0]));
	cr_assert_eq(px.stats.over_pod_limit, 1);
	cr_assert_eq(pods[0].refused, 1);
	cr_assert(conn_admit(&px, &pods[1]), "the other pod's share is intact");
	px.stats.active = 40;
	cr_assert_not(conn_admit(&px, &pods[1]), "--max-conns still bounds the node");
	cr_assert_eq(px.stats.over_limit, 1);
}

Test(fairshare, max_connections_is_divided_among_the_pods_holding_connections)
{
	struct svc_state s = { .pol = { .max_connections = 10 } };

	cr_assert_eq(svc_pod_share(&s, &pods[0]), 10, "alone: the whole limit");
	for (int i = 0; i < 10; i++)
		cr_assert_eq(svc_pod_add(&s, &pods[0]), 0);
	cr_assert_eq(svc_pod_conns(&s, &pods[0]), 10);
	cr_assert_eq(svc_pod_share(&s, &pods[0]), 10);
	cr_assert_eq(svc_pod_share(&s, &pods[1]), 5, "a newcomer counts itself in");
	cr_assert_eq(svc_pod_hog(&s), &pods[0]);
	cr_assert_eq(svc_pod_add(&s, &pods[1]), 0);
	cr_assert_eq(svc_pod_add(&s, &pods[2]), 0);
	cr_assert_eq(svc_pod_share(&s, &pods[1]), 3);
	for (int i = 0; i < 10; i++)
		svc_pod_del(&s, &pods[0]);
	cr_assert_eq(svc_pod_conns(&s, &pods[0]), 0);
	cr_assert_eq(s.n_by_pod, 2, "a pod with no connection leaves the table");
	cr_assert_eq(svc_pod_share(&s, &pods[1]), 5);
	s.pol.max_connections = 1;
	cr_assert_eq(svc_pod_share(&s, &pods[0]), 1, "never 0");
	svc_pod_del(&s, &pods[1]);
	svc_pod_del(&s, &pods[2]);
	svc_pod_del(&s, &pods[2]);	/* not counted: ignored */
	cr_assert_eq(s.n_by_pod, 0);
	cr_assert_null(svc_pod_hog(&s));
	free(s.by_pod);
}
