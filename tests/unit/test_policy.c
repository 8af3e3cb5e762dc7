// SPDX-License-Identifier: GPL-2.0-only
/* agent/proxy/policy.c: defaults, per-service weft.io/ annotations, invalid
 * values kept at their default, and protocol detection (proxy/http.c).
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "model/catalogue.h"
#include "proxy/conn.h"
#include "proxy/policy.h"

static struct cat_service svc_with(struct obj_annotation *a, size_t n)
{
	struct cat_service s = { .annotations = a, .n_annotations = n };

	strcpy(s.ns, "shop");
	strcpy(s.name, "web");
	return s;
}

static void set(struct obj_annotation *a, const char *key, const char *value)
{
	snprintf(a->key, sizeof(a->key), "%s", key);
	snprintf(a->value, sizeof(a->value), "%s", value);
}

Test(policy, builtin_defaults)
{
	struct policy p;

	policy_builtin(&p);
	cr_assert_eq(p.lb, LB_LEAST_REQUEST);
	cr_assert_eq(p.protocol, PROTO_AUTO);
	cr_assert_eq(p.detect_ms, 100);
	cr_assert_eq(p.retries, 2);
	cr_assert_eq(p.retry_budget_pct, 20);
	cr_assert_eq(p.outlier_failures, 5);
	cr_assert_eq(p.request_timeout_ms, 0);
	cr_assert_eq(policy_weight_of(&p, &(struct addr){ .family = AF_INET }), 1);
}

Test(policy, annotations_override_the_defaults)
{
	struct obj_annotation a[8];
	struct policy def, p;
	struct cat_service s;
	struct addr ep;

	policy_builtin(&def);
	set(&a[0], "weft.io/lb", "round-robin");
	set(&a[1], "weft.io/connect-timeout", "200ms");
	set(&a[2], "weft.io/retries", "4");
	set(&a[3], "weft.io/max-connections", "10");
	set(&a[4], "weft.io/outlier-base-ejection", "2s");
	set(&a[5], "weft.io/protocol", "http");
	set(&a[6], "weft.io/weights", "198.18.2.11=3, 198.18.2.12=1 fd00:198:2::11=7");
	set(&a[7], "weft.io/request-timeout", "1m");
	s = svc_with(a, 8);
	cr_assert_eq(policy_for_service(&p, &def, &s), 0);
	cr_assert_eq(p.lb, LB_ROUND_ROBIN);
	cr_assert_eq(p.connect_timeout_ms, 200);
	cr_assert_eq(p.retries, 4);
	cr_assert_eq(p.max_connections, 10);
	cr_assert_eq(p.outlier_base_ms, 2000);
	cr_assert_eq(p.protocol, PROTO_HTTP);
	cr_assert_eq(p.request_timeout_ms, 60000);
	cr_assert_eq(p.n_weights, 3);
	cr_assert_eq(addr_parse_ip("198.18.2.11", &ep), 0);
	ep.port = 8080;
	cr_assert_eq(policy_weight_of(&p, &ep), 3);
	cr_assert_eq(addr_parse_ip("fd00:198:2::11", &ep), 0);
	cr_assert_eq(policy_weight_of(&p, &ep), 7);
	cr_assert_eq(addr_parse_ip("198.18.2.99", &ep), 0);
	cr_assert_eq(policy_weight_of(&p, &ep), 1);
	/* Unchanged fields keep the defaults. */
	cr_assert_eq(p.retry_budget_pct, def.retry_budget_pct);
}

Test(policy, invalid_values_and_unknown_keys_keep_the_defaults)
{
	struct obj_annotation a[7];
	struct policy def, p;
	struct cat_service s;

	policy_builtin(&def);
	set(&a[0], "weft.io/retries", "many");
	set(&a[1], "weft.io/retries", "99");		/* over POLICY_RETRIES_MAX */
	set(&a[2], "weft.io/lb", "fastest");
	set(&a[3], "weft.io/connect-timeout", "0ms");	/* below 1 ms */
	set(&a[4], "weft.io/weights", "198.18.2.11=0");
	set(&a[5], "weft.io/retires", "3");		/* a typo */
	set(&a[6], "weft.io/max-pending", "-1");
	s = svc_with(a, 7);
	cr_assert_eq(policy_for_service(&p, &def, &s), 7);
	cr_assert(!memcmp(&p, &def, sizeof(p)), "an invalid annotation changed the policy");
}

Test(policy, max_ejection_is_never_below_the_base)
{
	struct obj_annotation a[1];
	struct policy def, p;
	struct cat_service s;

	policy_builtin(&def);
	def.outlier_max_ms = 1000;
	set(&a[0], "weft.io/outlier-base-ejection", "5s");
	s = svc_with(a, 1);
	cr_assert_eq(policy_for_service(&p, &def, &s), 0);
	cr_assert_eq(p.outlier_max_ms, 5000);
}

Test(policy, names_round_trip)
{
	enum lb_algo lb;
	enum px_proto pr;

	cr_assert_eq(policy_lb_parse("random", &lb), 0);
	cr_assert_str_eq(policy_lb_name(lb), "random");
	cr_assert_eq(policy_proto_parse("tcp", &pr), 0);
	cr_assert_str_eq(policy_proto_name(pr), "tcp");
	cr_assert_neq(policy_lb_parse("Random", &lb), 0);
	cr_assert_neq(policy_proto_parse("", &pr), 0);
}

Test(detect, http_methods_and_prefixes)
{
	cr_assert_eq(relay_http.detect("GET / HTTP/1.1\r\n", 16), DETECT_YES);
	cr_assert_eq(relay_http.detect("OPTIONS ", 8), DETECT_YES);
	cr_assert_eq(relay_http.detect("CONNECT a:443 HTTP/1.1", 22), DETECT_YES);
	cr_assert_eq(relay_http.detect("GE", 2), DETECT_MORE);
	cr_assert_eq(relay_http.detect("P", 1), DETECT_MORE, "POST, PUT or PATCH");
	cr_assert_eq(relay_http.detect("DELETE", 6), DETECT_MORE, "the space is missing yet");
	cr_assert_eq(relay_http.detect("IDENT\n", 6), DETECT_NO);
	cr_assert_eq(relay_http.detect("PRI * HTTP/2.0", 14), DETECT_NO,
		     "h2 prior knowledge is opaque");
	cr_assert_eq(relay_http.detect("\x16\x03\x01", 3), DETECT_NO, "TLS is opaque");
	cr_assert_eq(relay_http.detect("get / HTTP/1.1", 14), DETECT_NO,
		     "methods are case-sensitive");
}
