// SPDX-License-Identifier: GPL-2.0-only
/* The relay of one proxied connection. Level-triggered epoll: each side is
 * watched for EPOLLIN only while its buffer toward the other side is empty, and
 * for EPOLLOUT only while it has bytes waiting, so a slow reader pushes back on
 * the fast writer instead of growing memory. A side whose both directions are
 * finished is dropped from epoll, since a fully closed socket reports EPOLLHUP
 * forever.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "loop.h"
#include "netns.h"
#include "pods.h"

/* Bound the syscalls one event may spend on one direction, so a bulk transfer
 * cannot starve the other connections of the loop; level-triggered epoll
 * brings us back for the rest.
 */
#define PUMP_ROUNDS 8

struct half {
	size_t len, off;	/* pending bytes are buf[off, off + len) */
	bool eof;		/* the source sent FIN */
	bool shut;		/* FIN passed on to the destination */
	char buf[CONN_BUF_SIZE];
};

struct conn {
	struct proxy *px;
	struct pod *pod;
	struct conn *prev, *next;	/* in pod->conns */
	int cfd, ufd;
	bool connecting;
	bool cwatch, uwatch;		/* registered in the loop */
	uint32_t cev, uev;		/* events currently asked for */
	int64_t timer;			/* connect timeout, 0 = none */
	struct half c2u, u2c;
};

void sock_close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	/* SO_LINGER with a zero timeout makes close() send RST and drop the queue. */
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void conn_unwatch(struct conn *c, bool client)
{
	if (client && c->cwatch) {
		(void)loop_del_fd(c->px->loop, c->cfd);
		c->cwatch = false;
	} else if (!client && c->uwatch) {
		(void)loop_del_fd(c->px->loop, c->ufd);
		c->uwatch = false;
	}
}

void conn_close(struct conn *c, bool reset)
{
	struct pod *pod = c->pod;

	if (c->timer)
		loop_del_timer(c->px->loop, c->timer);
	conn_unwatch(c, true);
	conn_unwatch(c, false);
	if (reset) {
		sock_close_reset(c->cfd);
		if (c->ufd != -1)
			sock_close_reset(c->ufd);
		c->px->stats.resets++;
	} else {
		close(c->cfd);
		if (c->ufd != -1)
			close(c->ufd);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		pod->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pod->conns_active--;
	c->px->stats.active--;
	free(c);
}

/* Move bytes from @src to @dst through @h. While @dst is still connecting only
 * read (the first request is then ready the moment the connect completes);
 * shutdown() on a SYN_SENT socket would abort the connect. Returns 0, or
 * -errno when either socket failed (reset, broken pipe): the caller resets the
 * connection.
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
			if (h->len)
				return 0;
			h->off = 0;
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
		/* Stop only with an empty buffer and no EOF pending: then the source
		 * is watched for EPOLLIN and level-triggered epoll brings us back.
		 */
		if (round == PUMP_ROUNDS)
			return 0;
		n = recv(src, h->buf, sizeof(h->buf), MSG_DONTWAIT);
		if (n == 0) {
			h->eof = true;
			continue;
		}
		if (n == -1)
			return errno == EAGAIN ? 0 : -errno;
		h->len = (size_t)n;
	}
}

static void conn_on_event(struct loop *loop, int fd, uint32_t events, void *ctx);

static int watch(struct conn *c, bool client, uint32_t ev)
{
	int fd = client ? c->cfd : c->ufd;
	bool *watched = client ? &c->cwatch : &c->uwatch;
	uint32_t *cur = client ? &c->cev : &c->uev;
	int err;

	if (!*watched) {
		err = loop_add_fd(c->px->loop, fd, ev, conn_on_event, c);
		if (err)
			return err;
		*watched = true;
	} else if (*cur != ev) {
		err = loop_mod_fd(c->px->loop, fd, ev);
		if (err)
			return err;
	}
	*cur = ev;
	return 0;
}

/* Recompute what each side waits for; close when both directions are done.
 * Returns false if the connection was closed.
 */
static bool conn_update(struct conn *c)
{
	uint32_t cev = 0, uev = 0;
	bool client_done, upstream_done;

	if (c->c2u.shut && c->u2c.shut) {
		conn_close(c, false);
		return false;
	}
	if (!c->c2u.eof && !c->c2u.len)
		cev |= EPOLLIN;
	if (c->u2c.len)
		cev |= EPOLLOUT;
	if (c->connecting) {
		uev = EPOLLOUT;
	} else {
		if (!c->u2c.eof && !c->u2c.len)
			uev |= EPOLLIN;
		if (c->c2u.len)
			uev |= EPOLLOUT;
	}
	/* A side we no longer read from nor write to is finished for good. */
	client_done = c->c2u.eof && c->u2c.shut;
	upstream_done = !c->connecting && c->u2c.eof && c->c2u.shut;
	if (client_done)
		conn_unwatch(c, true);
	else if (watch(c, true, cev))
		goto out_reset;
	if (upstream_done)
		conn_unwatch(c, false);
	else if (watch(c, false, uev))
		goto out_reset;
	return true;
out_reset:
	conn_close(c, true);
	return false;
}

