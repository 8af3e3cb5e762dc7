// SPDX-License-Identifier: GPL-2.0-only
/* The opaque relay (struct relay_ops relay_tcp): bytes both ways between the
 * client and one upstream, with half-close passed on: small messages
 * through the direction's buffer (one recv(), one send()), streams
 * zero-copy through a pipe per direction borrowed from the worker's pool
 * while bytes are in it. Serves L4 connections, HTTP ones after an upgrade
 * or CONNECT, and inbound connections, whose bytes are copied instead while
 * observe.c looks at them (half.copy). Level-triggered epoll: each side is
 * watched for EPOLLIN only while its buffer toward the other side is empty,
 * and for EPOLLOUT only while it has bytes waiting, so a slow reader pushes
 * back on the fast writer instead of growing memory. A side whose both
 * directions are finished is dropped from epoll, since a fully closed socket
 * reports EPOLLHUP forever.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "proxy/conn.h"

/* Bound the syscalls one event may spend on one direction, so a bulk transfer
 * cannot starve the other connections of the loop; level-triggered epoll
 * brings us back for the rest.
 */
#define PUMP_ROUNDS 8
/* Bytes asked of one splice() into an empty pipe: its default capacity (16
 * pages). Less than that arrives when less is queued on the socket.
 */
#define PIPE_CHUNK 65536
/* A direction splices while it streams: from a read that fills the buffer
 * (CONN_BUF_SIZE) until a splice moves less than this. Below it, a splice
 * pair costs more than recv() and send() of the same bytes, and a small
 * message (a request, a response, a ping) is read and written once each:
 * splicing one took two splice() calls and a third that found nothing.
 */
#define SPLICE_MIN 4096

/* A pipe for @h from the worker's pool, for the bytes about to be read.
 * False when the pool is at its bound (this read copies through the buffer)
 * or the process is out of descriptors (then every read of @h copies: the
 * relay still works, only slower).
 */
static bool half_pipe(struct proxy *px, struct half *h)
{
	int err;

	if (h->pipe[0] != -1)
		return true;
	if (h->no_pipe)
		return false;
	err = pipe_take(&px->pipes, h->pipe);
	if (err && err != -ENOSPC)
		h->no_pipe = true;
	return !err;
}

/* Move bytes from @src to @dst through @h: first what the buffer holds (the
 * bytes read while detecting the protocol, or by the HTTP path before an
 * upgrade), then zero-copy through the pipe. While @dst is still connecting
 * only read (the first request is then ready the moment the connect
 * completes); shutdown() on a SYN_SENT socket would abort the connect.
 * Returns 0, or -errno when either socket failed (reset, broken pipe): the
 * caller resets the connection.
 */
static void on_fin_wait(struct loop_timer *n, uint64_t now);

static int pump(struct conn *c, int src, struct tls_link *src_tls, int dst,
		struct tls_link *dst_tls, struct half *h, bool dst_ready)
{
	/* A read into the buffer that came back short emptied the socket's
	 * queue: reading again would find nothing (EAGAIN). Level-triggered
	 * epoll reports what arrives after it, or a FIN that came with it.
	 * Not over TLS (the SSL may hold more than the socket shows) nor on
	 * the fast path (watched for the FIN only).
	 */
	bool drained = false;

