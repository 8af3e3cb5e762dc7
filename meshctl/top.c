// SPDX-License-Identifier: GPL-2.0-only
/* `meshctl top [--once] [--interval DURATION]`: a live view of each service
 * port's connection and request rates, errors and latency, computed from two
 * GET /v1/services samples: rates are counter differences over the time
 * between them, latencies are quantiles of the histogram differences, so a
 * frame shows that interval and nothing older. Redraws every interval until
 * interrupted; --once prints one frame (for scripts and tests).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "meshctl.h"
#include "opt.h"

#define TOP_BUCKETS_MAX 64

static const char *const top_headers[] = {
	"NAMESPACE", "NAME", "PORT", "ACTIVE", "CONN/S",  "REQ/S",
	"ERR/S",     "ERR%", "P50",  "P99",    "EJECTED",
};
#define N_TOP_COLS (sizeof(top_headers) / sizeof(top_headers[0]))

static struct json_object *find_port(struct json_object *resp, struct json_object *like)
{
	struct json_object *arr = out_path(resp, "services");

	for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
		struct json_object *s = json_object_array_get_idx(arr, i);

		if (!strcmp(out_str(s, "namespace") ?: "", out_str(like, "namespace") ?: "") &&
		    !strcmp(out_str(s, "name") ?: "", out_str(like, "name") ?: "") &&
		    !strcmp(out_str(s, "vip") ?: "", out_str(like, "vip") ?: ""))
			return s;
	}
	return NULL;
}

/* Failures a caller saw or caused: 5xx answers, refusals for want of an
 * endpoint, circuit-breaker rejections, and connects that failed.
 */
static unsigned long long errors(struct json_object *s)
{
	struct json_object *eps = out_path(s, "endpoints");
	unsigned long long n = out_u64(s, "total.responses.5xx") + out_u64(s, "total.no_endpoint") +
			       out_u64(s, "total.circuit_open.max_connections") +
			       out_u64(s, "total.circuit_open.max_pending") +
			       out_u64(s, "total.circuit_open.max_requests");

	for (size_t i = 0; eps && i < json_object_array_length(eps); i++)
		n += out_u64(json_object_array_get_idx(eps, i), "total.connect_failures");
	return n;
}

/* The @q quantile of the histogram difference b - a under latency.@kind, in
 * microseconds (linear inside a bucket, as Prometheus does); 0 when empty.
 */
static unsigned long long delta_quantile(struct json_object *a, struct json_object *b,
					 const char *kind, double q)
{
	char key[64];
	struct json_object *bounds, *ca, *cb;
	unsigned long long d[TOP_BUCKETS_MAX], total = 0;
	size_t n;
	double rank, seen = 0;

	snprintf(key, sizeof(key), "latency.%s.bounds_us", kind);
	bounds = out_path(b, key);
	snprintf(key, sizeof(key), "latency.%s.counts", kind);
	cb = out_path(b, key);
	ca = a ? out_path(a, key) : NULL;
	if (!bounds || !cb)
		return 0;
	n = json_object_array_length(cb);
	if (n > TOP_BUCKETS_MAX || n != json_object_array_length(bounds) + 1)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned long long x = json_object_get_uint64(json_object_array_get_idx(cb, i));
		unsigned long long y =
			ca && i < json_object_array_length(ca)
				? json_object_get_uint64(json_object_array_get_idx(ca, i))
				: 0;

		d[i] = x >= y ? x - y : 0;
		total += d[i];
	}
	if (!total)
		return 0;
	rank = q * (double)total;
	for (size_t i = 0; i < n; i++) {
		double lo =
			i ? (double)json_object_get_uint64(json_object_array_get_idx(bounds, i - 1))
			  : 0;

		if (!d[i] || seen + (double)d[i] < rank) {
			seen += (double)d[i];
			continue;
		}
		if (i == n - 1)
			return (unsigned long long)lo;
		double hi = (double)json_object_get_uint64(json_object_array_get_idx(bounds, i));

		return (unsigned long long)(lo + (hi - lo) * (rank - seen) / (double)d[i]);
	}
	return 0;
}

static unsigned long long diff(struct json_object *a, struct json_object *b, const char *path)
{
	unsigned long long x = out_u64(b, path), y = a ? out_u64(a, path) : 0;

	return x >= y ? x - y : 0;
}

/* The first sample and the seconds between the two, for top_row(). */
struct top_ctx {
	struct json_object *sa;
	double secs;
};

