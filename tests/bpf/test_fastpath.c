// SPDX-License-Identifier: GPL-2.0-only
/* The opaque-TCP fast path (bpf/fastpath.bpf.c, datapath/fastpath.c) on its
 * own: in a private netns, two loopback connections stand for a relayed one
 * (the proxy's accepted socket and its upstream socket); once the two proxy
 * ends are on the path, bytes go from one connection to the other in the
 * kernel, are counted, and never reach the proxy's sockets, while an EOF
 * still does and bytes for a closed peer fall back to the proxy.
 */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "datapath/fastpath.h"

#include "../helpers/require.h"

#define WAIT_MS 5000
#define SLOT	7

/* A listener on 127.0.0.1 (any port) in the test's own netns. */
static int listen_lo(struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	*sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	cr_assert(bind(fd, (struct sockaddr *)sa, sizeof(*sa)) == 0);
	cr_assert(listen(fd, 8) == 0);
	cr_assert(getsockname(fd, (struct sockaddr *)sa, &len) == 0);
	return fd;
}

/* A connected pair: *@near dialled @lfd's address, *@far is what it accepted. */
static void tcp_pair(int lfd, const struct sockaddr_in *sa, int *near, int *far)
{
	int one = 1;

	*near = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(*near >= 0);
	cr_assert(connect(*near, (const struct sockaddr *)sa, sizeof(*sa)) == 0);
	*far = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert(*far >= 0);
	(void)setsockopt(*near, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(*far, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Read exactly @len bytes from @fd within WAIT_MS; returns what came. */
static size_t read_all(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, WAIT_MS) != 1)
			break;
		n = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/* Bytes waiting on @fd for a reader (it stayed in the kernel's path if 0). */
static ssize_t peek_now(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);

	return n == -1 && errno == EAGAIN ? 0 : n == -1 ? -errno : n;
}

/* The new netns' loopback starts down. */
static void lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	cr_assert(ioctl(fd, SIOCGIFFLAGS, &ifr) == 0);
	ifr.ifr_flags |= IFF_UP;
	cr_assert(ioctl(fd, SIOCSIFFLAGS, &ifr) == 0, "lo up: %s", strerror(errno));
	close(fd);
}

struct world {
	struct dp_fastpath *fp;
	int lfd;
	int client, cfd; /* the pod's client, the proxy's accepted socket */
	int ufd, server; /* the proxy's upstream socket, the server's socket */
};

static void world_up(struct world *w)
{
	struct sockaddr_in sa;

	require_root();
	cr_assert(unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET): %s", strerror(errno));
	lo_up();
	cr_assert(dp_fastpath_open(&w->fp, NULL) == 0, "dp_fastpath_open: the kernel needs "
						       "CONFIG_BPF_STREAM_PARSER and sockmap");
	w->lfd = listen_lo(&sa);
	tcp_pair(w->lfd, &sa, &w->client, &w->cfd);
	tcp_pair(w->lfd, &sa, &w->ufd, &w->server);
}

