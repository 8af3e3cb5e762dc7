// SPDX-License-Identifier: GPL-2.0-only
/* Client connections: protocol detection, the idle timeout, and the L4 relay.
 * Level-triggered epoll: each side is watched for EPOLLIN only while its
 * buffer toward the other side is empty, and for EPOLLOUT only while it has
 * bytes waiting, so a slow reader pushes back on the fast writer instead of
 * growing memory. A side whose both directions are finished is dropped from
 * epoll, since a fully closed socket reports EPOLLHUP forever.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "model/catalogue.h"
#include "log.h"
#include "loop.h"
#include "pods.h"
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

void sock_close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	/* SO_LINGER with a zero timeout makes close() send RST and drop the queue. */
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* ---------------------------------------------------------------- lifecycle */

static void conn_on_event(struct loop *loop, int fd, uint32_t events, void *ctx);
static void half_done(struct half *h);

int conn_watch(struct conn *c, uint32_t ev)
{
	int err;

	if (!ev) {
		if (c->cwatch)
			(void)loop_del_fd(c->px->loop, c->cfd);
		c->cwatch = false;
		c->cev = 0;
		return 0;
	}
	if (!c->cwatch) {
		err = loop_add_fd(c->px->loop, c->cfd, ev, conn_on_event, c);
		if (err)
			return err;
		c->cwatch = true;
	} else if (c->cev != ev) {
		err = loop_mod_fd(c->px->loop, c->cfd, ev);
		if (err)
			return err;
	}
	c->cev = ev;
	return 0;
}

