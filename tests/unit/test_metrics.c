// SPDX-License-Identifier: GPL-2.0-only
/* The Prometheus side of the admin API: the exposition writer (labels
 * escaped, histograms cumulative), the latency histograms of the proxy
 * (buckets, quantiles, the recent windows), and the strict parser the
 * integration tests judge GET /metrics with — which must itself reject what
 * the format forbids.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "admin/metrics.h"
#include "promtext.h"
#include "proxy/latency.h"

static struct prom_doc *parse_ok(const char *text)
{
	char err[256] = "";
	struct prom_doc *d = promtext_parse(text, err, sizeof(err));

	cr_assert_not_null(d, "rejected: %s\n%s", err, text);
	return d;
}

static void parse_bad(const char *text, const char *why)
{
	char err[256] = "";
	struct prom_doc *d = promtext_parse(text, err, sizeof(err));

	cr_expect_null(d, "accepted (%s):\n%s", why, text);
	cr_expect(strstr(err, why) != NULL, "error '%s' does not say '%s'", err, why);
	promtext_free(d);
}

Test(prom_writer, labels_are_escaped_and_joined)
{
	char l[128] = "";

	cr_assert_eq(prom_label(l, sizeof(l), "a", "x"), 0);
	cr_assert_eq(prom_label(l, sizeof(l), "b", "q\"uo\\te\nnl"), 0);
	cr_expect_str_eq(l, "a=\"x\",b=\"q\\\"uo\\\\te\\nnl\"");
}

Test(prom_writer, a_label_that_does_not_fit_is_dropped_whole)
{
	char l[16] = "";

	cr_assert_eq(prom_label(l, sizeof(l), "a", "x"), 0);
	cr_expect_eq(prom_label(l, sizeof(l), "long", "0123456789"), -ENAMETOOLONG);
	cr_expect_str_eq(l, "a=\"x\"");
}

Test(prom_writer, families_and_histograms_parse_strictly)
{
	static const uint64_t bounds[3] = { 1000, 10000, 100000 };
	const uint64_t counts[4] = { 2, 0, 5, 1 };
	struct prom p = { 0 };
	struct prom_doc *d;

	prom_family(&p, "weft_x_total", "counter", "Things.");
	prom_u64(&p, "weft_x_total", "k=\"v\"", 7);
	prom_u64(&p, "weft_x_total", "k=\"w\"", 0);
	prom_family(&p, "weft_up", "gauge", "Up.");
	prom_f64(&p, "weft_up", "", 1.5);
	prom_family(&p, "weft_lat_seconds", "histogram", "Latency.");
	prom_histogram(&p, "weft_lat_seconds", "svc=\"a\"", bounds, 3, counts, 123456);
	prom_histogram(&p, "weft_lat_seconds", "", bounds, 3, counts, 0);
	cr_assert_eq(p.err, 0);
	d = parse_ok(p.buf);
	cr_expect_eq(promtext_families(d), 3);
	cr_expect_eq(promtext_value(d, "weft_x_total", "k=\"v\""), 7);
	cr_expect_eq(promtext_value(d, "weft_up", ""), 1.5);
	cr_expect_eq(promtext_value(d, "weft_lat_seconds_bucket", "svc=\"a\",le=\"0.001\""), 2);
	cr_expect_eq(promtext_value(d, "weft_lat_seconds_bucket", "svc=\"a\",le=\"0.01\""), 2);
	cr_expect_eq(promtext_value(d, "weft_lat_seconds_bucket", "svc=\"a\",le=\"0.1\""), 7);
	cr_expect_eq(promtext_value(d, "weft_lat_seconds_bucket", "svc=\"a\",le=\"+Inf\""), 8);
	cr_expect_eq(promtext_value(d, "weft_lat_seconds_count", "svc=\"a\""), 8);
	cr_expect(fabs(promtext_value(d, "weft_lat_seconds_sum", "svc=\"a\"") - 0.123456) < 1e-9);
	cr_expect_eq(promtext_value(d, "weft_lat_seconds_bucket", "le=\"+Inf\""), 8);
	promtext_free(d);
	free(p.buf);
}

#define H(name, type) "# HELP " name " h\n# TYPE " name " " type "\n"

Test(promtext, rejects_what_the_format_forbids)
{
	parse_bad("weft_a 1\n", "before its # TYPE");
	parse_bad(H("weft_a", "gauge") "# TYPE weft_a gauge\nweft_a 1\n", "second # TYPE");
	parse_bad(H("weft_a", "gauge") "weft_a 1\n" H("weft_b", "gauge") "weft_b 1\nweft_a{x=\"1\"} 2\n",
		  "one block");
	parse_bad(H("weft_a", "gauge") "weft_a{x=\"1\"} 1\nweft_a{x=\"1\"} 2\n", "duplicate series");
	parse_bad(H("weft_a", "gauge") "weft_a{__x=\"1\"} 1\n", "bad label name");
	parse_bad(H("weft_a", "gauge") "weft_a{x=\"\\t\"} 1\n", "bad escape");
	parse_bad(H("weft_a", "gauge") "weft_a{x=\"1\",x=\"2\"} 1\n", "twice");
	parse_bad(H("weft_a", "counter") "weft_a 1\n", "not named *_total");
	parse_bad(H("weft_a_total", "counter") "weft_a_total -1\n", "negative");
	parse_bad(H("weft_a", "gauge") "weft_a one\n", "not a float");
	parse_bad(H("weft_a", "gauge") "weft_a 1", "newline");
	parse_bad(H("weft_a", "gauge") "\nweft_a 1\n", "empty line");
	parse_bad(H("other", "gauge") "other 1\n", "weft_ prefix");
	parse_bad(H("weft_a", "gauge") "weft_a  1\n", "bad value");
	parse_bad(H("weft_a", "bogus") "weft_a 1\n", "bad type");
	parse_bad(H("weft_h", "histogram") "weft_h_bucket{le=\"1\"} 3\nweft_h_bucket{le=\"2\"} 2\n"
		  "weft_h_bucket{le=\"+Inf\"} 3\nweft_h_sum 1\nweft_h_count 3\n", "not cumulative");
	parse_bad(H("weft_h", "histogram") "weft_h_bucket{le=\"1\"} 3\nweft_h_sum 1\nweft_h_count 3\n",
		  "no +Inf");
	parse_bad(H("weft_h", "histogram") "weft_h_bucket{le=\"+Inf\"} 3\nweft_h_sum 1\nweft_h_count 4\n",
		  "!= _count");
	parse_bad(H("weft_h", "histogram") "weft_h_bucket 3\n", "without le");
}

Test(promtext, accepts_comments_timestamps_and_special_values)
{
	struct prom_doc *d = parse_ok("# a comment\n" H("weft_a", "gauge")
				      "weft_a{x=\"1\"} NaN\nweft_a{x=\"2\"} +Inf 1700000000000\n"
				      "weft_a{x=\"3\",} -2.5e-3\n");

	cr_expect_eq(promtext_samples(d), 3);
	cr_expect_str_eq(promtext_type(d, "weft_a"), "gauge");
	promtext_free(d);
}

/* ---------------------------------------------------------------- latency */

