// SPDX-License-Identifier: GPL-2.0-only
/* The proxy's resilience end to end (docs/resilience.md): outlier ejection
 * and return, retries of failed connects and of 503s (and never of POSTs),
 * the connect timeout against a blackholed replica, the circuit breaker, the
 * retry budget, and protocol detection with a server that speaks first. Each
 * test declares service "res" (198.19.0.30:80) with its own endpoints and
 * weft.io/ annotations; the backends run in netns "s".
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fixture.h"
#include "servers.h"
#include "sock.h"
#include "tns.h"
#include "topo.h"

#define VIP "198.19.0.30:80"
#define MAX_SRV 4

static pid_t srv[MAX_SRV];
static const char *const res_ips[3] = { "198.18.2.11", "198.18.2.12", "198.18.2.13" };

static void up(void)
{
	/* These tests count node-wide: 10 of 50 clients through max-connections
	 * 10, an ejection after 5 failures in a row. Circuit breakers and
	 * outlier state are per worker (docs/resilience.md), so the agent runs
	 * one worker here; every other suite runs the default, one per CPU.
	 */
	setenv("WEFT_WORKERS", "1", 1);
	fixture_up();
}

static void down(void)
{
	for (int i = 0; i < MAX_SRV; i++)
		tsrv_stop(srv[i]);
	fixture_down();
}

TestSuite(resilience, .init = up, .fini = down, .timeout = 120);

/* Publish TOPO_REGISTRY plus Service mesh/res on VIP with endpoints @ips
 * (":8080", comma separated YAML list items) and @annotations (YAML lines
 * "    weft.io/x: \"v\"\n"), and wait until the agent has loaded it.
 */
static void declare_res(const char *ips, const char *annotations)
{
	char yaml[16384];
	long long gen = tenv_status_counter(&env, "catalogue_generation");

	snprintf(yaml, sizeof(yaml),
		 "%s---\napiVersion: v1\nkind: Service\nmetadata:\n  name: res\n"
		 "  namespace: mesh\n  annotations:\n%s"
		 "spec:\n  clusterIP: 198.19.0.30\n  ports:\n  - name: http\n    port: 80\n"
		 "    targetPort: 8080\n"
		 "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
		 "  name: res-1\n  namespace: mesh\n  labels:\n"
		 "    kubernetes.io/service-name: res\naddressType: IPv4\nendpoints:\n%s"
		 "ports:\n- name: http\n  port: 8080\n",
		 TOPO_REGISTRY, annotations, ips);
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	for (int i = 0; i < 100; i++) {
		if (tenv_status_counter(&env, "catalogue_generation") > gen)
			return;
		usleep(50000);
	}
	cr_assert_fail("the agent did not load the new registry");
}

/* The endpoint @addr ("IP:PORT") of service res in /v1/services; the caller
 * puts @root.
 */
static json_object *res_endpoint(json_object **root, const char *addr)
{
	json_object *svcs, *eps;

	*root = tenv_admin_get(&env, "/v1/services");
	cr_assert(*root != NULL, "GET /v1/services failed");
	cr_assert(json_object_object_get_ex(*root, "services", &svcs));
	for (size_t i = 0; i < json_object_array_length(svcs); i++) {
		json_object *s = json_object_array_get_idx(svcs, i);

		if (strcmp(json_object_get_string(json_object_object_get(s, "name")), "res"))
			continue;
		eps = json_object_object_get(s, "endpoints");
		for (size_t j = 0; j < json_object_array_length(eps); j++) {
			json_object *e = json_object_array_get_idx(eps, j);

			if (!strcmp(json_object_get_string(json_object_object_get(e, "address")),
				    addr))
				return e;
		}
	}
	cr_assert_fail("endpoint %s of res not in /v1/services", addr);
	return NULL;
}

/* A counter of service res at a dotted path under its object ("total.retries"). */
static long long res_counter(const char *dotted)
{
	json_object *root = tenv_admin_get(&env, "/v1/services"), *svcs, *cur = NULL;
	char path[128], *save = NULL;
	long long v = -1;

	if (!root || !json_object_object_get_ex(root, "services", &svcs))
		goto out;
	for (size_t i = 0; i < json_object_array_length(svcs) && !cur; i++) {
		json_object *s = json_object_array_get_idx(svcs, i);

		if (!strcmp(json_object_get_string(json_object_object_get(s, "name")), "res"))
			cur = s;
	}
	snprintf(path, sizeof(path), "%s", dotted);
	for (char *t = strtok_r(path, ".", &save); t && cur; t = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(cur, t, &cur))
			cur = NULL;
	if (cur)
		v = json_object_get_int64(cur);
out:
	json_object_put(root);
	return v;
}

