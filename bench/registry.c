// SPDX-License-Identifier: GPL-2.0-only
/* weft-bench-registry: the Kubernetes registry at scale. Loads a big cluster
 * into the fake API server (tests/k8s-apiserver/), runs the unchanged
 * backend with the agent's sink, model and catalogue publishing on one loop,
 * and measures:
 *
 *   - time to full sync: backend start → health SYNCED with every object in
 *     the catalogue (lists are paginated, 100 objects a page), and the CPU
 *     this process spent on it (decoding, model, catalogue builds);
 *   - memory: this process' RSS before start, after sync, and its peak (the
 *     fake server is another process);
 *   - propagation: CHANGES EndpointSlice updates made one at a time in the
 *     API server; end to end = before the change is posted → the catalogue
 *     built from it is published; plus the sink's own histogram (event
 *     received by the backend thread → published), as reg_sink_latency()
 *     reports it; plus the cost of one catalogue build and hand-over to
 *     the workers (every build, and the changes' alone: wall and CPU);
 *     and the change split where the fake server says it wrote the event:
 *     it records, per event, when its write to the watch stream began
 *     (CLOCK_MONOTONIC, /_control/event_times), so posted → written is the
 *     fake server's part (the bench's HTTPS post, Python applying it and
 *     waking its watch thread) and written → published the agent's (the
 *     backend reading and decoding the event, the sink, the build and the
 *     hand-over to the workers, and the waits for a core on the way);
 *   - the proxy's side: every catalogue is published to BENCH_WORKERS proxy
 *     worker threads (default 2) as the agent does, through the sink's gate
 *     (a big change in parts, each once every worker bound the one before);
 *     each worker binds a snapshot between
 *     two of its events, so the longest bind is the longest a request on a
 *     worker waited for a publish (during the sync, and during the changes);
 *     BENCH_WORKERS=0 leaves the proxy out.
 *
 * usage: weft-bench-registry [SERVICES [ENDPOINTS_PER_SERVICE [CHANGES]]]
 * Defaults: 10000 services with one EndpointSlice of 10 endpoints each
 * (100,000 endpoints), 200 changes. Prints one JSON object on stdout. Run
 * from the top of the tree (bench/registry.sh does).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../tests/k8s-apiserver/k8s_fake.h"
#include "model/catalogue.h"
#include "log.h"
#include "loop.h"
#include "model/model.h"
#include "proxy/workers.h"
#include "registry/k8s.h"
#include "registry/registry.h"

#define SRC "kubernetes"
#define SYNC_LIMIT_MS 600000

static struct {
	struct loop *loop;
	struct model *model;
	struct reg_sink *sink;
	struct workers *workers;
	uint64_t builds, build_us_sum, build_us_max;
	/* the same for the changes only, and their CPU (this thread's) */
	uint64_t change_builds, change_build_us_sum, change_build_us_max, change_build_cpu_us_max;
	/* the change being waited for */
	const char *slice;
	char want_ip[32];
	uint64_t done_us;
	size_t want_services;
	bool synced;
	struct loop_timer deadline, check;
} b;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static long rss_kib(const char *field)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)))
			v = strtol(line + strlen(field) + 1, NULL, 10);
	fclose(f);
	return v;
}

/* CPU seconds (user + system) this process used so far: the backend
 * thread and the loop, not the fake server.
 */
