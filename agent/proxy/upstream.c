// SPDX-License-Identifier: GPL-2.0-only
/* Upstream connections (struct up), the lowest layer of the proxy: sockets
 * made inside the pod's netns with the agent's mark (from per-pod pools the
 * socket broker fills) and, inbound, the client's address as their source,
 * the endpoint's accounting of its connections, and the per-endpoint pool of
 * idle HTTP upstreams, each usable only by the pod whose netns it was made in
 * (its source address is that pod's). Events on an attached upstream go to
 * its connection's relay (c->ops); which endpoint to connect to, timeouts and
 * retries are attempt.c's.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "proxy/broker.h"
#include "proxy/conn.h"
#include "proxy/mtls.h"

static void up_on_event(struct loop *loop, int fd, uint32_t events, void *ctx);

int up_watch(struct up *u, uint32_t ev)
{
	/* While connecting, TLS has nothing to say yet. */
	if (u->tls && !u->connecting)
		ev = tls_watch_ev(u->tls, ev, up_on_event, u);
	return loop_watch(u->px->loop, &u->w, u->fd, ev, up_on_event, u);
}

static void up_free(struct up *u)
{
	struct proxy *px = u->px;
	struct ep_state *e = u->ep;

	px_timer_del(px, &u->t_conn);
	/* Closed right after, never duplicated: no EPOLL_CTL_DEL needed. */
	if (u->w.on)
		loop_forget_fd(px->loop, u->fd);
	u->w = (struct loop_watch){ 0 };
	tls_free(u->tls);
	close(u->fd);
	ctr_dec(&px->stats.upstream_active);
	if (e) {
		if (u->connecting)
			e->svc->pending--;
		svc_pod_del(e->svc, u->pod);
		e->svc->conns--;
		e->conns--;
		ep_unref(&px->st, e);
	}
	free(u);
}

static void attach(struct conn *c, struct up *u)
{
	c->up = u;
	u->c = c;
	if (u->ep)
		u->ep->active++;
}

/* ---------------------------------------------------------------- pool */

static void pool_unlink(struct up *u)
{
	struct ep_state *e = u->ep;

	if (u->pool_prev)
		u->pool_prev->pool_next = u->pool_next;
	else
		e->idle = u->pool_next;
	if (u->pool_next)
		u->pool_next->pool_prev = u->pool_prev;
	u->pool_prev = u->pool_next = NULL;
	e->n_idle--;
	px_timer_del(u->px, &u->t_conn);
}

static void on_pool_idle(struct loop_timer *n, uint64_t now)
{
	struct up *u = (struct up *)((char *)n - offsetof(struct up, t_conn));

	(void)now;
	pool_unlink(u);
	up_free(u);
}

/* Park @u, detached, in its endpoint's pool. False if it cannot be kept. */
static bool pool_put(struct up *u)
{
	struct ep_state *e = u->ep;
	uint64_t ms = POOL_IDLE_MS;

	if (!e || !e->live || e->n_idle >= POOL_IDLE_MAX || u->connecting)
		return false;
	if (e->svc->pol.idle_timeout_ms && e->svc->pol.idle_timeout_ms < ms)
		ms = e->svc->pol.idle_timeout_ms;
	/* Readable while idle means the server closed it (or misbehaves): drop it then. */
	if (up_watch(u, EPOLLIN) || px_timer_set(u->px, &u->t_conn, ms, on_pool_idle))
		return false;
	u->reused = false;
	u->pool_prev = NULL;
	u->pool_next = e->idle;
	if (e->idle)
		e->idle->pool_prev = u;
	e->idle = u;
	e->n_idle++;
	return true;
}

struct up *pool_take(struct conn *c, struct ep_state *e)
{
	for (struct up *u = e->idle; u; u = u->pool_next) {
		if (u->pod == c->pod) {
			pool_unlink(u);
			attach(c, u);
			u->reused = true;
			return u;
		}
	}
	return NULL;
}

bool pool_evict(struct svc_state *s)
{
	for (struct ep_state *e = s->all; e; e = e->next) {
		if (e->idle) {
			struct up *u = e->idle;

			pool_unlink(u);
			up_free(u);
			return true;
		}
	}
	return false;
}

void pool_flush_svc(struct proxy *px, struct svc_state *s, const struct px_pod *pod, bool all)
{
	struct ep_state *e, *next_e;

	for (e = s->all; e; e = next_e) {
		struct up *u, *next_u;

		next_e = e->next;
		ep_ref(e);
		for (u = e->idle; u; u = next_u) {
			next_u = u->pool_next;
			if (all || (pod ? u->pod == pod : !e->live)) {
				pool_unlink(u);
				up_free(u);
			}
		}
		ep_unref(&px->st, e);
	}
}