static long ep_total(json_object *e, const char *key)
{
	return (long)json_object_get_int64(
		json_object_object_get(json_object_object_get(e, "total"), key));
}

/* Run curl in pod netns "a"; its stdout (one line per URL with -w) into @out. */
static int curl_a(char *out, size_t len, const char *args)
{
	char netns[128];

	return tenv_capture(out, len, "nsenter --net=%s curl -sS --max-time 20 %s 2>&1",
			    tns_path("a", netns, sizeof(netns)), args);
}

/* "URL URL ..." @n times, for one curl that reuses its connection. */
static void urls(char *buf, size_t len, int n)
{
	size_t off = 0;

	for (int i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, " http://198.19.0.30/r%d", i);
}

static int count_lines(const char *out, const char *line)
{
	int n = 0;

	for (const char *p = out; (p = strstr(p, line)); p += strlen(line))
		n++;
	return n;
}

Test(resilience, refusing_replica_is_ejected_and_comes_back_when_healed)
{
	char out[256];
	json_object *root, *e;
	long failures_at_ejection;
	bool back = false;

	/* .13 has no listener: its connects are refused. */
	srv[0] = tsrv_start("s", "198.18.2.11", 8080, "res-1");
	srv[1] = tsrv_start("s", "198.18.2.12", 8080, "res-2");
	cr_assert(srv[0] > 0 && srv[1] > 0);
	declare_res("- addresses: [198.18.2.11]\n- addresses: [198.18.2.12]\n"
		    "- addresses: [198.18.2.13]\n",
		    "    weft.io/outlier-consecutive-failures: \"3\"\n"
		    "    weft.io/outlier-base-ejection: \"1s\"\n");
	/* Every client connection succeeds: a refused connect is retried elsewhere. */
	for (int i = 0; i < 60; i++) {
		int err = tsock_ident("a", VIP, out, sizeof(out));

		cr_assert_eq(err, 0, "connection %d failed: %s", i, strerror(-err));
		cr_assert(!strncmp(out, "res-1 ", 6) || !strncmp(out, "res-2 ", 6), "got '%s'", out);
	}
	e = res_endpoint(&root, "198.18.2.13:8080");
	cr_assert_geq(ep_total(e, "ejections"), 1, "the refusing replica was never ejected");
	failures_at_ejection = ep_total(e, "connect_failures");
	cr_assert_geq(failures_at_ejection, 3);
	json_object_put(root);
	cr_assert_geq(res_counter("total.retries"), 3);
	/* Heal it; after its ejection time it is tried again and serves. */
	srv[2] = tsrv_start("s", "198.18.2.13", 8080, "res-3");
	cr_assert(srv[2] > 0);
	for (int i = 0; i < 100 && !back; i++) {
		cr_assert_eq(tsock_ident("a", VIP, out, sizeof(out)), 0, "after healing: %s", out);
		back = !strncmp(out, "res-3 ", 6);
		if (!back)
			usleep(50000);
	}
	cr_assert(back, "the healed replica never came back");
	e = res_endpoint(&root, "198.18.2.13:8080");
	cr_assert_str_eq(json_object_get_string(json_object_object_get(e, "health")), "healthy");
	json_object_put(root);
}