	for (int round = 0;; round++) {
		bool piping;
		ssize_t n;

		if (h->len) {
			if (!dst_ready)
				return 0;
			n = sock_send(dst, dst_tls, h->buf + h->off, h->len);
			if (n == -1)
				return errno == EAGAIN ? 0 : -errno;
			h->off += (size_t)n;
			h->len -= (size_t)n;
			h->bytes += (uint64_t)n;
			if (h->len)
				return 0;
			half_buf_put(c->px, h);
		}
		if (h->piped) {
			if (!dst_ready)
				return 0;
			/* SIGPIPE is ignored by the agent: a closed peer is EPIPE here. */
			n = splice(h->pipe[0], NULL, dst, NULL, h->piped,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n == -1)
				return errno == EAGAIN ? 0 : -errno;
			h->piped -= (size_t)n;
			h->bytes += (uint64_t)n;
			if (h->piped)
				return 0;
			/* Drained: an idle connection holds no pipe. */
			pipe_give(&c->px->pipes, h->pipe);
		}
		if (h->eof) {
			if (!dst_ready || h->shut)
				return 0;
			if (!fp_drained(c, h == &c->u2c, dst)) {
				/* Nothing but time tells when the kernel is done. */
				if (!loop_timer_armed(&c->t_fin) &&
				    px_timer_set(c->px, &c->t_fin, FP_FIN_POLL_MS, on_fin_wait))
					return -ENOMEM;
				return 0;
			}
			/* Half-close (close_notify then FIN over TLS): the peer
			 * keeps sending the other way.
			 */
			n = sock_shut(dst, dst_tls);
			if (n == -EAGAIN)
				return 0;
			if (n)
				return (int)n;
			h->shut = true;
			return 0;
		}
		/* Stop only with nothing pending and no EOF: then the source is
		 * watched for EPOLLIN and level-triggered epoll brings us back.
		 */
		if (round == PUMP_ROUNDS || drained)
			return 0;
		/* Bytes someone watches (observe.c), and bytes to or from TLS,
		 * go through the buffer; so do small messages (SPLICE_MIN).
		 */
		piping = h->bulk && !h->copy && !src_tls && !dst_tls && half_pipe(c->px, h);
		if (piping) {
			n = splice(src, NULL, h->pipe[1], NULL, PIPE_CHUNK,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n <= 0)
				pipe_give(&c->px->pipes, h->pipe);	/* nothing went in */
			if (n > 0 && n < SPLICE_MIN)
				h->bulk = false;
		} else {
			if (!half_buf(c->px, h))
				return -ENOMEM;
			n = sock_recv(src, src_tls, h->buf, CONN_BUF_SIZE);
			if (h->copy && n >= 0)
				observe_bytes(c, h, h->buf, (size_t)n);
			if (n <= 0)
				half_buf_put(c->px, h);
			if (n == CONN_BUF_SIZE)
				h->bulk = true;
			else if (n > 0 && !src_tls && !c->fast)
				drained = true;
		}
		if (n == -1)
			return errno == EAGAIN ? 0 : -errno;
		if (n == 0) {
			h->eof = true;
			continue;
		}
		if (piping)
			h->piped = (size_t)n;
		else
			h->len = (size_t)n;
		if (c->fp_reads < UINT16_MAX)
			c->fp_reads++;
		if ((size_t)n >= FP_BULK_READ)
			c->fp_bulk = true;
	}
}

static bool tcp_update(struct conn *c)
{
	struct up *u = c->up;
	bool ready = u && !u->connecting;
	uint32_t cev = 0, uev = 0, in;

	if (c->c2u.shut && c->u2c.shut) {
		conn_close(c, false);
		return false;
	}
	if (fp_try(c)) {
		ctr_inc(&c->px->stats.fastpath_races);
		conn_close(c, true);
		return false;
	}
	/* On the fast path each arrival still wakes a reader for bytes that
	 * are gone already: watch for the FIN (and errors) only. A byte the
	 * verdict passed up is read with the FIN, or if the connection idles.
	 */
	in = c->fast ? EPOLLRDHUP : EPOLLIN;
	if (!c->c2u.eof && half_empty(&c->c2u))
		cev |= in;
	if (!half_empty(&c->u2c))
		cev |= EPOLLOUT;
	if (u && u->connecting) {
		uev = EPOLLOUT;
	} else if (u) {
		if (!c->u2c.eof && half_empty(&c->u2c))
			uev |= in;
		if (!half_empty(&c->c2u))
			uev |= EPOLLOUT;
	}
	/* A side we no longer read from nor write to is finished for good. */
	if (c->c2u.eof && c->u2c.shut)
		cev = 0;
	if (ready && c->u2c.eof && c->c2u.shut)
		uev = 0;
	if (conn_watch(c, cev) || (u && up_watch(u, uev))) {
		conn_close(c, true);
		return false;
	}
	return true;
}