void pool_flush(struct proxy *px, const struct px_pod *pod, bool all)
{
	struct svc_state *s, *next_s;

	for (s = px->st.svcs; s; s = next_s) {
		next_s = s->next;
		/* The next endpoint holds a reference on @s, so @s outlives this
		 * walk unless @e was its last state: hold it.
		 */
		svc_ref(s);
		pool_flush_svc(px, s, pod, all);
		next_s = s->next;
		svc_unref(&px->st, s);
	}
}

void up_release(struct conn *c, bool reuse)
{
	struct up *u = c->up;

	c->up = NULL;
	u->c = NULL;
	if (u->ep)
		u->ep->active--;
	if (reuse && pool_put(u))
		return;
	up_free(u);
}

/* ---------------------------------------------------------------- connect */

/* A worker's sockets come from per-pod, per-kind pools (struct sock_pool in
 * its struct px_pod), filled by the broker BROKER_BATCH at a time: asked
 * ahead when a pool runs low, so a connect normally takes a socket with no
 * system call and no lock, and asked synchronously only when a pool is
 * empty (a pod's first connections of a kind). Without a broker (the
 * sandbox off) the worker fills its pools itself with the same code; a
 * setns() pair makes a whole batch either way, a fifth of the cost of an
 * upstream socket when paid per connection.
 */

/* Ask for more when a pool holds this many or fewer. */
#define SOCK_POOL_LOW 2

void px_pod_link(struct px_pod *pod)
{
	struct proxy *px = pod->px;

	for (int k = 0; k < SK_KINDS; k++)
		pod->pools[k] = (struct sock_pool){ 0 };
	pod->next_pod = px->pods;
	px->pods = pod;
}

void px_pod_unlink(struct px_pod *pod)
{
	struct px_pod **pp;

	for (pp = &pod->px->pods; *pp; pp = &(*pp)->next_pod) {
		if (*pp == pod) {
			*pp = pod->next_pod;
			break;
		}
	}
	pod->next_pod = NULL;
	sock_pools_flush(pod);
}

void sock_pools_flush(struct px_pod *pod)
{
	for (int k = 0; k < SK_KINDS; k++) {
		struct sock_pool *sp = &pod->pools[k];

		while (sp->n)
			close(sp->fd[--sp->n]);
	}
}

/* File a broker reply into the pool it was for; the fds of a pod that left
 * meanwhile are closed. Returns the pool, or NULL.
 */
static struct sock_pool *pool_fill(struct proxy *px, struct broker_reply *r)
{
	struct px_pod *pod;
	struct sock_pool *sp;
	int i = 0;

	if (r->fastpath)
		return NULL;	/* a fast path answer given up on (up_broker_fastpath()) */
	for (pod = px->pods; pod && pod->key != r->key; pod = pod->next_pod)
		;
	if (!pod) {
		while (r->n)
			close(r->fds[--r->n]);
		return NULL;
	}
	sp = &pod->pools[r->kind];
	sp->asked = false;
	if (r->err)
		log_debug("proxy: pod=%u: the broker made no socket: %s", pod->id,
			  strerror(-r->err));
	for (; i < r->n && sp->n < SOCK_POOL_MAX; i++)
		sp->fd[sp->n++] = r->fds[i];
	for (; i < r->n; i++)
		close(r->fds[i]);
	return sp;
}

static void on_broker(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct proxy *px = ctx;
	struct broker_reply r;
	int err;

	(void)events;
	while (!(err = broker_recv(fd, false, &r)))
		pool_fill(px, &r);
	if (err != -EAGAIN) {
		log_err("proxy: the socket broker's channel failed: %s", strerror(-err));
		loop_del_fd(loop, fd);
	}
}

int proxy_set_broker(struct proxy *px, int chan)
{
	int err = loop_add_fd(px->loop, chan, EPOLLIN, on_broker, px);

	if (!err)
		px->brk_chan = chan;
	return err;
}

/* @sp is empty: fill it now. 0 or -errno. */
static int pool_fill_sync(struct proxy *px, struct px_pod *pod, enum sock_kind kind)
{
	struct sock_pool *sp = &pod->pools[kind];
	struct broker_reply r;
	int err, n;

	if (px->brk_chan < 0) {
		struct broker_opts bo = {
			.home_netns_fd = px->opts.home_netns_fd,
			.mark = px->opts.mark,
			.inbound_mark = px->opts.inbound_mark,
		};

		n = broker_make(&bo, pod->netns_fd, kind, sp->fd, BROKER_BATCH);
		if (n < 0)
			return n;
		sp->n = n;
		return 0;
	}
	/* A request already on its way (asked when the pool ran low) is
	 * waited for rather than doubled.
	 */
	if (!sp->asked) {
		err = broker_ask(px->brk_chan, pod->key, kind, BROKER_BATCH, true);
		if (err)
			return err;
		sp->asked = true;
	}
	ctr_inc(&px->stats.broker_waits);
	for (;;) {
		err = broker_recv(px->brk_chan, true, &r);
		if (err) {
			sp->asked = false;	/* lost or late: ask anew next time */
			return err;
		}
		/* Replies to other pools' earlier requests come first. */
		if (pool_fill(px, &r) == sp)
			return sp->n ? 0 : (r.err ? r.err : -EPROTO);
	}
}

