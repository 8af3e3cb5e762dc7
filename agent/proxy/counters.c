// SPDX-License-Identifier: GPL-2.0-only
/* The counter tables of proxy/counters.h. A row's order is its order in the
 * admin JSON and in /metrics; a row without a metric name is shown in the
 * admin JSON only.
 */
#include <stddef.h>
#include <stdint.h>

#include "proxy/counters.h"
#include "proxy/proxy.h"
#include "proxy/state.h"

_Static_assert(PROXY_STATUS_CLASSES == STATUS_CLASSES, "one set of status classes");

static const char *const class_names[STATUS_CLASSES] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
static const char *const cert_fail_names[MTLS_CERT_FAILS] = {
	[MTLS_CERT_EXPIRED] = "expired",
	[MTLS_CERT_NOT_YET_VALID] = "not_yet_valid",
	[MTLS_CERT_UNTRUSTED] = "untrusted",
	[MTLS_CERT_OTHER] = "other",
};
static const char *const limit_names[OVF_COUNT] = {
	[OVF_CONNECTIONS] = "max_connections",
	[OVF_PENDING] = "max_pending",
	[OVF_REQUESTS] = "max_requests",
};

#define FIELD_LEN(st, f) (sizeof(((st *)0)->f) / sizeof(uint64_t))

#define ROW(st, grp, k, f, t, m, h)                                                                \
	{                                                                                          \
		.group = (grp), .key = (k), .metric = (m), .help = (h), .type = (t),               \
		.off = offsetof(st, f), .n = 1                                                     \
	}

#define ARRAY(st, grp, k, f, names, lbl, m, h)                                                     \
	{                                                                                          \
		.group = (grp), .key = (k), .metric = (m), .help = (h), .type = CTR_COUNTER,       \
		.off = offsetof(st, f), .n = FIELD_LEN(st, f), .sub = (names), .label = (lbl)      \
	}

/* ---------------------------------------------------------------- node-wide */

#define P(grp, k, f, t, m, h) ROW(struct proxy_stats, grp, k, f, t, m, h)

