// SPDX-License-Identifier: GPL-2.0-only
/* The proxy's inbound side in-process (agent/proxy/inbound.c), in test
 * namespaces: a pod netns with weft's nft table (its prerouting chain sends
 * TCP arriving on the pod's link to the inbound listener) and the return
 * path set up by hand, a client netns linked to it, and the proxy's workers
 * serving a capture with inbound listeners. The application must see the
 * client's own address; bytes, HTTP status classes and loops are checked
 * through the proxy's own counters.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "clock.h"
#include "addr.h"
#include "datapath/nft.h"
#include "proxy/workers.h"

#include "../../agent/cgroup.h"
#include "../helpers/cgroup.h"
#include "../helpers/require.h"
#include "../helpers/servers.h"
#include "../helpers/sock.h"
#include "../helpers/tns.h"

#define POD "p"
#define CLI "c"
#define POD_V4 "198.18.9.1"
#define CLI_V4 "198.18.9.2"
#define POD_V6 "fd00:198:9::1"
#define CLI_V6 "fd00:198:9::2"
#define OUT_PORT 15001
#define IN_PORT 15006
#define OUT_MARK 0x5701
#define IN_MARK 0x5706
#define RET_TABLE 156
#define WAIT_MS 3000

static char cg_path[256];
static int pod_fd = -1, home_fd = -1;
static struct workers *ws;
static struct px_capture *cap;
static pid_t srv = -1;

/* The return path (the datapath's job in the agent): replies of the
 * application to a client address, marked by tcp_fwmark_accept with the
 * mark of our SYN, are delivered locally, to the proxy's transparent socket.
 * fwmark_reflect does the same for the resets (and ICMP errors) the kernel
 * sends for a port nobody listens on: without it the reset goes out to the
 * real client, and the proxy's connect waits for its timeout.
 */
static int return_path(const char *ns)
{
	return tns_sh("ip -n %s rule add fwmark %#x lookup %d && "
		      "ip -n %s route add local default dev lo table %d && "
		      "ip -n %s -6 rule add fwmark %#x lookup %d && "
		      "ip -n %s -6 route add local default dev lo table %d && "
		      "ip netns exec %s sysctl -qw net.ipv4.tcp_fwmark_accept=1 "
		      "net.ipv4.fwmark_reflect=1 net.ipv6.fwmark_reflect=1",
		      ns, IN_MARK, RET_TABLE, ns, RET_TABLE, ns, IN_MARK, RET_TABLE, ns, RET_TABLE,
		      ns);
}

static void setup(void)
{
	struct nft_pod_rules r = { .outbound_port = OUT_PORT, .inbound_port = IN_PORT };
	struct proxy_opts po = {
		.port = OUT_PORT,
		.mark = OUT_MARK,
		.inbound_port = IN_PORT,
		.inbound_mark = IN_MARK,
		.max_conns = 1000,
		/* As the agent runs them: sockets from the broker, workers without privilege. */
		.sandbox = true,
	};
	struct px_pod_info info = { .id = 7, .ns = "mesh", .name = "server", .inbound = true };
	char p[128], n[64];

	require_root();
	tns_del_all();
	cr_assert_eq(tns_add(POD), 0);
	cr_assert_eq(tns_add(CLI), 0);
	cr_assert_eq(tns_link(POD, CLI), 0);
	tns_name(POD, n, sizeof(n));
	cr_assert_eq(tns_sh("ip -n %s addr add " POD_V4 "/24 dev %s-%s && "
			    "ip -n %s addr add " POD_V6 "/64 dev %s-%s nodad",
			    n, POD, CLI, n, POD, CLI),
		     0);
	cr_assert_eq(return_path(n), 0);
	tns_name(CLI, n, sizeof(n));
	cr_assert_eq(tns_sh("ip -n %s addr add " CLI_V4 "/24 dev %s-%s && "
			    "ip -n %s addr add " CLI_V6 "/64 dev %s-%s nodad",
			    n, CLI, POD, n, CLI, POD),
		     0);
	pod_fd = open(tns_path(POD, p, sizeof(p)), O_RDONLY | O_CLOEXEC);
	cr_assert_geq(pod_fd, 0);
	home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(home_fd, 0);
	/* The test cgroup plays the agent's: nft's output chain leaves the
	 * sockets of its processes alone, the proxy's among them.
	 */
	require(tcg_create(cg_path, sizeof(cg_path)) == 0, "cannot create a test cgroup v2: %s",
		strerror(errno));
	cr_assert_eq(tcg_join(cg_path, 0), 0);
	cr_assert_eq(cgroup_id_of(cg_path, &r.agent_cgroup_id, &r.agent_cgroup_level), 0);
	require(nft_pod_apply(pod_fd, &r) >= 0, "cannot program nft in the test netns");
	po.home_netns_fd = home_fd;
	ws = workers_new(NULL, 2, &po);
	cr_assert_not_null(ws, "workers: %s", strerror(errno));
	info.netns_fd = pod_fd;
	cap = workers_capture_open(ws, &info);
	cr_assert_not_null(cap, "capture: %s", strerror(errno));
}