Test(resilience, replica_answering_503_is_retried_but_post_is_not)
{
	char out[16384], list[4096];
	long before[3], after[3], mx;
	int ok, unavailable;

	srv[0] = tsrv_start_http("s", "198.18.2.11", 8080, "res-1", 200, 0);
	srv[1] = tsrv_start_http("s", "198.18.2.12", 8080, "res-2", 200, 0);
	srv[2] = tsrv_start_http("s", "198.18.2.13", 8080, "res-3", 503, 0);
	cr_assert(srv[0] > 0 && srv[1] > 0 && srv[2] > 0);
	/* No ejection, round robin: every third request meets the 503 replica. */
	declare_res("- addresses: [198.18.2.11]\n- addresses: [198.18.2.12]\n"
		    "- addresses: [198.18.2.13]\n",
		    "    weft.io/lb: round-robin\n"
		    "    weft.io/outlier-consecutive-failures: \"0\"\n"
		    "    weft.io/retry-budget-min: \"100\"\n");
	urls(list, sizeof(list), 30);
	snprintf(out, sizeof(out), "-o /dev/null -w '%%{http_code}\\n' %s", list);
	cr_assert_eq(curl_a(out, sizeof(out), out), 0, "curl: %s", out);
	ok = count_lines(out, "200\n");
	cr_assert_eq(ok, 30, "GET: %d of 30 succeeded:\n%s", ok, out);
	cr_assert_geq(res_counter("total.retries"), 5, "no retries counted");
	cr_assert_geq(res_counter("total.responses.2xx"), 30);
	/* Keep-alive: curl's one connection carried every request, each balanced. */
	cr_assert_eq(res_counter("total.connections"), 1, "the client connection was dropped");
	cr_assert_geq(tenv_status_counter(&env, "connections.upstream_reused"), 1);

	for (int i = 0; i < 3; i++)
		cr_assert_eq(tsrv_http_stats("s", res_ips[i], 8080, &before[i], &mx), 0);
	snprintf(out, sizeof(out), "-o /dev/null -w '%%{http_code}\\n' -X POST -d x=1 %s", list);
	cr_assert_eq(curl_a(out, sizeof(out), out), 0, "curl: %s", out);
	unavailable = count_lines(out, "503\n");
	ok = count_lines(out, "200\n");
	cr_assert_eq(ok + unavailable, 30, "POST answers:\n%s", out);
	cr_assert_geq(unavailable, 5, "POSTs to the 503 replica were retried:\n%s", out);
	/* Each POST reached exactly one backend, once. */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(tsrv_http_stats("s", res_ips[i], 8080, &after[i], &mx), 0);
	cr_assert_eq(after[0] + after[1] + after[2] - before[0] - before[1] - before[2], 30,
		     "backends saw %ld POSTs for 30 sent",
		     after[0] + after[1] + after[2] - before[0] - before[1] - before[2]);
	cr_assert_eq(after[2] - before[2], unavailable);
}

Test(resilience, blackholed_replica_costs_at_most_the_connect_timeout)
{
	char r[64], out[256];
	uint64_t worst = 0;

	/* The router silently drops everything to 198.18.9.9: SYNs go unanswered. */
	tns_name("r", r, sizeof(r));
	cr_assert_eq(tns_sh("ip -n %s route add blackhole 198.18.9.9/32", r), 0);
	srv[0] = tsrv_start("s", "198.18.2.11", 8080, "res-1");
	srv[1] = tsrv_start("s", "198.18.2.12", 8080, "res-2");
	cr_assert(srv[0] > 0 && srv[1] > 0);
	declare_res("- addresses: [198.18.2.11]\n- addresses: [198.18.2.12]\n"
		    "- addresses: [198.18.9.9]\n",
		    "    weft.io/connect-timeout: 200ms\n");
	for (int i = 0; i < 30; i++) {
		uint64_t t0 = mono_ms(), dt;
		int err = tsock_ident("a", VIP, out, sizeof(out));

		dt = mono_ms() - t0;
		cr_assert_eq(err, 0, "connection %d failed: %s", i, strerror(-err));
		if (dt > worst)
			worst = dt;
	}
	cr_log_info("blackhole: worst client latency %llu ms (connect timeout 200 ms)",
		    (unsigned long long)worst);
	cr_assert_lt(worst, 400, "a client waited %llu ms, over 2x the connect timeout",
		     (unsigned long long)worst);
	cr_assert_geq(res_counter("total.connect_timeouts"), 1, "the blackhole was never tried");
}

struct client {
	pthread_barrier_t *go;
	int status;
	bool overloaded_header;
	uint64_t ms;
};

