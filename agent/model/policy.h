/* SPDX-License-Identifier: GPL-2.0-only */
/* The typed resilience policy of a service port — balancing, protocol,
 * timeouts, retries, circuit-breaker limits, outlier detection, weights — and
 * THE table of its knobs (policy_knobs[]): each row gives a knob's agent
 * option and environment variable, its Service annotation, its kind, bounds,
 * default and help, and its field in struct policy. The built-in defaults,
 * the agent's option rows (config.c), the decoding of a Service's weft.io/
 * annotations (registry/decode.c) and the admin API's rendering all walk it.
 * A Service's annotations become a typed override once, when it is decoded;
 * the proxy only applies overrides to its defaults. No I/O but logging.
 */
#ifndef WEFT_MODEL_POLICY_H
#define WEFT_MODEL_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "opt.h"

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
	uint32_t header_timeout_ms;	/* HTTP: a request head's first byte to its end; 0 = none */
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

enum policy_kind {
	POLICY_DURATION,	/* uint32_t ms; the option takes ms, the annotation
				 * "200ms", "2s", "1m" or bare ms */
	POLICY_INT,		/* uint32_t */
	POLICY_PERCENT,		/* uint32_t, a share in 0..100 */
	POLICY_ENUM,		/* an enum: the index of the value in names[] */
	POLICY_WEIGHTS,		/* weights[] and n_weights; annotation only */
};

/* One knob of the policy: one row of policy_knobs[]. */
struct policy_knob {
	const char *option;		/* agent option without "--"; NULL: annotation only */
	const char *env;		/* its environment variable */
	const char *annotation;		/* the Service annotation, "weft.io/retries" */
	const char *json;		/* its key in the admin API's policy object */
	enum policy_kind kind;
	uint32_t min, max;		/* bounds of DURATION (ms), INT and PERCENT */
	const char *const *names;	/* POLICY_ENUM: the values, in enum order */
	uint32_t n_names;
	const char *def;		/* the built-in default, as the option's text */
	const char *metavar;		/* for --help */
	const char *help;		/* for --help; ends with "(weft.io/...)" */
	size_t offset;			/* of the field in struct policy */
};

#define POLICY_KNOBS 19
extern const struct policy_knob policy_knobs[POLICY_KNOBS];

/* What a Service's weft.io/ annotations set, decoded once (registry/decode.c). */
struct policy_override {
	uint32_t set;		/* bit i: policy_knobs[i] is given */
	struct policy v;	/* the values of the knobs given; the rest is unused */
};

/* The built-in defaults: every knob's default. */
void policy_builtin(struct policy *p);

/* @p = *@defaults, or the built-in defaults when @defaults is NULL. */
void policy_init(struct policy *p, const struct policy *defaults);

/* "least-request", "round-robin", "random" / "auto", "tcp", "http". 0 or -EINVAL. */
int policy_lb_parse(const char *s, enum lb_algo *out);
int policy_proto_parse(const char *s, enum px_proto *out);
const char *policy_lb_name(enum lb_algo lb);
const char *policy_proto_name(enum px_proto proto);

/* The knob whose annotation is @key ("weft.io/retries"), or NULL. */
const struct policy_knob *policy_knob_find(const char *annotation);

/* Parse @value as knob @k's annotation syntax into its field of @p; on failure
 * @p is unchanged. 0, or -EINVAL/-ERANGE/-E2BIG.
 */
int policy_knob_parse(const struct policy_knob *k, const char *value, struct policy *p);

/* Knob @k's value in @p: the number, the enum's index, or n_weights. */
uint32_t policy_knob_get(const struct policy_knob *k, const struct policy *p);

/* The name of value @v of POLICY_ENUM knob @k; "?" when out of range. */
const char *policy_knob_value_name(const struct policy_knob *k, uint32_t v);

/* Whether @o (NULL: none) gives knob @k. */
bool policy_override_has(const struct policy_override *o, const struct policy_knob *k);

/* Decode the annotation @key (under weft.io/) = @value into @o. An unknown
 * key or an invalid value leaves @o unchanged (the default will apply) and
 * says why in @why, naming the annotation and the value. Returns 0, -ENOENT
 * (unknown key) or -EINVAL. No I/O, no logging: the decoder reports.
 */
int policy_override_annotation(struct policy_override *o, const char *key, const char *value,
			       char *why, size_t len);

/* @out = @defaults with the knobs @o gives (@o NULL: none) replaced; the
 * maximum ejection time is raised to the base when below it. Never fails.
 */
void policy_apply(struct policy *out, const struct policy *defaults,
		  const struct policy_override *o);

/* The agent's option rows for the knobs that have an option, in table order,
 * into @out (room for POLICY_KNOBS rows), writing into the struct policy at
 * offset @base of the options' target. Returns the number of rows.
 */
size_t policy_opt_defs(struct opt_def *out, size_t base);

#endif /* WEFT_MODEL_POLICY_H */