static const struct counter_def proxy_defs[] = {
	P("connections", "active", active, CTR_GAUGE, "weft_proxy_connections_active",
	  "Proxied client connections open."),
	P("connections", "total", total, CTR_COUNTER, "weft_proxy_connections_total",
	  "Client connections accepted."),
	P("connections", "to_service", to_service, CTR_COUNTER, NULL,
	  "Connections resolved to a service endpoint."),
	P("connections", "passthrough", passthrough, CTR_COUNTER, "weft_proxy_passthrough_total",
	  "Captured connections to destinations that are not services."),
	P("connections", "no_endpoint", no_endpoint, CTR_COUNTER, NULL,
	  "Connections or requests refused because no endpoint was ready."),
	P("connections", "orig_dst_errors", orig_dst_errors, CTR_COUNTER,
	  "weft_proxy_orig_dst_errors_total",
	  "Accepted connections without an original destination (reset)."),
	P("connections", "connect_errors", connect_errors, CTR_COUNTER,
	  "weft_proxy_connect_errors_total", "Upstream connects refused or unreachable."),
	P("connections", "connect_timeouts", connect_timeouts, CTR_COUNTER, NULL,
	  "Upstream connect attempts that timed out."),
	P("connections", "resets", resets, CTR_COUNTER, "weft_proxy_resets_total",
	  "Client connections ended by a reset."),
	P("connections", "over_limit", over_limit, CTR_COUNTER, "weft_proxy_over_limit_total",
	  "Connections reset because --max-conns was reached."),
	P("connections", "over_pod_limit", over_pod_limit, CTR_COUNTER,
	  "weft_proxy_over_pod_limit_total",
	  "Connections reset because their pod held its share (--pod-max-conns)."),
	P("connections", "local_errors", local_errors, CTR_COUNTER, "weft_proxy_local_errors_total",
	  "Connections or requests failed for the agent's own resources (EMFILE, ENOMEM...), never counted against an endpoint."),
	P("connections", "header_timeouts", header_timeouts, CTR_COUNTER,
	  "weft_proxy_header_timeouts_total",
	  "HTTP client connections closed because a request head was not complete in time."),
	P("connections", "idle_timeouts", idle_timeouts, CTR_COUNTER, NULL,
	  "Connections closed for idleness."),
	P("connections", "detected_http", detected_http, CTR_COUNTER, NULL,
	  "Connections protocol detection found to speak HTTP/1.x."),
	P("connections", "detected_tcp", detected_tcp, CTR_COUNTER, NULL,
	  "Connections relayed as opaque TCP (detected or declared)."),
	P("connections", "detect_timeouts", detect_timeouts, CTR_COUNTER, NULL,
	  "Connections whose client said nothing in the detection window (tcp)."),
	P("connections", "upstream_active", upstream_active, CTR_GAUGE,
	  "weft_proxy_upstream_connections", "Upstream connections open, pooled ones included."),
	P("connections", "upstream_reused", upstream_reused, CTR_COUNTER, NULL,
	  "Requests sent on a pooled upstream connection."),
	P("connections", "socket_waits", broker_waits, CTR_COUNTER,
	  "weft_proxy_socket_waits_total",
	  "Upstream connects that waited for the socket broker (a pod's spare sockets ran out)."),
	P("connections", "fastpath", fastpath, CTR_COUNTER, "weft_proxy_fastpath_total",
	  "Opaque connections whose bytes the kernel moved (--opaque-fastpath sockmap)."),
	P("connections", "fastpath_errors", fastpath_errors, CTR_COUNTER,
	  "weft_proxy_fastpath_errors_total",
	  "Opaque connections the kernel path refused (they were spliced or copied instead)."),
	P("connections", "fastpath_full", fastpath_full, CTR_COUNTER,
	  "weft_proxy_fastpath_full_total",
	  "Opaque connections left off the kernel path: the worker's counter slots were all taken."),
	P("connections", "fastpath_races", fastpath_races, CTR_COUNTER,
	  "weft_proxy_fastpath_races_total",
	  "Opaque connections reset because bytes arrived in the instant their two sockets went on the kernel path one after the other (their order could not be kept)."),
	P("connections", "fastpath_fin_late", fastpath_fin_late, CTR_COUNTER,
	  "weft_proxy_fastpath_fin_late_total",
	  "Half-closes passed on before the kernel had handed over every byte ahead of them (waited too long)."),
	P("connections", "passed_out", conns_passed_out, CTR_COUNTER,
	  "weft_proxy_connections_passed_out_total",
	  "Established connections passed to a successor agent at a hand-over."),
	P("connections", "passed_in", conns_passed_in, CTR_COUNTER,
	  "weft_proxy_connections_passed_in_total",
	  "Established connections a previous agent passed at a hand-over, relayed from there."),
	P("inbound", "accepted", inbound_accepted, CTR_COUNTER,
	  "weft_proxy_inbound_connections_total",
	  "Inbound connections accepted for pods' applications."),
	P("inbound", "orig_dst_errors", inbound_orig_dst_errors, CTR_COUNTER,
	  "weft_proxy_inbound_orig_dst_errors_total",
	  "Inbound connections without a destination (reset)."),
	P("inbound", "loops_refused", inbound_loops, CTR_COUNTER,
	  "weft_proxy_inbound_loops_refused_total",
	  "Inbound connections to a listener's own port (reset: relaying would loop)."),
	P("inbound", "transparent_fallbacks", inbound_transparent_fallbacks, CTR_COUNTER,
	  "weft_proxy_inbound_transparent_fallbacks_total",
	  "Inbound connections the application saw from the pod's address, not the client's."),
	P("mtls", "out", mtls_out, CTR_COUNTER, "weft_mtls_handshakes_client_total",
	  "mTLS connections opened to meshed pods: handshake done, the server's identity the expected one."),
	P("mtls", "in", mtls_in, CTR_COUNTER, "weft_mtls_handshakes_server_total",
	  "mTLS connections accepted: handshake done, the client's certificate from the trust bundle."),
	P("mtls", "resumed_out", mtls_resumed_out, CTR_COUNTER,
	  "weft_mtls_handshakes_client_resumed_total",
	  "Client handshakes that resumed a TLS session (a ticket) instead of showing certificates again."),
	P("mtls", "resumed_in", mtls_resumed_in, CTR_COUNTER,
	  "weft_mtls_handshakes_server_resumed_total",
	  "Server handshakes that resumed a TLS session, counted before authorization (allow-from)."),
	P("mtls", "active", mtls_active, CTR_GAUGE, "weft_mtls_connections",
	  "mTLS connections open, client and server sides."),
	P("mtls", "fail_connect", mtls_fail_connect, CTR_COUNTER,
	  "weft_mtls_failures_connect_total",
	  "mTLS connections whose destination's mTLS port refused or never answered."),
	P("mtls", "fail_handshake", mtls_fail_handshake, CTR_COUNTER,
	  "weft_mtls_failures_handshake_total",
	  "TLS handshakes failed: a certificate not from the trust bundle, expired, or broken TLS; on a client, also the server refusing its certificate."),
	ARRAY(struct proxy_stats, "mtls", "fail_certificate", mtls_fail_cert, cert_fail_names,
	      "reason", "weft_mtls_failures_certificate_total",
	      "Failed TLS handshakes (of weft_mtls_failures_handshake_total) in which this side refused the peer's certificate, by reason: expired, not yet valid, not from the trust bundle (untrusted), other."),
	P("mtls", "fail_identity", mtls_fail_identity, CTR_COUNTER,
	  "weft_mtls_failures_identity_total",
	  "mTLS connections closed because the server presented another identity than its pod's."),
	P("mtls", "no_svid", mtls_no_svid, CTR_COUNTER, "weft_mtls_failures_no_certificate_total",
	  "mTLS connections refused because the local pod had no certificate (yet)."),
	P("mtls", "bad_preamble", mtls_bad_preamble, CTR_COUNTER,
	  "weft_mtls_failures_preamble_total",
	  "mTLS connections without a valid weft preamble after the handshake."),
	P("mtls", "denied", mtls_denied, CTR_COUNTER, "weft_mtls_denied_total",
	  "mTLS connections refused by weft.io/allow-from (the caller's identity is logged)."),
	P("mtls", "plaintext_refused", mtls_plaintext_refused, CTR_COUNTER,
	  "weft_mtls_plaintext_refused_total",
	  "Plaintext inbound connections refused because the pod's namespace is strict."),
	P("http", "requests", requests, CTR_COUNTER, NULL, "HTTP requests from clients."),
	ARRAY(struct proxy_stats, "http", "responses", responses, class_names, "class", NULL,
	      "HTTP responses to clients by status class, local replies included."),
	P("http", "local_replies", local_replies, CTR_COUNTER, NULL,
	  "HTTP responses the proxy made itself."),
	P("http", "request_timeouts", request_timeouts, CTR_COUNTER, NULL,
	  "HTTP requests that timed out."),
	P("http", "invalid_requests", invalid_requests, CTR_COUNTER,
	  "weft_proxy_http_invalid_requests_total",
	  "HTTP requests refused with 400 for ambiguous or malformed framing."),
	P("http", "invalid_responses", invalid_responses, CTR_COUNTER,
	  "weft_proxy_http_invalid_responses_total",
	  "Upstream HTTP responses refused (502 or reset) for ambiguous or malformed framing."),
	P("resilience", "retries", retries, CTR_COUNTER, NULL, "Retries on another endpoint."),
	P("resilience", "retry_budget_exhausted", retry_budget_exhausted, CTR_COUNTER, NULL,
	  "Retries the retry budget refused."),
	P("resilience.circuit_open", "max_connections", overflow_connections, CTR_COUNTER, NULL,
	  "Attempts failed fast by the circuit breaker: max-connections."),
	P("resilience.circuit_open", "max_pending", overflow_pending, CTR_COUNTER, NULL,
	  "Attempts failed fast by the circuit breaker: max-pending."),
	P("resilience.circuit_open", "max_requests", overflow_requests, CTR_COUNTER, NULL,
	  "Attempts failed fast by the circuit breaker: max-requests."),
	P("resilience", "preempted", preempted, CTR_COUNTER, NULL,
	  "Connections of a pod over its share of max-connections closed to make room for a pod under its share."),
	P("resilience", "ejections", ejections, CTR_COUNTER, NULL,
	  "Endpoint ejections by outlier detection."),
	P("resilience", "panic", panic, CTR_COUNTER, NULL,
	  "Picks made while every ready endpoint was ejected."),
};

