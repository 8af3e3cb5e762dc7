// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of soak_load.h: each load process enters its pod's netns,
 * loops until the shared stop flag is set, and counts every outcome into
 * the shared block; the first few failures of each process are printed with
 * the time since the run's start, so that a failure can be matched with the
 * churn the test logs.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <signal.h>
#include <unistd.h>

#include "proc.h"
#include "soak_load.h"
#include "sock.h"
#include "tns.h"

#define CONN_GAP_US 4000	/* between two new connections of one process */
#define HTTP_GAP_US 4000	/* between two requests of one process */
#define HTTP_CONNS 4		/* kept-alive connections per process */
#define HTTP_REQS_PER_CONN 500	/* then the client closes it and opens another */
#define STREAM_TICK_MS 200	/* a byte each way per tick */
#define STREAM_SHORT_MS 5000	/* the life of a short stream */
#define IO_TIMEOUT_MS 5000	/* past it, an answer that did not come is a failure */
#define LOG_FIRST 8		/* failures printed per process */

const char *const soak_kind_name[SOAK_KINDS] = {
	[SOAK_CONNS] = "new connections (IDENT, web)",
	[SOAK_HTTP] = "keep-alive requests (GET, kv)",
	[SOAK_STREAM] = "short streams (ECHO 5 s, echo)",
	[SOAK_LONG] = "long streams (ECHO, whole run)",
};

struct soak_shared *soak_shared_new(void)
{
	struct soak_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return sh == MAP_FAILED ? NULL : sh;
}

void soak_shared_free(struct soak_shared *sh)
{
	if (sh)
		munmap(sh, sizeof(*sh));
}

/* One load process. */
struct worker {
	struct soak_shared *sh;
	struct soak_counts *c;
	enum soak_kind kind;
	const char *ns;
	int logged;
};

static void fail(struct worker *w, bool expected, const char *what, int err)
{
	atomic_fetch_add(expected ? &w->c->expected : &w->c->failed, 1);
	if (w->logged++ < LOG_FIRST)
		fprintf(stderr, "soak: %7.1f s: %s from pod %s: %s: %s%s\n",
			(double)(tproc_now_ms() - w->sh->t0_ms) / 1000, soak_kind_name[w->kind],
			w->ns, what, strerror(-err), expected ? " (expected: crash window)" : "");
}

static bool stopping(struct worker *w)
{
	return atomic_load(&w->sh->stop);
}

/* ------------------------------------------------------------ new connections */

/* A connection that was open on a backend the test killed ends early (reset
 * or EOF): expected if a crash window overlapped the attempt. Refusals and
 * timeouts never are: the proxy retries a refused connect elsewhere.
 */
static void conns(struct worker *w)
{
	char out[256];

	while (!stopping(w)) {
		long epoch0 = atomic_load(&w->sh->crash_epoch);
		int err = tsock_ident(NULL, SOAK_WEB_VIP, out, sizeof(out));
		long epoch1 = atomic_load(&w->sh->crash_epoch);

		atomic_fetch_add(&w->c->opened, 1);
		if (!err && !strncmp(out, "web-", 4)) {
			atomic_fetch_add(&w->c->ok, 1);
		} else if (!err) {
			atomic_fetch_add(&w->c->bypassed, 1);
			fail(w, false, "answer not from a web backend", -EPROTO);
		} else {
			bool crash = (epoch0 & 1) || epoch1 != epoch0;

			fail(w, crash && (err == -ECONNRESET || err == -EPIPE), "IDENT", err);
		}
		usleep(CONN_GAP_US);
	}
}

/* ------------------------------------------------------------ HTTP keep-alive */

/* Read one response to a GET from @fd: 0 for a 200 whose body starts with
 * "kv-", else -errno (-ECONNRESET for EOF, -EPROTO for anything else).
 * *@close_after: the response said the connection ends.
 */
static int http_response(int fd, bool *close_after)
{
	char buf[4096], *end, *p;
	size_t have = 0, head;
	long clen = -1;
	int status = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		end = memmem(buf, have, "\r\n\r\n", 4);
		if (end) {
			head = (size_t)(end - buf) + 4;
			if (clen < 0) {
				buf[head - 1] = '\0';
				if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
					return -EPROTO;
				for (p = buf; (p = strchr(p, '\n')); p++) {
					if (!strncasecmp(p + 1, "content-length:", 15))
						clen = strtol(p + 16, NULL, 10);
					if (!strncasecmp(p + 1, "connection: close", 17))
						*close_after = true;
				}
				if (clen < 0 || clen > (long)(sizeof(buf) - head))
					return -EPROTO;
			}
			if (have >= head + (size_t)clen)
				break;
		}
		if (have == sizeof(buf))
			return -EPROTO;
		if (poll(&pfd, 1, IO_TIMEOUT_MS) != 1)
			return -ETIMEDOUT;
		n = recv(fd, buf + have, sizeof(buf) - have, 0);
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		have += (size_t)n;
	}
	if (status != 200 || clen < 3 || strncmp(buf + head, "kv-", 3))
		return -EPROTO;
	/* Nothing may follow: one request is outstanding at a time. */
	return have == head + (size_t)clen ? 0 : -EPROTO;
}

