// SPDX-License-Identifier: GPL-2.0-only
/* weft-bench-httpd: the benchmark's HTTP/1.1 server. Every request gets the same
 * 200 response with a 128-byte body; connections are kept alive unless the
 * request says "Connection: close" (or is HTTP/1.0). One epoll loop per thread,
 * each with its own SO_REUSEPORT listener, level-triggered, no allocation per
 * request. Requests are assumed to carry no body (the benchmark sends GETs).
 *
 * usage: weft-bench-httpd ADDR PORT [THREADS]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY_LEN 128
#define IN_SIZE 4096
#define OUT_SIZE 8192
#define MAX_EVENTS 256
#define MAX_THREADS 16

struct client {
	int fd;
	bool close_after;
	size_t in_len;
	size_t out_len, out_off;
	char in[IN_SIZE];
	char out[OUT_SIZE];
};

static struct sockaddr_in arg_addr;
static char resp_ka[256], resp_close[256];
static size_t resp_ka_len, resp_close_len;

static int listen_on(void)
{
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&arg_addr, sizeof(arg_addr)) == -1 ||
	    listen(fd, 4096) == -1) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void client_free(struct client *c)
{
	if (!c)
		return;
	close(c->fd);	/* also removes it from the epoll set */
	free(c);
}

/* Is the request [p, end) (its header block, "\r\n\r\n" included) HTTP/1.0
 * or does it carry "Connection: close"?
 */
static bool wants_close(const char *p, const char *end)
{
	static const char name[] = "\r\nconnection:";
	size_t n = sizeof(name) - 1;
	const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);

	if (eol && eol - p >= 8 && !memcmp(eol - 8, "HTTP/1.0", 8))
		return true;
	for (; p + n < end; p++) {
		if (strncasecmp(p, name, n))
			continue;
		p += n;
		while (p < end && *p == ' ')
			p++;
		return end - p >= 5 && !strncasecmp(p, "close", 5);
	}
	return false;
}

/* Queue one response per complete request in c->in. Returns 0 or -EPROTO. */
static int parse_requests(struct client *c)
{
	char *start = c->in, *end = c->in + c->in_len;

	while (!c->close_after) {
		char *hdr_end = memmem(start, (size_t)(end - start), "\r\n\r\n", 4);
		const char *r;
		size_t len;

		if (!hdr_end)
			break;
		hdr_end += 4;
		c->close_after = wants_close(start, hdr_end);
		r = c->close_after ? resp_close : resp_ka;
		len = c->close_after ? resp_close_len : resp_ka_len;
		if (c->out_len + len > OUT_SIZE)
			return -EPROTO;	/* more pipelined requests than we buffer */
		memcpy(c->out + c->out_len, r, len);
		c->out_len += len;
		start = hdr_end;
	}
	c->in_len = (size_t)(end - start);
	memmove(c->in, start, c->in_len);
	if (c->in_len == IN_SIZE)
		return -EPROTO;		/* a header block larger than the buffer */
	return 0;
}

/* Returns 1 to keep the client, 0 to drop it. */
static int flush(int ep, struct client *c)
{
	struct epoll_event ev = { .data.ptr = c };

	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			ev.events = EPOLLOUT;
			return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == -1 ? 0 : 1;
		}
		if (n == -1)
			return 0;
		c->out_off += (size_t)n;
	}
	c->out_len = c->out_off = 0;
	if (c->close_after)
		return 0;
	ev.events = EPOLLIN;
	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == -1 ? 0 : 1;
}

static int on_readable(int ep, struct client *c)
{
	ssize_t n = read(c->fd, c->in + c->in_len, IN_SIZE - c->in_len);

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 1;
	if (n <= 0)
		return 0;
	c->in_len += (size_t)n;
	if (parse_requests(c))
		return 0;
	return c->out_len ? flush(ep, c) : 1;
}

static void accept_all(int ep, int lfd)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN };
		struct client *c;
		int one = 1;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1)
			return;	/* EAGAIN, or out of fds: the backlog waits */
		c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->close_after = false;
		c->in_len = c->out_len = c->out_off = 0;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
			client_free(c);
	}
}

static void *worker(void *arg)
{
	struct epoll_event evs[MAX_EVENTS], ev = { .events = EPOLLIN, .data.ptr = NULL };
	int lfd = (int)(long)arg, ep;

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep == -1 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1) {
		perror("httpd: epoll");
		exit(1);
	}
	for (;;) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1);

		for (int i = 0; i < n; i++) {
			struct client *c = evs[i].data.ptr;
			int keep;

			if (!c) {
				accept_all(ep, lfd);
				continue;
			}
			if (evs[i].events & EPOLLOUT)
				keep = flush(ep, c);
			else
				keep = on_readable(ep, c);
			if (!keep)
				client_free(c);
		}
	}
	return NULL;
}

static void build_responses(void)
{
	char body[BODY_LEN + 1];

	memset(body, 'x', BODY_LEN - 1);
	body[BODY_LEN - 1] = '\n';
	body[BODY_LEN] = '\0';
	resp_ka_len = (size_t)snprintf(resp_ka, sizeof(resp_ka),
				       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
				       "Content-Length: %d\r\n\r\n%s", BODY_LEN, body);
	resp_close_len = (size_t)snprintf(resp_close, sizeof(resp_close),
					  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
					  "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
					  BODY_LEN, body);
}

int main(int argc, char **argv)
{
	pthread_t tids[MAX_THREADS];
	struct rlimit rl;
	char *end;
	long port, threads = 1;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s ADDR PORT [THREADS]\n", argv[0]);
		return 2;
	}
	arg_addr.sin_family = AF_INET;
	errno = 0;
	port = strtol(argv[2], &end, 10);
	if (inet_pton(AF_INET, argv[1], &arg_addr.sin_addr) != 1 || errno || *end ||
	    port < 1 || port > 65535) {
		fprintf(stderr, "httpd: bad address %s:%s\n", argv[1], argv[2]);
		return 2;
	}
	arg_addr.sin_port = htons((uint16_t)port);
	if (argc == 4) {
		errno = 0;
		threads = strtol(argv[3], &end, 10);
		if (errno || *end || threads < 1 || threads > MAX_THREADS) {
			fprintf(stderr, "httpd: THREADS must be 1..%d\n", MAX_THREADS);
			return 2;
		}
	}
	/* Hold as many connections as the shell's limit allows (run.sh raises it). */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	build_responses();
	for (long i = 0; i < threads; i++) {
		int lfd = listen_on();

		if (lfd < 0) {
			fprintf(stderr, "httpd: listen %s:%ld: %s\n", argv[1], port, strerror(-lfd));
			return 1;
		}
		if (pthread_create(&tids[i], NULL, worker, (void *)(long)lfd)) {
			fprintf(stderr, "httpd: cannot start a thread\n");
			return 1;
		}
	}
	for (long i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	return 0;
}
