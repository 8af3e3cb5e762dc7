// SPDX-License-Identifier: GPL-2.0-only
/* meshctl's views of the agent's answers (services, service, pod, conns,
 * trace, top) rendered from canned documents, its per-command options, and
 * the query helpers on both sides (meshctl_query_add, http_query_get).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "admin/cmds.h"
#include "admin/reply.h"
#include "admin/http.h"
#include "admin/reply.h"
#include "meshctl.h"

static char *render(int (*fn)(FILE *, struct json_object *), const char *doc, int *err)
{
	struct json_object *o = json_tokener_parse(doc);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(o, "bad test document");
	cr_assert_not_null(f);
	*err = fn(f, o);
	fclose(f);
	json_object_put(o);
	return buf;
}

#define LAT(n, p99) "{\"count\":" #n ",\"sum_us\":0,\"bounds_us\":[100,1000],\"counts\":[0,0,0]," \
	"\"recent\":{\"window_s\":20,\"count\":" #n ",\"p50_us\":100,\"p90_us\":200,\"p99_us\":" #p99 "}}"

static const char services_doc[] =
	"{\"api\":1,\"services\":[{\"namespace\":\"shop\",\"name\":\"web\",\"port_name\":\"http\","
	"\"vip\":\"198.19.0.10:80\",\"policy\":{\"lb\":\"least-request\",\"protocol\":\"auto\","
	"\"max_connections\":10,\"max_pending\":5,\"max_requests\":10},"
	"\"active\":2,\"requests_active\":0,\"upstream_open\":10,\"upstream_pending\":0,\"ejected\":1,"
	"\"total\":{\"connections\":40,\"requests\":0,\"responses\":{\"5xx\":3},"
	"\"circuit_open\":{\"max_connections\":4}},"
	"\"latency\":{\"connect\":" LAT(40, 2500) ",\"request\":" LAT(0, 0) "},"
	"\"endpoints\":[{\"address\":\"198.18.2.11:8080\",\"ready\":true,\"health\":\"healthy\","
	"\"ejected_for_ms\":0,\"total\":{\"connections\":30}},{\"address\":\"198.18.2.12:8080\","
	"\"ready\":true,\"health\":\"ejected\",\"ejected_for_ms\":12000,\"consecutive_failures\":5,"
	"\"total\":{\"connections\":10,\"connect_failures\":5,\"ejections\":1}},"
	"{\"address\":\"198.18.2.13:8080\",\"ready\":false,\"health\":\"healthy\"}]}]}";

Test(meshctl_views, services_table)
{
	int err;
	char *out = render(cmd_services_render, services_doc, &err);

	cr_assert_eq(err, 0);
	cr_expect(!strncmp(out, "NAMESPACE   NAME   PORT   VIP", 29), "%s", out);
	cr_expect_not_null(strstr(out, "shop        web    http   198.19.0.10:80   2/3     1"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "2.5ms"), "recent connect p99 when no requests:\n%s", out);
	free(out);
	out = render(cmd_services_render, "{\"api\":1}", &err);
	cr_expect_eq(err, -EPROTO);
	free(out);
}

Test(meshctl_views, service_detail_says_circuit_open_and_ejection)
{
	int err;
	char *out = render(cmd_service_render, services_doc, &err);

	cr_assert_eq(err, 0);
	cr_expect_not_null(strstr(out, "Service:      shop/web port http\n"), "%s", out);
	cr_expect_not_null(strstr(out, "Circuit:      OPEN (max-connections): upstream 10/10"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "failed fast 4 times"), "%s", out);
	cr_expect_not_null(strstr(out, "connect  p50 100us  p90 200us  p99 2.5ms  (40 in the last 20s)"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "198.18.2.12:8080   yes     ejected   12s"), "%s", out);
	cr_expect_not_null(strstr(out, "198.18.2.13:8080   no"), "%s", out);
	free(out);
}

Test(meshctl_views, conns_table)
{
	int err;
	char *out = render(cmd_conns_render,
			   "{\"api\":1,\"conns\":[{\"pod\":\"shop/a\",\"client\":\"127.0.0.1:4000\","
			   "\"destination\":\"198.19.0.10:80\",\"service\":\"shop/web\","
			   "\"endpoint\":\"198.18.2.11:8080\",\"age_ms\":65000,\"bytes_out\":2048,"
			   "\"bytes_in\":100,\"protocol\":\"tcp\",\"state\":\"established\","
			   "\"mtls\":\"client\",\"peer_identity\":\"spiffe://td/ns/shop/sa/web\"},"
			   "{\"pod\":\"shop/a\",\"client\":null,\"destination\":\"1.2.3.4:5\","
			   "\"service\":null,\"endpoint\":null,\"age_ms\":5,\"bytes_out\":0,"
			   "\"bytes_in\":0,\"protocol\":\"detecting\",\"state\":\"detecting\"}]}",
			   &err);

	cr_assert_eq(err, 0);
	cr_expect_not_null(strstr(out, "198.18.2.11:8080   1m5s   2.0KiB   100B   tcp         established"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "(passthrough)"), "%s", out);
	cr_expect_not_null(strstr(out, "established   to spiffe://td/ns/shop/sa/web"), "%s", out);
	cr_expect_not_null(strstr(out, "detecting     -"), "%s", out);
	free(out);
}

Test(meshctl_views, identities_table)
{
	int err;
	char *out = render(cmd_identities_render,
			   "{\"api\":1,\"enabled\":true,\"trust_domain\":\"cluster.local\","
			   "\"issuer\":\"standalone\",\"trust_anchors\":2,\"identities\":[{\"id\":"
			   "\"spiffe://cluster.local/ns/shop/sa/web\",\"subject\":\"/O=weft\","
			   "\"serial\":\"0A1B\",\"issuer\":\"/CN=ca\",\"not_after\":1800000000,"
			   "\"renew_at\":1799956800}]}",
			   &err);

	cr_assert_eq(err, 0);
	cr_expect_not_null(strstr(out, "trust domain cluster.local, 2 trust anchor(s)"), "%s", out);
	cr_expect_not_null(strstr(out, "spiffe://cluster.local/ns/shop/sa/web   /O=weft   0A1B"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "2027-01-15T08:00:00Z"), "%s", out);
	free(out);
	out = render(cmd_identities_render, "{\"api\":1,\"enabled\":false,\"identities\":[]}", &err);
	cr_assert_eq(err, 0);
	cr_expect_not_null(strstr(out, "mTLS off"), "%s", out);
	free(out);
}

Test(meshctl_views, trace_steps_endpoints_and_result)
{
	int err;
	char *out = render(cmd_trace_render,
			   "{\"api\":1,\"pod\":\"shop/a\",\"destination\":\"198.19.0.10:80\","
			   "\"steps\":[{\"check\":\"enrollment\",\"result\":\"pass\",\"detail\":\"meshed\"},"
			   "{\"check\":\"excluded port\",\"result\":\"pass\",\"detail\":\"port 80\"}],"
			   "\"endpoints\":[{\"address\":\"198.18.2.11:8080\",\"eligible\":true,"
			   "\"reason\":\"ready and healthy\"},{\"address\":\"198.18.2.12:8080\","
			   "\"eligible\":false,\"reason\":\"not ready\"}],"
			   "\"outcome\":\"captured; service shop/web → endpoint 198.18.2.11:8080\"}",
			   &err);

	cr_assert_eq(err, 0);
	cr_expect(!strncmp(out, "Trace shop/a -> 198.19.0.10:80\n\n 1. enrollment", 45), "%s", out);
	cr_expect_not_null(strstr(out, "198.18.2.12:8080   no         not ready"), "%s", out);
	cr_expect_not_null(strstr(out, "\nResult: captured; service shop/web"), "%s", out);
	free(out);
}

Test(meshctl_views, top_rates_from_two_samples)
{
	const char *a = "{\"api\":1,\"services\":[{\"namespace\":\"shop\",\"name\":\"web\","
			"\"port_name\":\"http\",\"vip\":\"v\",\"active\":1,\"total\":{\"connections\":10,"
			"\"requests\":100,\"responses\":{\"5xx\":0}},\"latency\":{\"request\":"
			"{\"count\":100,\"bounds_us\":[1000,2000],\"counts\":[100,0,0]}}}]}";
	const char *b = "{\"api\":1,\"services\":[{\"namespace\":\"shop\",\"name\":\"web\","
			"\"port_name\":\"http\",\"vip\":\"v\",\"active\":3,\"total\":{\"connections\":30,"
			"\"requests\":300,\"responses\":{\"5xx\":20}},\"latency\":{\"request\":"
			"{\"count\":300,\"bounds_us\":[1000,2000],\"counts\":[100,200,0]}}}]}";
	struct json_object *ja = json_tokener_parse(a), *jb = json_tokener_parse(b);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_eq(cmd_top_render(f, ja, jb, 2.0), 0);
	fclose(f);
	/* 20 conns, 200 requests and 20 errors in 2 s; the 200 new requests all
	 * in (1ms, 2ms]: p50 1.5ms.
	 */
	cr_expect_not_null(strstr(buf, "shop        web    http   3        10.0     100.0   10.0    "
				   "10.0   1.5ms   2.0ms"), "%s", buf);
	free(buf);
	json_object_put(ja);
	json_object_put(jb);
}