void conn_close(struct conn *c, bool reset)
{
	struct proxy *px = c->px;
	struct pod *pod = c->pod;

	px_timer_del(px, &c->t_idle);
	px_timer_del(px, &c->t_deadline);
	px_timer_del(px, &c->t_retry);
	if (c->up) {
		if (reset) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };

			(void)setsockopt(c->up->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		up_release(c, false);
	}
	if (c->mode == CM_HTTP)
		http_abandon(c);
	half_done(&c->c2u);
	half_done(&c->u2c);
	/* Closed just below, never duplicated: no EPOLL_CTL_DEL needed. */
	if (c->cwatch)
		loop_forget_fd(px->loop, c->cfd);
	c->cwatch = false;
	if (reset) {
		sock_close_reset(c->cfd);
		px->stats.resets++;
	} else {
		close(c->cfd);
	}
	if (c->svc) {
		c->svc->clients--;
		svc_unref(&px->st, c->svc);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		pod->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pod->conns_active--;
	px->stats.active--;
	free(c);
}

static void on_idle(struct loop_timer *n, uint64_t now)
{
	struct conn *c = (struct conn *)((char *)n - offsetof(struct conn, t_idle));
	uint64_t idle = c->pol->idle_timeout_ms;

	if (!idle)
		return;		/* a reload turned the idle timeout off */
	/* The deadline moves lazily: activity only stamps last_io_ms. */
	if (now < c->last_io_ms + idle) {
		if (px_timer_set(c->px, &c->t_idle, c->last_io_ms + idle - now, on_idle))
			conn_close(c, true);
		return;
	}
	log_debug("proxy: connection pod=%u idle for %llu ms, closing", c->pod->id,
		  (unsigned long long)idle);
	c->px->stats.idle_timeouts++;
	conn_close(c, false);
}

/* ---------------------------------------------------------------- L4 relay */

/* The pipe of @h, made on first use. False (and copies from then on) if the
 * process is out of descriptors: the relay still works, only slower.
 */
static bool half_pipe(struct half *h)
{
	if (h->pipe[0] != -1)
		return true;
	if (h->no_pipe)
		return false;
	if (pipe2(h->pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		h->pipe[0] = h->pipe[1] = -1;
		h->no_pipe = true;
		return false;
	}
	return true;
}

static void half_done(struct half *h)
{
	if (h->pipe[0] == -1)
		return;
	close(h->pipe[0]);
	close(h->pipe[1]);
	h->pipe[0] = h->pipe[1] = -1;
}

/* Move bytes from @src to @dst through @h: first what the buffer holds (the
 * bytes read while detecting the protocol, or by the HTTP path before an
 * upgrade), then zero-copy through the pipe. While @dst is still connecting
 * only read (the first request is then ready the moment the connect
 * completes); shutdown() on a SYN_SENT socket would abort the connect.
 * Returns 0, or -errno when either socket failed (reset, broken pipe): the
 * caller resets the connection.
 */
static int pump(int src, int dst, struct half *h, bool dst_ready)
{
	for (int round = 0;; round++) {
		ssize_t n;

		if (h->len) {
			if (!dst_ready)
				return 0;
			n = send(dst, h->buf + h->off, h->len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n == -1)
				return errno == EAGAIN ? 0 : -errno;
			h->off += (size_t)n;
			h->len -= (size_t)n;
			h->bytes += (uint64_t)n;
			if (h->len)
				return 0;
			h->off = 0;
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
		}
		if (h->eof) {
			if (!dst_ready || h->shut)
				return 0;
			/* Half-close: the peer keeps sending the other way. */
			if (shutdown(dst, SHUT_WR) == -1 && errno != ENOTCONN)
				return -errno;
			h->shut = true;
			return 0;
		}
		/* Stop only with nothing pending and no EOF: then the source is
		 * watched for EPOLLIN and level-triggered epoll brings us back.
		 */
		if (round == PUMP_ROUNDS)
			return 0;
		if (half_pipe(h))
			n = splice(src, NULL, h->pipe[1], NULL, PIPE_CHUNK,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		else
			n = recv(src, h->buf, sizeof(h->buf), MSG_DONTWAIT);
		if (n == 0) {
			h->eof = true;
			continue;
		}
		if (n == -1)
			return errno == EAGAIN ? 0 : -errno;
		if (h->pipe[0] != -1)
			h->piped = (size_t)n;
		else
			h->len = (size_t)n;
	}
}

bool tcp_update(struct conn *c)
{
	struct up *u = c->up;
	bool ready = u && !u->connecting;
	uint32_t cev = 0, uev = 0;

	if (c->c2u.shut && c->u2c.shut) {
		conn_close(c, false);
		return false;
	}
	if (!c->c2u.eof && half_empty(&c->c2u))
		cev |= EPOLLIN;
	if (!half_empty(&c->u2c))
		cev |= EPOLLOUT;
	if (u && u->connecting) {
		uev = EPOLLOUT;
	} else if (u) {
		if (!c->u2c.eof && half_empty(&c->u2c))
			uev |= EPOLLIN;
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

void tcp_ready(struct conn *c)
{
	if (pump(c->cfd, c->up->fd, &c->c2u, true)) {
		conn_close(c, true);
		return;
	}
	tcp_update(c);
}

void tcp_start(struct conn *c)
{
	c->mode = CM_TCP;
	attempt_start(c);
}

void tcp_on_event(struct conn *c, bool client, uint32_t events)
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
		err = pump(c->cfd, -1, &c->c2u, false);
	} else if (events & (EPOLLIN | EPOLLHUP)) {
		if (client)
			err = pump(c->cfd, u->fd, &c->c2u, !u->connecting);
		else
			err = pump(u->fd, c->cfd, &c->u2c, true);
	}
	if (!err && u && (events & (EPOLLOUT | EPOLLHUP))) {
		if (client)
			err = pump(u->fd, c->cfd, &c->u2c, true);
		else
			err = pump(c->cfd, u->fd, &c->c2u, true);
	}
	if (err) {
		log_debug("proxy: relay pod=%u: %s, resetting", c->pod->id, strerror(-err));
		conn_close(c, true);
		return;
	}
	tcp_update(c);
}

/* ---------------------------------------------------------------- detection */

static void detect_done(struct conn *c, bool http)
{
	px_timer_del(c->px, &c->t_deadline);
	if (http) {
		c->px->stats.detected_http++;
		c->svc->ctr.detected_http++;
		http_start(c);
		return;
	}
	c->px->stats.detected_tcp++;
	if (c->svc)
		c->svc->ctr.detected_tcp++;
	tcp_start(c);
}

static void on_detect_timeout(struct loop_timer *n, uint64_t now)
{
	struct conn *c = (struct conn *)((char *)n - offsetof(struct conn, t_deadline));

	(void)now;
	/* The client waits for the server to speak first (SMTP, MySQL...): opaque. */
	c->px->stats.detect_timeouts++;
	detect_done(c, false);
}

static void detect_on_event(struct conn *c)
{
	struct half *h = &c->c2u;
	ssize_t n = recv(c->cfd, h->buf + h->len, sizeof(h->buf) - h->len, MSG_DONTWAIT);

	if (n == -1 && errno == EAGAIN)
		return;
	if (n == -1) {
		conn_close(c, true);
		return;
	}
	if (n == 0) {
		h->eof = true;
		if (!h->len) {
			/* Gone before saying anything: nothing to connect for. */
			conn_close(c, false);
			return;
		}
		detect_done(c, false);
		return;
	}
	h->len += (size_t)n;
	switch (http_detect(h->buf, h->len)) {
	case DETECT_HTTP:
		detect_done(c, true);
		return;
	case DETECT_OTHER:
		detect_done(c, false);
		return;
	case DETECT_MORE:
		return;
	}
}

static void conn_on_event(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct conn *c = ctx;

	(void)loop;
	(void)fd;
	c->last_io_ms = loop_now_ms(c->px->loop);
	switch (c->mode) {
	case CM_DETECT:
		detect_on_event(c);
		break;
	case CM_TCP:
		tcp_on_event(c, true, events);
		break;
	case CM_HTTP:
		http_on_client(c, events);
		break;
	}
}

void conn_start(struct proxy *px, struct pod *pod, int cfd, struct svc_state *svc,
		const struct addr *target)
{
	struct conn *c;
	int one = 1, err;

	/* Zero all but the two buffers: calloc() would write (and make resident)
	 * 32 KiB per connection, most of which an HTTP exchange never touches.
	 */
	c = malloc(sizeof(*c));
	if (!c) {
		sock_close_reset(cfd);
		px->stats.resets++;
		return;
	}
	memset(c, 0, offsetof(struct conn, c2u.buf));
	memset(&c->u2c, 0, offsetof(struct half, buf));
	c->c2u.pipe[0] = c->c2u.pipe[1] = -1;
	c->u2c.pipe[0] = c->u2c.pipe[1] = -1;
	(void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->px = px;
	c->pod = pod;
	c->cfd = cfd;
	c->svc = svc;
	c->pol = svc ? &svc->pol : &px->passthrough;
	if (target)
		c->target = *target;
	c->last_io_ms = c->start_ms = loop_now_ms(px->loop);
	c->next = pod->conns;
	if (pod->conns)
		pod->conns->prev = c;
	pod->conns = c;
	pod->conns_active++;
	pod->conns_total++;
	px->stats.active++;
	if (svc) {
		svc_ref(svc);
		svc->clients++;
		svc->ctr.conns++;
	}
	if (c->pol->idle_timeout_ms &&
	    px_timer_set(px, &c->t_idle, c->pol->idle_timeout_ms, on_idle)) {
		conn_close(c, true);
		return;
	}
	err = conn_watch(c, EPOLLIN);
	if (err) {
		conn_close(c, true);
		return;
	}
	if (!svc || c->pol->protocol == PROTO_TCP) {
		if (svc) {
			px->stats.detected_tcp++;
			svc->ctr.detected_tcp++;
		}
		tcp_start(c);
		return;
	}
	if (c->pol->protocol == PROTO_HTTP) {
		px->stats.detected_http++;
		svc->ctr.detected_http++;
		http_start(c);
		return;
	}
	c->mode = CM_DETECT;
	if (px_timer_set(px, &c->t_deadline, c->pol->detect_ms, on_detect_timeout))
		conn_close(c, true);
}
