// SPDX-License-Identifier: GPL-2.0-only
/* HTTP/1.x on a client connection, request by request, with http-parser:
 * each request is balanced on its own and sent on a pooled or new upstream.
 * A request that fits the buffer whole is held until its response starts, so
 * it can be retried (idempotent methods, on a reset or a 502/503/504) while no
 * response byte has reached the client; a larger one, or one that expects
 * 100-continue, streams and is never retried. Upgrades and CONNECT become L4
 * tunnels. The response is parsed to find its status and its end, so the
 * upstream can be pooled and the next (possibly pipelined) request served.
 * Both directions are framed by framing.c before http-parser sees a byte:
 * a request it refuses is answered 400 and never forwarded, a response it
 * refuses becomes a 502 (or a reset) and its upstream is closed. Hop-by-hop
 * fields stay on their hop (hop.c): the client's connection and the pooled
 * upstream one each live as their own peer asks.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "loop.h"
#include "proxy/conn.h"
#include "proxy/hop.h"

static const char *const methods[] = {
	"GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "TRACE ", "CONNECT ",
};

static enum detect http_detect(const char *buf, size_t len)
{
	bool more = false;

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		size_t m = strlen(methods[i]), k = len < m ? len : m;

		if (memcmp(buf, methods[i], k))
			continue;
		if (len >= m)
			return DETECT_YES;
		more = true;
	}
	return more ? DETECT_MORE : DETECT_NO;
}

/* ---------------------------------------------------------------- parsers */

static int req_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_txn *h = &((struct conn *)p->data)->h;

	if (h->hdr_value) {
		h->hdr_len = 0;
		h->hdr_value = false;
	}
	for (size_t i = 0; i < len; i++, h->hdr_len++)
		if (h->hdr_len < sizeof(h->hdr))
			h->hdr[h->hdr_len] = (char)tolower((unsigned char)at[i]);
	return 0;
}

static int req_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_txn *h = &((struct conn *)p->data)->h;

	(void)at;
	(void)len;
	h->hdr_value = true;
	/* 100-continue is the only expectation HTTP defines (RFC 9110 10.1.1). */
	if (h->hdr_len == 6 && !memcmp(h->hdr, "expect", 6))
		h->expect_continue = true;
	return 0;
}

static int req_headers_complete(http_parser *p)
{
	struct http_txn *h = &((struct conn *)p->data)->h;

	h->head_done = true;
	h->upgrade = p->upgrade;
	h->keep_alive = http_should_keep_alive(p);
	h->is_head = p->method == HTTP_HEAD;
	/* RFC 9110 9.2.2, less TRACE, which nobody should need retried. */
	h->idempotent = p->method == HTTP_GET || p->method == HTTP_HEAD ||
			p->method == HTTP_OPTIONS || p->method == HTTP_PUT ||
			p->method == HTTP_DELETE;
	return 0;
}