/* ---------------------------------------------------------------- per service port */

#define S(k, f, m, h) ROW(struct svc_ctr, "", k, f, CTR_COUNTER, m, h)

static const struct counter_def svc_defs[] = {
	S("connections", conns, "weft_service_connections_total",
	  "Client connections to the service port."),
	S("requests", requests, "weft_service_requests_total", "HTTP requests from clients."),
	ARRAY(struct svc_ctr, "", "responses", cls, class_names, "class",
	      "weft_service_responses_total",
	      "HTTP responses to clients by status class, local replies included."),
	S("retries", retries, "weft_service_retries_total", "Retries on another endpoint."),
	S("retry_budget_exhausted", budget_exhausted, "weft_service_retry_budget_exhausted_total",
	  "Retries the retry budget refused."),
	ARRAY(struct svc_ctr, "", "circuit_open", overflow, limit_names, "limit",
	      "weft_service_circuit_open_total",
	      "Attempts failed fast by the circuit breaker, by limit."),
	S("panic", panic, "weft_service_panic_total",
	  "Picks made while every ready endpoint was ejected."),
	S("ejections", ejections, "weft_service_ejections_total",
	  "Endpoint ejections by outlier detection."),
	S("no_endpoint", no_endpoint, "weft_service_no_endpoint_total",
	  "Connections refused because no endpoint was ready."),
	S("connect_timeouts", connect_timeouts, "weft_service_connect_timeouts_total",
	  "Upstream connect attempts that timed out."),
	S("request_timeouts", request_timeouts, NULL, "HTTP requests that timed out."),
	S("local_errors", local_errors, "weft_service_local_errors_total",
	  "Connections or requests failed for the agent's own resources, not the endpoints'."),
	S("preempted", preempted, "weft_service_preempted_total",
	  "Connections of a pod over its share of max-connections closed to make room for a pod under its share."),
	S("detected_http", detected_http, NULL,
	  "Connections protocol detection found to speak HTTP/1.x."),
	S("detected_tcp", detected_tcp, NULL,
	  "Connections relayed as opaque TCP (detected or declared)."),
};