Test(meshctl_views, pod_detail)
{
	int err;
	char *out = render(cmd_pod_render,
			   "{\"namespace\":\"shop\",\"name\":\"a\",\"uid\":\"u\",\"netns\":\"/n\","
			   "\"netns_cookie\":7,\"ips\":[\"198.18.1.2\"],\"meshed\":true,"
			   "\"reason\":\"namespace shop has weft.io/mesh=enabled\","
			   "\"listeners\":[\"127.0.0.1:15001\"],\"listening\":false,"
			   "\"capture_in_place\":false,\"capture_problem\":\"table inet weft in the pod's netns is missing\","
			   "\"exclude_ports\":[53],\"exclude_cidrs\":[],\"exclude_inbound_ports\":[9000],"
			   "\"connections\":{\"active\":1,\"total\":9}}",
			   &err);

	cr_assert_eq(err, 0);
	cr_expect_not_null(strstr(out, "Netns:        /n (cookie 7)\n"), "%s", out);
	cr_expect_not_null(strstr(out, "(NOT listening: restart the agent)"), "%s", out);
	cr_expect_not_null(strstr(out, "NOT in place: table inet weft in the pod's netns is missing"),
			   "%s", out);
	cr_expect_not_null(
		strstr(out, "Excluded:     outbound ports 53; outbound CIDRs -; inbound ports 9000\n"),
		"%s", out);
	free(out);
}

