// SPDX-License-Identifier: GPL-2.0-only
/* agent/model/policy.c: defaults, per-service weft.io/ annotations decoded
 * into an override, invalid values kept at their default, the policy table
 * behind the options, and protocol detection (proxy/http.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "config.h"
#include "log.h"
#include "loop.h"
#include "model/model.h"
#include "model/policy.h"
#include "proxy/conn.h"
#include "proxy/policy.h"
#include "proxy/proxy.h"
#include "proxy/state.h"
#include "registry/decode.h"
#include "registry/yaml.h"
#include "model_put.h"

struct annotation {
	char key[96];
	char value[256];
};

/* A Service shop/web annotated with @a[0..n). */
struct svc {
	const struct annotation *a;
	size_t n;
};

static struct svc svc_with(const struct annotation *a, size_t n)
{
	return (struct svc){ a, n };
}

static void set(struct annotation *a, const char *key, const char *value)
{
	snprintf(a->key, sizeof(a->key), "%s", key);
	snprintf(a->value, sizeof(a->value), "%s", value);
}

/* @out = @def overridden by @s's annotations, decoded as the registry does;
 * returns how many were ignored.
 */
static int policy_for_service(struct policy *out, const struct policy *def, const struct svc *s)
{
	struct policy_override o = { 0 };
	char why[512];
	int ignored = 0;

	for (size_t i = 0; i < s->n; i++)
		if (policy_override_annotation(&o, s->a[i].key, s->a[i].value, why, sizeof(why)))
			ignored++;
	policy_apply(out, def, &o);
	return ignored;
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
	struct annotation a[8];
	struct policy def, p;
	struct svc s;
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
	struct annotation a[7];
	struct policy def, p;
	struct svc s;

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
	struct annotation a[1];
	struct policy def, p;
	struct svc s;

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

Test(policy, every_knob_of_the_table_round_trips)
{
	char *argv[] = { "weft-agent", NULL };
	struct agent_config cfg = { 0 };
	struct policy builtin;
	char *help = NULL, want[160];
	size_t len = 0;
	FILE *f;

	for (size_t i = 0; i < POLICY_KNOBS; i++)
		if (policy_knobs[i].env)
			unsetenv(policy_knobs[i].env);
	cr_assert_eq(cfg_parse(&cfg, 1, argv), 0);
	f = open_memstream(&help, &len);
	cr_assert_not_null(f);
	cfg_usage(f);
	cr_assert_eq(fclose(f), 0);
	policy_builtin(&builtin);
	for (size_t i = 0; i < POLICY_KNOBS; i++) {
		const struct policy_knob *k = &policy_knobs[i];
		struct policy parsed = { 0 };

		cr_assert_eq(policy_knob_find(k->annotation), k, "%s", k->annotation);
		cr_assert_eq(strncmp(k->annotation, "weft.io/", 8), 0, "%s", k->annotation);
		cr_assert_eq(policy_knob_parse(k, k->def, &parsed), 0, "%s: default '%s'",
			     k->annotation, k->def);
		cr_assert_eq(policy_knob_get(k, &parsed), policy_knob_get(k, &builtin),
			     "%s: the default parses to the built-in value", k->annotation);
		if (!k->option)
			continue;
		cr_assert_eq(policy_knob_get(k, &cfg.policy), policy_knob_get(k, &builtin),
			     "--%s: the option's default is the built-in one", k->option);
		snprintf(want, sizeof(want), "  --%s %s ", k->option, k->metavar);
		cr_assert(strstr(help, want), "--help lacks '%s'", want);
		snprintf(want, sizeof(want), "(%s) [env %s, default %s]", k->annotation, k->env,
			 k->def);
		cr_assert(strstr(help, want), "--help lacks '%s'", want);
	}
	free(help);
}

/* Redirect stderr (where the log goes) into a temporary file, or back. */
static int capture_begin(FILE **tmp)
{
	int saved;

	*tmp = tmpfile();
	cr_assert_not_null(*tmp);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	cr_assert_geq(saved, 0);
	cr_assert_geq(dup2(fileno(*tmp), STDERR_FILENO), 0);
	return saved;
}

/* Stop capturing; returns how many times @needle was logged. */
static int capture_end(FILE *tmp, int saved, const char *needle)
{
	char line[1024];
	int n = 0;

	fflush(stderr);
	cr_assert_geq(dup2(saved, STDERR_FILENO), 0);
	close(saved);
	rewind(tmp);
	while (fgets(line, sizeof(line), tmp)) {
		fputs(line, stderr);
		if (strstr(line, needle))
			n++;
	}
	fclose(tmp);
	return n;
}

Test(policy, an_invalid_annotation_is_reported_once_whatever_the_proxies)
{
	static const char warning[] = "registry: service shop/web: annotation weft.io/retries: 'many' "
				      "is not an integer in 0..5; using the default, ignoring";
	struct proxy_opts opts = { .max_conns = 16 };
	struct loop *loop = loop_new();
	struct model *m = model_new();
	struct proxy *px[2] = { NULL };
	struct catalogue *c;
	FILE *tmp;
	int saved;

	cr_assert(loop && m);
	log_set_level(LOG_LEVEL_INFO);
	saved = capture_begin(&tmp);
	tmodel_put(m, "test", "apiVersion: v1\nkind: Service\n"
		    "metadata: {name: web, namespace: shop,\n"
		    "  annotations: {weft.io/retries: many, weft.io/lb: round-robin}}\n"
		    "spec: {clusterIP: 198.19.0.10, ports: [{name: a, port: 80, targetPort: 8080},\n"
		    "  {name: b, port: 81, targetPort: 8081}]}\n---\n"
		    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		    "metadata: {name: web-a, namespace: shop, labels: {kubernetes.io/service-name: web}}\n"
		    "addressType: IPv4\nendpoints:\n- {addresses: [198.18.1.1]}\n");
	/* One proxy, then two (as with --workers 2), each binding two
	 * snapshots: the Service was decoded once, so it is reported once.
	 */
	for (size_t n = 1; n <= 2; n++) {
		for (int publish = 0; publish < 2; publish++) {
			c = model_build(m);
			cr_assert_not_null(c);
			for (size_t i = 0; i < n; i++) {
				struct svc_state *s;

				if (!px[i])
					px[i] = proxy_new(loop, &opts);
				cr_assert_not_null(px[i]);
				proxy_set_catalogue(px[i], c);
				/* No connection yet: no state; what a first one gets. */
				cr_assert_null(proxy_service_at(px[i], 0));
				s = proxy_service_blank(px[i], 0);
				cr_assert_not_null(s);
				cr_assert_eq(s->pol.retries, 2, "the default applies");
				cr_assert_eq(s->pol.lb, LB_ROUND_ROBIN, "the valid annotation applies");
				state_blank_free(s);
			}
			catalogue_unref(c);
		}
	}
	cr_assert_eq(capture_end(tmp, saved, warning), 1);
	for (size_t i = 0; i < 2; i++)
		proxy_free(px[i]);
	model_free(m);
	loop_free(loop);
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
