// SPDX-License-Identifier: GPL-2.0-only
/* Fairness and bounds end to end (docs/resilience.md "Fairness and bounds"):
 * a pod holding idle connections up to its limit cannot make another pod's
 * connections fail; the agent running out of descriptors is a local error,
 * never an endpoint's failure; the idle, request and request-head deadlines
 * close what they bound. Each test declares service "fair" (198.19.0.40:80)
 * with its own weft.io/ annotations; the backends run in netns "s". The
 * agent runs one worker (limits are per worker) and serves /metrics.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <linux/types.h>

#include "abi.h"

#include "clock.h"
#include "curl_body.h"
#include "fixture.h"
#include "promtext.h"
#include "servers.h"
#include "sock.h"
#include "topo.h"

#define VIP "198.19.0.40:80"
#define MAX_CONNS 40	/* --max-conns: two meshed pods, 20 each */

static pid_t srv;

static void up(void)
{
	setenv("WEFT_WORKERS", "1", 1);
	setenv("WEFT_MAX_CONNS", "40", 1);
	fixture_up_with("--metrics-addr 127.0.0.1:0");
}

static void down(void)
{
	tsrv_stop(srv);
	fixture_down();
}

TestSuite(fairness, .init = up, .fini = down, .timeout = 90);

/* Publish TOPO_REGISTRY plus Service mesh/fair on VIP → 198.18.2.11:8080 with
 * @annotations (YAML lines "    weft.io/x: \"v\"\n"); wait until loaded.
 */
static void declare_fair(const char *annotations)
{
	char yaml[16384];
	long long gen = tenv_status_counter(&env, "catalogue_generation");

	snprintf(yaml, sizeof(yaml),
		 "%s---\napiVersion: v1\nkind: Service\nmetadata:\n  name: fair\n"
		 "  namespace: mesh\n  annotations:\n%s"
		 "spec:\n  clusterIP: 198.19.0.40\n  ports:\n  - name: http\n    port: 80\n"
		 "    targetPort: 8080\n"
		 "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
		 "  name: fair-1\n  namespace: mesh\n  labels:\n"
		 "    kubernetes.io/service-name: fair\naddressType: IPv4\n"
		 "endpoints:\n- addresses: [198.18.2.11]\nports:\n- name: http\n  port: 8080\n",
		 TOPO_REGISTRY, annotations);
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	for (int i = 0; i < 100; i++) {
		if (tenv_status_counter(&env, "catalogue_generation") > gen)
			return;
		usleep(50000);
	}
	cr_assert_fail("the agent did not load the new registry");
}

/* Poll /v1/status until @dotted reaches @want (about 5 s); its last value. */
static long long wait_counter(const char *dotted, long long want)
{
	long long v = -1;

	for (int i = 0; i < 250; i++) {
		v = tenv_status_counter(&env, dotted);
		if (v >= want)
			break;
		usleep(20000);
	}
	return v;
}

/* GET /metrics, parsed strictly; the caller frees it, then *@text (which
 * the document points into).
 */
static struct prom_doc *scrape(char **text)
{
	json_object *st = tenv_admin_get(&env, "/v1/status");
	struct tcurl_body b = { 0 };
	CURL *c = curl_easy_init();
	struct prom_doc *d;
	char url[256], err[256];

	cr_assert(st && c);
	snprintf(url, sizeof(url), "http://%s/metrics",
		 json_object_get_string(json_object_object_get(st, "metrics")));
	json_object_put(st);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tcurl_body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	cr_assert_eq(curl_easy_perform(c), CURLE_OK, "GET %s", url);
	curl_easy_cleanup(c);
	d = promtext_parse(b.buf, err, sizeof(err));
	cr_assert_not_null(d, "not valid exposition text: %s", err);
	*text = b.buf;
	return d;
}

