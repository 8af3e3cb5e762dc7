// SPDX-License-Identifier: GPL-2.0-only
/* The opaque relay on the kernel fast path (--opaque-fastpath sockmap): once
 * a connection has exchanged a few messages its bytes go from socket to
 * socket in the kernel, and the relay's promises hold as with splice: every
 * byte in order, a half-close passed on behind the bytes before it, a reset
 * passed on, the idle timeout counting the kernel's bytes as activity.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "fixture.h"
#include "servers.h"
#include "sock.h"
#include "topo.h"

#define VIP_API "198.19.0.20:80" /* api: one endpoint, the server below */
#define VIP_FP	"198.19.0.41:80" /* fp: the same server, an idle timeout */
#define MSG	64

static pid_t srv;

static void up(void)
{
	fixture_up_with("--opaque-fastpath sockmap");
	srv = tsrv_start("s", "198.18.2.14", 8080, "api-1");
	cr_assert_gt(srv, 0);
}

static void down(void)
{
	tsrv_stop(srv);
	fixture_down();
}

TestSuite(fastpath, .init = up, .fini = down, .timeout = 120);

/* Poll /v1/status until @dotted reaches @want (about 5 s); its last value. */
static long long wait_counter(const char *dotted, long long want)
{
	long long v = -1;

	for (int i = 0; i < 250; i++) {
		v = tenv_status_counter(&env, dotted);
		if (v >= want)
			return v;
		usleep(20000);
	}
	return v;
}

/* Send MSG bytes of round @r and read them back, echoed. */
static void exchange(int fd, int r)
{
	char out[MSG], in[MSG];
	size_t got = 0;

	memset(out, 'a' + r % 26, sizeof(out));
	cr_assert_eq(send(fd, out, sizeof(out), 0), (ssize_t)sizeof(out));
	while (got < sizeof(in)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		cr_assert_eq(poll(&p, 1, 5000), 1, "round %d: no echo", r);
		n = recv(fd, in + got, sizeof(in) - got, MSG_DONTWAIT);
		cr_assert_gt(n, 0, "round %d: the connection ended", r);
		got += (size_t)n;
	}
	cr_assert(!memcmp(in, out, sizeof(in)), "round %d: the echo differs", r);
}

Test(fastpath, exchanges_go_through_the_kernel_and_a_half_close_still_passes)
{
	char tail[64], want[64];
	int fd = tsock_connect("a", VIP_API, 3000);
	int rounds = 40;
	ssize_t n;

	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(send(fd, "ECHO\n", 5, 0), 5);
	for (int r = 0; r < rounds / 2; r++)
		exchange(fd, r);
	cr_assert_geq(wait_counter("connections.fastpath", 1), 1,
		      "the connection never went on the kernel path");
	for (int r = rounds / 2; r < rounds; r++)
		exchange(fd, r);
	/* Our FIN reaches the server behind every byte; its answer comes back. */
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	n = tsock_request(fd, "", tail, sizeof(tail), 5000);
	snprintf(want, sizeof(want), "BYE %d\n", rounds * MSG);
	cr_assert_gt(n, 0, "no answer after the half-close");
	cr_assert_str_eq(tail, want);
	close(fd);
	cr_assert_eq(tenv_status_counter(&env, "connections.fastpath_races"), 0);
}

Test(fastpath, sixteen_megabytes_arrive_byte_identical_both_ways)
{
	const size_t total = 16u << 20;
	char tail[64], want[64], why[256] = "";
	int fd = tsock_connect("a", VIP_API, 3000);
	ssize_t n;

	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(send(fd, "ECHO\n", 5, 0), 5);
	/* A few exchanges first: then the whole transfer is the kernel's
	 * (a bulk stream both ways seldom leaves both sockets empty at once,
	 * which the switch waits for).
	 */
	for (int r = 0; r < 12; r++)
		exchange(fd, r);
	cr_assert_geq(wait_counter("connections.fastpath", 1), 1);
	(void)tsock_echo_stream(fd, total, why, sizeof(why));
	cr_assert_eq(why[0], 0,
		     "%s (fastpath_fin_late %lld, fastpath_races %lld, resets %lld)", why,
		     tenv_status_counter(&env, "connections.fastpath_fin_late"),
		     tenv_status_counter(&env, "connections.fastpath_races"),
		     tenv_status_counter(&env, "connections.resets"));
	n = tsock_request(fd, "", tail, sizeof(tail), 5000);
	snprintf(want, sizeof(want), "BYE %zu\n", total + 12 * MSG);
	cr_assert_gt(n, 0);
	cr_assert_str_eq(tail, want);
	close(fd);
}

Test(fastpath, a_reset_on_the_kernel_path_is_passed_on)
{
	int fd = tsock_connect("a", VIP_API, 3000);
	long long resets = tenv_status_counter(&env, "connections.resets");

	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(send(fd, "ECHO\n", 5, 0), 5);
	for (int r = 0; r < 20; r++)
		exchange(fd, r);
	cr_assert_geq(wait_counter("connections.fastpath", 1), 1);
	/* SO_LINGER 0: close() sends RST; the proxy resets the upstream too. */
	{
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	}
	close(fd);
	cr_assert_geq(wait_counter("connections.resets", resets + 1), resets + 1,
		      "the client's reset was not passed on");
	cr_assert_eq(wait_counter("connections.active", 0), 0);
}

/* The fp service: api's server, opaque, with a short idle timeout. */
static void declare_fp(void)
{
	char yaml[16384];
	long long gen = tenv_status_counter(&env, "catalogue_generation");

	snprintf(yaml, sizeof(yaml),
		 "%s---\napiVersion: v1\nkind: Service\nmetadata:\n  name: fp\n"
		 "  namespace: mesh\n  annotations:\n    weft.io/protocol: tcp\n"
		 "    weft.io/idle-timeout: 500ms\n"
		 "spec:\n  clusterIP: 198.19.0.41\n  ports:\n  - name: tcp\n    port: 80\n"
		 "    targetPort: 8080\n"
		 "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
		 "  name: fp-1\n  namespace: mesh\n  labels:\n"
		 "    kubernetes.io/service-name: fp\naddressType: IPv4\n"
		 "endpoints:\n- addresses: [198.18.2.14]\nports:\n- name: tcp\n  port: 8080\n",
		 TOPO_REGISTRY);
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	for (int i = 0; i < 100; i++) {
		if (tenv_status_counter(&env, "catalogue_generation") > gen)
			return;
		usleep(50000);
	}
	cr_assert_fail("the agent did not load the new registry");
}

Test(fastpath, bytes_in_the_kernel_keep_a_connection_from_idling_out)
{
	uint64_t t0;
	int fd, r = 0;
	struct pollfd p;

	declare_fp();
	fd = tsock_connect("a", VIP_FP, 3000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(send(fd, "ECHO\n", 5, 0), 5);
	for (; r < 12; r++)
		exchange(fd, r);
	cr_assert_geq(wait_counter("connections.fastpath", 1), 1);
	/* Three idle timeouts' worth of traffic the proxy never sees. */
	t0 = mono_ms();
	while (mono_ms() - t0 < 1500) {
		exchange(fd, r++);
		usleep(100000);
	}
	cr_assert_eq(tenv_status_counter(&env, "connections.idle_timeouts"), 0,
		     "a busy connection on the kernel path was closed as idle");
	/* Silent now: closed within a few idle timeouts. */
	t0 = mono_ms();
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 5000), 1, "the idle connection was never closed");
	cr_assert_lt(mono_ms() - t0, 3000);
	cr_assert_eq(wait_counter("connections.idle_timeouts", 1), 1);
	close(fd);
}
