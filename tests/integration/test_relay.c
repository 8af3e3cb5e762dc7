// SPDX-License-Identifier: GPL-2.0-only
/* The proxy's relay: half-close, resets, bulk data byte for byte, and which
 * bytes it copies and which it splices.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fixture.h"
#include "servers.h"
#include "sock.h"

static pid_t srv;

static void up(void)
{
	fixture_up();
	/* api has one endpoint, so every connection lands on this server. */
	srv = tsrv_start("s", "198.18.2.14", 8080, "api-1");
	cr_assert_gt(srv, 0);
}

static void down(void)
{
	tsrv_stop(srv);
	fixture_down();
}

TestSuite(relay, .init = up, .fini = down, .timeout = 120);

Test(relay, half_close_is_passed_on_and_the_other_way_keeps_flowing)
{
	char out[256];
	int fd = tsock_connect("a", "198.19.0.20:80", 3000);
	ssize_t n;

	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(send(fd, "ECHO\nhello", 10, 0), 10);
	/* Our FIN must reach the server as EOF; its answer must still reach us. */
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	n = tsock_request(fd, "", out, sizeof(out), 3000);
	cr_assert_eq(n, (ssize_t)strlen("helloBYE 5\n"), "got %zd bytes '%s'", n, n > 0 ? out : "");
	cr_assert_str_eq(out, "helloBYE 5\n");
	close(fd);
}

Test(relay, fifty_megabytes_arrive_byte_identical_both_ways)
{
	const size_t total = 50u << 20;
	char tail[64], why[128];
	int fd = tsock_connect("a", "198.19.0.20:80", 3000);
	ssize_t n;

	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(send(fd, "ECHO\n", 5, 0), 5);
	cr_assert_eq(tsock_echo_stream(fd, total, why, sizeof(why)), 0, "%s", why);
	n = tsock_request(fd, "", tail, sizeof(tail), 5000);
	cr_assert_gt(n, 0);
	cr_assert_str_eq(tail, "BYE 52428800\n");
	close(fd);
}

Test(relay, a_reset_is_passed_on_as_a_reset)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	long long before = tenv_status_counter(&env, "connections.resets");
	int fd = tsock_connect("a", "198.19.0.20:80", 3000);

	cr_assert_geq(fd, 0);
	cr_assert_eq(send(fd, "ECHO\nx", 6, 0), 6);
	char c;
	cr_assert_eq(recv(fd, &c, 1, 0), 1);
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	for (int i = 0; i < 50; i++) {
		if (tenv_status_counter(&env, "connections.resets") > before)
			break;
		usleep(50000);
	}
	cr_assert_gt(tenv_status_counter(&env, "connections.resets"), before,
		     "the proxy did not see or pass on the reset");
	cr_assert_eq(tenv_status_counter(&env, "connections.active"), 0);
}

Test(relay, refused_endpoint_closes_the_client_promptly)
{
	char out[64];
	int err;

	tsrv_stop(srv);
	srv = 0;
	err = tsock_ident("a", "198.19.0.20:80", out, sizeof(out));
	cr_assert(err == -ECONNRESET || err == -EPIPE, "got %d '%s'", err, out);
	cr_assert_geq(tenv_status_counter(&env, "connections.connect_errors"), 1);
}

/* How many of the agent's descriptors are pipes: the relay's pools keep the
 * pipes a stream borrowed (up to PIPES_SPARE per worker) once it gave them
 * back, so the count says whether any was ever taken.
 */
static long agent_pipes(void)
{
	long pipes;

	(void)tenv_agent_fds(&env, &pipes);
	return pipes;
}

Test(relay, small_messages_are_copied_and_a_stream_is_spliced)
{
	const size_t total = 8u << 20;
	char msg[64], back[64], tail[64], why[128];
	int fd = tsock_connect("a", "198.19.0.20:80", 3000);
	long pipes0, pipes1;
	bool fast;
	ssize_t n;

	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	pipes0 = agent_pipes();
	cr_assert_eq(send(fd, "ECHO\n", 5, 0), 5);
	/* Ping-pong: each message is read and written once, never through a
	 * pipe (two splice() calls and a third that finds nothing).
	 */
	for (int i = 0; i < 200; i++) {
		size_t got = 0;

		memset(msg, 'a' + i % 26, sizeof(msg));
		cr_assert_eq(send(fd, msg, sizeof(msg), MSG_NOSIGNAL), (ssize_t)sizeof(msg));
		while (got < sizeof(back)) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			cr_assert_eq(poll(&pfd, 1, 3000), 1, "message %d: no echo", i);
			n = recv(fd, back + got, sizeof(back) - got, 0);
			cr_assert_gt(n, 0, "message %d: the connection ended", i);
			got += (size_t)n;
		}
		cr_assert_eq(memcmp(msg, back, sizeof(msg)), 0, "message %d changed", i);
	}
	pipes1 = agent_pipes();
	cr_assert_eq(pipes1, pipes0, "small messages made %ld pipe ends", pipes1 - pipes0);
	/* A stream fills the buffer and goes zero-copy from then on: the
	 * pipes it borrowed stay in the worker's pool as spares. (With the
	 * kernel fast path on, WEFT_OPAQUE_FASTPATH=sockmap in the agent's
	 * environment, the round trips above switched the connection and the
	 * stream never reaches the relay: no pipe then.)
	 */
	cr_assert_eq(tsock_echo_stream(fd, total, why, sizeof(why)), 0, "%s", why);
	n = tsock_request(fd, "", tail, sizeof(tail), 5000);
	cr_assert_gt(n, 0);
	/* The server counts every byte after its command, the messages' too. */
	snprintf(why, sizeof(why), "BYE %zu\n", total + 200 * sizeof(msg));
	cr_assert_str_eq(tail, why);
	fast = getenv("WEFT_OPAQUE_FASTPATH") && !strcmp(getenv("WEFT_OPAQUE_FASTPATH"), "sockmap");
	if (!fast)
		cr_assert_gt(agent_pipes(), pipes0, "8 MiB relayed without a pipe");
	close(fd);
}