Test(latency, observations_land_in_their_bucket_and_quantiles_interpolate)
{
	struct lat l = { 0 };
	struct lat_hist r;

	for (int i = 0; i < 100; i++)
		lat_record(&l, 50, 0);		/* (0, 100] */
	for (int i = 0; i < 100; i++)
		lat_record(&l, 2000, 0);	/* (1000, 2500] */
	cr_expect_eq(l.total.count[0], 100);
	cr_expect_eq(l.total.count[4], 100);
	cr_expect_eq(l.total.n, 200);
	cr_expect_eq(l.total.sum_us, 100 * 50 + 100 * 2000);
	cr_expect_eq(lat_quantile_us(&l.total, 0.25), 50, "half way through the first bucket");
	cr_expect_eq(lat_quantile_us(&l.total, 1.0), 2500);
	cr_expect_eq(lat_quantile_us(&l.total, 0.75), 1750);
	lat_record(&l, 60000000, 0);	/* past the last bound: +Inf */
	cr_expect_eq(l.total.count[LAT_BUCKETS - 1], 1);
	cr_expect_eq(lat_quantile_us(&l.total, 1.0), lat_bounds_us[LAT_BUCKETS - 2]);
	memset(&r, 0, sizeof(r));
	cr_expect_eq(lat_quantile_us(&r, 0.5), 0, "empty");
}

