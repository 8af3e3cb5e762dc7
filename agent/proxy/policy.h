/* SPDX-License-Identifier: GPL-2.0-only */
/* The resilience policy of one service: balancing, protocol, timeouts,
 * retries, circuit-breaker limits and outlier detection. Agent options give
 * the defaults; a Service's weft.io/ annotations override them. Parsed once
 * per catalogue snapshot (state.c), never per connection. No I/O but logging.
 */
#ifndef WEFT_PROXY_POLICY_H
#define WEFT_PROXY_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct agent_config;
struct cat_service;

enum lb_algo {
	LB_LEAST_REQUEST,	/* power of two choices on outstanding / weight */
	LB_ROUND_ROBIN,		/* weighted */
	LB_RANDOM,		/* weighted */
};

enum px_proto {
	PROTO_AUTO,		/* HTTP/1.x if the client speaks first and it looks like it */
	PROTO_TCP,		/* opaque bytes, no detection delay */
	PROTO_HTTP,		/* HTTP/1.x, no detection window */
};

/* Defaults, shared by the option table (agent/config.c) and the proxy. */
#define POLICY_DEF_LB "least-request"
#define POLICY_DEF_PROTOCOL "auto"
#define POLICY_DEF_DETECT_MS 100
#define POLICY_DEF_CONNECT_MS 5000
#define POLICY_DEF_IDLE_MS 3600000		/* 1 h, as Envoy's tcp_proxy */
#define POLICY_DEF_REQUEST_MS 0			/* none: long polls are legitimate */
#define POLICY_DEF_RETRIES 2
#define POLICY_DEF_BUDGET_PCT 20
#define POLICY_DEF_BUDGET_MIN 3			/* retries per second always allowed */
#define POLICY_DEF_BACKOFF_MS 25
#define POLICY_DEF_MAX_CONNECTIONS 8192
#define POLICY_DEF_MAX_PENDING 1024
#define POLICY_DEF_MAX_REQUESTS 8192
#define POLICY_DEF_OUTLIER_FAILURES 5
#define POLICY_DEF_OUTLIER_BASE_MS 30000
#define POLICY_DEF_OUTLIER_MAX_MS 300000
#define POLICY_DEF_OUTLIER_MAX_PCT 50

#define POLICY_RETRIES_MAX 5		/* attempts = 1 + retries */
#define POLICY_WEIGHTS_MAX 16		/* entries of weft.io/weights */
#define POLICY_WEIGHT_MAX 100
#define POLICY_LIMIT_MAX 1048576	/* circuit-breaker limits */

struct policy_weight {
	struct addr ip;		/* port 0: every port of that IP */
	uint32_t weight;	/* 1..POLICY_WEIGHT_MAX */
};

struct policy {
	enum lb_algo lb;
	enum px_proto protocol;
	uint32_t detect_ms;		/* protocol detection window */
	uint32_t connect_timeout_ms;
	uint32_t idle_timeout_ms;	/* 0 = none */
	uint32_t request_timeout_ms;	/* HTTP, whole request incl. retries; 0 = none */
	uint32_t retries;		/* extra attempts per request/connection */
	uint32_t retry_budget_pct;	/* retries may add this % to the request rate */
	uint32_t retry_budget_min;	/* ... and this many per second regardless */
	uint32_t retry_backoff_ms;	/* base of the jittered exponential backoff */
	uint32_t max_connections;	/* upstream connections, pending and idle included */
	uint32_t max_pending;		/* upstream connects in progress */
	uint32_t max_requests;		/* HTTP requests in flight */
	uint32_t outlier_failures;	/* consecutive failures that eject; 0 = never */
	uint32_t outlier_base_ms;	/* ejection time = base * ejections, capped by max */
	uint32_t outlier_max_ms;
	uint32_t outlier_max_pct;	/* share of endpoints ejected at once (at least one) */
	struct policy_weight weights[POLICY_WEIGHTS_MAX];
	size_t n_weights;
};

/* The built-in defaults (the POLICY_DEF_* values). */
void policy_builtin(struct policy *p);

/* The defaults the agent's options set; @cfg NULL gives the built-in ones. */
void policy_from_config(struct policy *p, const struct agent_config *cfg);

/* "least-request", "round-robin", "random" / "auto", "tcp", "http". 0 or -EINVAL. */
int policy_lb_parse(const char *s, enum lb_algo *out);
int policy_proto_parse(const char *s, enum px_proto *out);
const char *policy_lb_name(enum lb_algo lb);
const char *policy_proto_name(enum px_proto proto);

/* @out = @defaults overridden by the weft.io/ annotations of @svc. Each
 * unknown annotation or invalid value is logged as a warning naming the
 * service, the annotation and the value, and its default is kept. Returns the
 * number of annotations ignored. Does not block.
 */
int policy_for_service(struct policy *out, const struct policy *defaults,
		       const struct cat_service *svc);

/* The weight of endpoint @ep under @p: 1 unless weft.io/weights names it. */
uint32_t policy_weight_of(const struct policy *p, const struct addr *ep);

#endif /* WEFT_PROXY_POLICY_H */