static int top_row(struct out_table *t, struct json_object *b, void *ctx)
{
	const struct top_ctx *c = ctx;
	struct json_object *a = find_port(c->sa, b);
	double secs = c->secs;
	unsigned long long conns = diff(a, b, "total.connections");
	unsigned long long reqs = diff(a, b, "total.requests");
	unsigned long long errs = errors(b) - (a && errors(a) <= errors(b) ? errors(a) : 0);
	unsigned long long base = reqs ? reqs : conns;
	const char *kind = diff(a, b, "latency.request.count") ? "request" : "connect";
	char act[24], cps[24], rps[24], eps[24], epct[24], p50[24], p99[24], ej[24];
	const char *port = out_str(b, "port_name");

	snprintf(act, sizeof(act), "%llu", out_u64(b, "active"));
	snprintf(cps, sizeof(cps), "%.1f", (double)conns / secs);
	snprintf(rps, sizeof(rps), "%.1f", (double)reqs / secs);
	snprintf(eps, sizeof(eps), "%.1f", (double)errs / secs);
	if (base)
		snprintf(epct, sizeof(epct), "%.1f", 100.0 * (double)errs / (double)base);
	else
		snprintf(epct, sizeof(epct), "-");
	snprintf(ej, sizeof(ej), "%llu", out_u64(b, "ejected"));
	return out_table_add(
		t, (const char *const[]){
			   out_str(b, "namespace"), out_str(b, "name"),
			   port && port[0] ? port : "-", act, cps, rps, eps, epct,
			   out_us(p50, sizeof(p50), delta_quantile(a, b, kind, 0.5), 1),
			   out_us(p99, sizeof(p99), delta_quantile(a, b, kind, 0.99), 1), ej });
}

int cmd_top_render(FILE *out, struct json_object *sa, struct json_object *sb, double secs)
{
	struct json_object *arr = out_path(sb, "services");
	struct top_ctx c = { .sa = sa, .secs = secs };

	if (!arr || !json_object_is_type(arr, json_type_array) || secs <= 0)
		return -EPROTO;
	return out_table_rows(out, N_TOP_COLS, top_headers, arr, top_row, &c);
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int cmd_top(struct meshctl *m, int argc, char **argv)
{
	const char *interval = NULL;
	bool once = false;
	const struct cmd_opt opts[] = { { "once", NULL, &once }, { "interval", &interval, NULL } };
	struct json_object *prev = NULL, *cur = NULL;
	uint64_t ms = 1000;
	double t_prev, t_cur;
	int ret, err;

	ret = meshctl_opts_only(m, argc, argv, opts, sizeof(opts) / sizeof(opts[0]));
	if (ret)
		return ret;
	if (interval && (opt_parse_duration_ms(interval, &ms) || ms < 100 || ms > 3600000)) {
		out_err(m->err, m->format, "invalid --interval '%s' (100ms to 1h, e.g. 2s)",
			interval);
		return MESHCTL_USAGE;
	}
	ret = meshctl_get(m, "/v1/services", &prev);
	if (ret)
		return ret;
	t_prev = mono_s();
	for (;;) {
		sleep_ms(ms);
		ret = meshctl_get(m, "/v1/services", &cur);
		if (ret)
			break;
		t_cur = mono_s();
		if (!once)
			fputs("\033[H\033[2J", m->out); /* home, clear: redraw in place */
		if (m->format == OUT_JSON && once) {
			/* The two samples, so a script computes what it wants. */
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "interval_s",
					       json_object_new_double(t_cur - t_prev));
			json_object_object_add(o, "before", json_object_get(prev));
			json_object_object_add(o, "after", json_object_get(cur));
			out_json(m->out, o);
			json_object_put(o);
			err = 0;
		} else {
			if (!once)
				fprintf(m->out, "meshctl top: every %.1fs, Ctrl-C to quit\n\n",
					(double)ms / 1000);
			err = cmd_top_render(m->out, prev, cur, t_cur - t_prev);
		}
		fflush(m->out);
		if (err) {
			out_err(m->err, m->format,
				err == -EPROTO
					? "malformed answer from the agent: /v1/services has no \"services\""
					: "out of memory");
			ret = MESHCTL_ERR;
			break;
		}
		json_object_put(prev);
		prev = cur;
		cur = NULL;
		t_prev = t_cur;
		if (once)
			break;
	}
	json_object_put(cur);
	json_object_put(prev);
	return ret;
}