static void teardown(void)
{
	if (srv > 0)
		tsrv_stop(srv);
	if (ws) {
		workers_capture_close(ws, cap);
		workers_free(ws);
	}
	if (pod_fd >= 0)
		close(pod_fd);
	if (home_fd >= 0)
		close(home_fd);
	if (cg_path[0])
		tcg_remove(cg_path);
	tns_del_all();
}

TestSuite(inbound, .init = setup, .fini = teardown, .timeout = 90);

/* The proxy's view, read as the admin API does (workers isolated). */
struct view {
	struct proxy_stats st;
	struct px_inbound_port ports[8];
	size_t n;
};

static void look(struct view *v)
{
	workers_isolate(ws);
	workers_stats(ws, &v->st);
	v->n = workers_capture_inbound(cap, v->ports, 8);
	workers_release(ws);
}

static const struct px_inbound_port *port_of(const struct view *v, uint16_t port)
{
	for (size_t i = 0; i < v->n && i < 8; i++)
		if (v->ports[i].port == port)
			return &v->ports[i];
	return NULL;
}

/* Wait until the connections of @port are all closed; the view at that time. */
static void settle(struct view *v, uint16_t port)
{
	uint64_t end = mono_ms() + WAIT_MS;
	const struct px_inbound_port *p;

	for (;;) {
		look(v);
		p = port_of(v, port);
		if (p && !p->conns_active)
			return;
		cr_assert_lt(mono_ms(), end, "connections to port %u never closed", port);
		usleep(20000);
	}
}

static void ident_sees_client(const char *dst, const char *client)
{
	char out[128], want[128];
	int err = tsock_ident(CLI, dst, out, sizeof(out));

	cr_assert_eq(err, 0, "ident through %s: %s", dst, strerror(-err));
	snprintf(want, sizeof(want), "app %s", client);
	cr_assert_str_eq(out, want, "the application saw '%s', not the client", out);
}

Test(inbound, the_application_sees_the_clients_own_address_v4)
{
	struct view v;
	const struct px_inbound_port *p;

	srv = tsrv_start(POD, POD_V4, 8080, "app");
	cr_assert_gt(srv, 0);
	ident_sees_client(POD_V4 ":8080", CLI_V4);
	settle(&v, 8080);
	p = port_of(&v, 8080);
	cr_assert_eq(p->conns_total, 1);
	cr_assert_eq(p->connect_errors, 0);
	cr_assert_eq(v.st.inbound_accepted, 1);
	cr_assert_eq(v.st.inbound_transparent_fallbacks, 0);
	cr_assert_eq(v.st.inbound_orig_dst_errors, 0);
}

Test(inbound, the_application_sees_the_clients_own_address_v6)
{
	struct view v;

	srv = tsrv_start(POD, POD_V6, 8080, "app");
	cr_assert_gt(srv, 0);
	ident_sees_client("[" POD_V6 "]:8080", CLI_V6);
	settle(&v, 8080);
	cr_assert_eq(port_of(&v, 8080)->conns_total, 1);
	cr_assert_eq(v.st.inbound_transparent_fallbacks, 0);
}

/* Byte @i of the test stream. */
static char pattern(size_t i)
{
	uint32_t x = (uint32_t)i * 2654435761u;

	return (char)((x >> 24) ^ (uint32_t)(i >> 13));
}

