// SPDX-License-Identifier: GPL-2.0-only
/* `meshctl services`: every service port of the catalogue in force, one row
 * each (GET /v1/services); `meshctl service NS/NAME`: one service in detail,
 * per port — VIP, policy, circuit-breaker state, traffic, recent latency and
 * each endpoint's health, ejection and load.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "meshctl.h"

static const char *const svc_headers[] = {
	"NAMESPACE", "NAME",  "PORT", "VIP", "READY", "EJECTED",
	"ACTIVE",    "CONNS", "REQS", "5XX", "P99",   "LB",
};
#define ADDR_COL 80	/* "[IPv6]:port (alloc)" */
#define N_SVC_COLS (sizeof(svc_headers) / sizeof(svc_headers[0]))

static const char *const ep_headers[] = {
	"ENDPOINT", "READY", "HEALTH", "EJECTED-FOR",	"FAILS",
	"ACTIVE",   "CONNS", "REQS",   "CONNECT-FAILS", "EJECTIONS",
};
#define N_EP_COLS (sizeof(ep_headers) / sizeof(ep_headers[0]))

static struct json_object *services_of(struct json_object *resp)
{
	struct json_object *arr = out_path(resp, "services");

	return arr && json_object_is_type(arr, json_type_array) ? arr : NULL;
}

static size_t n_ready(struct json_object *svc)
{
	struct json_object *eps = out_path(svc, "endpoints");
	size_t n = 0;

	for (size_t i = 0; eps && i < json_object_array_length(eps); i++)
		n += out_bool(json_object_array_get_idx(eps, i), "ready");
	return n;
}

/* The recent p99: of HTTP requests when there were some, else of connects. */
static const char *recent_p99(char *buf, size_t len, struct json_object *svc)
{
	if (out_u64(svc, "latency.request.recent.count"))
		return out_us(buf, len, out_u64(svc, "latency.request.recent.p99_us"), 1);
	return out_us(buf, len, out_u64(svc, "latency.connect.recent.p99_us"), 1);
}

static int svc_row(struct out_table *t, struct json_object *s, void *ctx)
{
	char ready[48], ej[24], act[24], conns[24], reqs[24], x5[24], p99[24], vip[ADDR_COL];
	const char *port = out_str(s, "port_name");

	(void)ctx;
	snprintf(ready, sizeof(ready), "%zu/%zu", n_ready(s),
		 json_object_array_length(out_path(s, "endpoints")));
	snprintf(ej, sizeof(ej), "%llu", out_u64(s, "ejected"));
	snprintf(act, sizeof(act), "%llu", out_u64(s, "active"));
	snprintf(conns, sizeof(conns), "%llu", out_u64(s, "total.connections"));
	snprintf(reqs, sizeof(reqs), "%llu", out_u64(s, "total.requests"));
	snprintf(x5, sizeof(x5), "%llu", out_u64(s, "total.responses.5xx"));
	/* An allocated VIP is marked: no registry holds it (docs/dns.md). */
	snprintf(vip, sizeof(vip), "%s%s", out_str(s, "vip"),
		 out_bool(s, "vip_allocated") ? " (alloc)" : "");
	return out_table_add(t, (const char *const[]){ out_str(s, "namespace"), out_str(s, "name"),
						       port && port[0] ? port : "-",
						       vip, ready, ej, act, conns,
						       reqs, x5, recent_p99(p99, sizeof(p99), s),
						       out_str(s, "policy.lb") });
}

int cmd_services_render(FILE *out, struct json_object *resp)
{
	struct json_object *arr = services_of(resp);

	if (!arr)
		return -EPROTO;
	return out_table_rows(out, N_SVC_COLS, svc_headers, arr, svc_row, NULL);
}

static int ep_row(struct out_table *t, struct json_object *e, void *ctx)
{
	char ejf[24], fails[24], act[24], conns[24], reqs[24], cf[24], ejs[24];
	unsigned long long ms = out_u64(e, "ejected_for_ms");

	(void)ctx;
	snprintf(fails, sizeof(fails), "%llu", out_u64(e, "consecutive_failures"));
	snprintf(act, sizeof(act), "%llu", out_u64(e, "active"));
	snprintf(conns, sizeof(conns), "%llu", out_u64(e, "total.connections"));
	snprintf(reqs, sizeof(reqs), "%llu", out_u64(e, "total.requests"));
	snprintf(cf, sizeof(cf), "%llu", out_u64(e, "total.connect_failures"));
	snprintf(ejs, sizeof(ejs), "%llu", out_u64(e, "total.ejections"));
	return out_table_add(t, (const char *const[]){ out_str(e, "address"),
						       out_bool(e, "ready") ? "yes" : "no",
						       out_str(e, "health"),
						       ms ? out_ms(ejf, sizeof(ejf), ms) : "-",
						       fails, act, conns, reqs, cf, ejs });
}

static int endpoints_table(FILE *out, struct json_object *svc)
{
	return out_table_rows(out, N_EP_COLS, ep_headers, out_path(svc, "endpoints"), ep_row, NULL);
}