static uint64_t thread_cpu_us(void)
{
	struct timespec ts = { 0 };

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static double cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static struct reg_source_status source_status(void)
{
	struct reg_source_status st[4] = { 0 };
	size_t n = reg_sink_status(b.sink, st, 4);

	for (size_t i = 0; i < n && i < 4; i++)
		if (!strcmp(st[i].source, SRC))
			return st[i];
	return (struct reg_source_status){ 0 };
}

/* The sink's gate, as the agent wires it (agent/main.c): a big change is
 * published in parts, each once every worker has bound the one before.
 */
static bool sink_busy(void *ctx)
{
	(void)ctx;
	return b.workers && workers_binding(b.workers);
}

static void on_workers_bound(void *ctx)
{
	(void)ctx;
	reg_sink_resume(b.sink);
}

/* What the agent does after each batch: build and publish a catalogue. */
static void on_changed(void *ctx)
{
	uint64_t t0 = now_us(), c0 = thread_cpu_us(), d, cpu;
	struct catalogue *c = model_build(b.model);
	const struct obj *o;
	char ip[64];

	(void)ctx;
	if (!c)
		return;
	if (b.workers)
		workers_set_catalogue(b.workers, c);
	d = now_us() - t0;
	cpu = thread_cpu_us() - c0;
	if (b.slice) {
		b.change_builds++;
		b.change_build_us_sum += d;
		if (d > b.change_build_us_max)
			b.change_build_us_max = d;
		if (cpu > b.change_build_cpu_us_max)
			b.change_build_cpu_us_max = cpu;
	}
	b.builds++;
	b.build_us_sum += d;
	if (d > b.build_us_max)
		b.build_us_max = d;
	if (!b.synced && catalogue_n_services(c) == b.want_services &&
	    source_status().health == REG_HEALTH_SYNCED) {
		b.synced = true;
		b.done_us = now_us();
		loop_stop(b.loop);
	}
	catalogue_unref(c);
	if (!b.slice)
		return;
	o = model_find(b.model, SRC, OBJ_ENDPOINTSLICE, "bench", b.slice);
	if (o && o->slice.n_endpoints &&
	    !strcmp(addr_fmt_ip(&o->slice.endpoints[0].addrs[0], ip, sizeof(ip)), b.want_ip)) {
		b.done_us = now_us();
		loop_stop(b.loop);
	}
}

static void on_deadline(struct loop_timer *t, uint64_t now)
{
	(void)t;
	(void)now;
	loop_stop(b.loop);
}

/* Health changes do not publish: look again every 10 ms until synced. */
static void on_check(struct loop_timer *t, uint64_t now)
{
	(void)now;
	if (!b.synced && source_status().health == REG_HEALTH_SYNCED) {
		struct catalogue *c = model_build(b.model);

		if (c && catalogue_n_services(c) == b.want_services) {
			b.synced = true;
			b.done_us = now_us();
			loop_stop(b.loop);
		}
		catalogue_unref(c);
	}
	if (!b.synced)
		(void)loop_timer_set(b.loop, t, 10, on_check);
}

struct post {
	struct kfake *f;
	const char *json;
	long long rv;		/* the change's resourceVersion */
	uint64_t done_us;	/* when the server answered the post */
	int rc;
};

/* Post a change from another thread, so the loop runs meanwhile as the
 * agent's would.
 */
static void *post_change(void *arg)
{
	struct post *p = arg;

	p->rc = kfake_apply_rv(p->f, p->json, &p->rv);
	p->done_us = now_us();
	return NULL;
}

/* The workers' bind figures since the last call. */
static struct workers_publish_stats publish_stats(void)
{
	struct workers_publish_stats st = { 0 };

	if (!b.workers)
		return st;
	workers_isolate(b.workers);
	workers_publish_stats(b.workers, &st);
	workers_publish_stats_reset(b.workers);
	workers_release(b.workers);
	return st;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;

	return a < c ? -1 : a > c;
}

/* One change's moments, CLOCK_MONOTONIC µs. */
struct change_times {
	uint64_t posted;	/* before the bench posts it */
	uint64_t answered;	/* the server answered the post */
	long long rv;
	uint64_t recorded;	/* the server put it in its event history */
	uint64_t written;	/* the server began writing it to the watch stream */
	uint64_t published;	/* the catalogue built from it was published */
	uint64_t sink_us;	/* the sink's received → published for its one event,
				 * 0 if the change did not come as exactly one */
};

/* @what's p50, p99 and max over @n changes, in ms, as JSON members. */
static void print_split(const char *what, const uint64_t *d_in, size_t n)
{
	uint64_t *d = malloc((n ? n : 1) * sizeof(*d));

	if (!d || !n) {
		printf(",\"%s_p50_ms\":null,\"%s_p99_ms\":null,\"%s_max_ms\":null", what, what,
		       what);
		free(d);
		return;
	}
	memcpy(d, d_in, n * sizeof(*d));
	qsort(d, n, sizeof(*d), cmp_u64);
	printf(",\"%s_p50_ms\":%.2f,\"%s_p99_ms\":%.2f,\"%s_max_ms\":%.2f", what,
	       (double)d[n / 2] / 1000, what, (double)d[n * 99 / 100] / 1000, what,
	       (double)d[n - 1] / 1000);
	free(d);
}

static uint64_t span(uint64_t from, uint64_t to)
{
	return to > from ? to - from : 0;
}

/* Fill in when the server recorded and wrote each change (its
 * /_control/event_times) and print the split of the end-to-end latency.
 * Changes the server has no time for are left out of the split (counted).
 */
static void print_server_split(struct kfake *f, struct change_times *t, size_t n)
{
	json_object *o = n ? kfake_event_times(f, t[0].rv - 1) : NULL, *evs = NULL;
	uint64_t *post = calloc(n ? n : 1, sizeof(*post));
	uint64_t *server = calloc(n ? n : 1, sizeof(*server));
	uint64_t *agent = calloc(n ? n : 1, sizeof(*agent));
	uint64_t *backend = calloc(n ? n : 1, sizeof(*backend));
	uint64_t *sink = calloc(n ? n : 1, sizeof(*sink));
	size_t k = 0, m = 0, ks = 0;

	if (o && json_object_object_get_ex(o, "events", &evs))
		m = json_object_array_length(evs);
	for (size_t i = 0; i < m; i++) {
		json_object *e = json_object_array_get_idx(evs, i), *rv, *rec, *wr;

		if (!json_object_object_get_ex(e, "rv", &rv) ||
		    !json_object_object_get_ex(e, "recorded", &rec) ||
		    !json_object_object_get_ex(e, "written", &wr) || !wr)
			continue;
		for (size_t j = 0; j < n; j++)
			if (t[j].rv == json_object_get_int64(rv)) {
				t[j].recorded = (uint64_t)(json_object_get_double(rec) * 1e6);
				t[j].written = (uint64_t)(json_object_get_double(wr) * 1e6);
				break;
			}
	}
	for (size_t j = 0; post && server && agent && backend && sink && j < n; j++) {
		if (!t[j].written)
			continue;
		if (t[j].sink_us) {
			sink[ks] = t[j].sink_us;
			backend[ks++] = span(t[j].written + t[j].sink_us, t[j].published);
		}
		post[k] = span(t[j].posted, t[j].answered);
		server[k] = span(t[j].posted, t[j].written);
		agent[k] = span(t[j].written, t[j].published);
		k++;
	}
	printf(",\"split_changes\":%zu", k);
	print_split("post", post, k);
	print_split("posted_to_written", server, k);
	print_split("written_to_published", agent, k);
	printf(",\"sink_split_changes\":%zu", ks);
	print_split("written_to_received", backend, ks);
	print_split("received_to_published", sink, ks);
	json_object_put(o);
	free(post);
	free(server);
	free(agent);
	free(backend);
	free(sink);
}

/* The upper bound of the bucket holding quantile @q of the sink's histogram. */
static uint64_t hist_quantile(const struct reg_latency *l, double q)
{
	uint64_t seen = 0, rank = (uint64_t)(q * (double)l->n);

	for (size_t i = 0; i < REG_LAT_BUCKETS; i++) {
		seen += l->count[i];
		if (seen > rank)
			return reg_lat_bounds_us[i];
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long services = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
	unsigned long per_svc = argc > 2 ? strtoul(argv[2], NULL, 10) : 10;
	unsigned long changes = argc > 3 ? strtoul(argv[3], NULL, 10) : 200;
	struct reg_opts opts = { .node_name = "node-0" };
	struct kfake_opts fo = { .history = 100000 };
	struct proxy_opts po = { .max_conns = 1024 };
	struct workers_publish_stats pub_sync, pub_changes;
	unsigned long n_workers = getenv("BENCH_WORKERS") ? strtoul(getenv("BENCH_WORKERS"), NULL, 10) : 2;
	uint64_t t0, sync_us, *lat;
	struct change_times *times;
	double cpu0, sync_cpu;
	long rss0, rss1;
	struct kfake f;
	void *state = NULL;
	char body[256];
	int rc = 1;

	log_set_level(getenv("BENCH_LOG") ? LOG_LEVEL_INFO : LOG_LEVEL_WARN);
	lat = calloc(changes ? changes : 1, sizeof(*lat));
	times = calloc(changes ? changes : 1, sizeof(*times));
	if (!lat || !times || kfake_start(&f, &fo))
		return 1;
	snprintf(body, sizeof(body),
		 "{\"namespace\":\"bench\",\"services\":%lu,\"endpoints_per_slice\":%lu}", services,
		 per_svc);
	t0 = now_us();
	if (kfake_control(&f, "bulk", body))
		goto out;
	fprintf(stderr, "bench: loaded %lu services, %lu endpoints into the fake API server in %.1f s\n",
		services, services * per_svc, (double)(now_us() - t0) / 1e6);
	b.loop = loop_new();
	b.model = model_new();
	if (!b.loop || !b.model || model_declare_source(b.model, SRC))
		goto out;
	b.sink = reg_sink_new(b.loop, b.model, on_changed, NULL);
	b.workers = n_workers ? workers_new(b.loop, (unsigned int)n_workers, &po) : NULL;
	if (!b.sink || (n_workers && !b.workers))
		goto out;
	if (b.workers) {
		if (workers_on_bound(b.workers, b.loop, on_workers_bound, NULL))
			goto out;
		reg_sink_set_gate(b.sink, sink_busy, NULL);
	}
	b.want_services = services;
	opts.kubeconfig = f.kubeconfig;
	rss0 = rss_kib("VmRSS:");
	cpu0 = cpu_s();
	t0 = now_us();
	if (reg_k8s_ops.start(SRC, "", &opts, b.sink, &state))
		goto out;
	(void)loop_timer_set(b.loop, &b.deadline, SYNC_LIMIT_MS, on_deadline);
	(void)loop_timer_set(b.loop, &b.check, 10, on_check);
	(void)loop_run(b.loop);
	if (!b.synced) {
		fprintf(stderr, "bench: no full sync within %d s\n", SYNC_LIMIT_MS / 1000);
		goto out;
	}
	sync_us = b.done_us - t0;
	sync_cpu = cpu_s() - cpu0;
	pub_sync = publish_stats();
	rss1 = rss_kib("VmRSS:");
	fprintf(stderr, "bench: synced in %.2f s; measuring %lu changes\n", (double)sync_us / 1e6,
		changes);
	/* The histogram so far is the sync's; keep only the changes'. */
	struct reg_latency before = *reg_sink_latency(b.sink);

	for (unsigned long i = 0; i < changes; i++) {
		static char slice[64], obj[1024];
		unsigned long s = (i * 7919) % services;

		snprintf(slice, sizeof(slice), "svc-%lu-0", s);
		snprintf(b.want_ip, sizeof(b.want_ip), "198.19.%lu.%lu", 100 + i / 250 % 100,
			 i % 250 + 1);
		snprintf(obj, sizeof(obj),
			 "[{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
			 "\"metadata\":{\"name\":\"%s\",\"namespace\":\"bench\",\"labels\":"
			 "{\"kubernetes.io/service-name\":\"svc-%lu\"}},\"addressType\":\"IPv4\","
			 "\"endpoints\":[{\"addresses\":[\"%s\"],\"conditions\":{\"ready\":true}}],"
			 "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}]}]",
			 slice, s, b.want_ip);
		struct post p = { .f = &f, .json = obj };
		pthread_t th;

		struct reg_latency l0 = *reg_sink_latency(b.sink), l1;

		b.slice = slice;
		b.done_us = 0;
		(void)loop_timer_set(b.loop, &b.deadline, 10000, on_deadline);
		t0 = now_us();
		if (pthread_create(&th, NULL, post_change, &p))
			goto out;
		(void)loop_run(b.loop);
		pthread_join(th, NULL);
		loop_timer_del(b.loop, &b.deadline);
		if (p.rc)
			goto out;
		if (!b.done_us) {
			fprintf(stderr, "bench: change %lu never arrived\n", i);
			goto out;
		}
		lat[i] = b.done_us - t0;
		l1 = *reg_sink_latency(b.sink);
		times[i] = (struct change_times){
			.posted = t0, .answered = p.done_us, .rv = p.rv, .published = b.done_us,
			.sink_us = l1.n == l0.n + 1 ? l1.sum_us - l0.sum_us : 0,
		};
	}
	b.slice = NULL;
	pub_changes = publish_stats();
	qsort(lat, changes, sizeof(*lat), cmp_u64);
	{
		const struct reg_latency *l = reg_sink_latency(b.sink);
		struct reg_latency d = *l;

		for (size_t i = 0; i < REG_LAT_BUCKETS; i++)
			d.count[i] -= before.count[i];
		d.n -= before.n;
		d.sum_us -= before.sum_us;
		printf("{\"services\":%lu,\"endpoints\":%lu,\"sync_s\":%.3f,\"sync_cpu_s\":%.3f,"
		       "\"rss_before_kib\":%ld,\"rss_synced_kib\":%ld,\"rss_peak_kib\":%ld,"
		       "\"catalogue_builds\":%llu,\"catalogue_build_avg_ms\":%.2f,"
		       "\"catalogue_build_max_ms\":%.2f,\"change_builds\":%llu,"
		       "\"change_build_avg_ms\":%.2f,\"change_build_max_ms\":%.2f,"
		       "\"change_build_max_cpu_ms\":%.2f,\"changes\":%lu,"
		       "\"e2e_p50_ms\":%.2f,\"e2e_p99_ms\":%.2f,\"e2e_max_ms\":%.2f,"
		       "\"sink_p50_le_us\":%llu,\"sink_p99_le_us\":%llu,\"sink_mean_us\":%.0f,"
		       "\"workers\":%lu,\"worker_binds_sync\":%llu,\"worker_bind_max_sync_us\":%llu,"
		       "\"worker_bind_max_cpu_sync_us\":%llu,"
		       "\"worker_binds_changes\":%llu,\"worker_bind_max_changes_us\":%llu,"
		       "\"worker_bind_max_cpu_changes_us\":%llu,\"worker_bind_avg_changes_us\":%.0f",
		       services, services * per_svc, (double)sync_us / 1e6, sync_cpu, rss0, rss1,
		       rss_kib("VmHWM:"), (unsigned long long)b.builds,
		       (double)b.build_us_sum / (double)(b.builds ? b.builds : 1) / 1000,
		       (double)b.build_us_max / 1000, (unsigned long long)b.change_builds,
		       (double)b.change_build_us_sum /
			       (double)(b.change_builds ? b.change_builds : 1) / 1000,
		       (double)b.change_build_us_max / 1000,
		       (double)b.change_build_cpu_us_max / 1000, changes,
		       changes ? (double)lat[changes / 2] / 1000 : 0,
		       changes ? (double)lat[changes * 99 / 100] / 1000 : 0,
		       changes ? (double)lat[changes - 1] / 1000 : 0,
		       (unsigned long long)hist_quantile(&d, 0.5),
		       (unsigned long long)hist_quantile(&d, 0.99),
		       d.n ? (double)d.sum_us / (double)d.n : 0, n_workers,
		       (unsigned long long)pub_sync.binds, (unsigned long long)pub_sync.max_us,
		       (unsigned long long)pub_sync.max_cpu_us,
		       (unsigned long long)pub_changes.binds, (unsigned long long)pub_changes.max_us,
		       (unsigned long long)pub_changes.max_cpu_us,
		       pub_changes.binds ? (double)pub_changes.total_us / (double)pub_changes.binds
					 : 0);
		print_server_split(&f, times, changes);
		printf("}\n");
	}
	rc = 0;
out:
	reg_k8s_ops.stop(state, true);
	workers_free(b.workers);
	reg_sink_free(b.sink);
	model_free(b.model);
	loop_free(b.loop);
	kfake_stop(&f);
	free(lat);
	free(times);
	return rc;
}
