// SPDX-License-Identifier: GPL-2.0-only
/* What an inbound connection's bytes say, read as the L4 relay copies them
 * (tcp.c, while half.copy is set): whether the client speaks HTTP/1.x (the
 * HTTP relay's own detection, through px->relays[]), and then its requests
 * and the application's response status classes, counted per pod port. The
 * relay never waits for this: bytes are passed on whatever is decided here,
 * so a server that speaks first is not delayed. Anything that is not HTTP,
 * a server speaking first, a parse error or an upgrade ends the watch and
 * the relay splices from then on. Messages are framed as the HTTP relay
 * frames them (framing.c ahead of http-parser): bytes it refuses, or a
 * disagreement on where a message ends, end the watch too, rather than
 * count the rest of the connection out of step.
 */
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/conn.h"

/* The client's first bytes kept while they may still turn out to be HTTP:
 * more than the longest method the detection knows ("OPTIONS ").
 */
#define PREFIX_MAX 16
/* Requests awaiting their responses that are tracked (pipelining); beyond
 * that, the watch ends rather than guess which response answers a HEAD.
 */
#define PENDING_MAX 32

struct observe {
	http_parser qp;		/* requests, on the client's bytes */
	http_parser rp;		/* responses, on the application's bytes */
	struct framing qf, rf;	/* the current request's and response's framing */
	uint64_t q_framed, r_framed;	/* messages the framing saw end */
	uint64_t q_parsed, r_parsed;	/* messages http-parser saw end */
	bool http;		/* classified: HTTP/1.x, parsers running */
	char prefix[PREFIX_MAX];
	size_t n_prefix;
	uint32_t heads;		/* bit i: the i-th pending request is a HEAD */
	uint32_t pending;	/* requests whose final response has not begun */
};

void observe_start(struct conn *c)
{
	c->c2u.copy = c->u2c.copy = true;
}

void observe_done(struct conn *c)
{
	c->c2u.copy = c->u2c.copy = false;
	free(c->obs);
	c->obs = NULL;
}

static int req_headers_complete(http_parser *p)
{
	struct conn *c = p->data;
	struct observe *o = c->obs;

	c->in->ctr.requests++;
	if (o->pending < PENDING_MAX) {
		if (p->method == HTTP_HEAD)
			o->heads |= 1u << o->pending;
		o->pending++;
	} else {
		o->pending = PENDING_MAX + 1;	/* lost track: stop below */
	}
	return 0;
}

static int req_message_complete(http_parser *p)
{
	((struct conn *)p->data)->obs->q_parsed++;
	return 0;
}

static int resp_message_complete(http_parser *p)
{
	((struct conn *)p->data)->obs->r_parsed++;
	return 0;
}

static int resp_headers_complete(http_parser *p)
{
	struct conn *c = p->data;
	struct observe *o = c->obs;
	unsigned int cls = p->status_code / 100;
	bool head;

	if (cls >= 1 && cls <= PROXY_STATUS_CLASSES)
		c->in->ctr.responses[cls - 1]++;
	/* 1: no body whatever the headers say (RFC 9112 6.3), as the relay
	 * frames it: interim responses (the final one follows), 204, 304.
	 */
	if (cls == 1)
		return 1;
	head = o->heads & 1;
	o->heads >>= 1;
	if (o->pending)
		o->pending--;
	/* 1: the response to HEAD has no body whatever its headers say. */
	return head || framing_status_bodyless(p->status_code) ? 1 : 0;
}

static const http_parser_settings req_settings = {
	.on_headers_complete = req_headers_complete,
	.on_message_complete = req_message_complete,
};

static const http_parser_settings resp_settings = {
	.on_headers_complete = resp_headers_complete,
	.on_message_complete = resp_message_complete,
};

/* Run the framing of @h's direction, then its parser @p, over @buf[0..@n),
 * message by message; false when the watch must end: refused framing, a
 * parse error, the two disagreeing on a message's end, an upgrade or
 * CONNECT (what follows is not HTTP), or lost track of requests.
 */
static bool feed(struct conn *c, bool resp, const char *buf, size_t n)
{
	struct observe *o = c->obs;
	http_parser *p = resp ? &o->rp : &o->qp;
	struct framing *f = resp ? &o->rf : &o->qf;
	uint64_t *framed = resp ? &o->r_framed : &o->q_framed;
	uint64_t *parsed = resp ? &o->r_parsed : &o->q_parsed;

	while (n) {
		ssize_t ok;

		/* Whether the response answers a HEAD is known from the
		 * request parser by the time its head ends.
		 */
		if (resp && !f->head_done)
			f->req_head = o->heads & 1;
		ok = framing_feed(f, buf, n);
		if (ok < 0 || http_parser_execute(p, resp ? &resp_settings : &req_settings, buf,
						  (size_t)ok) != (size_t)ok)
			return false;
		if (HTTP_PARSER_ERRNO(p) != HPE_OK || p->upgrade || o->pending > PENDING_MAX)
			return false;
		if (f->done) {
			(*framed)++;
			framing_init(f, resp ? FRAMING_RESPONSE : FRAMING_REQUEST);
		}
		if (*framed != *parsed)
			return false;
		buf += ok;
		n -= (size_t)ok;
	}
	return true;
}

/* The client's first bytes: HTTP/1.x, not, or not yet known. */
static bool classify(struct conn *c, const char *buf, size_t n)
{
	const struct relay_ops *http = c->px->relays[RELAY_HTTP];
	struct observe *o = c->obs;
	size_t old, k;

	if (!n || !http->detect)
		return false;
	if (!o) {
		o = c->obs = calloc(1, sizeof(*o));
		if (!o)
			return false;
	}
	old = o->n_prefix;
	k = n < PREFIX_MAX - old ? n : PREFIX_MAX - old;
	memcpy(o->prefix + old, buf, k);
	o->n_prefix += k;
	switch (http->detect(o->prefix, o->n_prefix)) {
	case DETECT_MORE:
		return o->n_prefix < PREFIX_MAX;
	case DETECT_NO:
		return false;
	case DETECT_YES:
		break;
	}
	o->http = true;
	http_parser_init(&o->qp, HTTP_REQUEST);
	http_parser_init(&o->rp, HTTP_RESPONSE);
	o->qp.data = o->rp.data = c;
	framing_init(&o->qf, FRAMING_REQUEST);
	framing_init(&o->rf, FRAMING_RESPONSE);
	/* The bytes of earlier reads were relayed already: parse them first. */
	return feed(c, false, o->prefix, old) && feed(c, false, buf, n);
}

void observe_bytes(struct conn *c, const struct half *h, const char *buf, size_t n)
{
	struct observe *o = c->obs;
	bool keep;

	if (h == &c->u2c) {
		/* The application spoke before the client was classified: a
		 * server-first protocol, not HTTP.
		 */
		if (!o || !o->http)
			keep = false;
		else
			keep = !n || feed(c, true, buf, n);
	} else if (o && o->http) {
		keep = !n || feed(c, false, buf, n);
	} else {
		keep = classify(c, buf, n);
	}
	if (!keep)
		observe_done(c);
}
