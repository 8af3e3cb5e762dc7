// SPDX-License-Identifier: GPL-2.0-only
/* Hop-by-hop semantics end to end (proxy/hop.c, docs/resilience.md
 * "HTTP/1.1"): from meshed pod a through service hop (198.19.0.40:80, one
 * endpoint, retries off) to a Python keep-alive backend that counts the
 * connections it accepts and answers with the header fields it received.
 * Clients that close after each request (Python's urllib, curl with
 * `Connection: close`, HTTP/1.0 curl) share a few pooled upstream
 * connections; fields named in Connection never reach the backend; a
 * backend closing a pooled connection as a request arrives does not fail a
 * GET, and a POST that went out is not sent twice.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "fixture.h"
#include "proc.h"
#include "sock.h"
#include "tns.h"
#include "topo.h"

#define VIP_IP "198.19.0.40"
#define VIP VIP_IP ":80"
#define BACKEND "198.18.2.14:8080"
#define SCRIPT "tests/helpers/keepalive_server.py"

static pid_t srv;
static char netns_a[128];

/* Publish TOPO_REGISTRY plus Service mesh/hop, and wait until it is loaded. */
static void declare_hop(void)
{
	char yaml[16384];
	long long gen = tenv_status_counter(&env, "catalogue_generation");

	snprintf(yaml, sizeof(yaml),
		 "%s---\napiVersion: v1\nkind: Service\nmetadata:\n  name: hop\n"
		 "  namespace: mesh\n  annotations:\n    weft.io/retries: \"0\"\n"
		 "spec:\n  clusterIP: " VIP_IP "\n  ports:\n  - name: http\n    port: 80\n"
		 "    targetPort: 8080\n"
		 "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
		 "  name: hop-1\n  namespace: mesh\n  labels:\n"
		 "    kubernetes.io/service-name: hop\naddressType: IPv4\nendpoints:\n"
		 "- addresses: [\"198.18.2.14\"]\n  conditions:\n    ready: true\n"
		 "ports:\n- name: http\n  port: 8080\n",
		 TOPO_REGISTRY);
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	for (int i = 0; i < 100; i++) {
		if (tenv_status_counter(&env, "catalogue_generation") > gen)
			return;
		usleep(50000);
	}
	cr_assert_fail("the agent did not load the new registry");
}

static void up(void)
{
	char path[128], log[PATH_MAX + 16];

	fixture_up();
	tns_path("a", netns_a, sizeof(netns_a));
	snprintf(path, sizeof(path), "--net=%s", tns_path("s", log, sizeof(log)));
	snprintf(log, sizeof(log), "%s/backend.log", env.tmp);
	char *argv[] = { "nsenter", path, TPROC_PYTHON, SCRIPT, "198.18.2.14", "8080", NULL };

	srv = tproc_spawn(argv, log, SIGKILL);
	cr_assert_gt(srv, 0);
	for (int i = 0;; i++) {
		int fd = tsock_connect("s", BACKEND, 500);

		if (fd >= 0) {
			close(fd);
			break;
		}
		cr_assert_lt(i, 100, "the keep-alive backend did not start");
		usleep(50000);
	}
	declare_hop();
}

static void down(void)
{
	tproc_kill(srv);
	fixture_down();
}

TestSuite(hop, .init = up, .fini = down, .timeout = 120);

/* The backend's counters, read directly (not through the mesh): connections
 * accepted before this question, and requests answered.
 */
static void backend_stats(long *conns, long *requests)
{
	char out[1024];
	const char *body;
	int fd = tsock_connect("s", BACKEND, 3000);

	cr_assert_geq(fd, 0, "connect to the backend: %s", strerror(-fd));
	cr_assert_gt(tsock_request(fd, "GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
				   out, sizeof(out), 3000), 0);
	close(fd);
	body = strstr(out, "\r\n\r\n");
	cr_assert(body && sscanf(body + 4, "conns %ld requests %ld", conns, requests) == 2,
		  "backend stats: '%s'", out);
	(*conns)--;	/* this one */
}

/* Run @cmd in pod a's netns; asserts it exits 0 and returns its output in @out. */
static void in_pod_a(char *out, size_t len, const char *cmd)
{
	int rc = tenv_capture(out, len, "nsenter --net=%s %s", netns_a, cmd);

	cr_assert_eq(rc, 0, "'%s' exited %d: %s", cmd, rc, out);
}

Test(hop, connection_close_clients_share_pooled_upstream_connections)
{
	long c0, r0, c1, r1;
	char out[4096];

	backend_stats(&c0, &r0);
	/* urllib sends `Connection: close` with every request, a new client
	 * connection each time.
	 */
	in_pod_a(out, sizeof(out),
		 TPROC_PYTHON " -c \"import urllib.request as u\n"
		 "o = u.build_opener(u.ProxyHandler({}))\n"
		 "for i in range(20):\n"
		 "    r = o.open('http://" VIP_IP "/x')\n"
		 "    assert r.headers['Connection'] == 'close', r.headers\n"
		 "    assert b'connection' not in r.read()\n"
		 "print('ok')\"");
	cr_assert(strstr(out, "ok"), "python: %s", out);
	backend_stats(&c1, &r1);
	cr_assert_eq(r1 - r0, 20, "the backend answered %ld requests", r1 - r0);
	/* One pool per worker: at most a connection or two per worker. */
	cr_assert_leq(c1 - c0, 4, "20 closing clients made %ld upstream connections", c1 - c0);
}