/* Every request is a failure if it does not come back 200 from a kv backend:
 * kv's backends are never killed while the agent lists them (test_soak.c).
 */
static void http(struct worker *w)
{
	static const char req[] = "GET /soak HTTP/1.1\r\nHost: kv.mesh\r\n\r\n";
	int fd[HTTP_CONNS];
	long used[HTTP_CONNS] = { 0 };

	for (int i = 0; i < HTTP_CONNS; i++)
		fd[i] = -1;
	for (int i = 0; !stopping(w); i = (i + 1) % HTTP_CONNS) {
		bool close_after = false;
		int err;

		if (fd[i] < 0) {
			fd[i] = tsock_connect(NULL, SOAK_KV_VIP, IO_TIMEOUT_MS);
			if (fd[i] < 0) {
				fail(w, false, "connect", fd[i]);
				fd[i] = -1;
				usleep(HTTP_GAP_US);
				continue;
			}
			atomic_fetch_add(&w->c->opened, 1);
			used[i] = 0;
		}
		if (send(fd[i], req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1)
			err = -EPIPE;
		else
			err = http_response(fd[i], &close_after);
		if (err) {
			fail(w, false, used[i] ? "GET on a reused connection" : "GET", err);
			close_after = true;
		} else {
			atomic_fetch_add(&w->c->ok, 1);
		}
		if (close_after || ++used[i] == HTTP_REQS_PER_CONN) {
			close(fd[i]);
			fd[i] = -1;
		}
		usleep(HTTP_GAP_US);
	}
	for (int i = 0; i < HTTP_CONNS; i++) {
		if (fd[i] >= 0)
			close(fd[i]);
	}
}

/* ------------------------------------------------------------ streams */

/* One ECHO stream for @ms (or until stop, with @ms 0): a byte each tick,
 * each echoed, then the server's "BYE <count>" after our half-close. The
 * echo backends never stop during the run, so any failure counts.
 */
static void stream_once(struct worker *w, unsigned int ms)
{
	uint64_t end = tproc_now_ms() + ms;
	char buf[64];
	ssize_t n;
	int fd = tsock_connect(NULL, SOAK_ECHO_VIP, IO_TIMEOUT_MS);

	if (fd < 0) {
		fail(w, false, "connect", fd);
		usleep(STREAM_TICK_MS * 1000);
		return;
	}
	atomic_fetch_add(&w->c->opened, 1);
	if (send(fd, "ECHO\n", 5, MSG_NOSIGNAL) != 5) {
		fail(w, false, "ECHO", -EPIPE);
		goto out;
	}
	while (!stopping(w) && (!ms || tproc_now_ms() < end)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (send(fd, "x", 1, MSG_NOSIGNAL) != 1) {
			fail(w, false, "send", -errno);
			goto out;
		}
		if (poll(&p, 1, IO_TIMEOUT_MS) != 1) {
			fail(w, false, "echo", -ETIMEDOUT);
			goto out;
		}
		n = recv(fd, buf, 1, 0);
		if (n != 1 || buf[0] != 'x') {
			fail(w, false, "echo", n < 0 ? -errno : -ECONNRESET);
			goto out;
		}
		atomic_fetch_add(&w->c->bytes, 1);
		usleep(STREAM_TICK_MS * 1000);
	}
	shutdown(fd, SHUT_WR);
	n = tsock_request(fd, "", buf, sizeof(buf), IO_TIMEOUT_MS);
	if (n <= 0 || strncmp(buf, "BYE ", 4))
		fail(w, false, "BYE after the half-close", n < 0 ? (int)n : -EPROTO);
	else
		atomic_fetch_add(&w->c->ok, 1);
out:
	close(fd);
}

static void streams(struct worker *w)
{
	while (!stopping(w))
		stream_once(w, w->kind == SOAK_LONG ? 0 : STREAM_SHORT_MS);
}

pid_t soak_load_start(struct soak_shared *sh, enum soak_kind kind, const char *ns)
{
	struct worker w = { .sh = sh, .c = &sh->c[kind], .kind = kind, .ns = ns };
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/* A load process must not outlive a test that died. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (tns_enter(ns))
		_exit(3);
	switch (kind) {
	case SOAK_CONNS:
		conns(&w);
		break;
	case SOAK_HTTP:
		http(&w);
		break;
	case SOAK_STREAM:
	case SOAK_LONG:
		streams(&w);
		break;
	case SOAK_KINDS:
		_exit(4);
	}
	_exit(0);
}
