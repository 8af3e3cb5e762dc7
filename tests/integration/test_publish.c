// SPDX-License-Identifier: GPL-2.0-only
/* A big registry change reaches the real agent's two workers in parts, each
 * part bound on its own: the registry file gains 3,000 Services at once, the
 * sink publishes them at most 512 at a time, each part once both workers
 * have bound the one before, and /v1/status catalogue_binds shows it (the
 * most Services one bind took up, the binds). Requests still
 * flow through the proxy afterwards. Runs in both capture modes.
 */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "servers.h"
#include "topo.h"

#define N_BIG 3000
/* The sink's bound on a publish (SINK_PUBLISH_MAX_CHANGES). */
#define PART 512

TestSuite(publish, .init = fixture_up_two_workers,
	  .fini = fixture_down_with_backends, .timeout = 120);

/* TOPO_REGISTRY and @n Services more in namespace "big", each with a VIP in
 * 198.19.64.0/18 and no endpoints (no traffic goes to them).
 */
static char *big_registry(unsigned int n)
{
	size_t cap = strlen(TOPO_REGISTRY) + (size_t)n * 256 + 128, k;
	char *y = malloc(cap);

	cr_assert_not_null(y);
	k = (size_t)snprintf(y, cap, "%s\n---\napiVersion: v1\nkind: Namespace\n"
			     "metadata: {name: big}\n", TOPO_REGISTRY);
	for (unsigned int i = 0; i < n; i++)
		k += (size_t)snprintf(y + k, cap - k,
				      "---\napiVersion: v1\nkind: Service\nmetadata: "
				      "{name: s%05u, namespace: big}\nspec:\n  clusterIP: "
				      "198.19.%u.%u\n  ports: [{name: http, port: 80}]\n",
				      i, 64 + i / 250, 1 + i % 250);
	cr_assert_lt(k, cap);
	return y;
}

Test(publish, a_big_change_is_bound_in_parts_of_at_most_512)
{
	long long base = tenv_status_counter(&env, "services"), n = -1, expired;
	long long max_changes, binds0 = tenv_status_counter(&env, "catalogue_binds.binds");
	char *y = big_registry(N_BIG);

	cr_assert_gt(base, 0);
	cr_assert_eq(tenv_write_registry(&env, y), 0);
	free(y);
	for (int i = 0; i < 300 && n != base + N_BIG; i++) {
		usleep(50000);
		n = tenv_status_counter(&env, "services");
	}
	cr_assert_eq(n, base + N_BIG, "services: %lld of %lld", n, base + N_BIG);
	max_changes = tenv_status_counter(&env, "catalogue_binds.max_changes");
	expired = tenv_status_counter(&env, "catalogue_binds.publish_waits_expired");
	/* 3,000 Services and the Namespace: 3,001 changes and those of the
	 * topology's objects (the file is listed whole), at least 6 parts. A
	 * part goes without the workers' binds only after the bounded wait (a
	 * machine too loaded for a worker to bind within it): it then joins
	 * the one before in a bind.
	 */
	cr_assert_gt(max_changes, 0);
	cr_assert_leq(max_changes, PART * (1 + expired),
		      "a bind took up %lld Services (%lld expired)", max_changes, expired);
	/* Both workers bound every part. */
	cr_assert_geq(tenv_status_counter(&env, "catalogue_binds.binds") - binds0,
		      2 * (6 - expired));
	cr_assert(fixture_web_answers_from("web"), "the proxy stopped answering");
}