Test(hop, fields_named_in_connection_never_reach_the_backend)
{
	char out[8192], *body;

	in_pod_a(out, sizeof(out),
		 "curl -sSi --noproxy '*' --max-time 5 -H 'Connection: close, X-Secret' "
		 "-H 'X-Secret: s' -H 'Keep-Alive: 300' -H 'TE: trailers' "
		 "-H 'Proxy-Connection: keep-alive' -H 'X-Kept: k' http://" VIP "/x");
	body = strstr(out, "\r\n\r\n");
	cr_assert_not_null(body, "no response: %s", out);
	*body = '\0';
	body += 4;
	/* The body is the fields the backend received. */
	cr_assert(strstr(body, "x-kept: k\n"), "the backend lost an end-to-end field: %s", body);
	cr_assert_null(strstr(body, "x-secret"), "a field named in Connection went on: %s", body);
	cr_assert_null(strstr(body, "keep-alive"), "Keep-Alive went on: %s", body);
	cr_assert_null(strstr(body, "te: "), "TE went on: %s", body);
	cr_assert_null(strstr(body, "connection"), "the client's Connection went on: %s", body);
	/* The backend's own Keep-Alive stays on its hop too; the client is
	 * told its connection ends.
	 */
	cr_assert_null(strcasestr(out, "keep-alive"), "%s", out);
	cr_assert(strcasestr(out, "\r\nconnection: close"), "%s", out);
}

Test(hop, http10_clients_are_served_over_pooled_keep_alive_connections)
{
	long c0, r0, c1, r1;
	char out[8192], req[] = "GET /x HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n";
	int fd;

	backend_stats(&c0, &r0);
	in_pod_a(out, sizeof(out),
		 "sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do "
		 "curl -sSi -0 --noproxy \"*\" --max-time 5 http://" VIP "/x || exit 1; done'");
	backend_stats(&c1, &r1);
	cr_assert_eq(r1 - r0, 10);
	cr_assert_leq(c1 - c0, 4, "10 HTTP/1.0 clients made %ld upstream connections", c1 - c0);
	/* The backend was asked for keep-alive; each client was told close. */
	cr_assert(strstr(out, "connection: keep-alive\n"), "%s", out);
	cr_assert(strcasestr(out, "\r\nconnection: close\r\n"), "%s", out);

	/* An HTTP/1.0 client asking for keep-alive keeps its connection. */
	out[0] = '\0';
	fd = tsock_connect("a", VIP, 3000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	for (int i = 0; i < 2; i++) {
		ssize_t n = 0, got;
		uint64_t end = mono_ms() + 5000;

		cr_assert_eq(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
		/* The response ends with the field lines echoed: "host: x\n" last but one. */
		while (!strstr(out, "keep-alive\n")) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			cr_assert_lt(mono_ms(), end, "request %d: no whole response: '%s'", i, out);
			if (poll(&pfd, 1, 200) != 1)
				continue;
			got = recv(fd, out + n, sizeof(out) - 1 - (size_t)n, 0);
			cr_assert_gt(got, 0, "request %d: the connection ended", i);
			n += got;
			out[n] = '\0';
		}
		cr_assert(strcasestr(out, "\r\nconnection: keep-alive\r\n"), "%s", out);
		out[0] = '\0';
	}
	close(fd);
}

Test(hop, a_pooled_connection_the_backend_closes_does_not_fail_the_next_get)
{
	long c0, r0, c1, r1;
	char out[8192];

	backend_stats(&c0, &r0);
	/* One client connection, so one worker: the second request takes the
	 * pooled connection the first released, which the backend closes as
	 * the request arrives. Retries are off for this service: only the
	 * stale connection's replacement can save it.
	 */
	in_pod_a(out, sizeof(out),
		 "curl -sS --noproxy '*' --max-time 5 -o /dev/null -o /dev/null "
		 "-w '%{http_code}\\n' http://" VIP "/drop-next http://" VIP "/x");
	cr_assert_str_eq(out, "200\n200\n", "%s", out);
	backend_stats(&c1, &r1);
	cr_assert_eq(r1 - r0, 2);

	/* A POST that went out on such a connection may have been acted on:
	 * not sent again, the client gets a 502.
	 */
	in_pod_a(out, sizeof(out),
		 "curl -sS --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}\\n' "
		 "-d a http://" VIP "/drop-next --next --noproxy '*' --max-time 5 -o /dev/null "
		 "-w '%{http_code}\\n' -d b http://" VIP "/x");
	cr_assert_str_eq(out, "200\n502\n", "%s", out);
}