static int req_message_complete(http_parser *p)
{
	struct http_txn *h = &((struct conn *)p->data)->h;

	/* Stop here: bytes after this request belong to the next one. */
	h->complete = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings req_settings = {
	.on_header_field = req_header_field,
	.on_header_value = req_header_value,
	.on_headers_complete = req_headers_complete,
	.on_message_complete = req_message_complete,
};

static int resp_headers_complete(http_parser *p)
{
	struct http_txn *h = &((struct conn *)p->data)->h;

	h->status = p->status_code;
	h->resp_head = true;
	/* 1: no body whatever the headers say (RFC 9112 6.3): the response to
	 * HEAD, 1xx, 204 and 304. Without it a 304 with its Content-Length
	 * would leave us waiting for a body that never comes.
	 */
	return h->is_head || framing_status_bodyless(h->status) ? 1 : 0;
}

static int resp_message_complete(http_parser *p)
{
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings resp_settings = {
	.on_headers_complete = resp_headers_complete,
	.on_message_complete = resp_message_complete,
};

/* ---------------------------------------------------------------- txn */

static void txn_reset(struct conn *c)
{
	uint32_t n = c->h.n_requests;

	memset(&c->h, 0, sizeof(c->h));
	c->h.n_requests = n;
	http_parser_init(&c->h.qp, HTTP_REQUEST);
	c->h.qp.data = c;
	framing_init(&c->h.qf, FRAMING_REQUEST);
	c->n_tried = 0;
	c->stale_retried = false;
	c->judged = false;
}

/* The request no longer counts as in flight. */
static void txn_end(struct conn *c)
{
	px_timer_del(c->px, &c->t_deadline);
	px_timer_del(c->px, &c->t_retry);
	if (c->h.counted) {
		c->svc->requests--;
		c->h.counted = false;
	}
}

static void http_abandon(struct conn *c)
{
	txn_end(c);
}

/* Count the final response to the client. */
static void count_status(struct conn *c, int status)
{
	int k = status / 100 - 1;

	if (k < 0 || k >= STATUS_CLASSES)
		return;
	c->svc->ctr.cls[k]++;
	ctr_inc(&c->px->stats.responses[k]);
	if (c->h.start_us)
		lat_record(&c->svc->lat_request, lat_now_us() - c->h.start_us,
			   loop_now_ms(c->px->loop));
}

/* Send the client what u2c holds: all of it, or up to the final response
 * head that is still to be rewritten (resp_hold).
 */
static int client_flush(struct conn *c)
{
	struct half *b = &c->u2c;
	size_t todo = c->h.resp_hold ? c->h.resp_at - b->off : b->len;

	while (todo) {
		ssize_t n = sock_send(c->cfd, c->tls, b->buf + b->off, todo);

		if (n == -1)
			return errno == EAGAIN ? 0 : -errno;
		b->off += (size_t)n;
		b->len -= (size_t)n;
		b->bytes += (uint64_t)n;
		todo -= (size_t)n;
	}
	if (!b->len) {
		if (!c->h.resp_rewritten)
			c->h.resp_at -= b->off;
		b->off = 0;
	}
	return 0;
}

static void http_progress(struct conn *c);

/* Answer locally with @status and an optional "name: value" header, then close. */
static void http_reply(struct conn *c, int status, const char *header)
{
	struct half *b = &c->u2c;
	const char *reason = http_status_str((enum http_status)status);
	char body[64];
	int blen, n;

	if (c->up)
		up_release(c, false);
	txn_end(c);
	if (!half_buf(c->px, b)) {
		conn_close(c, true);
		return;
	}
	blen = snprintf(body, sizeof(body), "%s\n", reason);
	n = snprintf(b->buf, CONN_BUF_SIZE,
		     "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
		     "connection: close\r\n%s%s\r\n%s",
		     status, reason, blen, header ? header : "", header ? "\r\n" : "",
		     c->h.is_head ? "" : body);
	b->off = 0;
	b->len = (size_t)n;
	c->h.dispatched = c->h.resp_started = c->h.resp_done = c->h.close_after = true;
	c->h.resp_hold = false;
	c->h.resp_rewritten = true;
	count_status(c, status);
	ctr_inc(&c->px->stats.local_replies);
	http_progress(c);
}

static void http_fail(struct conn *c, enum fail_kind kind)
{
	if (c->h.resp_started) {
		/* The client has part of a response: only a reset tells it the truth. */
		conn_close(c, true);
		return;
	}
	switch (kind) {
	case FAIL_CONNECT:
		http_reply(c, 503, "x-weft-error: connect-failed");
		return;
	case FAIL_TIMEOUT:
		http_reply(c, 503, "x-weft-error: connect-timeout");
		return;
	case FAIL_STALE:
	case FAIL_RESET:
	case FAIL_STATUS:
		http_reply(c, 502, "x-weft-error: upstream-reset");
		return;
	case FAIL_INVALID:
		http_reply(c, 502, "x-weft-error: upstream-invalid");
		return;
	}
}

static void http_fail_local(struct conn *c, enum local_fail why)
{
	static const char *const headers[] = {
		[LOCAL_NO_ENDPOINT] = "x-weft-error: no-endpoint",
		[LOCAL_OVERFLOW_CONNECTIONS] = "x-weft-overloaded: max-connections",
		[LOCAL_OVERFLOW_PENDING] = "x-weft-overloaded: max-pending",
		[LOCAL_OVERFLOW_REQUESTS] = "x-weft-overloaded: max-requests",
		[LOCAL_ERROR] = "x-weft-local-error: out-of-resources",
	};

	if (c->h.resp_started) {
		conn_close(c, true);
		return;
	}
	http_reply(c, 503, headers[why]);
}

static void on_request_timeout(struct loop_timer *n, uint64_t now)
{
	struct conn *c = (struct conn *)((char *)n - offsetof(struct conn, t_deadline));

	(void)now;
	c->svc->ctr.request_timeouts++;
	ctr_inc(&c->px->stats.request_timeouts);
	if (c->up && c->up->ep && !c->judged)
		ep_outcome(c->px, c->up->ep, false);
	if (c->h.resp_started) {
		conn_close(c, true);
		return;
	}
	http_reply(c, 504, "x-weft-error: request-timeout");
}

static void dispatch(struct conn *c, bool streaming)
{
	struct svc_state *s = c->svc;
	struct http_txn *h = &c->h;
	struct proxy *px = c->px;

	hop_request(c);
	h->dispatched = true;
	h->start_us = lat_now_us();
	h->streaming = streaming && !h->upgrade;
	s->ctr.requests++;
	ctr_inc(&px->stats.requests);
	if (s->requests >= c->pol->max_requests) {
		attempt_local_fail(c, LOCAL_OVERFLOW_REQUESTS);
		return;
	}
	h->counted = true;
	s->requests++;
	budget_request(&s->budget, loop_now_ms(px->loop));
	c->n_tried = 0;
	c->stale_retried = false;
	if (c->pol->request_timeout_ms &&
	    px_timer_set(px, &c->t_deadline, c->pol->request_timeout_ms, on_request_timeout)) {
		attempt_local_fail(c, LOCAL_ERROR);
		return;
	}
	attempt_start(c);
}

/* Feed the request's framing, then its parser, what they have not seen.
 * 0, or -EBADMSG when the request must be refused: the strict framing
 * refused it, http-parser did, or the two disagree on where it ends.
 */
static int request_parse(struct conn *c)
{
	struct http_txn *h = &c->h;
	size_t avail = c->c2u.len - h->parsed, n;
	enum http_errno err;
	ssize_t ok;

	if (!avail || h->complete)
		return 0;
	ok = framing_feed(&h->qf, c->c2u.buf + h->parsed, avail);
	if (ok < 0)
		return -EBADMSG;
	/* http-parser sees only bytes the framing accepted, so its callbacks
	 * (headers complete, dispatch) never run for a refused head.
	 */
	n = http_parser_execute(&h->qp, &req_settings, c->c2u.buf + h->parsed, (size_t)ok);
	h->parsed += n;
	err = HTTP_PARSER_ERRNO(&h->qp);
	if (err != HPE_OK && err != HPE_PAUSED)
		return -EBADMSG;
	if (h->upgrade)
		return 0;	/* a tunnel follows the head: its bytes are not HTTP */
	if (n != (size_t)ok || h->complete != h->qf.done)
		return -EBADMSG;
	return 0;
}

static int send_request(struct conn *c);
static void upstream_broken(struct conn *c);
static bool http_update(struct conn *c);

static void http_ready(struct conn *c)
{
	struct up *u = c->up;
	struct http_txn *h = &c->h;

	if (h->upgrade) {
		/* WebSocket, CONNECT, h2c...: from here on, opaque bytes both ways;
		 * the TCP relay's ready counts the endpoint's success.
		 */
		txn_end(c);
		c->ops = &relay_tcp;
		c->ops->ready(c);
		return;
	}
	http_parser_init(&u->rp, HTTP_RESPONSE);
	u->rp.data = c;
	framing_init(&h->rf, FRAMING_RESPONSE);
	h->rf.req_head = h->is_head;
	h->sent = 0;
	h->status = 0;
	h->resp_head = h->dirty = h->resp_done = false;
	h->resp_hold = h->resp_rewritten = h->resp_close = false;
	h->resp_at = c->u2c.off + c->u2c.len;
	c->judged = false;
	if (u->ep)
		u->ep->ctr.requests++;
	/* Send now rather than wait for EPOLLOUT: a connected socket with an
	 * empty send queue is writable, and waiting cost two epoll_ctl() calls
	 * and one more loop pass per request (the profile of the keep-alive and
	 * latency runs). What does not fit goes out on EPOLLOUT as before.
	 */
	if (send_request(c)) {
		upstream_broken(c);
		return;
	}
	http_update(c);
}

static int send_request(struct conn *c)
{
	struct http_txn *h = &c->h;
	struct half *b = &c->c2u;

	while (h->sent < h->parsed) {
		ssize_t n = sock_send(c->up->fd, c->up->tls, b->buf + h->sent,
				      h->parsed - h->sent);

		if (n == -1)
			return errno == EAGAIN ? 0 : -errno;
		h->sent += (size_t)n;
		b->bytes += (uint64_t)n;
	}
	if (h->streaming && h->sent) {
		/* Streamed bytes are gone for good: make room for the rest. */
		memmove(b->buf, b->buf + h->sent, b->len - h->sent);
		b->len -= h->sent;
		h->parsed -= h->sent;
		h->sent = 0;
	}
	return 0;
}

/* The upstream failed before the response was complete. A pooled one that
 * failed before a byte of response came is stale (the server closed it while
 * it was idle, the close crossing our request) if the request may go again:
 * nothing of it was sent, or it is idempotent and held whole. Streamed bytes
 * may have gone out and been acted on: never stale.
 */
static void upstream_broken(struct conn *c)
{
	const struct http_txn *h = &c->h;
	bool stale = c->up->reused && !h->streaming && !h->resp_head && !h->resp_started &&
		     !c->u2c.len && (!h->sent || (h->idempotent && h->complete));

	attempt_failed(c, stale ? FAIL_STALE : FAIL_RESET);
}

/* The upstream's response broke the framing rules: never pooled, counted
 * against the endpoint even if its head was judged a success already.
 */
static void upstream_invalid(struct conn *c)
{
	ctr_inc(&c->px->stats.invalid_responses);
	if (c->judged && c->up->ep)
		ep_outcome(c->px, c->up->ep, false);
	attempt_failed(c, FAIL_INVALID);
}

/* Parse @len new response bytes at u2c's end. Returns the bytes that belong
 * to the response (more is a protocol error we drop), -EBADMSG when the
 * framing refuses them, or -EPROTO when http-parser does.
 */
static ssize_t response_parse(struct conn *c, char *at, size_t len)
{
	struct http_txn *h = &c->h;
	struct up *u = c->up;
	size_t done = 0;
	ssize_t ok;

	ok = framing_feed(&h->rf, at, len);
	if (ok < 0)
		return -EBADMSG;
	while (done < (size_t)ok && !h->resp_done) {
		size_t n = http_parser_execute(&u->rp, &resp_settings, at + done, (size_t)ok - done);
		enum http_errno err = HTTP_PARSER_ERRNO(&u->rp);

		done += n;
		if (err == HPE_OK)
			continue;
		if (err != HPE_PAUSED)
			return -EPROTO;
		if (h->status / 100 == 1 && h->status != 101) {
			/* Interim (100 Continue): passed on, the final one follows. */
			h->resp_started = true;
			h->resp_head = false;
			h->interim_at = done;
			http_parser_init(&u->rp, HTTP_RESPONSE);
			u->rp.data = c;
			continue;
		}
		h->resp_done = true;
	}
	/* Where the response ends must be where both parsers say it does. */
	if (done != (size_t)ok || h->resp_done != h->rf.done)
		return -EBADMSG;
	if (done < len)
		h->dirty = true;
	return (ssize_t)done;
}

/* Read from the upstream. Returns false if @c was closed or moved on (retry). */
static bool upstream_read(struct conn *c)
{
	struct half *b = &c->u2c;
	struct http_txn *h = &c->h;
	size_t end = b->off + b->len;
	ssize_t n;

	if (end == CONN_BUF_SIZE && b->off) {
		memmove(b->buf, b->buf + b->off, b->len);
		if (!h->resp_rewritten)
			h->resp_at -= b->off;
		b->off = 0;
		end = b->len;
	}
	if (end == CONN_BUF_SIZE) {
		if (h->resp_started && !h->resp_hold)
			return true;	/* the client drains it first */
		/* A response head larger than the buffer: not one we serve. */
		upstream_broken(c);
		return false;
	}
	if (!half_buf(c->px, b)) {
		conn_close(c, true);
		return false;
	}
	n = sock_recv(c->up->fd, c->up->tls, b->buf + end, CONN_BUF_SIZE - end);
	if (n == -1 && errno == EAGAIN)
		return true;
	if (n == 0) {
		/* EOF ends a response delimited by the connection's close. */
		(void)http_parser_execute(&c->up->rp, &resp_settings, NULL, 0);
		if (HTTP_PARSER_ERRNO(&c->up->rp) == HPE_PAUSED && h->resp_head &&
		    !framing_eof(&h->rf)) {
			h->resp_done = true;
			h->dirty = true;
			return true;
		}
	}
	if (n <= 0) {
		upstream_broken(c);
		return false;
	}
	h->interim_at = SIZE_MAX;
	n = response_parse(c, b->buf + end, (size_t)n);
	if (n < 0) {
		upstream_invalid(c);
		return false;
	}
	b->len += (size_t)n;
	if (h->interim_at != SIZE_MAX) {
		/* An interim head goes out as it is; hold the final one. */
		h->resp_at = end + h->interim_at;
		h->resp_hold = true;
		h->resp_rewritten = false;
	}
	if (h->resp_head && !h->resp_rewritten && hop_response(c)) {
		upstream_broken(c);
		return false;
	}
	return true;
}

/* Decide on a response whose head just arrived: retry it elsewhere, or pass it on. */
static bool judge(struct conn *c)
{
	struct http_txn *h = &c->h;
	struct ep_state *e = c->up->ep;
	int k = h->status / 100 - 1;

	c->judged = true;
	if (k >= 0 && k < STATUS_CLASSES)
		e->ctr.cls[k]++;
	ep_outcome(c->px, e, h->status < 500);
	if (!h->resp_started &&
	    (h->status == 502 || h->status == 503 || h->status == 504) &&
	    attempt_may_retry(c, FAIL_STATUS)) {
		/* A complete error response leaves a reusable connection. */
		bool reuse = h->resp_done && !h->dirty && h->sent == h->parsed &&
			     http_should_keep_alive(&c->up->rp);

		c->u2c.len = c->u2c.off = 0;
		h->resp_done = h->resp_head = false;
		up_release(c, reuse);
		attempt_retry(c);
		return false;
	}
	h->resp_started = true;
	count_status(c, h->status);
	return true;
}

/* The response is all here: free the upstream for the next request. */
static void response_received(struct conn *c)
{
	struct http_txn *h = &c->h;
	bool all_sent = h->complete && h->sent == h->parsed;

	h->resp_keep_alive = !h->dirty && http_should_keep_alive(&c->up->rp);
	/* An unread request body leaves the client connection unusable. */
	if (!all_sent)
		h->close_after = true;
	up_release(c, h->resp_keep_alive && all_sent);
	txn_end(c);
}

static void http_on_upstream(struct conn *c, uint32_t events)
{
	struct http_txn *h = &c->h;

	if (c->up->connecting) {
		attempt_connected(c, events);
		return;
	}
	if (c->up && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && h->sent < h->parsed &&
	    send_request(c)) {
		upstream_broken(c);
		return;
	}
	if (c->up && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !h->resp_done) {
		if (!upstream_read(c))
			return;
		if (h->resp_head && !c->judged && !judge(c))
			return;
		if (h->resp_done)
			response_received(c);
	}
	if (h->resp_started && client_flush(c)) {
		conn_close(c, true);
		return;
	}
	http_progress(c);
}

static void http_on_client(struct conn *c, uint32_t events)
{
	struct half *b = &c->c2u;

	if (events & EPOLLERR) {
		conn_close(c, true);
		return;
	}
	if ((events & (EPOLLIN | EPOLLHUP)) && !b->eof && b->len < CONN_BUF_SIZE) {
		ssize_t n;

		if (!half_buf(c->px, b)) {
			conn_close(c, true);
			return;
		}
		n = sock_recv(c->cfd, c->tls, b->buf + b->len, CONN_BUF_SIZE - b->len);
		if (n <= 0)
			half_buf_put(c->px, b);
		if (n == 0) {
			b->eof = true;
		} else if (n > 0) {
			b->len += (size_t)n;
		} else if (errno != EAGAIN) {
			conn_close(c, true);
			return;
		}
	}
	if (c->h.resp_started && client_flush(c)) {
		conn_close(c, true);
		return;
	}
	http_progress(c);
}

/* Drive the connection after any event: finish a response, parse, dispatch. */
static void http_progress(struct conn *c)
{
	struct http_txn *h = &c->h;
	struct half *b = &c->c2u;

	for (;;) {
		if (h->resp_done) {
			if (c->u2c.len)
				break;	/* still flushing to the client */
			if (h->close_after || h->resp_close || c->pod->draining || (b->eof && b->len == h->parsed)) {
				conn_close(c, false);
				return;
			}
			/* Keep-alive: the next request may already be buffered;
			 * if not, the connection waits without buffers.
			 */
			if (b->len > h->parsed)
				memmove(b->buf, b->buf + h->parsed, b->len - h->parsed);
			b->len -= h->parsed;
			half_buf_put(c->px, b);
			half_buf_put(c->px, &c->u2c);
			h->n_requests++;
			txn_reset(c);
			continue;
		}
		if (!h->complete && !h->upgrade && request_parse(c)) {
			if (!h->dispatched && !h->n_requests && !h->qf.http) {
				/* Began like HTTP, but its first line has no
				 * HTTP/1.x version: not HTTP, relay it untouched.
				 * Once it has one, whatever is wrong is refused.
				 */
				ctr_inc(&c->px->stats.detected_tcp);
				c->svc->ctr.detected_tcp++;
				conn_relay(c, &relay_tcp);
				return;
			}
			ctr_inc(&c->px->stats.invalid_requests);
			if (h->dispatched) {
				/* Part of a streamed body went out: the upstream
				 * is closed with the client, never pooled.
				 */
				conn_close(c, true);
				return;
			}
			http_reply(c, 400, "x-weft-error: invalid-request");
			return;
		}
		if (h->dispatched && !h->complete && b->eof && b->len == h->parsed) {
			/* The client stopped in the middle of a streamed body. */
			conn_close(c, true);
			return;
		}
		if (h->dispatched)
			break;
		if (!h->head_done) {
			if (b->len == CONN_BUF_SIZE) {
				http_reply(c, 431, NULL);
				return;
			}
			if (b->eof) {
				conn_close(c, false);
				return;
			}
			break;
		}
		if (h->complete || h->upgrade) {
			dispatch(c, false);
			return;
		}
		if (b->len == CONN_BUF_SIZE || h->expect_continue) {
			dispatch(c, true);
			return;
		}
		if (b->eof) {
			conn_close(c, false);
			return;
		}
		break;
	}
	http_update(c);
}

static bool http_update(struct conn *c)
{
	struct http_txn *h = &c->h;
	struct up *u = c->up;
	uint32_t cev = 0, uev = 0;

	if (!c->c2u.eof && c->c2u.len < CONN_BUF_SIZE && !h->close_after)
		cev |= EPOLLIN;
	if (c->u2c.len && h->resp_started)
		cev |= EPOLLOUT;
	if (u && u->connecting) {
		uev = EPOLLOUT;
	} else if (u) {
		if (h->sent < h->parsed)
			uev |= EPOLLOUT;
		if (!h->resp_done && (c->u2c.off || c->u2c.len < CONN_BUF_SIZE))
			uev |= EPOLLIN;
	}
	if (conn_watch(c, cev) || (u && up_watch(u, uev))) {
		conn_close(c, true);
		return false;
	}
	return true;
}

static void http_start(struct conn *c)
{
	txn_reset(c);
	http_progress(c);
}

static bool http_may_retry(const struct conn *c, enum fail_kind kind)
{
	const struct http_txn *h = &c->h;

	/* A server that frames its answers ambiguously would do it again. */
	if (kind == FAIL_INVALID)
		return false;
	/* Connect failures sent nothing: any request may go elsewhere. After
	 * that, only an idempotent request we still hold whole, with nothing of
	 * a response shown to the client yet.
	 */
	return !((kind == FAIL_RESET || kind == FAIL_STATUS) &&
		 (h->resp_started || h->streaming || !h->complete || h->upgrade || !h->idempotent));
}

static bool http_may_reuse(const struct conn *c)
{
	/* An upgrade becomes a tunnel that owns its upstream for good. */
	return !c->h.upgrade;
}

static const char *http_idle_state(const struct conn *c)
{
	return c->h.dispatched ? "retry-wait" : "idle";
}

const struct relay_ops relay_http = {
	.name = "http",
	.kind = RELAY_HTTP,
	.detect = http_detect,
	.start = http_start,
	.on_client = http_on_client,
	.on_upstream = http_on_upstream,
	.ready = http_ready,
	.update = http_update,
	.may_retry = http_may_retry,
	.may_reuse = http_may_reuse,
	.fail = http_fail,
	.fail_local = http_fail_local,
	.abandon = http_abandon,
	.idle_state = http_idle_state,
};