Test(inbound, one_megabyte_echoes_intact_and_is_counted_both_ways)
{
	const size_t total = 1u << 20;
	size_t sent = 0, got = 0;
	char wbuf[32768], rbuf[32768], tail[64], want[64];
	const struct px_inbound_port *p;
	struct view v;
	ssize_t n;
	int fd;

	srv = tsrv_start(POD, POD_V4, 8081, "app");
	cr_assert_gt(srv, 0);
	fd = tsock_connect(CLI, POD_V4 ":8081", WAIT_MS);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(send(fd, "ECHO\n", 5, 0), 5);
	while (got < total) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0) };

		cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "stalled at sent=%zu got=%zu", sent, got);
		if ((pfd.revents & POLLOUT) && sent < total) {
			size_t chunk = total - sent < sizeof(wbuf) ? total - sent : sizeof(wbuf);

			for (size_t i = 0; i < chunk; i++)
				wbuf[i] = pattern(sent + i);
			n = send(fd, wbuf, chunk, MSG_DONTWAIT);
			if (n > 0)
				sent += (size_t)n;
		}
		if (pfd.revents & POLLIN) {
			size_t want_n = total - got < sizeof(rbuf) ? total - got : sizeof(rbuf);

			n = recv(fd, rbuf, want_n, MSG_DONTWAIT);
			cr_assert_gt(n, 0, "echo ended early at %zu", got);
			for (ssize_t i = 0; i < n; i++)
				cr_assert_eq(rbuf[i], pattern(got + (size_t)i), "byte %zu differs",
					     got + (size_t)i);
			got += (size_t)n;
		}
	}
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	n = tsock_request(fd, "", tail, sizeof(tail), WAIT_MS);
	snprintf(want, sizeof(want), "BYE %zu\n", total);
	cr_assert_str_eq(tail, want, "after the echo: '%s'", n > 0 ? tail : "");
	close(fd);
	settle(&v, 8081);
	p = port_of(&v, 8081);
	cr_assert_eq(p->bytes_in, 5 + total, "bytes_in %llu", (unsigned long long)p->bytes_in);
	cr_assert_eq(p->bytes_out, total + strlen(want), "bytes_out %llu",
		     (unsigned long long)p->bytes_out);
	cr_assert_eq(p->requests, 0, "not HTTP");
}

/* An HTTP/1.1 application answering "GET /NNN" with status NNN, keep-alive. */
struct http_app {
	int lfd;
	pthread_t thread;
};

static void *http_app_main(void *arg)
{
	struct http_app *a = arg;
	int fd = accept(a->lfd, NULL, NULL);
	char buf[4096];
	size_t have = 0;
	ssize_t n;

	if (fd < 0)
		return NULL;
	while ((n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0)) > 0) {
		char *end;

		have += (size_t)n;
		buf[have] = '\0';
		while ((end = strstr(buf, "\r\n\r\n"))) {
			char resp[256];
			int status = 0, len;
			size_t used = (size_t)(end + 4 - buf);

			if (sscanf(buf, "GET /%d", &status) != 1)
				status = 400;
			len = snprintf(resp, sizeof(resp),
				       "HTTP/1.1 %d X\r\nContent-Length: 3\r\n\r\n%03d", status,
				       status);
			if (send(fd, resp, (size_t)len, MSG_NOSIGNAL) != len)
				goto out;
			memmove(buf, buf + used, have - used + 1);
			have -= used;
		}
	}
out:
	close(fd);
	return NULL;
}

static void http_app_start(struct http_app *a, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1;

	inet_pton(AF_INET, POD_V4, &sin.sin_addr);
	cr_assert_eq(tns_enter(POD), 0);
	a->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_geq(a->lfd, 0);
	setsockopt(a->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(a->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0, "bind: %m");
	cr_assert_eq(listen(a->lfd, 8), 0);
	cr_assert_eq(pthread_create(&a->thread, NULL, http_app_main, a), 0);
}

/* One response of the keep-alive exchange: "HTTP/1.1 NNN" and its 3-byte body. */
static int http_get(int fd, int status)
{
	char req[64], buf[512];
	size_t have = 0;
	int got = 0;
	int len = snprintf(req, sizeof(req), "GET /%d HTTP/1.1\r\nHost: app\r\n\r\n", status);

	cr_assert_eq(send(fd, req, (size_t)len, 0), len);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char *end;
		ssize_t n;

		cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "no response to GET /%d", status);
		n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		cr_assert_gt(n, 0, "connection ended before the response to GET /%d", status);
		have += (size_t)n;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end && have >= (size_t)(end + 4 - buf) + 3)
			break;
	}
	cr_assert_eq(sscanf(buf, "HTTP/1.1 %d", &got), 1, "'%s'", buf);
	return got;
}

