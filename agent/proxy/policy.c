// SPDX-License-Identifier: GPL-2.0-only
/* Policy parsing (see policy.h): one table maps each weft.io/ annotation to a
 * policy field, its type and bounds, so the docs and the checks agree.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "model/catalogue.h"
#include "config.h"
#include "log.h"
#include "opt.h"
#include "proxy/policy.h"

enum field_type {
	F_U32,		/* plain integer within [min, max] */
	F_MS,		/* duration ("200ms", "2s", "1m", bare = ms) within [min, max] ms */
	F_LB,
	F_PROTO,
	F_WEIGHTS,
};

struct field {
	const char *annotation;	/* after "weft.io/" */
	enum field_type type;
	size_t offset;		/* of a uint32_t (or enum) in struct policy */
	uint32_t min, max;
};

#define FIELD(a, t, f, lo, hi) { a, t, offsetof(struct policy, f), lo, hi }

static const struct field fields[] = {
	FIELD("lb", F_LB, lb, 0, 0),
	FIELD("protocol", F_PROTO, protocol, 0, 0),
	FIELD("protocol-detect-timeout", F_MS, detect_ms, 1, 10000),
	FIELD("connect-timeout", F_MS, connect_timeout_ms, 1, 600000),
	FIELD("idle-timeout", F_MS, idle_timeout_ms, 0, 86400000),
	FIELD("request-timeout", F_MS, request_timeout_ms, 0, 3600000),
	FIELD("retries", F_U32, retries, 0, POLICY_RETRIES_MAX),
	FIELD("retry-budget", F_U32, retry_budget_pct, 0, 100),
	FIELD("retry-budget-min", F_U32, retry_budget_min, 0, 1000),
	FIELD("retry-backoff", F_MS, retry_backoff_ms, 1, 10000),
	FIELD("max-connections", F_U32, max_connections, 1, POLICY_LIMIT_MAX),
	FIELD("max-pending", F_U32, max_pending, 1, POLICY_LIMIT_MAX),
	FIELD("max-requests", F_U32, max_requests, 1, POLICY_LIMIT_MAX),
	FIELD("outlier-consecutive-failures", F_U32, outlier_failures, 0, 1000),
	FIELD("outlier-base-ejection", F_MS, outlier_base_ms, 10, 3600000),
	FIELD("outlier-max-ejection", F_MS, outlier_max_ms, 10, 86400000),
	FIELD("outlier-max-ejected-percent", F_U32, outlier_max_pct, 0, 100),
	FIELD("weights", F_WEIGHTS, n_weights, 0, 0),
};

#define ANNOT_PREFIX "weft.io/"

void policy_builtin(struct policy *p)
{
	*p = (struct policy){
		.lb = LB_LEAST_REQUEST,
		.protocol = PROTO_AUTO,
		.detect_ms = POLICY_DEF_DETECT_MS,
		.connect_timeout_ms = POLICY_DEF_CONNECT_MS,
		.idle_timeout_ms = POLICY_DEF_IDLE_MS,
		.request_timeout_ms = POLICY_DEF_REQUEST_MS,
		.retries = POLICY_DEF_RETRIES,
		.retry_budget_pct = POLICY_DEF_BUDGET_PCT,
		.retry_budget_min = POLICY_DEF_BUDGET_MIN,
		.retry_backoff_ms = POLICY_DEF_BACKOFF_MS,
		.max_connections = POLICY_DEF_MAX_CONNECTIONS,
		.max_pending = POLICY_DEF_MAX_PENDING,
		.max_requests = POLICY_DEF_MAX_REQUESTS,
		.outlier_failures = POLICY_DEF_OUTLIER_FAILURES,
		.outlier_base_ms = POLICY_DEF_OUTLIER_BASE_MS,
		.outlier_max_ms = POLICY_DEF_OUTLIER_MAX_MS,
		.outlier_max_pct = POLICY_DEF_OUTLIER_MAX_PCT,
	};
}

void policy_from_config(struct policy *p, const struct agent_config *cfg)
{
	policy_builtin(p);
	if (!cfg)
		return;
	/* cfg_parse() has validated both names already. */
	(void)policy_lb_parse(cfg->lb, &p->lb);
	(void)policy_proto_parse(cfg->protocol, &p->protocol);
	p->detect_ms = cfg->detect_timeout_ms;
	p->connect_timeout_ms = cfg->connect_timeout_ms;
	p->idle_timeout_ms = cfg->idle_timeout_ms;
	p->request_timeout_ms = cfg->request_timeout_ms;
	p->retries = cfg->retries;
	p->retry_budget_pct = cfg->retry_budget_pct;
	p->retry_budget_min = cfg->retry_budget_min;
	p->retry_backoff_ms = cfg->retry_backoff_ms;
	p->max_connections = cfg->svc_max_connections;
	p->max_pending = cfg->svc_max_pending;
	p->max_requests = cfg->svc_max_requests;
	p->outlier_failures = cfg->outlier_failures;
	p->outlier_base_ms = cfg->outlier_base_ms;
	p->outlier_max_ms = cfg->outlier_max_ms;
	p->outlier_max_pct = cfg->outlier_max_pct;
}

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