static void conn_connected(struct conn *c)
{
	int so_err = 0;
	socklen_t len = sizeof(so_err);

	if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &so_err, &len) == -1)
		so_err = errno;
	if (so_err) {
		log_debug("proxy: upstream connect failed pod=%u: %s", c->pod->id, strerror(so_err));
		c->px->stats.connect_errors++;
		conn_close(c, true);
		return;
	}
	c->connecting = false;
	if (c->timer) {
		loop_del_timer(c->px->loop, c->timer);
		c->timer = 0;
	}
	if (pump(c->cfd, c->ufd, &c->c2u, true)) {
		conn_close(c, true);
		return;
	}
	conn_update(c);
}

static void conn_on_event(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct conn *c = ctx;
	bool client = fd == c->cfd;
	int err = 0;

	(void)loop;
	if (!client && c->connecting) {
		conn_connected(c);
		return;
	}
	if (events & EPOLLERR) {
		/* A pending socket error on an established TCP socket is a reset (or
		 * an ICMP-reported failure): pass it on rather than spin on it.
		 */
		log_debug("proxy: %s socket error pod=%u, resetting", client ? "client" : "upstream",
			  c->pod->id);
		conn_close(c, true);
		return;
	}
	/* EPOLLHUP/EPOLLERR: let recv()/send() report what happened. */
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (client)
			err = pump(c->cfd, c->ufd, &c->c2u, !c->connecting);
		else
			err = pump(c->ufd, c->cfd, &c->u2c, true);
	}
	if (!err && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
		if (client)
			err = pump(c->ufd, c->cfd, &c->u2c, true);
		else
			err = pump(c->cfd, c->ufd, &c->c2u, true);
	}
	if (err) {
		log_debug("proxy: relay pod=%u: %s, resetting", c->pod->id, strerror(-err));
		conn_close(c, true);
		return;
	}
	conn_update(c);
}

static void conn_on_timeout(struct loop *loop, void *ctx)
{
	struct conn *c = ctx;

	(void)loop;
	c->timer = 0;
	log_debug("proxy: upstream connect timed out pod=%u", c->pod->id);
	c->px->stats.connect_timeouts++;
	conn_close(c, true);
}

static int upstream_socket(struct proxy *px, struct pod *pod, const struct addr *target)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_to_sockaddr(target, &ss);
	int one = 1, fd, err;

	/* Made inside the pod's netns, so the source address is the pod's and the
	 * pod's own routes apply, exactly as if the application had connected.
	 */
	fd = netns_socket(pod->netns_fd, px->opts.home_netns_fd, target->family,
			  SOCK_STREAM | SOCK_NONBLOCK);
	if (fd < 0)
		return fd;
	/* The mark tells connect4/6 that this socket is ours: without it the
	 * upstream connect would be redirected back into the proxy.
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &px->opts.mark, sizeof(px->opts.mark)) == -1)
		goto out_errno;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, len) == -1 && errno != EINPROGRESS)
		goto out_errno;
	return fd;
out_errno:
	err = -errno;
	close(fd);
	return err;
}

void conn_start(struct proxy *px, struct pod *pod, int cfd, const struct addr *target)
{
	struct conn *c;
	int one = 1, fd;

	c = calloc(1, sizeof(*c));
	if (!c) {
		sock_close_reset(cfd);
		return;
	}
	fd = upstream_socket(px, pod, target);
	if (fd < 0) {
		char buf[ADDR_STRLEN];

		log_debug("proxy: connect pod=%u to %s: %s", pod->id,
			  addr_fmt(target, buf, sizeof(buf)), strerror(-fd));
		px->stats.connect_errors++;
		sock_close_reset(cfd);
		free(c);
		return;
	}
	(void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->px = px;
	c->pod = pod;
	c->cfd = cfd;
	c->ufd = fd;
	c->connecting = true;
	c->next = pod->conns;
	if (pod->conns)
		pod->conns->prev = c;
	pod->conns = c;
	pod->conns_active++;
	pod->conns_total++;
	px->stats.active++;
	c->timer = loop_add_timer(px->loop, px->opts.connect_timeout_ms, conn_on_timeout, c);
	if (c->timer < 0) {
		c->timer = 0;
		conn_close(c, true);
		return;
	}
	conn_update(c);
}
