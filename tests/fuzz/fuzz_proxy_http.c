// SPDX-License-Identifier: GPL-2.0-only
/* Fuzz target: the proxy's HTTP/1.x framing (proxy/http.c, included here to
 * reach its static parsers). The input is the client's bytes, a NUL, then
 * the upstream's bytes. The client's bytes go through protocol detection and
 * request_parse(), request after request as http_progress() takes them from
 * the buffer; after each complete request the upstream's bytes go through
 * response_parse() until that response ends, as on a kept-alive connection.
 * The first byte is the size of the pieces the sockets deliver. Checked on
 * the way: the parsers never claim more bytes than they were given, and a
 * message http.c takes as complete is one the strict framing (framing.c)
 * saw end at the same byte. Seeds: tests/fuzz/http_shapes.py writes the
 * smuggling shapes (shape-*), and proxy_http.dict has their tokens.
 */
#include "fuzz.h"

#include "../../agent/proxy/http.c"

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "framing: %s\n", what);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *req, *resp, *nul;
	size_t req_len, resp_len, resp_off = 0, fed, piece;
	struct conn *c;
	struct up *u;

	if (size < 1)
		return 0;
	piece = 1 + (size_t)data[0] * 4;
	req = (const char *)data + 1;
	nul = memchr(req, '\0', size - 1);
	req_len = nul ? (size_t)(nul - req) : size - 1;
	resp = nul ? nul + 1 : req + req_len;
	resp_len = (size_t)((const char *)data + size - resp);
	if (req_len > CONN_BUF_SIZE)
		req_len = CONN_BUF_SIZE;

	c = calloc(1, sizeof(*c));
	u = calloc(1, sizeof(*u));
	if (!c || !u || !(c->c2u.buf = malloc(CONN_BUF_SIZE)))
		abort();
	c->up = u;
	u->c = c;
	(void)http_detect(req, req_len);
	memcpy(c->c2u.buf, req, req_len);
	txn_reset(c);
	fed = 0;
	for (;;) {
		struct http_txn *h = &c->h;

		/* The client's bytes arrive piece by piece until a request is whole. */
		while (!h->complete && !h->upgrade) {
			if (request_parse(c))
				goto out;
			check(h->parsed <= c->c2u.len, "request parser past the buffer");
			if (h->complete || h->upgrade || fed == req_len)
				break;
			fed += req_len - fed < piece ? req_len - fed : piece;
			c->c2u.len = fed;
		}
		if (!h->head_done || h->upgrade || !h->complete)
			break;
		check(h->qf.done, "request complete before its framing ended");
		/* The upstream answers. */
		http_parser_init(&u->rp, HTTP_RESPONSE);
		u->rp.data = c;
		framing_init(&h->rf, FRAMING_RESPONSE);
		h->rf.req_head = h->is_head;
		while (!h->resp_done && resp_off < resp_len) {
			size_t n = resp_len - resp_off < piece ? resp_len - resp_off : piece;
			ssize_t used = response_parse(c, (char *)resp + resp_off, n);

			if (used < 0)
				goto out;
			check((size_t)used <= n, "response parser past its input");
			resp_off += (size_t)used;
			if (h->dirty)
				goto out;
		}
		if (!h->resp_done || !h->keep_alive || !http_should_keep_alive(&u->rp))
			break;
		check(h->rf.done, "response complete before its framing ended");
		/* Keep-alive: the next request may already be buffered. */
		memmove(c->c2u.buf, c->c2u.buf + h->parsed, req_len - h->parsed);
		fed -= h->parsed;
		req_len -= h->parsed;
		c->c2u.len = fed;
		h->n_requests++;
		txn_reset(c);
	}
out:
	free(c->c2u.buf);
	free(u);
	free(c);
	return 0;
}