/* Endpoint 198.18.2.11:8080 of service fair: its total.@key in /v1/services. */
static long long ep_counter(const char *key)
{
	json_object *root = tenv_admin_get(&env, "/v1/services"), *svcs, *v;
	long long n = -1;

	cr_assert(root && json_object_object_get_ex(root, "services", &svcs));
	for (size_t i = 0; i < json_object_array_length(svcs); i++) {
		json_object *s = json_object_array_get_idx(svcs, i), *eps;

		if (strcmp(json_object_get_string(json_object_object_get(s, "name")), "fair"))
			continue;
		eps = json_object_object_get(s, "endpoints");
		for (size_t j = 0; j < json_object_array_length(eps); j++) {
			json_object *e = json_object_array_get_idx(eps, j);

			if (json_object_object_get_ex(e, "total", &v) &&
			    json_object_object_get_ex(v, key, &v))
				n = json_object_get_int64(v);
		}
	}
	json_object_put(root);
	return n;
}

/* Read from @fd until @needle shows up, EOF, or @timeout_ms; bytes into @out. */
static ssize_t read_until(int fd, const char *needle, char *out, size_t len, int timeout_ms)
{
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	size_t got = 0;

	out[0] = '\0';
	while (got + 1 < len && !(needle && strstr(out, needle))) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = mono_ms();
		ssize_t n;

		if (now >= end || poll(&p, 1, (int)(end - now)) != 1)
			break;
		n = recv(fd, out + got, len - 1 - got, MSG_DONTWAIT);
		if (n <= 0) {
			if (n == -1 && errno == EAGAIN)
				continue;
			break;
		}
		got += (size_t)n;
		out[got] = '\0';
	}
	return (ssize_t)got;
}

/* Whether @fd was closed by the peer (EOF or reset) within @timeout_ms. */
static bool closed_within(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b[512];

	while (poll(&p, 1, timeout_ms) == 1) {
		ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);

		if (n == 0 || (n == -1 && errno != EAGAIN))
			return true;
	}
	return false;
}