static void *http_client(void *arg)
{
	struct client *c = arg;
	char out[4096];
	uint64_t t0;
	ssize_t n;
	int fd;

	pthread_barrier_wait(c->go);
	t0 = mono_ms();
	fd = tsock_connect("a", VIP, 5000);
	if (fd < 0)
		return NULL;
	n = tsock_request(fd, "GET / HTTP/1.1\r\nHost: res\r\nConnection: close\r\n\r\n", out,
			  sizeof(out), 5000);
	close(fd);
	c->ms = mono_ms() - t0;
	if (n > 12 && !strncmp(out, "HTTP/1.1 ", 9))
		c->status = atoi(out + 9);
	c->overloaded_header = strstr(out, "x-weft-overloaded: max-connections\r\n") != NULL;
	return NULL;
}

Test(resilience, circuit_breaker_passes_exactly_max_connections_and_fails_the_rest_fast)
{
	enum { CLIENTS = 50, LIMIT = 10 };
	struct client c[CLIENTS] = { 0 };
	pthread_barrier_t go;
	pthread_t t[CLIENTS];
	int ok = 0, rejected = 0;
	uint64_t slowest_reject = 0;
	long requests, max_inflight;

	srv[0] = tsrv_start_http("s", "198.18.2.11", 8080, "res-1", 200, 1000);
	cr_assert(srv[0] > 0);
	declare_res("- addresses: [198.18.2.11]\n", "    weft.io/max-connections: \"10\"\n");
	pthread_barrier_init(&go, NULL, CLIENTS);
	for (int i = 0; i < CLIENTS; i++) {
		c[i].go = &go;
		cr_assert_eq(pthread_create(&t[i], NULL, http_client, &c[i]), 0);
	}
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < CLIENTS; i++) {
		if (c[i].status == 200) {
			ok++;
		} else if (c[i].status == 503 && c[i].overloaded_header) {
			rejected++;
			if (c[i].ms > slowest_reject)
				slowest_reject = c[i].ms;
		}
	}
	cr_assert_eq(tsrv_http_stats("s", "198.18.2.11", 8080, &requests, &max_inflight), 0);
	cr_log_info("circuit breaker: %d passed, %d rejected (slowest rejection %llu ms), "
		    "upstream max in flight %ld",
		    ok, rejected, (unsigned long long)slowest_reject, max_inflight);
	cr_assert_eq(max_inflight, LIMIT, "the upstream saw %ld at once", max_inflight);
	cr_assert_eq(ok, LIMIT, "%d requests passed", ok);
	cr_assert_eq(rejected, CLIENTS - LIMIT, "%d fast 503s with x-weft-overloaded", rejected);
	cr_assert_lt(slowest_reject, 500, "a rejection took %llu ms",
		     (unsigned long long)slowest_reject);
	cr_assert_eq(res_counter("total.circuit_open.max_connections"), CLIENTS - LIMIT);
}

Test(resilience, retry_budget_bounds_the_extra_load_when_every_replica_fails)
{
	char out[32768], list[8192];
	long total = 0, n, mx;

	for (int i = 0; i < 3; i++) {
		srv[i] = tsrv_start_http("s", res_ips[i], 8080, "res", 503, 0);
		cr_assert(srv[i] > 0);
	}
	/* Up to 3 retries each, but retries may add only 20 % to the requests. */
	declare_res("- addresses: [198.18.2.11]\n- addresses: [198.18.2.12]\n"
		    "- addresses: [198.18.2.13]\n",
		    "    weft.io/retries: \"3\"\n    weft.io/retry-budget: \"20\"\n"
		    "    weft.io/retry-budget-min: \"0\"\n"
		    "    weft.io/outlier-consecutive-failures: \"0\"\n");
	urls(list, sizeof(list), 100);
	snprintf(out, sizeof(out), "-o /dev/null -w '%%{http_code}\\n' %s", list);
	cr_assert_eq(curl_a(out, sizeof(out), out), 0, "curl: %s", out);
	cr_assert_eq(count_lines(out, "503\n"), 100, "answers:\n%s", out);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(tsrv_http_stats("s", res_ips[i], 8080, &n, &mx), 0);
		total += n;
	}
	cr_log_info("retry budget: 100 requests, %ld upstream attempts", total);
	cr_assert_gt(total, 100, "no retry at all");
	cr_assert_leq(total, 120, "the upstream saw %ld attempts for 100 requests", total);
	cr_assert_geq(res_counter("total.retry_budget_exhausted"), 1);
	/* curl resends a request whose connection died: one connection means none did. */
	cr_assert_eq(res_counter("total.connections"), 1, "the client connection was dropped");
}

