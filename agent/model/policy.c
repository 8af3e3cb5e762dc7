// SPDX-License-Identifier: GPL-2.0-only
/* The policy table and everything derived from it (see policy.h): built-in
 * defaults, option rows, annotation decoding and overrides.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "model/policy.h"

_Static_assert(sizeof(enum lb_algo) == sizeof(int) && sizeof(enum px_proto) == sizeof(int),
	       "POLICY_ENUM fields and OPT_ENUM options are int-sized");
_Static_assert(POLICY_KNOBS <= 32, "struct policy_override has one bit per knob");

static const char *const lb_names[] = {
	[LB_LEAST_REQUEST] = "least-request",
	[LB_ROUND_ROBIN] = "round-robin",
	[LB_RANDOM] = "random",
};

static const char *const proto_names[] = {
	[PROTO_AUTO] = "auto",
	[PROTO_TCP] = "tcp",
	[PROTO_HTTP] = "http",
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

#define KNOB(opt, env_, annot, json_, kind_, field, lo, hi, def_, mv, h)                            \
	{ .option = opt, .env = env_, .annotation = "weft.io/" annot, .json = json_,               \
	  .kind = kind_, .min = lo, .max = hi, .def = def_, .metavar = mv,                         \
	  .help = h " (weft.io/" annot ")", .offset = offsetof(struct policy, field) }

#define ENUM_KNOB(opt, env_, annot, field, names_, def_, mv, h)                                     \
	{ .option = opt, .env = env_, .annotation = "weft.io/" annot, .json = annot,               \
	  .kind = POLICY_ENUM, .names = names_, .n_names = N_OF(names_), .def = def_,              \
	  .metavar = mv, .help = h " (weft.io/" annot ")", .offset = offsetof(struct policy, field) }

const struct policy_knob policy_knobs[POLICY_KNOBS] = {
	ENUM_KNOB("lb", "WEFT_LB", "lb", lb, lb_names, "least-request", "ALGO",
		  "endpoint choice: least-request (the less loaded of two choices), round-robin or random, all weighted"),
	ENUM_KNOB("protocol", "WEFT_PROTOCOL", "protocol", protocol, proto_names, "auto", "PROTO",
		  "auto (HTTP/1.x when the client's first bytes are a request), tcp or http"),
	KNOB("protocol-detect-timeout", "WEFT_PROTOCOL_DETECT_TIMEOUT_MS", "protocol-detect-timeout",
	     "protocol_detect_timeout_ms", POLICY_DURATION, detect_ms, 1, 10000, "100", "MS",
	     "with auto, wait this long for the client's first bytes before relaying as tcp, for protocols where the server speaks first"),
	KNOB("connect-timeout", "WEFT_CONNECT_TIMEOUT_MS", "connect-timeout", "connect_timeout_ms",
	     POLICY_DURATION, connect_timeout_ms, 1, 600000, "5000", "MS",
	     "give up an upstream connect after this many milliseconds"),
	KNOB("idle-timeout", "WEFT_IDLE_TIMEOUT_MS", "idle-timeout", "idle_timeout_ms",
	     POLICY_DURATION, idle_timeout_ms, 0, 86400000, "3600000", "MS",
	     "close a connection with no bytes either way for this long; 0: never"),
	KNOB("request-timeout", "WEFT_REQUEST_TIMEOUT_MS", "request-timeout", "request_timeout_ms",
	     POLICY_DURATION, request_timeout_ms, 0, 3600000, "0", "MS",
	     "HTTP: answer 504 when a response has not started this long after the request, retries included; 0: none"),
	KNOB("header-timeout", "WEFT_HEADER_TIMEOUT_MS", "header-timeout", "header_timeout_ms",
	     POLICY_DURATION, header_timeout_ms, 0, 3600000, "10000", "MS",
	     "HTTP: close a client connection (408) whose request head is not complete this long after its first bytes; 0: none"),
	KNOB("retries", "WEFT_RETRIES", "retries", "retries", POLICY_INT, retries, 0,
	     POLICY_RETRIES_MAX, "2", "N",
	     "extra attempts on another endpoint after a failed connect, or an idempotent HTTP request's reset or 502/503/504"),
	KNOB("retry-budget", "WEFT_RETRY_BUDGET_PERCENT", "retry-budget", "retry_budget_percent",
	     POLICY_PERCENT, retry_budget_pct, 0, 100, "20", "PCT",
	     "retries may add at most this % to a service's requests over 10 s"),
	KNOB("retry-budget-min", "WEFT_RETRY_BUDGET_MIN", "retry-budget-min",
	     "retry_budget_min_per_s", POLICY_INT, retry_budget_min, 0, 1000, "3", "N",
	     "retries per second a service may make whatever its traffic"),
	KNOB("retry-backoff", "WEFT_RETRY_BACKOFF_MS", "retry-backoff", "retry_backoff_ms",
	     POLICY_DURATION, retry_backoff_ms, 1, 10000, "25", "MS",
	     "base of the jittered exponential backoff between attempts, capped at 10 times"),
	KNOB("service-max-connections", "WEFT_SERVICE_MAX_CONNECTIONS", "max-connections",
	     "max_connections", POLICY_INT, max_connections, 1, POLICY_LIMIT_MAX, "8192", "N",
	     "circuit breaker: upstream connections per service port; more fail fast"),
	KNOB("service-max-pending", "WEFT_SERVICE_MAX_PENDING", "max-pending", "max_pending",
	     POLICY_INT, max_pending, 1, POLICY_LIMIT_MAX, "1024", "N",
	     "circuit breaker: upstream connects in progress per service port"),
	KNOB("service-max-requests", "WEFT_SERVICE_MAX_REQUESTS", "max-requests", "max_requests",
	     POLICY_INT, max_requests, 1, POLICY_LIMIT_MAX, "8192", "N",
	     "circuit breaker: HTTP requests in flight per service port"),
	KNOB("outlier-consecutive-failures", "WEFT_OUTLIER_CONSECUTIVE_FAILURES",
	     "outlier-consecutive-failures", "outlier_consecutive_failures", POLICY_INT,
	     outlier_failures, 0, 1000, "5", "N",
	     "eject an endpoint after this many failures in a row (connect failures, HTTP 5xx); 0: never"),
	KNOB("outlier-base-ejection", "WEFT_OUTLIER_BASE_EJECTION_MS", "outlier-base-ejection",
	     "outlier_base_ejection_ms", POLICY_DURATION, outlier_base_ms, 10, 3600000, "30000", "MS",
	     "an ejection lasts this long times the endpoint's ejection count"),
	KNOB("outlier-max-ejection", "WEFT_OUTLIER_MAX_EJECTION_MS", "outlier-max-ejection",
	     "outlier_max_ejection_ms", POLICY_DURATION, outlier_max_ms, 10, 86400000, "300000", "MS",
	     "and at most this long"),
	KNOB("outlier-max-ejected-percent", "WEFT_OUTLIER_MAX_EJECTED_PERCENT",
	     "outlier-max-ejected-percent", "outlier_max_ejected_percent", POLICY_PERCENT,
	     outlier_max_pct, 0, 100, "50", "PCT",
	     "share of a service's endpoints ejected at once; one always may be"),
	KNOB(NULL, NULL, "weights", "weights", POLICY_WEIGHTS, n_weights, 0, 0, "", NULL,
	     "endpoint IP = weight, \"198.18.2.11=3, 198.18.2.12=1\"; unlisted endpoints weigh 1"),
};

void policy_builtin(struct policy *p)
{
	*p = (struct policy){ 0 };
	/* The defaults are valid annotation text too (the table test checks). */
	for (size_t i = 0; i < POLICY_KNOBS; i++)
		(void)policy_knob_parse(&policy_knobs[i], policy_knobs[i].def, p);
}