/* A half-close on the fast path waits for the kernel's bytes (fp_drained()):
 * look again.
 */
static void on_fin_wait(struct loop_timer *n, uint64_t now)
{
	struct conn *c = (struct conn *)((char *)n - offsetof(struct conn, t_fin));
	int err;

	(void)now;
	err = pump(c, c->cfd, c->tls, c->up->fd, c->up->tls, &c->c2u, true);
	if (!err)
		err = pump(c, c->up->fd, c->up->tls, c->cfd, c->tls, &c->u2c, true);
	if (err) {
		conn_close(c, true);
		return;
	}
	tcp_update(c);
}

static void tcp_ready(struct conn *c)
{
	if (pump(c, c->cfd, c->tls, c->up->fd, c->up->tls, &c->c2u, true)) {
		conn_close(c, true);
		return;
	}
	tcp_update(c);
}

static void tcp_start(struct conn *c)
{
	attempt_start(c);
}

static void tcp_on_event(struct conn *c, bool client, uint32_t events)
{
	struct up *u = c->up;
	int err = 0;

	if (events & EPOLLERR) {
		/* A pending socket error on an established TCP socket is a reset (or
		 * an ICMP-reported failure): pass it on rather than spin on it.
		 */
		log_debug("proxy: %s socket error pod=%u, resetting", client ? "client" : "upstream",
			  c->pod->id);
		conn_close(c, true);
		return;
	}
	if (client && !u) {
		/* Between attempts: keep what the client sends for the next one. */
		err = pump(c, c->cfd, c->tls, -1, NULL, &c->c2u, false);
	} else if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
		if (client)
			err = pump(c, c->cfd, c->tls, u->fd, u->tls, &c->c2u, !u->connecting);
		else
			err = pump(c, u->fd, u->tls, c->cfd, c->tls, &c->u2c, true);
	}
	if (!err && u && (events & (EPOLLOUT | EPOLLHUP))) {
		if (client)
			err = pump(c, u->fd, u->tls, c->cfd, c->tls, &c->u2c, true);
		else
			err = pump(c, c->cfd, c->tls, u->fd, u->tls, &c->c2u, true);
	}
	if (err) {
		log_debug("proxy: relay pod=%u: %s, resetting", c->pod->id, strerror(-err));
		conn_close(c, true);
		return;
	}
	tcp_update(c);
}

static void tcp_on_client(struct conn *c, uint32_t events)
{
	tcp_on_event(c, true, events);
}

static void tcp_on_upstream(struct conn *c, uint32_t events)
{
	if (c->up->connecting) {
		attempt_connected(c, events);
		return;
	}
	tcp_on_event(c, false, events);
}

/* Connected: the endpoint answered, which is all an L4 attempt can tell. */
static void tcp_on_ready(struct conn *c)
{
	if (c->up->ep)
		ep_outcome(c->px, c->up->ep, true);
	tcp_ready(c);
}

static bool tcp_may_retry(const struct conn *c, enum fail_kind kind)
{
	/* Attempts fail only while connecting, before a byte went out. */
	(void)c;
	(void)kind;
	return true;
}

static bool tcp_may_reuse(const struct conn *c)
{
	/* Pooled upstreams sit between HTTP requests; a relay owns its own. */
	(void)c;
	return false;
}

static void tcp_fail(struct conn *c, enum fail_kind kind)
{
	(void)kind;
	conn_close(c, true);
}

static void tcp_fail_local(struct conn *c, enum local_fail why)
{
	(void)why;
	conn_close(c, true);
}

static const char *tcp_idle_state(const struct conn *c)
{
	return c->n_tried ? "retry-wait" : "connecting";
}

const struct relay_ops relay_tcp = {
	.name = "tcp",
	.kind = RELAY_TCP,
	.start = tcp_start,
	.on_client = tcp_on_client,
	.on_upstream = tcp_on_upstream,
	.ready = tcp_on_ready,
	.update = tcp_update,
	.may_retry = tcp_may_retry,
	.may_reuse = tcp_may_reuse,
	.fail = tcp_fail,
	.fail_local = tcp_fail_local,
	.idle_state = tcp_idle_state,
};
