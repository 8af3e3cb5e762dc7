// SPDX-License-Identifier: GPL-2.0-only
/* What an inbound connection's bytes say, read as the L4 relay copies them
 * (tcp.c, while half.copy is set): whether the client speaks HTTP/1.x (the
 * HTTP relay's own detection, through px->relays[]), and then its requests
 * and the application's response status classes, counted per pod port. The
 * relay never waits for this: bytes are passed on whatever is decided here,
 * so a server that speaks first is not delayed. Anything that is not HTTP,
 * a server speaking first, a parse error or an upgrade ends the watch and
 * the relay splices from then on.
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

static int resp_headers_complete(http_parser *p)
{
	struct conn *c = p->data;
	struct observe *o = c->obs;
	unsigned int cls = p->status_code / 100;
	bool head;

	if (cls >= 1 && cls <= PROXY_STATUS_CLASSES)
		c->in->ctr.responses[cls - 1]++;
	if (cls == 1)
		return 0;	/* interim: the final response follows */
	head = o->heads & 1;
	o->heads >>= 1;
	if (o->pending)
		o->pending--;
	/* 1: the response to HEAD has no body whatever its headers say. */
	return head ? 1 : 0;
}

static const http_parser_settings req_settings = {
	.on_headers_complete = req_headers_complete,
};

static const http_parser_settings resp_settings = {
	.on_headers_complete = resp_headers_complete,
};

/* Run @p over @buf[0..@n); false when the watch must end: a parse error, an
 * upgrade or CONNECT (what follows is not HTTP), or lost track of requests.
 */
static bool feed(struct conn *c, http_parser *p, const http_parser_settings *s, const char *buf,
		 size_t n)
{
	size_t done = http_parser_execute(p, s, buf, n);

	return done == n && HTTP_PARSER_ERRNO(p) == HPE_OK && !p->upgrade &&
	       c->obs->pending <= PENDING_MAX;
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
	/* The bytes of earlier reads were relayed already: parse them first. */
	return feed(c, &o->qp, &req_settings, o->prefix, old) &&
	       feed(c, &o->qp, &req_settings, buf, n);
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
			keep = !n || feed(c, &o->rp, &resp_settings, buf, n);
	} else if (o && o->http) {
		keep = !n || feed(c, &o->qp, &req_settings, buf, n);
	} else {
		keep = classify(c, buf, n);
	}
	if (!keep)
		observe_done(c);
}
