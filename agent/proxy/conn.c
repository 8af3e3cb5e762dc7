// SPDX-License-Identifier: GPL-2.0-only
/* Client connections: their life from accept to close, the idle timeout, the
 * proxy's timer queue, and protocol detection, which hands each connection to
 * a relay (struct relay_ops, from px->relays[]) that serves it from then on.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "model/catalogue.h"
#include "log.h"
#include "loop.h"
#include "proxy/conn.h"

void sock_close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	/* SO_LINGER with a zero timeout makes close() send RST and drop the queue. */
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* ---------------------------------------------------------------- limits */

uint32_t px_pod_limit(const struct proxy *px)
{
	uint32_t share;

	if (px->opts.pod_max_conns)
		return px->opts.pod_max_conns;
	/* Every pod is sure of its share whatever the others do; a pod alone
	 * on the node may use it all.
	 */
	share = px->opts.max_conns / (px->n_pods ? px->n_pods : 1);
	if (share < PX_POD_CONNS_FLOOR)
		share = PX_POD_CONNS_FLOOR;
	return share < px->opts.max_conns ? share : px->opts.max_conns;
}

bool conn_admit(struct proxy *px, struct px_pod *pod)
{
	/* The pod's own limit first: a pod over its share is the one refused,
	 * and it is refused before the node's limit is in sight.
	 */
	if (pod->conns_out >= px_pod_limit(px)) {
		ctr_inc(&px->stats.over_pod_limit);
		pod->refused++;
		return false;
	}
	if (px->stats.active >= px->opts.max_conns) {
		ctr_inc(&px->stats.over_limit);
		pod->refused++;
		return false;
	}
	return true;
}

bool err_is_local(int err)
{
	switch (err) {
	case EMFILE:		/* this process's descriptors */
	case ENFILE:		/* the system's */
	case ENOMEM:
	case ENOBUFS:
	case EADDRNOTAVAIL:	/* no local port left for the 4-tuple */
		return true;
	default:
		return false;
	}
}

/* ---------------------------------------------------------------- lifecycle */

static void conn_on_event(struct loop *loop, int fd, uint32_t events, void *ctx);

bool half_buf(struct proxy *px, struct half *h)
{
	if (h->buf)
		return true;
	if (px->n_buf_spare)
		h->buf = px->buf_spare[--px->n_buf_spare];
	else
		h->buf = malloc(CONN_BUF_SIZE);	/* not zeroed: pages stay untouched until used */
	return h->buf != NULL;
}

static void buf_free(struct proxy *px, struct half *h)
{
	if (!h->buf)
		return;
	if (px->n_buf_spare < BUF_SPARE)
		px->buf_spare[px->n_buf_spare++] = h->buf;
	else
		free(h->buf);
	h->buf = NULL;
	h->len = h->off = 0;
}

void half_buf_put(struct proxy *px, struct half *h)
{
	if (!h->len)
		buf_free(px, h);
}

void px_buf_flush(struct proxy *px)
{
	while (px->n_buf_spare)
		free(px->buf_spare[--px->n_buf_spare]);
}

void half_done(struct proxy *px, struct half *h)
{
	if (h->piped)
		pipe_drop(&px->pipes, h->pipe);
	else
		pipe_give(&px->pipes, h->pipe);
	h->piped = 0;
	buf_free(px, h);
}

void conn_relay(struct conn *c, const struct relay_ops *ops)
{
	c->ops = ops;
	ops->start(c);
}

int conn_watch(struct conn *c, uint32_t ev)
{
	if (c->tls)
		ev = tls_watch_ev(c->tls, ev, conn_on_event, c);
	return loop_watch(c->px->loop, &c->cw, c->cfd, ev, conn_on_event, c);
}