void policy_init(struct policy *p, const struct policy *defaults)
{
	if (defaults)
		*p = *defaults;
	else
		policy_builtin(p);
}

static int enum_parse(const char *const *names, size_t n, const char *s, int *out)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(s, names[i])) {
			*out = (int)i;
			return 0;
		}
	}
	return -EINVAL;
}

int policy_lb_parse(const char *s, enum lb_algo *out)
{
	int v;
	int err = enum_parse(lb_names, N_OF(lb_names), s, &v);

	if (!err)
		*out = (enum lb_algo)v;
	return err;
}

int policy_proto_parse(const char *s, enum px_proto *out)
{
	int v;
	int err = enum_parse(proto_names, N_OF(proto_names), s, &v);

	if (!err)
		*out = (enum px_proto)v;
	return err;
}

const char *policy_lb_name(enum lb_algo lb)
{
	return (size_t)lb < N_OF(lb_names) ? lb_names[lb] : "?";
}

const char *policy_proto_name(enum px_proto proto)
{
	return (size_t)proto < N_OF(proto_names) ? proto_names[proto] : "?";
}

const struct policy_knob *policy_knob_find(const char *annotation)
{
	for (size_t i = 0; i < POLICY_KNOBS; i++)
		if (!strcmp(annotation, policy_knobs[i].annotation))
			return &policy_knobs[i];
	return NULL;
}

/* "IP=W" items separated by commas and/or spaces. 0 or -EINVAL/-E2BIG. */
static int parse_weights(const char *s, struct policy *p)
{
	struct policy_weight w[POLICY_WEIGHTS_MAX];
	size_t n = 0;

	while (*s) {
		char item[ADDR_STRLEN + 16], *eq;
		size_t len = strcspn(s, ", ");

		if (!len) {
			s++;
			continue;
		}
		if (len >= sizeof(item))
			return -EINVAL;
		if (n == POLICY_WEIGHTS_MAX)
			return -E2BIG;
		memcpy(item, s, len);
		item[len] = '\0';
		s += len;
		eq = strrchr(item, '=');
		if (!eq)
			return -EINVAL;
		*eq = '\0';
		if (addr_parse_ip(item, &w[n].ip) ||
		    opt_parse_u32(eq + 1, 1, POLICY_WEIGHT_MAX, &w[n].weight))
			return -EINVAL;
		n++;
	}
	memcpy(p->weights, w, n * sizeof(w[0]));
	p->n_weights = n;
	return 0;
}