Test(fairness, noisy_neighbour_holding_idle_connections_cannot_starve_another_pod)
{
	enum { NOISY = MAX_CONNS, SHARE = MAX_CONNS / 2, VICTIM = 10 };
	const char *pa = "namespace=\"mesh\",pod=\"client-a\"";
	const char *pb = "namespace=\"mesh\",pod=\"client-b\"";
	int fds[NOISY], ok = 0;
	char out[256], *text;
	struct prom_doc *d;

	srv = tsrv_start("s", "198.18.2.11", 8080, "fair-1");
	cr_assert(srv > 0);
	declare_fair("    weft.io/protocol: tcp\n");
	/* Pod b opens as many connections as the whole node may hold and
	 * sits on them: each is relayed to the backend, which waits for a line.
	 */
	for (int i = 0; i < NOISY; i++) {
		/* A refused one may be reset before connect() returns. */
		fds[i] = tsock_connect("b", VIP, 2000);
		cr_assert(fds[i] >= 0 || fds[i] == -ECONNRESET, "connect %d: %s", i,
			  strerror(-fds[i]));
	}
	cr_assert_eq(wait_counter("connections.over_pod_limit", NOISY - SHARE), NOISY - SHARE,
		     "pod b was not held to its share of --max-conns");
	cr_assert_eq(tenv_status_counter(&env, "connections.active"), SHARE);
	/* Pod a still gets through, every time, while b holds its share. */
	for (int i = 0; i < VICTIM; i++) {
		int err = tsock_ident("a", VIP, out, sizeof(out));

		if (!err && !strncmp(out, "fair-1 ", 7))
			ok++;
	}
	cr_log_info("noisy neighbour: pod b holds %d of --max-conns %d, pod a: %d of %d succeeded",
		    SHARE, MAX_CONNS, ok, VICTIM);
	cr_assert_eq(ok, VICTIM, "pod a: %d of %d succeeded", ok, VICTIM);
	cr_assert_eq(tenv_status_counter(&env, "connections.over_limit"), 0);
	/* The occupancy gauges tell the same story. */
	d = scrape(&text);
	cr_expect_eq(promtext_value(d, "weft_proxy_connections_limit", ""), MAX_CONNS);
	cr_expect_eq(promtext_value(d, "weft_proxy_connections_active", ""), SHARE);
	cr_expect_eq(promtext_value(d, "weft_pod_connections_active", pb), SHARE);
	cr_expect_eq(promtext_value(d, "weft_pod_connections_limit", pb), SHARE);
	cr_expect_eq(promtext_value(d, "weft_pod_connections_limit", pa), SHARE);
	cr_expect_eq(promtext_value(d, "weft_pod_connections_refused_total", pb), NOISY - SHARE);
	cr_expect_eq(promtext_value(d, "weft_pod_connections_refused_total", pa), 0);
	cr_expect_str_eq(promtext_type(d, "weft_pod_connections_refused_total"), "counter");
	cr_expect_eq(promtext_value(d, "weft_proxy_over_pod_limit_total", ""), NOISY - SHARE);
	cr_expect_eq(promtext_value(d, "weft_service_upstream_connections",
				    "namespace=\"mesh\",service=\"fair\",port=\"http\","
				    "vip=\"198.19.0.40:80\""),
		     SHARE);
	cr_expect_eq(promtext_value(d, "weft_service_upstream_connections_limit",
				    "namespace=\"mesh\",service=\"fair\",port=\"http\","
				    "vip=\"198.19.0.40:80\""),
		     8192);
	promtext_free(d);
	free(text);
	for (int i = 0; i < NOISY; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

Test(fairness, service_max_connections_is_shared_fairly_among_client_pods)
{
	enum { LIMIT = 10, VICTIM = 10 };
	int fds[LIMIT], ok = 0;
	char out[256];

	srv = tsrv_start("s", "198.18.2.11", 8080, "fair-1");
	cr_assert(srv > 0);
	declare_fair("    weft.io/protocol: tcp\n    weft.io/max-connections: \"10\"\n");
	/* Pod b fills the service's whole limit with connections it does not use. */
	for (int i = 0; i < LIMIT; i++) {
		fds[i] = tsock_connect("b", VIP, 2000);
		cr_assert_geq(fds[i], 0, "connect %d: %s", i, strerror(-fds[i]));
	}
	cr_assert_eq(wait_counter("connections.upstream_active", LIMIT), LIMIT);
	/* Pod a is under its share (10 / 2 pods): b, over its own, makes room. */
	for (int i = 0; i < VICTIM; i++) {
		int err = tsock_ident("a", VIP, out, sizeof(out));

		if (!err && !strncmp(out, "fair-1 ", 7))
			ok++;
	}
	cr_log_info("max-connections %d held by pod b: pod a %d of %d succeeded, %lld of b's "
		    "connections closed",
		    LIMIT, ok, VICTIM, tenv_status_counter(&env, "resilience.preempted"));
	cr_assert_eq(ok, VICTIM, "pod a: %d of %d succeeded", ok, VICTIM);
	cr_assert_geq(tenv_status_counter(&env, "resilience.preempted"), 1);
	/* Only what b held over its share was taken, never below it. */
	cr_assert_leq(tenv_status_counter(&env, "resilience.preempted"), LIMIT / 2);
	cr_assert_eq(tenv_status_counter(&env, "resilience.circuit_open.max_connections"), 0);
	for (int i = 0; i < LIMIT; i++)
		close(fds[i]);
}

/* The lowest descriptor number @pid has free. */
static int lowest_free_fd(pid_t pid)
{
	char path[64];
	static bool used[65536];
	struct dirent *de;
	DIR *dir;
	int n = 0;

	memset(used, 0, sizeof(used));
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	cr_assert_not_null(dir, "%s: %s", path, strerror(errno));
	while ((de = readdir(dir))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] != '.' && fd >= 0 && fd < 65536)
			used[fd] = true;
	}
	closedir(dir);
	while (n < 65535 && used[n])
		n++;
	return n;
}