int policy_lb_parse(const char *s, enum lb_algo *out)
{
	for (size_t i = 0; i < sizeof(lb_names) / sizeof(lb_names[0]); i++) {
		if (!strcmp(s, lb_names[i])) {
			*out = (enum lb_algo)i;
			return 0;
		}
	}
	return -EINVAL;
}

int policy_proto_parse(const char *s, enum px_proto *out)
{
	for (size_t i = 0; i < sizeof(proto_names) / sizeof(proto_names[0]); i++) {
		if (!strcmp(s, proto_names[i])) {
			*out = (enum px_proto)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *policy_lb_name(enum lb_algo lb)
{
	return (size_t)lb < sizeof(lb_names) / sizeof(lb_names[0]) ? lb_names[lb] : "?";
}

const char *policy_proto_name(enum px_proto proto)
{
	return (size_t)proto < sizeof(proto_names) / sizeof(proto_names[0]) ? proto_names[proto]
									    : "?";
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

static int apply(struct policy *p, const struct field *f, const char *value)
{
	uint32_t *dst = (uint32_t *)((char *)p + f->offset);
	uint64_t ms;
	uint32_t v;
	int err;

	switch (f->type) {
	case F_U32:
		err = opt_parse_u32(value, f->min, f->max, &v);
		if (!err)
			*dst = v;
		return err;
	case F_MS:
		err = opt_parse_duration_ms(value, &ms);
		if (!err && (ms < f->min || ms > f->max))
			err = -ERANGE;
		if (!err)
			*dst = (uint32_t)ms;
		return err;
	case F_LB:
		return policy_lb_parse(value, &p->lb);
	case F_PROTO:
		return policy_proto_parse(value, &p->protocol);
	case F_WEIGHTS:
		return parse_weights(value, p);
	}
	return -EINVAL;
}

static const char *expected(const struct field *f, char *buf, size_t len)
{
	switch (f->type) {
	case F_U32:
		snprintf(buf, len, "an integer in %u..%u", f->min, f->max);
		break;
	case F_MS:
		snprintf(buf, len, "a duration in %ums..%ums (e.g. 200ms, 2s, 1m)", f->min, f->max);
		break;
	case F_LB:
		snprintf(buf, len, "least-request, round-robin or random");
		break;
	case F_PROTO:
		snprintf(buf, len, "auto, tcp or http");
		break;
	case F_WEIGHTS:
		snprintf(buf, len, "at most %d IP=WEIGHT items, weights 1..%d", POLICY_WEIGHTS_MAX,
			 POLICY_WEIGHT_MAX);
		break;
	}
	return buf;
}

int policy_for_service(struct policy *out, const struct policy *defaults,
		       const struct cat_service *svc)
{
	int ignored = 0;

	*out = *defaults;
	for (size_t i = 0; i < svc->n_annotations; i++) {
		const struct obj_annotation *a = &svc->annotations[i];
		const char *name = a->key + strlen(ANNOT_PREFIX);
		const struct field *f = NULL;
		char want[96];

		if (strncmp(a->key, ANNOT_PREFIX, strlen(ANNOT_PREFIX)))
			continue;
		for (size_t j = 0; j < sizeof(fields) / sizeof(fields[0]) && !f; j++)
			if (!strcmp(name, fields[j].annotation))
				f = &fields[j];
		if (!f) {
			log_warn("proxy: service %s/%s: unknown annotation '%s' (value '%s'), ignoring",
				 svc->ns, svc->name, a->key, a->value);
			ignored++;
			continue;
		}
		if (apply(out, f, a->value)) {
			log_warn("proxy: service %s/%s: annotation %s: '%s' is not %s; using the default, ignoring",
				 svc->ns, svc->name, a->key, a->value, expected(f, want, sizeof(want)));
			ignored++;
		}
	}
	if (out->outlier_max_ms < out->outlier_base_ms)
		out->outlier_max_ms = out->outlier_base_ms;
	return ignored;
}

uint32_t policy_weight_of(const struct policy *p, const struct addr *ep)
{
	for (size_t i = 0; i < p->n_weights; i++)
		if (addr_ip_equal(&p->weights[i].ip, ep))
			return p->weights[i].weight;
	return 1;
}
