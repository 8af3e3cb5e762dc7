// SPDX-License-Identifier: GPL-2.0-only
/* Strict HTTP/1.x framing (agent/proxy/framing.c): where messages end, fed
 * whole and byte by byte, what is refused, and the inbound observer
 * (observe.c) framing responses as the relay does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proxy/conn.h"
#include "proxy/framing.h"

struct frame_case {
	const char *name;
	enum framing_kind kind;
	bool req_head;		/* response to HEAD */
	const char *bytes;
	ssize_t end;		/* bytes of the message; -1: refused; 0: incomplete */
	uint64_t body;
};

#define REQ(n, b, e, l) { n, FRAMING_REQUEST, false, b, e, l }
#define RESP(n, b, e, l) { n, FRAMING_RESPONSE, false, b, e, l }

static const struct frame_case cases[] = {
	REQ("get", "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET", 27, 0),
	REQ("post-cl", "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET", 41, 3),
	REQ("chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		       "3;a=\"b c\"\r\nabc\r\n0\r\nX: y\r\n\r\nGET", 74, 3),
	REQ("incomplete-body", "POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc", 0, 3),
	REQ("cl-te", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", -1,
	    0),
	REQ("cl-dup", "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", -1, 0),
	REQ("cl-sign", "POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\n", -1, 0),
	REQ("te-list", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -1, 0),
	REQ("ws-colon", "POST / HTTP/1.1\r\nContent-Length : 3\r\n\r\n", -1, 0),
	REQ("obs-fold", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", -1, 0),
	REQ("bare-lf", "GET / HTTP/1.1\r\nX: a\n\r\n", -1, 0),
	REQ("bare-cr", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", -1, 0),
	REQ("ctl", "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", -1, 0),
	REQ("chunk-ws", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n", -1, 3),
	REQ("chunk-overflow", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
			      "10000000000000000\r\n", -1, 0),
	REQ("connect-cl", "CONNECT a:1 HTTP/1.1\r\nContent-Length: 1\r\n\r\n", -1, 0),
	REQ("http10-te", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -1, 0),
	RESP("304-cl", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nHTTP", 48, 0),
	RESP("204-cl", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP", 46, 0),
	RESP("100-then-200", "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n"
			     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokX", 84, 2),
	RESP("101", "HTTP/1.1 101 Switching Protocols\r\n\r\n", -1, 0),
	RESP("until-eof", "HTTP/1.1 200 OK\r\n\r\nabc", 0, 3),
	RESP("status-0xx", "HTTP/1.1 099 X\r\n\r\n", -1, 0),
	{ "head", FRAMING_RESPONSE, true, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nHTTP", 38, 0 },
};

/* Frame @c's bytes in @piece-byte pieces; its verdict as in struct frame_case. */
static ssize_t frame(const struct frame_case *c, size_t piece, struct framing *f)
{
	size_t len = strlen(c->bytes), off = 0;

	framing_init(f, c->kind);
	f->req_head = c->req_head;
	while (off < len && !f->done) {
		size_t n = len - off < piece ? len - off : piece;
		ssize_t used = framing_feed(f, c->bytes + off, n);

		if (used < 0)
			return -1;
		cr_assert_leq((size_t)used, n);
		off += (size_t)used;
	}
	return f->done ? (ssize_t)off : 0;
}

Test(framing, messages_end_where_the_rules_say_whatever_the_pieces)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct frame_case *c = &cases[i];
		size_t pieces[] = { 1, 2, 7, 4096 };

		for (size_t p = 0; p < 4; p++) {
			struct framing f;
			ssize_t got = frame(c, pieces[p], &f);

			cr_assert_eq(got, c->end, "%s in %zu-byte pieces: %zd, want %zd", c->name,
				     pieces[p], got, c->end);
			if (got >= 0)
				cr_assert_eq(f.body, c->body, "%s: body %llu", c->name,
					     (unsigned long long)f.body);
		}
	}
}

Test(framing, a_body_until_close_ends_at_eof_and_a_short_one_does_not)
{
	struct framing f;

	framing_init(&f, FRAMING_RESPONSE);
	cr_assert_eq(framing_feed(&f, "HTTP/1.1 200 OK\r\n\r\nab", 21), 21);
	cr_assert_eq(framing_eof(&f), 0);
	cr_assert(f.done);
	framing_init(&f, FRAMING_RESPONSE);
	cr_assert_eq(framing_feed(&f, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab", 40), 40);
	cr_assert_eq(framing_eof(&f), -EBADMSG);
}

Test(framing, the_first_line_says_whether_it_is_http_at_all)
{
	struct framing f;

	/* No HTTP/1.x version: the relay passes it on as opaque bytes. */
	framing_init(&f, FRAMING_REQUEST);
	cr_assert_lt(framing_feed(&f, "GET foo\r\n", 9), 0);
	cr_assert(!f.http);
	/* With one, what follows is held to the rules (400, not passed on). */
	framing_init(&f, FRAMING_REQUEST);
	cr_assert_lt(framing_feed(&f, "GET / HTTP/1.1\n", 15), 0);
	cr_assert(f.http);
}

/* The inbound observer counts by status class what the relay frames. */
Test(framing, the_observer_frames_bodyless_responses_as_the_relay_does)
{
	static const char req[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char resp[] = "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"
				   "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno";
	struct proxy *px = calloc(1, sizeof(*px));
	struct conn *c = calloc(1, sizeof(*c));
	struct in_port *in = calloc(1, sizeof(*in));

	cr_assert(px && c && in);
	px->relays[RELAY_HTTP] = &relay_http;
	c->px = px;
	c->in = in;
	observe_start(c);
	observe_bytes(c, &c->c2u, req, sizeof(req) - 1);
	observe_bytes(c, &c->u2c, resp, sizeof(resp) - 1);
	cr_assert(c->c2u.copy, "the watch ended");
	cr_assert_eq(in->ctr.requests, 2);
	cr_assert_eq(in->ctr.responses[2], 1, "3xx");
	/* Without the bodyless rule the 404's first bytes were the 304's body. */
	cr_assert_eq(in->ctr.responses[3], 1, "4xx");
	/* An ambiguous response ends the watch rather than count out of step. */
	observe_bytes(c, &c->c2u, "GET /c HTTP/1.1\r\n\r\n", 19);
	observe_bytes(c, &c->u2c, "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", 41);
	cr_assert(!c->c2u.copy, "the watch went on");
	cr_assert_null(c->obs);
	free(in);
	free(c);
	free(px);
}