static int http_get(const char *ns, char *out, size_t len)
{
	int fd = tsock_connect(ns, VIP, 2000);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = tsock_request(fd, "GET / HTTP/1.1\r\nHost: fair\r\nConnection: close\r\n\r\n", out, len,
			  3000);
	close(fd);
	return n < 0 ? (int)n : 0;
}

Test(fairness, running_out_of_descriptors_is_a_local_error_and_never_ejects_the_endpoint)
{
	struct rlimit old, low;
	char out[4096];
	int fd, local = 0;

	srv = tsrv_start_http("s", "198.18.2.11", 8080, "fair-1", 200, 0);
	cr_assert(srv > 0);
	/* One failure would eject it, if it were counted against it. */
	declare_fair("    weft.io/protocol: http\n"
		     "    weft.io/outlier-consecutive-failures: \"1\"\n");
	/* Room for exactly one more descriptor: the client's accepted socket.
	 * Pod a never connected upstream yet, so the agent holds no spare
	 * socket made in its netns: the upstream socket() fails with EMFILE.
	 */
	cr_assert_eq(prlimit(env.agent, RLIMIT_NOFILE, NULL, &old), 0);
	/* Wait until the agent is done with the registry reload's transient
	 * descriptors: the same lowest free one twice, 300 ms apart.
	 */
	for (int i = 0, prev = -1; i < 20; i++) {
		fd = lowest_free_fd(env.agent);
		if (fd == prev)
			break;
		prev = fd;
		usleep(300000);
	}
	cr_log_info("EMFILE: the agent's lowest free descriptor is %d", fd);
	low = (struct rlimit){ .rlim_cur = (rlim_t)fd + 1, .rlim_max = old.rlim_max };
	cr_assert_eq(prlimit(env.agent, RLIMIT_NOFILE, &low, NULL), 0);
	for (int i = 0; i < 5; i++) {
		int err = http_get("a", out, sizeof(out));

		if (!err && !strncmp(out, "HTTP/1.1 503 ", 13) &&
		    strstr(out, "x-weft-local-error: out-of-resources\r\n"))
			local++;
	}
	cr_assert_eq(prlimit(env.agent, RLIMIT_NOFILE, &old, NULL), 0);
	cr_log_info("EMFILE: %d of 5 requests answered 503 x-weft-local-error", local);
	cr_assert_eq(local, 5, "answers while out of descriptors: %d of 5 local errors:\n%s", local,
		     out);
	cr_assert_eq(tenv_status_counter(&env, "connections.local_errors"), 5);
	cr_assert_eq(tenv_status_counter(&env, "connections.connect_errors"), 0);
	cr_assert_eq(ep_counter("failures"), 0, "a local error was counted against the endpoint");
	cr_assert_eq(ep_counter("ejections"), 0, "a healthy endpoint was ejected");
	/* With descriptors back, the same endpoint serves at once. */
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(http_get("a", out, sizeof(out)), 0);
		cr_assert(!strncmp(out, "HTTP/1.1 200 ", 13), "after: %s", out);
	}
}

Test(fairness, idle_connection_is_closed_after_the_idle_timeout)
{
	uint64_t t0, dt;
	int fd;

	srv = tsrv_start("s", "198.18.2.11", 8080, "fair-1");
	cr_assert(srv > 0);
	declare_fair("    weft.io/protocol: tcp\n    weft.io/idle-timeout: 300ms\n");
	fd = tsock_connect("a", VIP, 2000);
	cr_assert_geq(fd, 0);
	cr_assert_eq(wait_counter("connections.upstream_active", 1), 1);
	t0 = mono_ms();
	cr_assert(closed_within(fd, 5000), "the idle connection was never closed");
	dt = mono_ms() - t0;
	close(fd);
	cr_log_info("idle timeout 300 ms: closed after %llu ms", (unsigned long long)dt);
	cr_assert_lt(dt, 2000, "closed after %llu ms", (unsigned long long)dt);
	cr_assert_eq(wait_counter("connections.idle_timeouts", 1), 1);
	cr_assert_eq(tenv_status_counter(&env, "connections.active"), 0);
}