Test(resilience, server_speaks_first_within_the_detection_window)
{
	char out[256];
	uint64_t t0, dt;
	ssize_t n;
	int fd;

	srv[0] = tsrv_start_banner("s", "198.18.2.11", 8080, "res-banner");
	cr_assert(srv[0] > 0);
	/* A window far above any scheduling delay, so the two outcomes (waited
	 * for the window, did not wait at all) cannot be confused on a loaded
	 * machine.
	 */
	declare_res("- addresses: [198.18.2.11]\n", "    weft.io/protocol-detect-timeout: 500ms\n");
	t0 = mono_ms();
	fd = tsock_connect("a", VIP, 3000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	/* Say nothing: the banner must come after at most the window. */
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	cr_assert_eq(poll(&pfd, 1, 2000), 1, "no banner");
	dt = mono_ms() - t0;
	n = recv(fd, out, sizeof(out) - 1, 0);
	cr_assert_gt(n, 0);
	out[n] = '\0';
	cr_assert_str_eq(out, "BANNER res-banner\n");
	cr_log_info("banner after %llu ms (window 500 ms)", (unsigned long long)dt);
	cr_assert_geq(dt, 450, "the banner came after %llu ms, before the window ended",
		      (unsigned long long)dt);
	cr_assert_lt(dt, 500 + 500, "the banner took %llu ms", (unsigned long long)dt);
	n = tsock_request(fd, "HELLO\n", out, sizeof(out), 300);
	cr_assert(n == -ETIMEDOUT || n > 0);
	cr_assert(strstr(out, "OK HELLO\n") != NULL || n == -ETIMEDOUT);
	close(fd);
	cr_assert_geq(tenv_status_counter(&env, "connections.detect_timeouts"), 1);
	/* Declared tcp: no window at all. */
	declare_res("- addresses: [198.18.2.11]\n", "    weft.io/protocol: tcp\n");
	t0 = mono_ms();
	fd = tsock_connect("a", VIP, 3000);
	cr_assert_geq(fd, 0);
	pfd.fd = fd;
	cr_assert_eq(poll(&pfd, 1, 2000), 1, "no banner");
	dt = mono_ms() - t0;
	close(fd);
	cr_assert_lt(dt, 250, "with protocol tcp the banner took %llu ms (no window expected)",
		     (unsigned long long)dt);
}

Test(resilience, invalid_annotations_are_reported_and_defaults_used)
{
	char log[65536];
	json_object *root, *svcs, *s, *pol;

	srv[0] = tsrv_start("s", "198.18.2.11", 8080, "res-1");
	declare_res("- addresses: [198.18.2.11]\n",
		    "    weft.io/retries: \"many\"\n    weft.io/lb: fastest\n"
		    "    weft.io/connect-timeout: 300ms\n");
	/* Only the annotation lines: at debug level the whole log (libbpf's
	 * loads included) outgrows any fixed buffer, and cat would die of
	 * SIGPIPE once the buffer is full.
	 */
	cr_assert_eq(tenv_capture(log, sizeof(log), "grep 'annotation weft.io/' '%s'",
				  env.agent_log),
		     0, "no annotation warning at all in %s", env.agent_log);
	cr_assert(strstr(log, "service mesh/res: annotation weft.io/retries: 'many' is not") &&
			  strstr(log, ", ignoring"),
		  "no warning for weft.io/retries in the agent log");
	cr_assert(strstr(log, "annotation weft.io/lb: 'fastest'"), "no warning for weft.io/lb");
	root = tenv_admin_get(&env, "/v1/services");
	cr_assert(root && json_object_object_get_ex(root, "services", &svcs));
	s = NULL;
	for (size_t i = 0; i < json_object_array_length(svcs); i++)
		if (!strcmp(json_object_get_string(json_object_object_get(
				    json_object_array_get_idx(svcs, i), "name")),
			    "res"))
			s = json_object_array_get_idx(svcs, i);
	cr_assert(s != NULL);
	pol = json_object_object_get(s, "policy");
	cr_assert_eq(json_object_get_int(json_object_object_get(pol, "retries")), 2);
	cr_assert_str_eq(json_object_get_string(json_object_object_get(pol, "lb")), "least-request");
	cr_assert_eq(json_object_get_int(json_object_object_get(pol, "connect_timeout_ms")), 300);
	json_object_put(root);
}