int up_broker_fastpath(struct proxy *px, int cfd, int ufd, uint32_t slot)
{
	struct broker_reply r;
	int err = broker_ask_fastpath(px->brk_chan, cfd, ufd, slot);

	if (err)
		return err;
	for (;;) {
		err = broker_recv(px->brk_chan, true, &r);
		if (err)
			return err;
		if (r.fastpath && r.key == slot)
			return r.err;
		/* Replies to earlier socket requests come first. */
		pool_fill(px, &r);
	}
}

/* A fresh socket of @kind in @pod's netns, with its mark (and transparent
 * flag), from the pod's pool. The fd or -errno.
 */
static int pod_socket(struct proxy *px, struct px_pod *pod, enum sock_kind kind)
{
	struct sock_pool *sp = &pod->pools[kind];
	int err;

	if (!sp->n) {
		err = pool_fill_sync(px, pod, kind);
		/* No socket is the agent's trouble, never the endpoint's, which
		 * was not tried: the broker's silence, a pod it no longer knows
		 * or a reply whose fds did not fit all read as a local error
		 * (conn.c's err_is_local()).
		 */
		if (err && err != -EMFILE && err != -ENFILE && err != -ENOMEM) {
			log_debug("proxy: pod=%u: no upstream socket: %s", pod->id, strerror(-err));
			err = -ENOBUFS;
		}
		if (err)
			return err;
	}
	if (sp->n - 1 <= SOCK_POOL_LOW && px->brk_chan >= 0 && !sp->asked &&
	    !broker_ask(px->brk_chan, pod->key, kind, BROKER_BATCH, false))
		sp->asked = true;
	return sp->fd[--sp->n];
}

/* The ports the inbound side's connections to applications leave from: above
 * Linux's default ephemeral range (32768-60999). The pod's netns holds the
 * application's sockets of those connections, keyed by the client's address
 * and this port; a port a real client could pick for its own connection to
 * the pod would let that client's SYN meet the agent's connection (or its
 * TIME_WAIT) instead of the listener. Clients on Linux with the default range
 * never pick these. (An explicit port also keeps the choice off the kernel's
 * per-netns ephemeral counters the application's own sockets use.)
 */
#define INBOUND_SRC_PORT_LO 61000
#define INBOUND_SRC_PORT_HI 65535
#define INBOUND_SRC_TRIES 64	/* ports held (open or TIME_WAIT) skipped per connect */

/* Make @fd's connection leave from @peer's address, on a port of the range
 * above, so the application sees the client's own address. @fd came from the
 * broker with IP_TRANSPARENT set, which lets it bind an address that is not
 * the pod's with no capability of the worker's; the application's replies
 * to it come back through the return path (docs/inbound.md).
 * 0 or -errno (-EADDRINUSE: every port tried is held); on failure @fd is
 * still unbound.
 */
static int transparent_source(struct proxy *px, int fd, const struct addr *peer)
{
	const uint32_t span = INBOUND_SRC_PORT_HI - INBOUND_SRC_PORT_LO + 1;
	struct addr src = *peer;
	struct sockaddr_storage ss;
	socklen_t len;

	/* One socket per (client address, port) at a time: bind() says when a
	 * port is taken, by another connection or a TIME_WAIT, and the next is
	 * tried. A cursor per worker spreads the ports in use.
	 */
	for (int i = 0; i < INBOUND_SRC_TRIES; i++) {
		src.port = (uint16_t)(INBOUND_SRC_PORT_LO + px->in_src_cursor++ % span);
		len = addr_to_sockaddr(&src, &ss);
		if (!bind(fd, (struct sockaddr *)&ss, len))
			return 0;
		if (errno != EADDRINUSE)
			return -errno;
	}
	return -EADDRINUSE;
}

/* A socket of @c's pod for @target, with the mark of its direction and, for
 * an inbound connection, the client's address as its source when it can be
 * had. The fd or -errno.
 */