Test(fairness, slow_upstream_is_answered_504_after_the_request_timeout)
{
	char out[4096];
	uint64_t t0, dt;
	int err;

	/* The backend answers after 5 s; the client may wait 300 ms. */
	srv = tsrv_start_http("s", "198.18.2.11", 8080, "fair-1", 200, 5000);
	cr_assert(srv > 0);
	declare_fair("    weft.io/protocol: http\n    weft.io/request-timeout: 300ms\n"
		     "    weft.io/retries: \"0\"\n");
	t0 = mono_ms();
	err = http_get("a", out, sizeof(out));
	dt = mono_ms() - t0;
	cr_assert_eq(err, 0, "%s", strerror(-err));
	cr_log_info("request timeout 300 ms: answered after %llu ms", (unsigned long long)dt);
	cr_assert(!strncmp(out, "HTTP/1.1 504 ", 13), "answer: %s", out);
	cr_assert_not_null(strstr(out, "x-weft-error: request-timeout\r\n"), "%s", out);
	cr_assert_lt(dt, 2000, "answered after %llu ms", (unsigned long long)dt);
	cr_assert_eq(tenv_status_counter(&env, "http.request_timeouts"), 1);
}

Test(fairness, client_sending_its_request_head_slowly_cannot_hold_a_connection)
{
	static const char head[] = "GET / HTTP/1.1\r\nHost: fair\r\nX-Slow: yes\r\n\r\n";
	char out[4096];
	uint64_t t0;
	bool closed = false;
	size_t sent = 0;
	int fd;

	srv = tsrv_start_http("s", "198.18.2.11", 8080, "fair-1", 200, 0);
	cr_assert(srv > 0);
	declare_fair("    weft.io/protocol: http\n    weft.io/header-timeout: 2s\n");
	/* A keep-alive client quiet between its requests for longer than the
	 * head deadline is not cut: the deadline runs only within a head.
	 */
	fd = tsock_connect("a", VIP, 2000);
	cr_assert_geq(fd, 0);
	cr_assert_eq(send(fd, "GET /1 HTTP/1.1\r\nHost: fair\r\n\r\n", 31, MSG_NOSIGNAL), 31);
	read_until(fd, "fair-1 ", out, sizeof(out), 3000);
	cr_assert(!strncmp(out, "HTTP/1.1 200 ", 13), "first answer: %s", out);
	read_until(fd, "\n", out, sizeof(out), 500);	/* the rest of the body line */
	usleep(2500 * 1000);
	cr_assert_eq(send(fd, "GET /2 HTTP/1.1\r\nHost: fair\r\n\r\n", 31, MSG_NOSIGNAL), 31);
	read_until(fd, "fair-1 ", out, sizeof(out), 3000);
	cr_assert(!strncmp(out, "HTTP/1.1 200 ", 13), "second answer after a pause: %s", out);
	close(fd);

	/* One byte a second: the idle timeout never fires, the head deadline does. */
	fd = tsock_connect("a", VIP, 2000);
	cr_assert_geq(fd, 0);
	t0 = mono_ms();
	while (sent < sizeof(head) - 1 && mono_ms() - t0 < 8000) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (send(fd, head + sent, 1, MSG_NOSIGNAL) != 1)
			break;
		sent++;
		if (poll(&p, 1, 1000) == 1) {
			closed = true;
			break;
		}
	}
	cr_assert(closed || sent < sizeof(head) - 1, "a head trickled for %llu ms (%zu bytes) was still open",
		  (unsigned long long)(mono_ms() - t0), sent);
	read_until(fd, NULL, out, sizeof(out), 1000);
	close(fd);
	cr_log_info("slow head: closed after %llu ms and %zu of %zu bytes, answer '%.12s'",
		    (unsigned long long)(mono_ms() - t0), sent, sizeof(head) - 1, out);
	cr_assert_lt(sent, sizeof(head) - 1);
	cr_assert(!strncmp(out, "HTTP/1.1 408 ", 13), "answer: %s", out);
	cr_assert_eq(tenv_status_counter(&env, "connections.header_timeouts"), 1);
}

