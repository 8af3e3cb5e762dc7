// SPDX-License-Identifier: GPL-2.0-only
/* weft-bench-hold: open N keep-alive HTTP connections, make one request on
 * each, and hold them all idle, so a proxy's memory per connection can be read.
 *
 * At most WINDOW connections are being set up at once, so the proxy's accept
 * backlog never overflows. When every connection has its response (or
 * SETUP_S seconds have passed) it prints "ready ok=X failed=Y" and holds them
 * until SIGTERM/SIGINT or HOLD_S seconds, watching for any the peer closes;
 * on exit it prints "done closed_by_peer=Z". Everything is bounded: N, the
 * setup time, the hold time.
 *
 * usage: weft-bench-hold ADDR PORT N HOLD_S
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define N_MAX 100000
#define WINDOW 256
#define SETUP_S 60
#define RESP_MAX 1024	/* the whole response must fit */

enum state { ST_CONNECTING, ST_READING, ST_IDLE, ST_DEAD };

struct hconn {
	int fd;
	enum state st;
	uint16_t got;
	char buf[RESP_MAX];
};

static const char request[] = "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: weft-bench\r\n\r\n";
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return errno || *end || end == s || *out < lo || *out > hi ? -EINVAL : 0;
}

static int start_one(int ep, const struct sockaddr_in *sa, struct hconn *h)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = h };

	h->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->fd == -1)
		return -errno;
	h->st = ST_CONNECTING;
	h->got = 0;
	if (connect(h->fd, (const struct sockaddr *)sa, sizeof(*sa)) == -1 &&
	    errno != EINPROGRESS)
		return -errno;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, h->fd, &ev) == -1)
		return -errno;
	return 0;
}

/* Is the response in h->buf complete? (Content-Length framing only.) */
static bool response_done(const struct hconn *h)
{
	static const char name[] = "\r\ncontent-length:";
	const char *hdr_end = memmem(h->buf, h->got, "\r\n\r\n", 4);
	size_t n = sizeof(name) - 1, head;

	if (!hdr_end)
		return false;
	head = (size_t)(hdr_end + 4 - h->buf);
	for (size_t i = 0; i + n < head; i++) {
		if (!strncasecmp(h->buf + i, name, n))
			return h->got >= head + strtoul(h->buf + i + n, NULL, 10);
	}
	return false;
}

/* Advance @h on an event. Returns 1 when it reached ST_IDLE, 0 if still busy,
 * a negative errno if it failed.
 */
static int step(int ep, struct hconn *h)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = h };
	int so_err = 0;
	socklen_t len = sizeof(so_err);
	ssize_t n;

	switch (h->st) {
	case ST_CONNECTING:
		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &so_err, &len) == -1)
			return -errno;
		if (so_err)
			return -so_err;
		if (send(h->fd, request, sizeof(request) - 1, MSG_NOSIGNAL) !=
		    (ssize_t)(sizeof(request) - 1))
			return -EIO;
		h->st = ST_READING;
		return epoll_ctl(ep, EPOLL_CTL_MOD, h->fd, &ev) == -1 ? -errno : 0;
	case ST_READING:
		if (h->got == sizeof(h->buf))
			return -EPROTO;
		n = recv(h->fd, h->buf + h->got, sizeof(h->buf) - h->got, 0);
		if (n == -1 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return n == 0 ? -ECONNRESET : -errno;
		h->got = (uint16_t)(h->got + n);
		if (!response_done(h))
			return 0;
		h->st = ST_IDLE;
		return 1;
	default:
		return -EINVAL;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct epoll_event evs[WINDOW];
	struct sigaction act = { .sa_handler = on_signal };
	struct rlimit rl;
	struct hconn *hs;
	long port, want, hold;
	long next = 0, busy = 0, ok = 0, failed = 0, closed = 0;
	int64_t deadline;
	int ep;

	if (argc != 5 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 ||
	    parse_long(argv[2], 1, 65535, &port) || parse_long(argv[3], 1, N_MAX, &want) ||
	    parse_long(argv[4], 1, 3600, &hold)) {
		fprintf(stderr, "usage: %s ADDR PORT N(1..%d) HOLD_S\n", argv[0], N_MAX);
		return 2;
	}
	sa.sin_port = htons((uint16_t)port);
	rl.rlim_cur = rl.rlim_max = (rlim_t)want + 64;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
		perror("hold: RLIMIT_NOFILE");
		return 1;
	}
	hs = calloc((size_t)want, sizeof(*hs));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!hs || ep == -1) {
		perror("hold");
		return 1;
	}
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);

	deadline = now_ms() + SETUP_S * 1000;
	while (ok + failed < want && now_ms() < deadline && !stop) {
		int n;

		while (busy < WINDOW && next < want) {
			if (start_one(ep, &sa, &hs[next]) < 0) {
				if (hs[next].fd >= 0)
					close(hs[next].fd);
				hs[next].st = ST_DEAD;
				failed++;
			} else {
				busy++;
			}
			next++;
		}
		n = epoll_wait(ep, evs, WINDOW, 100);
		for (int i = 0; i < n; i++) {
			struct hconn *h = evs[i].data.ptr;
			int r = step(ep, h);

			if (r == 0)
				continue;
			busy--;
			if (r > 0) {
				ok++;
				continue;
			}
			close(h->fd);
			h->st = ST_DEAD;
			failed++;
		}
	}
	printf("ready ok=%ld failed=%ld\n", ok, want - ok);
	fflush(stdout);

	/* Hold. Idle connections stay in the epoll set (EPOLLIN | EPOLLRDHUP):
	 * any event on one now means the proxy or the server closed it.
	 */
	deadline = now_ms() + hold * 1000;
	while (!stop && now_ms() < deadline) {
		int n = epoll_wait(ep, evs, WINDOW, 200);

		for (int i = 0; i < n; i++) {
			struct hconn *h = evs[i].data.ptr;

			if (h->st != ST_IDLE) {
				(void)epoll_ctl(ep, EPOLL_CTL_DEL, h->fd, NULL);
				continue;
			}
			(void)epoll_ctl(ep, EPOLL_CTL_DEL, h->fd, NULL);
			h->st = ST_DEAD;
			closed++;
		}
	}
	printf("done closed_by_peer=%ld\n", closed);
	return 0;
}