Test(meshctl_views, pod_fail_open)
{
	static const char *const fmt =
		"{\"namespace\":\"shop\",\"name\":\"a\",\"meshed\":true,\"ips\":[],"
		"\"listeners\":[],\"exclude_ports\":[],\"exclude_cidrs\":[],"
		"\"exclude_inbound_ports\":[],\"capture_in_place\":true,%s"
		"\"connections\":{\"active\":0,\"total\":0}}";
	char json[1024];
	char *out;
	int err;

	snprintf(json, sizeof(json), fmt,
		 "\"fail_open\":{\"after_ms\":5000,\"heartbeat\":\"fresh\",\"age_ms\":400,"
		 "\"left_ms\":4600},");
	out = render(cmd_pod_render, json, &err);
	cr_assert_eq(err, 0);
	cr_expect_not_null(strstr(out, "Fail-open:    yes (weft.io/fail-open): heartbeat fresh, "
				   "400 ms old; capture is skipped once it is over 5000 ms old\n"),
			   "%s", out);
	free(out);
	snprintf(json, sizeof(json), fmt,
		 "\"fail_open\":{\"after_ms\":5000,\"heartbeat\":\"stale\",\"age_ms\":9000,"
		 "\"left_ms\":0},");
	out = render(cmd_pod_render, json, &err);
	cr_expect_not_null(strstr(out, "NOW BYPASSING THE MESH"), "%s", out);
	free(out);
	snprintf(json, sizeof(json), fmt, "\"fail_open\":null,");
	out = render(cmd_pod_render, json, &err);
	cr_expect_not_null(strstr(out, "Fail-open:    no (fails closed while no agent runs)\n"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "DNS:          not captured"), "%s", out);
	free(out);
	snprintf(json, sizeof(json), fmt, "\"dns_captured\":true,");
	out = render(cmd_pod_render, json, &err);
	cr_expect_not_null(strstr(out, "DNS:          captured: the agent answers"), "%s", out);
	free(out);
}

Test(meshctl_views, pod_inbound_table)
{
	int err;
	char *out = render(cmd_pod_render,
			   "{\"namespace\":\"shop\",\"name\":\"b\",\"meshed\":true,"
			   "\"ips\":[],\"listeners\":[],\"exclude_ports\":[],\"exclude_cidrs\":[],"
			   "\"connections\":{\"active\":0,\"total\":4},"
			   "\"inbound\":[{\"port\":8080,\"connections\":3,\"active\":1,"
			   "\"bytes_in\":120,\"bytes_out\":4096,\"requests\":3,"
			   "\"responses\":{\"1xx\":0,\"2xx\":1,\"3xx\":0,\"4xx\":1,\"5xx\":1},"
			   "\"connect_errors\":0},{\"port\":0,\"connections\":1,\"active\":0,"
			   "\"bytes_in\":0,\"bytes_out\":0,\"requests\":0,\"responses\":{},"
			   "\"connect_errors\":1}]}",
			   &err);

	cr_assert_eq(err, 0);
	cr_expect_not_null(strstr(out, "\nInbound:\nPORT    CONNS   ACTIVE   BYTES-IN   BYTES-OUT"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "8080    3       1        120        4096        3          0     "
				   "1     0     1     1     0"), "%s", out);
	cr_expect_not_null(strstr(out, "other   1       0"), "%s", out);
	free(out);
}

Test(meshctl_views, pod_without_inbound_prints_no_inbound_table)
{
	int err;
	char *out = render(cmd_pod_render,
			   "{\"namespace\":\"shop\",\"name\":\"b\",\"meshed\":false,"
			   "\"connections\":{\"active\":0,\"total\":0},\"inbound\":[]}",
			   &err);

	cr_assert_eq(err, 0);
	cr_expect_null(strstr(out, "Inbound"), "%s", out);
	free(out);
}