/* Series @name{map="@map"} of a fresh scrape; -1 when absent. */
static double map_gauge(const char *name, const char *map)
{
	char labels[64], *text;
	struct prom_doc *d = scrape(&text);
	double v;

	snprintf(labels, sizeof(labels), "map=\"%s\"", map);
	v = promtext_value(d, name, labels);
	promtext_free(d);
	free(text);
	return v;
}

/* Scrape until mesh_in_agent's entries read @want (about 5 s); the last. */
static double wait_in_agent(double want)
{
	double v = -1;

	for (int i = 0; i < 50; i++) {
		v = map_gauge("weft_bpf_map_entries", "mesh_in_agent");
		if (v == want)
			break;
		usleep(100000);
	}
	return v;
}

/* The eBPF maps' occupancy is in /metrics beside their capacity, and moves
 * with what fills them: an enrolment adds its pod and its two inbound
 * listeners, an inbound connection held open its record, which goes when the
 * connection closes. nft mode has no maps and no such series.
 */
Test(fairness, bpf_map_occupancy_is_in_metrics_and_moves)
{
	static const struct {
		const char *map;
		double capacity;
	} maps[] = {
		{ "mesh_pods", MESH_MAX_PODS }, { "mesh_inbound", MESH_MAX_LISTENERS },
		{ "mesh_orig_dst", MESH_MAX_ORIG_DST }, { "mesh_in_agent", MESH_MAX_IN_AGENT },
	};
	double pods, listeners, records;
	char out[64];
	int fd;

	if (tenv_mode_is("nft")) {
		for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
			cr_assert_eq(map_gauge("weft_bpf_map_capacity", maps[i].map), -1,
				     "nft mode shows a capacity for %s", maps[i].map);
		return;
	}
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		cr_assert_eq(map_gauge("weft_bpf_map_capacity", maps[i].map), maps[i].capacity,
			     "capacity of %s", maps[i].map);
		cr_assert_geq(map_gauge("weft_bpf_map_entries", maps[i].map), 0,
			      "no entries gauge for %s", maps[i].map);
	}
	pods = map_gauge("weft_bpf_map_entries", "mesh_pods");
	cr_assert_eq(pods, tenv_status_counter(&env, "pods.meshed"),
		     "mesh_pods holds %.0f entries for %lld meshed pods", pods,
		     tenv_status_counter(&env, "pods.meshed"));
	listeners = map_gauge("weft_bpf_map_entries", "mesh_inbound");
	records = map_gauge("weft_bpf_map_entries", "mesh_in_agent");

	srv = tsrv_start("s", "198.18.2.11", 8080, "fair-1");
	cr_assert(srv > 0);
	fixture_enroll("s", "mesh", "backends", "198.18.2.11");
	cr_assert_eq(map_gauge("weft_bpf_map_entries", "mesh_pods"), pods + 1);
	cr_assert_eq(map_gauge("weft_bpf_map_entries", "mesh_inbound"), listeners + 2,
		     "the pod's IPv4 and IPv6 inbound listeners");

	/* An inbound connection held open: the agent's connection to the
	 * server is recorded while it lasts.
	 */
	fd = tsock_connect("c", "198.18.2.11:8080", 3000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(send(fd, "ECHO\nhi", 7, MSG_NOSIGNAL), 7);
	cr_assert_eq(recv(fd, out, 2, MSG_WAITALL), 2, "no echo through the agent");
	cr_assert_eq(wait_in_agent(records + 1), records + 1);
	close(fd);
	cr_assert_eq(wait_in_agent(records), records, "the record outlived its connection");
}

/* The agent's resident memory in KiB (VmRSS). */
static long agent_rss_kib(void)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)env.agent);
	f = fopen(path, "re");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	cr_assert_gt(kib, 0);
	return kib;
}

/* Send @byte repeatedly on non-blocking @fd for at most @ms or @max bytes,
 * until the peer stops taking them (EAGAIN for 500 ms running) or the
 * connection ends. Returns the bytes the kernel took.
 */