Test(inbound, http_status_classes_are_counted_per_port_on_keep_alive)
{
	struct http_app app;
	const struct px_inbound_port *p;
	struct view v;
	int fd;

	http_app_start(&app, 8082);
	fd = tsock_connect(CLI, POD_V4 ":8082", WAIT_MS);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(http_get(fd, 200), 200);
	cr_assert_eq(http_get(fd, 404), 404);
	cr_assert_eq(http_get(fd, 500), 500);
	close(fd);
	pthread_join(app.thread, NULL);
	close(app.lfd);
	settle(&v, 8082);
	p = port_of(&v, 8082);
	cr_assert_eq(p->conns_total, 1, "one keep-alive connection");
	cr_assert_eq(p->requests, 3);
	cr_assert_eq(p->responses[0], 0);
	cr_assert_eq(p->responses[1], 1, "2xx");
	cr_assert_eq(p->responses[2], 0);
	cr_assert_eq(p->responses[3], 1, "4xx");
	cr_assert_eq(p->responses[4], 1, "5xx");
}

Test(inbound, a_server_first_protocol_is_not_delayed)
{
	uint64_t best = UINT64_MAX;
	char out[64];
	struct view v;

	srv = tsrv_start_banner(POD, POD_V4, 8025, "app");
	cr_assert_gt(srv, 0);
	/* The outbound side would hold the client for its detection window
	 * (100 ms by default) before connecting; the inbound side connects at
	 * once. The best of three keeps a busy machine from failing this.
	 */
	for (int i = 0; i < 3; i++) {
		uint64_t t0 = mono_ms();
		int fd = tsock_connect(CLI, POD_V4 ":8025", WAIT_MS);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
		cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "no banner");
		if (mono_ms() - t0 < best)
			best = mono_ms() - t0;
		n = recv(fd, out, sizeof(out) - 1, 0);
		cr_assert_gt(n, 0);
		out[n] = '\0';
		cr_assert_str_eq(out, "BANNER app\n");
		/* And the conversation goes on after it (spliced now). */
		cr_assert_eq(send(fd, "X\n", 2, 0), 2);
		cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "no answer");
		n = recv(fd, out, sizeof(out) - 1, 0);
		cr_assert_gt(n, 0);
		out[n] = '\0';
		cr_assert_str_eq(out, "OK X\n");
		close(fd);
	}
	cr_assert_lt(best, 50, "the banner took %llu ms", (unsigned long long)best);
	settle(&v, 8025);
	cr_assert_eq(port_of(&v, 8025)->conns_total, 3);
	cr_assert_eq(port_of(&v, 8025)->requests, 0);
}

/* Connect from the client to @dst and expect a reset: the handshake is the
 * kernel's, so the reset may come before tsock_connect() returns or after.
 */
static void expect_reset(const char *dst)
{
	int fd = tsock_connect(CLI, dst, WAIT_MS);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[16];
	ssize_t n;

	if (fd == -ECONNRESET)
		return;
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "neither reset nor closed");
	n = recv(fd, buf, sizeof(buf), 0);
	cr_assert(n == -1 && errno == ECONNRESET, "recv: %zd (%s)", n, strerror(errno));
	close(fd);
}

Test(inbound, dialling_the_inbound_listener_is_refused_without_a_loop)
{
	struct view v;

	expect_reset(POD_V4 ":15006");
	look(&v);
	cr_assert_eq(v.st.inbound_loops, 1);
	cr_assert_eq(v.st.inbound_accepted, 1, "accepted once: nothing came back around");
	cr_assert_eq(v.st.active, 0);
	cr_assert_eq(v.st.upstream_active, 0);
	cr_assert_eq(v.n, 0, "no port counted");
}

Test(inbound, a_closed_application_port_is_a_connect_error_of_that_port)
{
	struct view v;
	const struct px_inbound_port *p;

	expect_reset(POD_V4 ":8099");
	settle(&v, 8099);
	p = port_of(&v, 8099);
	cr_assert_eq(p->conns_total, 1);
	cr_assert_eq(p->connect_errors, 1);
}

Test(inbound, ports_past_the_bound_are_counted_under_port_0)
{
	/* 2 workers × INBOUND_PORTS_MAX (64): 130 ports overflow at least one. */
	const int n_ports = 130;
	uint64_t sum = 0;
	bool other = false;
	struct px_inbound_port ports[256];
	size_t n;

	for (int i = 0; i < n_ports; i++) {
		char dst[64];

		snprintf(dst, sizeof(dst), POD_V4 ":%d", 9000 + i);
		expect_reset(dst);
	}
	workers_isolate(ws);
	n = workers_capture_inbound(cap, ports, 256);
	workers_release(ws);
	cr_assert_leq(n, 2 * 65, "%zu ports: the bound did not hold", n);
	for (size_t i = 0; i < n; i++) {
		sum += ports[i].conns_total;
		other |= ports[i].port == 0;
	}
	cr_assert(other, "no port 0 entry among %zu", n);
	cr_assert_eq(sum, (uint64_t)n_ports, "every connection counted once");
}