void conn_close(struct conn *c, bool reset)
{
	struct proxy *px = c->px;
	struct px_pod *pod = c->pod;

	px_timer_del(px, &c->t_idle);
	px_timer_del(px, &c->t_deadline);
	px_timer_del(px, &c->t_retry);
	px_timer_del(px, &c->t_head);
	px_timer_del(px, &c->t_fin);
	fp_release(c);
	if (c->up) {
		if (reset) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };

			if (c->up->tls)
				tls_abandon(c->up->tls);

			(void)setsockopt(c->up->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		up_release(c, false);
	}
	if (c->ops && c->ops->abandon)
		c->ops->abandon(c);
	if (c->in) {
		c->in->ctr.conns_active--;
		c->in->ctr.bytes_in += c->c2u.bytes;
		c->in->ctr.bytes_out += c->u2c.bytes;
		observe_done(c);
	}
	half_done(px, &c->c2u);
	half_done(px, &c->u2c);
	/* Closed just below, never duplicated: no EPOLL_CTL_DEL needed. */
	if (c->cw.on)
		loop_forget_fd(px->loop, c->cfd);
	c->cw = (struct loop_watch){ 0 };
	if (c->tls) {
		if (reset)
			tls_abandon(c->tls);
		tls_free(c->tls);
		c->tls = NULL;
	}
	if (reset) {
		sock_close_reset(c->cfd);
		ctr_inc(&px->stats.resets);
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
	if (!c->in)
		pod->conns_out--;
	ctr_dec(&px->stats.active);
	free(c);
}

void conn_forget(struct conn *c)
{
	(void)conn_watch(c, 0);
	if (c->up)
		(void)up_watch(c->up, 0);
	conn_close(c, false);
}

static void on_idle(struct loop_timer *n, uint64_t now)
{
	struct conn *c = (struct conn *)((char *)n - offsetof(struct conn, t_idle));
	uint64_t idle = c->pol->idle_timeout_ms;

	if (!idle)
		return;		/* a reload turned the idle timeout off */
	/* Bytes the kernel moves wake nobody: the counters say there were some. */
	if (fp_moved(c))
		c->last_io_ms = now;
	/* The deadline moves lazily: activity only stamps last_io_ms. */
	if (now < c->last_io_ms + idle) {
		if (px_timer_set(c->px, &c->t_idle, c->last_io_ms + idle - now, on_idle))
			conn_close(c, true);
		return;
	}
	log_debug("proxy: connection pod=%u idle for %llu ms, closing", c->pod->id,
		  (unsigned long long)idle);
	ctr_inc(&c->px->stats.idle_timeouts);
	conn_close(c, false);
}

/* ---------------------------------------------------------------- request head deadline */

/* The client is in the middle of an HTTP request head: bytes of it arrived,
 * the head is not complete.
 */
static bool head_pending(const struct conn *c)
{
	return c->ops && c->ops->kind == RELAY_HTTP && !c->h.head_done && c->c2u.len;
}

static void on_head_timeout(struct loop_timer *n, uint64_t now)
{
	static const char reply[] = "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n"
				    "content-length: 0\r\nx-weft-error: header-timeout\r\n\r\n";
	struct conn *c = (struct conn *)((char *)n - offsetof(struct conn, t_head));

	(void)now;
	if (!head_pending(c))
		return;		/* between requests: the idle timeout's business */
	if (c->h.n_requests != c->head_req) {
		/* Armed for a request that completed; this one started since. */
		c->head_req = c->h.n_requests;
		if (px_timer_set(c->px, &c->t_head, c->pol->header_timeout_ms, on_head_timeout))
			conn_close(c, true);
		return;
	}
	log_debug("proxy: connection pod=%u: request head not complete after %u ms, closing",
		  c->pod->id, c->pol->header_timeout_ms);
	ctr_inc(&c->px->stats.header_timeouts);
	/* Nothing of a response is queued while a head is read: the 408 goes
	 * out whole or not at all, best effort, and the connection closes.
	 */
	if (!c->up && half_empty(&c->u2c))
		(void)sock_send(c->cfd, c->tls, reply, sizeof(reply) - 1);
	conn_close(c, false);
}

/* Bytes of an HTTP request head may arrive: make sure a deadline bounds the
 * head, from (about) its first byte. A client that trickles a head one byte
 * at a time keeps the idle timeout away but not this one. False if @c was
 * closed (no memory for the timer).
 */
static bool head_watch(struct conn *c)
{
	if (!c->pol->header_timeout_ms || loop_timer_armed(&c->t_head) || c->h.head_done)
		return true;
	c->head_req = c->h.n_requests;
	if (px_timer_set(c->px, &c->t_head, c->pol->header_timeout_ms, on_head_timeout)) {
		conn_close(c, true);
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------- detection */

static void detect_done(struct conn *c, const struct relay_ops *ops)
{
	px_timer_del(c->px, &c->t_deadline);
	if (ops->kind == RELAY_HTTP) {
		ctr_inc(&c->px->stats.detected_http);
		c->svc->ctr.detected_http++;
		if (!head_watch(c))
			return;
	} else {
		ctr_inc(&c->px->stats.detected_tcp);
		if (c->svc)
			c->svc->ctr.detected_tcp++;
	}
	conn_relay(c, ops);
}

static void on_detect_timeout(struct loop_timer *n, uint64_t now)
{
	struct conn *c = (struct conn *)((char *)n - offsetof(struct conn, t_deadline));

	(void)now;
	/* The client waits for the server to speak first (SMTP, MySQL...): opaque. */
	ctr_inc(&c->px->stats.detect_timeouts);
	detect_done(c, c->px->relays[RELAY_TCP]);
}

static void detect_on_event(struct conn *c)
{
	struct half *h = &c->c2u;
	bool more = false;
	ssize_t n;

	if (!half_buf(c->px, h)) {
		conn_close(c, true);
		return;
	}
	n = sock_recv(c->cfd, c->tls, h->buf + h->len, CONN_BUF_SIZE - h->len);
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
		detect_done(c, c->px->relays[RELAY_TCP]);
		return;
	}
	h->len += (size_t)n;
	/* The relays a client's first bytes can select; the others are declared. */
	for (size_t i = 0; i < RELAY_KINDS; i++) {
		const struct relay_ops *ops = c->px->relays[i];

		if (!ops->detect)
			continue;
		switch (ops->detect(h->buf, h->len)) {
		case DETECT_YES:
			detect_done(c, ops);
			return;
		case DETECT_MORE:
			more = true;
			break;
		case DETECT_NO:
			break;
		}
	}
	if (!more)
		detect_done(c, c->px->relays[RELAY_TCP]);
}

static void conn_on_event(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct conn *c = ctx;

	(void)loop;
	(void)fd;
	c->last_io_ms = loop_now_ms(c->px->loop);
	if (c->ops && c->ops->kind == RELAY_HTTP && !head_watch(c))
		return;
	if (c->ops)
		c->ops->on_client(c, events);
	else
		detect_on_event(c);
}

struct conn *conn_new(struct proxy *px, struct px_pod *pod, int cfd, struct svc_state *svc,
		      struct in_port *in)
{
	struct conn *c;

	/* Buffers come with the first bytes (half_buf()): an idle connection
	 * costs this struct.
	 */
	c = calloc(1, sizeof(*c));
	if (!c) {
		sock_close_reset(cfd);
		ctr_inc(&px->stats.resets);
		return NULL;
	}
	c->c2u.pipe[0] = c->c2u.pipe[1] = -1;
	c->u2c.pipe[0] = c->u2c.pipe[1] = -1;
	/* TCP_NODELAY comes from the listener (px_listener()): no setsockopt() here. */
	c->px = px;
	c->pod = pod;
	c->cfd = cfd;
	c->svc = svc;
	c->in = in;
	c->pol = svc ? &svc->pol : &px->passthrough;
	c->last_io_ms = c->start_ms = loop_now_ms(px->loop);
	c->next = pod->conns;
	if (pod->conns)
		pod->conns->prev = c;
	pod->conns = c;
	pod->conns_active++;
	pod->conns_total++;
	if (in) {
		in->ctr.conns_total++;
		in->ctr.conns_active++;
	} else {
		pod->conns_out++;
	}
	ctr_inc(&px->stats.active);
	if (svc) {
		svc_ref(svc);
		svc->clients++;
		svc->ctr.conns++;
	}
	if ((c->pol->idle_timeout_ms &&
	     px_timer_set(px, &c->t_idle, c->pol->idle_timeout_ms, on_idle)) ||
	    conn_watch(c, EPOLLIN)) {
		conn_close(c, true);
		return NULL;
	}
	return c;
}

void conn_start(struct proxy *px, struct px_pod *pod, int cfd, struct svc_state *svc,
		const struct addr *target)
{
	struct conn *c = conn_new(px, pod, cfd, svc, NULL);

	if (!c)
		return;
	if (target)
		c->target = *target;
	if (!svc || c->pol->protocol == PROTO_TCP) {
		if (svc) {
			ctr_inc(&px->stats.detected_tcp);
			svc->ctr.detected_tcp++;
		}
		conn_relay(c, px->relays[RELAY_TCP]);
		return;
	}
	if (c->pol->protocol == PROTO_HTTP) {
		ctr_inc(&px->stats.detected_http);
		svc->ctr.detected_http++;
		if (!head_watch(c))
			return;
		conn_relay(c, px->relays[RELAY_HTTP]);
		return;
	}
	if (px_timer_set(px, &c->t_deadline, c->pol->detect_ms, on_detect_timeout)) {
		conn_close(c, true);
		return;
	}
	/* A client that speaks first has often spoken by the time it is
	 * accepted: read now rather than after a pass of the loop (one
	 * epoll_wait() fewer per connection; EAGAIN costs one recv()).
	 */
	detect_on_event(c);
}

void conn_start_inbound(struct proxy *px, struct px_pod *pod, int cfd, struct tls_link *tls,
			struct in_port *port, const struct addr *dst, const struct addr *peer)
{
	struct conn *c = conn_new(px, pod, cfd, NULL, port);

	if (!c) {
		tls_free(tls);
		return;
	}
	c->tls = tls;
	c->target = *dst;
	c->peer = *peer;
	/* No detection window: a server-first protocol (a banner, a greeting)
	 * must not wait for a client that waits for it. Relay at once and
	 * look at the bytes on the way instead.
	 */
	observe_start(c);
	conn_relay(c, px->relays[RELAY_TCP]);
}
