// SPDX-License-Identifier: GPL-2.0-only
/* What idle connections cost the agent (`make test-hold`, not part of `make
 * test`: it opens 14,000 connections): 4,000 opaque ones (weft.io/protocol
 * tcp, to a listener this process holds in netns s) hold two descriptors
 * each and no pipe, and bytes still flow both ways on every one of them
 * afterwards; 10,000 idle HTTP keep-alive ones, one request each, fit in
 * the descriptor limit the agent runs with (its upstream connections are
 * pooled). The figures (descriptors and resident memory per connection) are
 * printed; run it with WEFT_AGENT=build/weft-agent for memory figures of
 * the optimised build rather than the sanitizer one.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "fixture.h"
#include "proxy/pipes.h"
#include "servers.h"
#include "sock.h"
#include "tns.h"
#include "topo.h"

#define TCP_VIP "198.19.0.50:80"
#define HTTP_VIP "198.19.0.20:80"	/* api, TOPO_REGISTRY */
#define N_TCP 4000
#define N_HTTP 10000
#define WAIT_MS 5000

static pid_t srv;

static void up(void)
{
	struct rlimit rl;
	char yaml[16384];
	long long gen;

	/* The agent starts with the usual soft limit of 1024 and must raise
	 * it itself; this process, which holds both ends of the opaque
	 * connections, raises its own afterwards.
	 */
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	cr_assert_geq(rl.rlim_max, N_HTTP + 1000, "RLIMIT_NOFILE hard limit %llu is too low for "
		      "this test", (unsigned long long)rl.rlim_max);
	rl.rlim_cur = 1024;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	fixture_up();
	rl.rlim_cur = rl.rlim_max;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	gen = tenv_status_counter(&env, "catalogue_generation");
	snprintf(yaml, sizeof(yaml),
		 "%s---\napiVersion: v1\nkind: Service\nmetadata:\n  name: hold\n"
		 "  namespace: mesh\n  annotations:\n    weft.io/protocol: \"tcp\"\n"
		 "spec:\n  clusterIP: 198.19.0.50\n  ports:\n  - name: tcp\n    port: 80\n"
		 "    targetPort: 9090\n"
		 "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
		 "  name: hold-1\n  namespace: mesh\n  labels:\n"
		 "    kubernetes.io/service-name: hold\naddressType: IPv4\nendpoints:\n"
		 "- addresses: [\"198.18.2.14\"]\n  conditions:\n    ready: true\n"
		 "ports:\n- name: tcp\n  port: 9090\n",
		 TOPO_REGISTRY);
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	for (int i = 0; tenv_status_counter(&env, "catalogue_generation") <= gen; i++) {
		cr_assert_lt(i, 100, "the agent did not load the new registry");
		usleep(50000);
	}
	srv = tsrv_start_http("s", "198.18.2.14", 8080, "api-1", 200, 0);
	cr_assert_gt(srv, 0);
}

static void down(void)
{
	tsrv_stop(srv);
	fixture_down();
}

TestSuite(hold, .init = up, .fini = down, .timeout = 600);

static long agent_fds(void)
{
	long pipes;

	return tenv_agent_fds(&env, &pipes);
}

/* The agent's resident memory, KiB. */
static long agent_rss_kib(void)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)env.agent);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s: %m", path);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* A listener on @ip:@port in netns "s", held by this process. */
static int listen_in_s(const char *ip_port)
{
	struct sockaddr_storage ss;
	struct addr a;
	socklen_t len;
	int fd, one = 1;

	cr_assert_eq(addr_parse_ip_port(ip_port, &a), 0);
	len = addr_to_sockaddr(&a, &ss);
	cr_assert_eq(tns_enter("s"), 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(fd, (struct sockaddr *)&ss, len), 0, "bind %s: %m", ip_port);
	cr_assert_eq(listen(fd, 4096), 0);
	return fd;
}

/* Wait for @fd to be readable and read exactly one byte, which must be @want. */
static void expect_byte(int fd, char want, const char *what, int i)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char b = 0;

	cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "%s %d: nothing in %d ms", what, i, WAIT_MS);
	cr_assert_eq(recv(fd, &b, 1, 0), 1, "%s %d: the connection ended", what, i);
	cr_assert_eq(b, want, "%s %d: got '%c'", what, i, b);
}

/* None of @fds[0..n) was closed or sent anything: every one is held. */
static void all_quiet(const int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		struct pollfd pfd = { .fd = fds[i], .events = POLLIN };

		cr_assert_eq(poll(&pfd, 1, 0), 0, "connection %d was closed or spoke", i);
	}
}