static size_t flood(int fd, const char *chunk, size_t chunk_len, size_t max, int ms)
{
	uint64_t t0 = mono_ms(), stalled = 0;
	size_t sent = 0;

	while (sent < max && mono_ms() - t0 < (uint64_t)ms) {
		ssize_t n = send(fd, chunk, chunk_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			sent += (size_t)n;
			stalled = 0;
			continue;
		}
		if (n < 0 && errno != EAGAIN)
			break;	/* reset or closed: the agent gave up on us */
		if (!stalled)
			stalled = mono_ms();
		else if (mono_ms() - stalled > 500)
			break;
		usleep(10000);
	}
	return sent;
}

/* What one connection can make the agent hold is bounded whatever the client
 * sends: a request head that never ends is refused with 431 once it fills
 * the connection's 16 KiB request buffer, and the connection closed; a
 * client pipelining requests without ever reading the responses is simply
 * not read from once the buffers are full (TCP's flow control does the
 * rest), so the agent's memory does not grow with what it is sent.
 */
Test(fairness, a_client_flooding_a_connection_cannot_make_the_agent_buffer_without_bound)
{
	static const char get[] = "GET / HTTP/1.1\r\nHost: fair\r\n\r\n";
	char chunk[4096], out[8192];
	long rss0, rss1;
	size_t sent;
	int fd, got = 0;

	srv = tsrv_start_http("s", "198.18.2.11", 8080, "fair-1", 200, 0);
	cr_assert(srv > 0);
	declare_fair("    weft.io/protocol: http\n");

	/* A head without end: "X-Big: aaaa..." for up to 8 MiB. */
	fd = tsock_connect("a", VIP, 2000);
	cr_assert_geq(fd, 0);
	cr_assert_eq(send(fd, "GET / HTTP/1.1\r\nHost: fair\r\nX-Big: ", 35, MSG_NOSIGNAL), 35);
	memset(chunk, 'a', sizeof(chunk));
	sent = flood(fd, chunk, sizeof(chunk), 8u << 20, 5000);
	read_until(fd, "\r\n", out, sizeof(out), 3000);
	cr_log_info("endless head: %zu bytes taken, answered '%.12s'", sent, out);
	cr_assert(!strncmp(out, "HTTP/1.1 431 ", 13), "answer to an endless head: '%s'", out);
	cr_assert(closed_within(fd, 3000), "the connection stayed open after the 431");
	close(fd);

	/* Pipelined requests, never a response read: at most 8 MiB sent. */
	rss0 = agent_rss_kib();
	fd = tsock_connect("a", VIP, 2000);
	cr_assert_geq(fd, 0);
	for (size_t i = 0; i + sizeof(get) - 1 <= sizeof(chunk); i += sizeof(get) - 1)
		memcpy(chunk + i, get, sizeof(get) - 1);
	sent = flood(fd, chunk, sizeof(chunk) / (sizeof(get) - 1) * (sizeof(get) - 1), 8u << 20,
		     10000);
	rss1 = agent_rss_kib();
	cr_log_info("pipelined flood: %zu bytes (%zu requests) taken before the client was "
		    "stopped, agent RSS %ld -> %ld KiB",
		    sent, sent / (sizeof(get) - 1), rss0, rss1);
	cr_assert_lt(sent, 8u << 20, "the agent took every byte of 8 MiB of requests");
	cr_assert_lt(rss1 - rss0, 4096, "the agent grew by %ld KiB for one connection",
		     rss1 - rss0);
	/* Not wedged: reading now, the responses come (counted per read; one
	 * cut by a read's end is missed, hence the margin).
	 */
	for (int i = 0; i < 32 && got < 20; i++) {
		if (read_until(fd, NULL, out, sizeof(out), 3000) <= 0)
			break;
		for (const char *q = out; (q = strstr(q, "HTTP/1.1 200 ")); q++)
			got++;
	}
	cr_assert_geq(got, 20, "only %d responses once the client read", got);
	close(fd);
}