/* ---------------------------------------------------------------- options and queries */

Test(meshctl_views, command_options_are_taken_out_in_any_order)
{
	char *argv[] = { "conns", "--pod", "a/b", "x", "--limit=5", "--once", NULL };
	int argc = 6;
	const char *pod = NULL, *limit = NULL;
	bool once = false;
	const struct cmd_opt opts[] = {
		{ "pod", &pod, NULL }, { "limit", &limit, NULL }, { "once", NULL, &once },
	};
	char *ebuf = NULL;
	size_t elen = 0;
	struct meshctl m = { .err = open_memstream(&ebuf, &elen) };

	cr_assert_eq(meshctl_cmd_opts(&m, &argc, argv, opts, 3), MESHCTL_OK);
	cr_expect_eq(argc, 2);
	cr_expect_str_eq(argv[1], "x");
	cr_expect_str_eq(pod, "a/b");
	cr_expect_str_eq(limit, "5");
	cr_expect(once);
	{
		char *bad[] = { "conns", "--pid", "x" };
		int n = 3;

		cr_expect_eq(meshctl_cmd_opts(&m, &n, bad, opts, 3), MESHCTL_USAGE);
	}
	{
		char *bad[] = { "conns", "--pod" };
		int n = 2;

		cr_expect_eq(meshctl_cmd_opts(&m, &n, bad, opts, 3), MESHCTL_USAGE);
	}
	fclose(m.err);
	cr_expect_not_null(strstr(ebuf, "unknown option '--pid' for conns"), "%s", ebuf);
	cr_expect_not_null(strstr(ebuf, "option '--pod' needs a value"), "%s", ebuf);
	free(ebuf);
}

Test(meshctl_views, query_encoding_round_trips)
{
	char url[128] = "/v1/trace", v[64];
	const char *q;

	cr_assert_eq(meshctl_query_add(url, sizeof(url), "pod", "shop/a b"), 0);
	cr_assert_eq(meshctl_query_add(url, sizeof(url), "dest", "[fd00::1]:80"), 0);
	cr_expect_str_eq(url, "/v1/trace?pod=shop/a%20b&dest=%5Bfd00::1%5D:80");
	q = strchr(url, '?') + 1;
	cr_expect_eq(http_query_get(q, "pod", v, sizeof(v)), 1);
	cr_expect_str_eq(v, "shop/a b");
	cr_expect_eq(http_query_get(q, "dest", v, sizeof(v)), 1);
	cr_expect_str_eq(v, "[fd00::1]:80");
	cr_expect_eq(http_query_get(q, "po", v, sizeof(v)), 0);
	cr_expect_eq(http_query_get("a=%4", "a", v, sizeof(v)), -EINVAL);
	cr_expect_eq(http_query_get("a=%00", "a", v, sizeof(v)), -EINVAL);
	cr_expect_eq(http_query_get("a=1+2", "a", v, sizeof(v)), 1);
	cr_expect_str_eq(v, "1 2");
	cr_expect_eq(http_query_get("a=0123456789", "a", v, 5), -ENAMETOOLONG);
	cr_expect_eq(http_query_get("flag&a=1", "flag", v, sizeof(v)), 1);
	cr_expect_str_eq(v, "");
	cr_expect_eq(meshctl_query_add(url, 20, "x", "y"), -ENAMETOOLONG);
}

Test(meshctl_views, unknown_query_parameters_and_refs)
{
	static const char *const known[] = { "pod", "dest", NULL };
	char name[32], ns[8], n[8];

	cr_expect_eq(http_query_unknown("pod=a&dest=b", known, name, sizeof(name)), 0);
	cr_expect_eq(http_query_unknown("pod=a&podx=b", known, name, sizeof(name)), 1);
	cr_expect_str_eq(name, "podx");
	cr_expect_eq(http_query_unknown("", known, name, sizeof(name)), 0);
	cr_expect_eq(admin_split_ref("shop/web", ns, sizeof(ns), n, sizeof(n)), 0);
	cr_expect_str_eq(ns, "shop");
	cr_expect_str_eq(n, "web");
	cr_expect_eq(admin_split_ref("shop", ns, sizeof(ns), n, sizeof(n)), -EINVAL);
	cr_expect_eq(admin_split_ref("/web", ns, sizeof(ns), n, sizeof(n)), -EINVAL);
	cr_expect_eq(admin_split_ref("a/b/c", ns, sizeof(ns), n, sizeof(n)), -EINVAL);
	cr_expect_eq(admin_split_ref("toolongns/b", ns, sizeof(ns), n, sizeof(n)), -EINVAL);
}