Test(latency, recent_keeps_one_to_two_windows)
{
	struct lat l = { 0 };
	struct lat_hist r;

	lat_record(&l, 100, 1000);
	lat_recent(&l, 5000, &r);
	cr_expect_eq(r.n, 1);
	lat_recent(&l, LAT_WINDOW_MS + 500, &r);
	cr_expect_eq(r.n, 1, "its window ended but is the previous one: still recent");
	lat_record(&l, 100, LAT_WINDOW_MS + 500);	/* rotates: the first is now previous */
	lat_recent(&l, LAT_WINDOW_MS + 600, &r);
	cr_expect_eq(r.n, 2);
	lat_recent(&l, 3 * LAT_WINDOW_MS + 1, &r);
	cr_expect_eq(r.n, 0);
	lat_record(&l, 100, 5 * LAT_WINDOW_MS);	/* a long silence clears both */
	lat_recent(&l, 5 * LAT_WINDOW_MS, &r);
	cr_expect_eq(r.n, 1);
	cr_expect_eq(l.total.n, 3);
}

Test(prom_writer, pod_inbound_families_label_namespace_pod_port_and_parse)
{
	struct prom_inbound rows[2] = {
		{ "mesh", "web-0", { .port = 8080, .conns_total = 3, .conns_active = 1,
				     .bytes_in = 100, .bytes_out = 2000, .requests = 3,
				     .responses = { 0, 1, 0, 1, 1 }, .connect_errors = 2 } },
		{ "mesh", "web-0", { .port = 5432, .conns_total = 1 } },
	};
	struct prom p = { 0 };
	struct prom_doc *d;

	prom_inbound_families(&p, rows, 2);
	cr_assert_eq(p.err, 0);
	d = parse_ok(p.buf);
	cr_expect_eq(promtext_families(d), 6);
#define L "namespace=\"mesh\",pod=\"web-0\",port=\"8080\""
	cr_expect_eq(promtext_value(d, "weft_pod_inbound_connections_total", L), 3);
	cr_expect_eq(promtext_value(d, "weft_pod_inbound_connections_active", L), 1);
	cr_expect_eq(promtext_value(d, "weft_pod_inbound_bytes_total", L ",direction=\"in\""), 100);
	cr_expect_eq(promtext_value(d, "weft_pod_inbound_bytes_total", L ",direction=\"out\""),
		     2000);
	cr_expect_eq(promtext_value(d, "weft_pod_inbound_requests_total", L), 3);
	cr_expect_eq(promtext_value(d, "weft_pod_inbound_responses_total", L ",class=\"2xx\""), 1);
	cr_expect_eq(promtext_value(d, "weft_pod_inbound_responses_total", L ",class=\"4xx\""), 1);
	cr_expect_eq(promtext_value(d, "weft_pod_inbound_responses_total", L ",class=\"3xx\""), 0);
	cr_expect_eq(promtext_value(d, "weft_pod_inbound_connect_errors_total", L), 2);
#undef L
	cr_expect_eq(promtext_value(d, "weft_pod_inbound_connections_total",
				    "namespace=\"mesh\",pod=\"web-0\",port=\"5432\""),
		     1);
	promtext_free(d);
	free(p.buf);
}
