/* SPDX-License-Identifier: GPL-2.0-only */
/* Strict HTTP/1.x message framing (RFC 9112), the rules http-parser 2.9 is
 * lenient about: where a message ends is decided here, byte by byte as the
 * bytes arrive, and anything that a second parser could frame differently
 * (both Content-Length and Transfer-Encoding, duplicate lengths, whitespace
 * before a colon, obs-fold, bare CR or LF, control characters, malformed
 * chunk lines) is refused. http.c and observe.c run it ahead of http-parser
 * over the same bytes; tests/http_diff compares it with another parser.
 */
#ifndef WEFT_PROXY_FRAMING_H
#define WEFT_PROXY_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum framing_kind {
	FRAMING_REQUEST,
	FRAMING_RESPONSE,
};

/* Longest Content-Length or Transfer-Encoding value (trimmed) looked at. */
#define FRAMING_VALUE_MAX 24
/* Longest chunk-size line (with its extensions) accepted. */
#define FRAMING_CHUNK_LINE_MAX 1024

/* One message being framed; framing_init() before the first byte. */
struct framing {
	uint8_t kind;		/* enum framing_kind */
	uint8_t state;		/* framing.c's enum state */
	uint8_t sub;		/* position inside a literal or a sub-grammar */
	uint8_t hdr;		/* the header field being read: framing.c's enum hdr */
	bool http;		/* the start line had an HTTP/1.x version: it is HTTP */
	bool http10;		/* HTTP/1.0 message */
	bool connect;		/* request: CONNECT (no body, a tunnel follows) */
	bool req_head;		/* response: answers a HEAD request (set by the caller) */
	bool has_cl, has_te;
	bool head_done;		/* the header block of the final message is complete */
	bool until_eof;		/* response body delimited by the connection's close */
	bool done;		/* the message is complete: framing_feed() takes no more */
	int status;		/* response: status code of the current head */
	uint32_t interims;	/* response: 1xx heads passed before the final one */
	uint32_t line_len;	/* bytes of the current chunk line */
	uint64_t content_length;	/* declared */
	uint64_t remaining;	/* body bytes left in the Content-Length body or chunk */
	uint64_t body;		/* payload bytes framed so far (chunk data, not chunk lines) */
	char name[20];		/* header name being read, lowercased, truncated */
	uint8_t name_len;
	char val[FRAMING_VALUE_MAX];	/* value of a framing header, trimmed */
	uint8_t val_len;
	uint8_t val_ws;		/* whitespace seen after the value's last non-space */
	bool val_long;		/* the value did not fit in @val */
};

/* Start framing a message of @kind. For a response to HEAD, set
 * f->req_head afterwards.
 */
void framing_init(struct framing *f, enum framing_kind kind);

/* Frame @len more bytes of the message at @buf. Returns how many belong to
 * it (fewer than @len only when the message ended inside @buf: f->done is
 * then set, and the rest is the next message's), 0 once done, or -EBADMSG
 * when the bytes break the strict rules (the message must be refused, the
 * connection closed). Never blocks, never allocates.
 */
ssize_t framing_feed(struct framing *f, const char *buf, size_t len);

/* The peer closed after everything fed so far: 0 if that ends the message
 * (a response delimited by close; sets f->done), -EBADMSG if it is cut short.
 */
int framing_eof(struct framing *f);

/* Whether a response with @status carries no body whatever its headers say
 * (RFC 9110 6.4.1: 1xx, 204, 304).
 */
bool framing_status_bodyless(int status);

#endif /* WEFT_PROXY_FRAMING_H */