/* ---------------------------------------------------------------- per endpoint */

#define E(k, f, m, h) ROW(struct ep_ctr, "", k, f, CTR_COUNTER, m, h)

static const struct counter_def ep_defs[] = {
	E("connections", conns, "weft_endpoint_connections_total",
	  "Upstream connections opened to the endpoint."),
	E("requests", requests, "weft_endpoint_requests_total",
	  "HTTP requests sent to the endpoint."),
	ARRAY(struct ep_ctr, "", "responses", cls, class_names, "class", NULL,
	      "HTTP responses from the endpoint by status class."),
	E("connect_failures", connect_failures, "weft_endpoint_connect_failures_total",
	  "Connects refused, reset, unreachable or timed out."),
	E("failures", failures, "weft_endpoint_failures_total",
	  "Failures seen by outlier detection (connect failures, resets, 5xx)."),
	E("ejections", ejections, "weft_endpoint_ejections_total",
	  "Times the endpoint was ejected."),
	E("reused", reused, NULL, "Requests sent on a pooled connection."),
};

#define TABLE(nm, st, rows)                                                                        \
	{                                                                                          \
		.name = (nm), .size = sizeof(st), .n = sizeof(rows) / sizeof((rows)[0]),           \
		.defs = (rows)                                                                     \
	}

const struct counter_table counters_proxy = TABLE("proxy", struct proxy_stats, proxy_defs);
const struct counter_table counters_svc = TABLE("service", struct svc_ctr, svc_defs);
const struct counter_table counters_ep = TABLE("endpoint", struct ep_ctr, ep_defs);

void counters_add(const struct counter_table *t, void *dst, const void *src)
{
	for (size_t r = 0; r < t->n; r++) {
		const struct counter_def *d = &t->defs[r];
		uint64_t *to = (uint64_t *)(void *)((char *)dst + d->off);

		for (size_t i = 0; i < d->n; i++)
			to[i] += counter_get(d, src, i);
	}
}