static int upstream_socket(struct proxy *px, const struct conn *c, const struct addr *target)
{
	struct px_pod *pod = c->pod;
	bool v4 = target->family == AF_INET;
	int fd, err;

	/* Made inside the pod's netns, so the source address is the pod's and the
	 * pod's own routes apply, exactly as if the application had connected.
	 * The mark (set by the broker) tells capture that this socket is ours:
	 * without it the upstream connect would be redirected back into the
	 * proxy. Inbound, the application's accepted socket inherits it
	 * (tcp_fwmark_accept), which routes its replies to the client back to us.
	 */
	if (!c->in)
		return pod_socket(px, pod, v4 ? SK_OUT4 : SK_OUT6);
	fd = pod_socket(px, pod, v4 ? SK_IN4 : SK_IN6);
	if (fd < 0)
		return fd;
	if (c->peer.family != target->family) {
		/* Cannot happen with IPV6_V6ONLY listeners; counted if it does. */
		log_debug("proxy: inbound pod=%u: client and destination families differ, "
			  "connecting from the pod's address", pod->id);
		ctr_inc(&px->stats.inbound_transparent_fallbacks);
		return fd;
	}
	err = transparent_source(px, fd, &c->peer);
	if (err) {
		char buf[ADDR_STRLEN];

		/* Still unbound: connect() gives it the pod's own address, which
		 * the application will see.
		 */
		log_debug("proxy: inbound pod=%u: cannot connect from client %s (%s), "
			  "connecting from the pod's address",
			  pod->id, addr_fmt(&c->peer, buf, sizeof(buf)), strerror(-err));
		ctr_inc(&px->stats.inbound_transparent_fallbacks);
	}
	return fd;
}

static int upstream_connect(int fd, const struct addr *target)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_to_sockaddr(target, &ss);
	int one = 1, err;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, len) == -1 && errno != EINPROGRESS) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int up_connect(struct conn *c, struct ep_state *e, const struct addr *target)
{
	struct proxy *px = c->px;
	struct up *u = calloc(1, sizeof(*u));
	struct tls_link *tls = NULL;
	int fd;

	if (!u)
		return -ENOMEM;
	if (e && svc_pod_add(e->svc, c->pod)) {
		free(u);
		return -ENOMEM;
	}
	if (e && e->meshed && px->mtls && !c->in) {
		/* A meshed pod: mTLS to its mTLS port (tls_relay.c); the relay
		 * reads and writes the socket through the link's SSL.
		 */
		struct addr tls_port = *target;

		tls_port.port = MTLS_PORT;
		fd = tls_pod_has_svid(c->pod) ? upstream_socket(px, c, &tls_port) : -EKEYREJECTED;
		if (fd >= 0)
			fd = upstream_connect(fd, &tls_port);
		if (fd >= 0) {
			struct spiffe_id expect = { 0 };
			int err;

			memcpy(expect.ns, e->peer.ns, sizeof(expect.ns));
			memcpy(expect.sa, e->peer.sa, sizeof(expect.sa));
			err = tls_dial(c->pod, fd, &tls_port, &expect, target->port, &tls);
			if (err)
				fd = err;
		}
	} else {
		fd = upstream_socket(px, c, target);
		if (fd >= 0)
			fd = upstream_connect(fd, target);
	}
	if (fd < 0) {
		if (e)
			svc_pod_del(e->svc, c->pod);
		free(u);
		return fd;
	}
	u->px = px;
	u->fd = fd;
	u->tls = tls;
	u->pod = c->pod;
	u->ep = e;
	u->connecting = true;
	u->connect_us = lat_now_us();
	ctr_inc(&px->stats.upstream_active);
	if (e) {
		ep_ref(e);
		e->conns++;
		e->ctr.conns++;
		e->svc->conns++;
		e->svc->pending++;
	}
	attach(c, u);
	return 0;
}

int up_adopt(struct conn *c, struct ep_state *e, int fd)
{
	struct proxy *px = c->px;
	struct up *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	if (e && svc_pod_add(e->svc, c->pod)) {
		free(u);
		return -ENOMEM;
	}
	u->px = px;
	u->fd = fd;
	u->pod = c->pod;
	u->ep = e;
	ctr_inc(&px->stats.upstream_active);
	if (e) {
		ep_ref(e);
		e->conns++;
		e->svc->conns++;
	}
	attach(c, u);
	return 0;
}

static void up_on_event(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct up *u = ctx;
	struct conn *c = u->c;

	(void)fd;
	if (!c) {
		/* Idle in the pool: the server closed it, or sent what nobody asked for. */
		pool_unlink(u);
		up_free(u);
		return;
	}
	c->last_io_ms = loop_now_ms(loop);
	if (u->tls && !u->connecting) {
		/* Handshake and preamble first; a failure reaches the relay as a
		 * reset on its next read or write, which EPOLLIN makes it try.
		 */
		tls_service(u->tls);
		events |= EPOLLIN;
	}
	c->ops->on_upstream(c, events);
}