static const char *circuit(char *buf, size_t len, struct json_object *s)
{
	unsigned long long open = out_u64(s, "upstream_open"),
			   pend = out_u64(s, "upstream_pending");
	unsigned long long reqs = out_u64(s, "requests_active");
	unsigned long long mc = out_u64(s, "policy.max_connections");
	unsigned long long mp = out_u64(s, "policy.max_pending");
	unsigned long long mr = out_u64(s, "policy.max_requests");
	unsigned long long tripped = out_u64(s, "total.circuit_open.max_connections") +
				     out_u64(s, "total.circuit_open.max_pending") +
				     out_u64(s, "total.circuit_open.max_requests");
	const char *state = open >= mc	 ? "OPEN (max-connections)"
			    : pend >= mp ? "OPEN (max-pending)"
			    : reqs >= mr ? "OPEN for HTTP (max-requests)"
					 : "closed";

	snprintf(buf, len,
		 "%s: upstream %llu/%llu, connecting %llu/%llu, requests %llu/%llu; "
		 "failed fast %llu times",
		 state, open, mc, pend, mp, reqs, mr, tripped);
	return buf;
}

static void latency_line(FILE *out, struct json_object *s, const char *kind)
{
	char key[64], a[24], b[24], c[24];
	struct json_object *r;

	snprintf(key, sizeof(key), "latency.%s.recent", kind);
	r = out_path(s, key);
	if (!out_u64(r, "count")) {
		fprintf(out, "  %-8s -\n", kind);
		return;
	}
	fprintf(out, "  %-8s p50 %s  p90 %s  p99 %s  (%llu in the last %llus)\n", kind,
		out_us(a, sizeof(a), out_u64(r, "p50_us"), 0),
		out_us(b, sizeof(b), out_u64(r, "p90_us"), 0),
		out_us(c, sizeof(c), out_u64(r, "p99_us"), 0), out_u64(r, "count"),
		out_u64(r, "window_s"));
}

int cmd_service_render(FILE *out, struct json_object *resp)
{
	struct json_object *arr = services_of(resp);
	char buf[256];
	int err = 0;

	if (!arr || !json_object_array_length(arr))
		return -EPROTO;
	for (size_t i = 0; i < json_object_array_length(arr) && !err; i++) {
		struct json_object *s = json_object_array_get_idx(arr, i);
		const char *port = out_str(s, "port_name");

		if (i)
			fputc('\n', out);
		fprintf(out, "Service:      %s/%s port %s\n", out_str(s, "namespace"),
			out_str(s, "name"), port && port[0] ? port : "(unnamed)");
		fprintf(out, "VIP:          %s%s\n", out_str(s, "vip"),
			out_bool(s, "vip_allocated") ? " (allocated from --vip-range)" : "");
		fprintf(out, "Endpoints:    %zu ready of %zu, %llu ejected\n", n_ready(s),
			json_object_array_length(out_path(s, "endpoints")), out_u64(s, "ejected"));
		fprintf(out,
			"Policy:       %s, protocol %s, connect timeout %llums, retries %llu "
			"(budget %llu%%), eject after %llu failures for %llums\n",
			out_str(s, "policy.lb"), out_str(s, "policy.protocol"),
			out_u64(s, "policy.connect_timeout_ms"), out_u64(s, "policy.retries"),
			out_u64(s, "policy.retry_budget_percent"),
			out_u64(s, "policy.outlier_consecutive_failures"),
			out_u64(s, "policy.outlier_base_ejection_ms"));
		fprintf(out, "Circuit:      %s\n", circuit(buf, sizeof(buf), s));
		fprintf(out,
			"Traffic:      %llu connections (%llu active), %llu requests, 5xx %llu, "
			"retries %llu, no endpoint %llu, ejections %llu, panic %llu\n",
			out_u64(s, "total.connections"), out_u64(s, "active"),
			out_u64(s, "total.requests"), out_u64(s, "total.responses.5xx"),
			out_u64(s, "total.retries"), out_u64(s, "total.no_endpoint"),
			out_u64(s, "total.ejections"), out_u64(s, "total.panic"));
		fprintf(out, "Latency:\n");
		latency_line(out, s, "connect");
		latency_line(out, s, "request");
		fputc('\n', out);
		err = endpoints_table(out, s);
	}
	return err;
}

/* What a well-formed /v1/services answer has. */
#define SVC_ARRAY "\"services\" array of objects"

int cmd_services(struct meshctl *m, int argc, char **argv)
{
	int ret;

	if (argc == 2 && strchr(argv[1], '/'))
		return cmd_service(m, argc, argv);
	ret = meshctl_no_args(m, argc, argv);
	return ret ? ret : meshctl_show(m, "/v1/services", cmd_services_render, SVC_ARRAY);
}

int cmd_service(struct meshctl *m, int argc, char **argv)
{
	char url[512] = "/v1/services";
	int ret = meshctl_args(m, argc, argv, 1, "NAMESPACE/NAME");

	if (!ret)
		ret = meshctl_ns_ref(m, argv[1], "NAME", "services");
	if (!ret)
		ret = meshctl_query(m, url, sizeof(url), (const char *const[]){ "service", argv[1] },
				    1);
	return ret ? ret : meshctl_show(m, url, cmd_service_render, SVC_ARRAY);
}