Test(hold, idle_opaque_connections_hold_two_descriptors_each_and_no_pipe)
{
	static int cfd[N_TCP], sfd[N_TCP];
	long fds0, fds1, fds2, rss0, rss1, pipes0, pipes1, pipes2;
	int lfd = listen_in_s("198.18.2.14:9090");

	fds0 = tenv_agent_fds(&env, &pipes0);
	rss0 = agent_rss_kib();
	for (int i = 0; i < N_TCP; i++) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };

		cfd[i] = tsock_connect("a", TCP_VIP, WAIT_MS);
		cr_assert_geq(cfd[i], 0, "connection %d: %s", i, strerror(-cfd[i]));
		/* The relay connects upstream at once: one accept per client. */
		cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "connection %d: no upstream connect", i);
		sfd[i] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		cr_assert_geq(sfd[i], 0, "accept %d: %m", i);
	}
	usleep(200000);
	fds1 = tenv_agent_fds(&env, &pipes1);
	rss1 = agent_rss_kib();
	all_quiet(cfd, N_TCP);
	/* Bytes both ways on every one: a byte is copied through a buffer, never piped. */
	for (int i = 0; i < N_TCP; i++) {
		cr_assert_eq(send(cfd[i], "p", 1, MSG_NOSIGNAL), 1);
		expect_byte(sfd[i], 'p', "upstream", i);
		cr_assert_eq(send(sfd[i], "q", 1, MSG_NOSIGNAL), 1);
		expect_byte(cfd[i], 'q', "client", i);
	}
	usleep(200000);
	fds2 = tenv_agent_fds(&env, &pipes2);
	cr_log_info("opaque: %d connections held: %.2f descriptors and %.2f KiB resident each "
		    "(%ld -> %ld descriptors, %ld -> %ld KiB); %ld descriptors after a byte each way; "
		    "pipes %ld, %ld idle, %ld after",
		    N_TCP, (double)(fds1 - fds0) / N_TCP, (double)(rss1 - rss0) / N_TCP, fds0, fds1,
		    rss0, rss1, fds2, pipes0, pipes1, pipes2);
	printf("hold: opaque: %d connections: %.2f fds, %.2f KiB each\n", N_TCP,
	       (double)(fds1 - fds0) / N_TCP, (double)(rss1 - rss0) / N_TCP);
	cr_assert_leq(fds1 - fds0, 2 * N_TCP + 16, "%ld descriptors for %d idle connections",
		      fds1 - fds0, N_TCP);
	/* No pipe held by an idle connection, before or after bytes went
	 * through: at most the pools' spares (two descriptors a pipe, a pool
	 * per worker, 2 workers here).
	 */
	cr_assert_leq(pipes1 - pipes0, 2 * 2 * PIPES_SPARE, "%ld pipe ends for idle connections",
		      pipes1 - pipes0);
	cr_assert_leq(pipes2 - pipes0, 2 * 2 * PIPES_SPARE, "%ld pipe ends left after traffic",
		      pipes2 - pipes0);
	for (int i = 0; i < N_TCP; i++) {
		close(cfd[i]);
		close(sfd[i]);
	}
	close(lfd);
}

Test(hold, ten_thousand_idle_http_connections_fit)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: api\r\n\r\n";
	static int cfd[N_HTTP];
	long fds0, fds1, rss0, rss1;
	char out[512];

	fds0 = agent_fds();
	rss0 = agent_rss_kib();
	for (int i = 0; i < N_HTTP; i++) {
		ssize_t n = 0;

		out[0] = '\0';
		cfd[i] = tsock_connect("a", HTTP_VIP, WAIT_MS);
		cr_assert_geq(cfd[i], 0, "connection %d: %s", i, strerror(-cfd[i]));
		cr_assert_eq(send(cfd[i], req, sizeof(req) - 1, MSG_NOSIGNAL), sizeof(req) - 1);
		/* The body "api-1 <ip>\n" ends the response. */
		for (;;) {
			struct pollfd pfd = { .fd = cfd[i], .events = POLLIN };
			const char *head = strstr(out, "\r\n\r\n");
			ssize_t got;

			if (n && head && head + 4 < out + n && out[n - 1] == '\n')
				break;
			cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "connection %d: no response", i);
			got = recv(cfd[i], out + n, sizeof(out) - 1 - (size_t)n, 0);
			cr_assert_gt(got, 0, "connection %d: ended", i);
			n += got;
			out[n] = '\0';
		}
		cr_assert(!strncmp(out, "HTTP/1.1 200 ", 13), "connection %d: '%s'", i, out);
	}
	usleep(200000);
	fds1 = agent_fds();
	rss1 = agent_rss_kib();
	all_quiet(cfd, N_HTTP);
	printf("hold: http: %d connections: %.2f fds, %.2f KiB each\n", N_HTTP,
	       (double)(fds1 - fds0) / N_HTTP, (double)(rss1 - rss0) / N_HTTP);
	cr_log_info("http: %d connections held: %.2f descriptors and %.2f KiB resident each "
		    "(%ld -> %ld descriptors, %ld -> %ld KiB)",
		    N_HTTP, (double)(fds1 - fds0) / N_HTTP, (double)(rss1 - rss0) / N_HTTP, fds0,
		    fds1, rss0, rss1);
	/* Their upstream connections went back to the pool. */
	cr_assert_leq(fds1 - fds0, N_HTTP + 600, "%ld descriptors for %d idle connections",
		      fds1 - fds0, N_HTTP);
	for (int i = 0; i < N_HTTP; i++)
		close(cfd[i]);
}
