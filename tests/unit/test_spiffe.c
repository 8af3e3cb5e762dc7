// SPDX-License-Identifier: GPL-2.0-only
/* lib/spiffe.c: SPIFFE IDs of workloads and weft.io/allow-from patterns. */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "spiffe.h"

Test(spiffe, format_and_parse_round_trip)
{
	char buf[SPIFFE_ID_MAX];
	struct spiffe_id id;

	cr_assert_eq(spiffe_id_fmt(buf, sizeof(buf), "cluster.local", "shop", "frontend"), 0);
	cr_assert_str_eq(buf, "spiffe://cluster.local/ns/shop/sa/frontend");
	cr_assert_eq(spiffe_id_parse(buf, &id), 0);
	cr_assert_str_eq(id.td, "cluster.local");
	cr_assert_str_eq(id.ns, "shop");
	cr_assert_str_eq(id.sa, "frontend");
	cr_assert_eq(spiffe_id_fmt(buf, 20, "cluster.local", "shop", "frontend"), -ENAMETOOLONG);
	cr_assert_eq(spiffe_id_fmt(buf, sizeof(buf), "Cluster", "shop", "a"), -EINVAL);
	cr_assert_eq(spiffe_id_fmt(buf, sizeof(buf), "td", "sh/op", "a"), -EINVAL);
	cr_assert_eq(spiffe_id_fmt(buf, sizeof(buf), "td", "shop", ""), -EINVAL);
}

Test(spiffe, parse_refuses_other_shapes)
{
	static const char *const bad[] = {
		"https://cluster.local/ns/shop/sa/a",
		"spiffe://cluster.local/ns/shop/sa/a/b",
		"spiffe://cluster.local/ns/shop/sa/",
		"spiffe://cluster.local/ns//sa/a",
		"spiffe://cluster.local/ns/shop",
		"spiffe://cluster.local/sa/a/ns/shop",
		"spiffe://CLUSTER/ns/shop/sa/a",
		"spiffe:///ns/shop/sa/a",
		"spiffe://td/ns/../sa/a",
	};
	struct spiffe_id id;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(spiffe_id_parse(bad[i], &id), -EINVAL, "%s accepted", bad[i]);
}

Test(spiffe, allow_from_patterns)
{
	struct spiffe_allow a[SPIFFE_ALLOW_MAX];
	struct spiffe_id id;
	char bad[64] = "";
	int n;

	n = spiffe_allow_parse(" shop/sa/frontend, ops/*", a, SPIFFE_ALLOW_MAX, bad, sizeof(bad));
	cr_assert_eq(n, 2);
	cr_assert_eq(spiffe_id_parse("spiffe://td/ns/shop/sa/frontend", &id), 0);
	cr_assert(spiffe_allowed(&id, a, 2));
	cr_assert_eq(spiffe_id_parse("spiffe://td/ns/shop/sa/backend", &id), 0);
	cr_assert_not(spiffe_allowed(&id, a, 2));
	cr_assert_eq(spiffe_id_parse("spiffe://td/ns/ops/sa/anything", &id), 0);
	cr_assert(spiffe_allowed(&id, a, 2));
	cr_assert_eq(spiffe_id_parse("spiffe://td/ns/opsx/sa/a", &id), 0);
	cr_assert_not(spiffe_allowed(&id, a, 2));
	cr_assert_eq(spiffe_allow_parse("", a, SPIFFE_ALLOW_MAX, bad, sizeof(bad)), 0);
	cr_assert_eq(spiffe_allow_parse("shop/frontend", a, SPIFFE_ALLOW_MAX, bad, sizeof(bad)),
		     -EINVAL);
	cr_assert_str_eq(bad, "shop/frontend");
	cr_assert_eq(spiffe_allow_parse("a/*,b/*,c/*", a, 2, bad, sizeof(bad)), -E2BIG);
}