static uint32_t *field_of(const struct policy_knob *k, struct policy *p)
{
	return (uint32_t *)((char *)p + k->offset);
}

int policy_knob_parse(const struct policy_knob *k, const char *value, struct policy *p)
{
	uint32_t *dst = field_of(k, p);
	uint64_t ms;
	uint32_t v;
	int e, err;

	switch (k->kind) {
	case POLICY_INT:
	case POLICY_PERCENT:
		err = opt_parse_u32(value, k->min, k->max, &v);
		if (!err)
			*dst = v;
		return err;
	case POLICY_DURATION:
		err = opt_parse_duration_ms(value, &ms);
		if (!err && (ms < k->min || ms > k->max))
			err = -ERANGE;
		if (!err)
			*dst = (uint32_t)ms;
		return err;
	case POLICY_ENUM:
		err = enum_parse(k->names, k->n_names, value, &e);
		if (!err)
			*(int *)dst = e;
		return err;
	case POLICY_WEIGHTS:
		return parse_weights(value, p);
	}
	return -EINVAL;
}

uint32_t policy_knob_get(const struct policy_knob *k, const struct policy *p)
{
	const char *field = (const char *)p + k->offset;

	switch (k->kind) {
	case POLICY_ENUM:
		return (uint32_t)*(const int *)field;
	case POLICY_WEIGHTS:
		return (uint32_t)p->n_weights;
	default:
		return *(const uint32_t *)field;
	}
}

const char *policy_knob_value_name(const struct policy_knob *k, uint32_t v)
{
	return k->kind == POLICY_ENUM && v < k->n_names ? k->names[v] : "?";
}

bool policy_override_has(const struct policy_override *o, const struct policy_knob *k)
{
	return o && (o->set & (1u << (k - policy_knobs)));
}

/* What a valid value of @k looks like, for warnings. */
static const char *expected(const struct policy_knob *k, char *buf, size_t len)
{
	int n;

	switch (k->kind) {
	case POLICY_INT:
	case POLICY_PERCENT:
		snprintf(buf, len, "an integer in %u..%u", k->min, k->max);
		break;
	case POLICY_DURATION:
		snprintf(buf, len, "a duration in %ums..%ums (e.g. 200ms, 2s, 1m)", k->min, k->max);
		break;
	case POLICY_ENUM:
		n = 0;
		buf[0] = '\0';
		for (uint32_t i = 0; i < k->n_names && n >= 0 && (size_t)n < len; i++)
			n += snprintf(buf + n, len - (size_t)n, "%s%s",
				      !i ? "" : i + 1 < k->n_names ? ", " : " or ", k->names[i]);
		break;
	case POLICY_WEIGHTS:
		snprintf(buf, len, "at most %d IP=WEIGHT items, weights 1..%d", POLICY_WEIGHTS_MAX,
			 POLICY_WEIGHT_MAX);
		break;
	}
	return buf;
}

int policy_override_annotation(struct policy_override *o, const char *key, const char *value,
			       char *why, size_t len)
{
	const struct policy_knob *k = policy_knob_find(key);
	char want[96];

	if (!k) {
		snprintf(why, len, "unknown annotation '%s' (value '%s')", key, value);
		return -ENOENT;
	}
	if (policy_knob_parse(k, value, &o->v)) {
		snprintf(why, len, "annotation %s: '%s' is not %s; using the default", key, value,
			 expected(k, want, sizeof(want)));
		return -EINVAL;
	}
	o->set |= 1u << (k - policy_knobs);
	return 0;
}

void policy_apply(struct policy *out, const struct policy *defaults,
		  const struct policy_override *o)
{
	*out = *defaults;
	for (size_t i = 0; o && i < POLICY_KNOBS; i++) {
		const struct policy_knob *k = &policy_knobs[i];

		if (!(o->set & (1u << i)))
			continue;
		if (k->kind == POLICY_WEIGHTS) {
			memcpy(out->weights, o->v.weights, sizeof(out->weights));
			out->n_weights = o->v.n_weights;
		} else {
			*field_of(k, out) = policy_knob_get(k, &o->v);
		}
	}
	if (out->outlier_max_ms < out->outlier_base_ms)
		out->outlier_max_ms = out->outlier_base_ms;
}

size_t policy_opt_defs(struct opt_def *out, size_t base)
{
	size_t n = 0;

	for (size_t i = 0; i < POLICY_KNOBS; i++) {
		const struct policy_knob *k = &policy_knobs[i];

		if (!k->option)
			continue;
		out[n++] = (struct opt_def){
			.name = k->option,
			.env = k->env,
			.type = k->kind == POLICY_ENUM ? OPT_ENUM : OPT_U32,
			.offset = base + k->offset,
			.def = k->def,
			.min = k->min,
			.max = k->max,
			.names = k->names,
			.n_names = k->n_names,
			.metavar = k->metavar,
			.help = k->help,
		};
	}
	return n;
}