static void world_down(struct world *w)
{
	int fds[] = { w->client, w->cfd, w->ufd, w->server, w->lfd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	dp_fastpath_close(w->fp);
}

Test(fastpath, bytes_go_through_the_kernel_and_are_counted, .timeout = 30)
{
	struct world w;
	const volatile uint64_t *bytes;
	char buf[64];

	world_up(&w);
	bytes = dp_fastpath_bytes(w.fp);
	cr_assert(dp_fastpath_add(w.fp, w.cfd, w.ufd, SLOT) == 0);

	cr_assert(send(w.client, "hello", 5, 0) == 5);
	cr_assert_eq(read_all(w.server, buf, 5), 5, "the server did not get the client's bytes");
	cr_assert(memcmp(buf, "hello", 5) == 0);
	cr_assert(send(w.server, "world!", 6, 0) == 6);
	cr_assert_eq(read_all(w.client, buf, 6), 6, "the client did not get the server's bytes");
	cr_assert(memcmp(buf, "world!", 6) == 0);
	/* Nothing surfaced on the proxy's sockets: the kernel moved it all. */
	cr_assert_eq(peek_now(w.cfd), 0);
	cr_assert_eq(peek_now(w.ufd), 0);
	cr_assert_eq(bytes[2 * SLOT], 5, "client to upstream bytes: %lu",
		     (unsigned long)bytes[2 * SLOT]);
	cr_assert_eq(bytes[2 * SLOT + 1], 6, "upstream to client bytes: %lu",
		     (unsigned long)bytes[2 * SLOT + 1]);

	/* A larger transfer, many skbs: all of it, in order. */
	{
		static char big[1 << 20], back[1 << 20];
		size_t sent = 0, got = 0;

		for (size_t i = 0; i < sizeof(big); i++)
			big[i] = (char)(i * 7 + i / 4096);
		while (got < sizeof(big)) {
			struct pollfd p[2] = { { .fd = w.client, .events = POLLOUT },
					       { .fd = w.server, .events = POLLIN } };
			ssize_t n;

			cr_assert(poll(p, 2, WAIT_MS) > 0, "stalled at %zu of %zu bytes", got,
				  sizeof(big));
			if (sent < sizeof(big) && (p[0].revents & POLLOUT)) {
				n = send(w.client, big + sent, sizeof(big) - sent, MSG_DONTWAIT);
				if (n > 0)
					sent += (size_t)n;
			}
			if (p[1].revents & POLLIN) {
				n = recv(w.server, back + got, sizeof(back) - got, MSG_DONTWAIT);
				cr_assert(n > 0);
				got += (size_t)n;
			}
		}
		cr_assert(memcmp(big, back, sizeof(big)) == 0, "bytes changed on the way");
		cr_assert_eq(bytes[2 * SLOT], 5 + sizeof(big));
	}
	world_down(&w);
}

Test(fastpath, bytes_queued_before_the_switch_follow_the_same_path, .timeout = 30)
{
	struct world w;
	char buf[16];

	world_up(&w);
	cr_assert(send(w.client, "early", 5, 0) == 5);
	/* Let it land in the proxy socket's receive queue first. */
	{
		struct pollfd p = { .fd = w.cfd, .events = POLLIN };

		cr_assert(poll(&p, 1, WAIT_MS) == 1);
	}
	cr_assert(dp_fastpath_add(w.fp, w.cfd, w.ufd, SLOT) == 0);
	/* The proxy's next read finds nothing: it pushes the queued bytes on. */
	cr_assert(recv(w.cfd, buf, sizeof(buf), MSG_DONTWAIT) == -1 && errno == EAGAIN);
	cr_assert_eq(read_all(w.server, buf, 5), 5, "queued bytes were not redirected");
	cr_assert(memcmp(buf, "early", 5) == 0);
	cr_assert_eq(dp_fastpath_bytes(w.fp)[2 * SLOT], 5);
	world_down(&w);
}

Test(fastpath, an_eof_still_reaches_the_proxy, .timeout = 30)
{
	struct world w;
	struct pollfd p;
	char buf[16];

	world_up(&w);
	cr_assert(dp_fastpath_add(w.fp, w.cfd, w.ufd, SLOT) == 0);
	cr_assert(send(w.client, "bye", 3, 0) == 3);
	cr_assert(shutdown(w.client, SHUT_WR) == 0);
	cr_assert_eq(read_all(w.server, buf, 3), 3);
	p = (struct pollfd){ .fd = w.cfd, .events = POLLIN | POLLRDHUP };
	cr_assert(poll(&p, 1, WAIT_MS) == 1, "no readiness for the client's FIN");
	cr_assert(p.revents & POLLRDHUP);
	cr_assert_eq(recv(w.cfd, buf, sizeof(buf), MSG_DONTWAIT), 0,
		     "the FIN does not read as EOF");
	/* The FIN's empty skb was dropped, not redirected: redirected, the
	 * peer's sender would have written zero bytes and failed its socket
	 * (EPIPE).
	 */
	{
		int soerr = -1;
		socklen_t len = sizeof(soerr);

		cr_assert(getsockopt(w.ufd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0);
		cr_assert_eq(soerr, 0, "the upstream socket failed: %s", strerror(soerr));
	}
	/* The other direction still flows after the half-close. */
	cr_assert(send(w.server, "ok", 2, 0) == 2);
	cr_assert_eq(read_all(w.client, buf, 2), 2);
	world_down(&w);
}

Test(fastpath, bytes_for_a_closed_peer_fall_back_to_the_proxy, .timeout = 30)
{
	struct world w;
	char buf[16];

	world_up(&w);
	cr_assert(dp_fastpath_add(w.fp, w.cfd, w.ufd, SLOT) == 0);
	close(w.ufd);
	w.ufd = -1;
	cr_assert(send(w.client, "late", 4, 0) == 4);
	cr_assert_eq(read_all(w.cfd, buf, 4), 4, "bytes for a closed peer were lost");
	cr_assert(memcmp(buf, "late", 4) == 0);
	cr_assert_eq(dp_fastpath_bytes(w.fp)[2 * SLOT], 0);
	world_down(&w);
}

Test(fastpath, a_socket_taken_off_the_path_is_plain_again, .timeout = 30)
{
	struct world w;
	char buf[16];

	world_up(&w);
	cr_assert(dp_fastpath_add(w.fp, w.cfd, w.ufd, SLOT) == 0);
	cr_assert(dp_fastpath_del(w.fp, w.cfd, w.ufd) == 0);
	cr_assert(send(w.client, "mine", 4, 0) == 4);
	cr_assert_eq(read_all(w.cfd, buf, 4), 4);
	cr_assert_eq(peek_now(w.server), 0);
	world_down(&w);
}
