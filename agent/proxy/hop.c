// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/proxy/hop.h: dropping hop-by-hop field lines from
 * a head in place, and what the HTTP relay's request and response heads
 * become on their next hop. Heads are small (at most a buffer,
 * CONN_BUF_SIZE) and rewritten once per message, so the Connection fields
 * are looked up again for every line rather than copied aside.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "proxy/conn.h"
#include "proxy/hop.h"

/* Fields that are hop-by-hop whatever Connection says (RFC 9110 7.6.1, and
 * Proxy-Connection, which clients still send). Transfer-Encoding is too, but
 * the relay passes bodies on as they are framed, so it stays.
 */
static const char *const always[] = {
	"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade",
};

/* Fields a Connection field cannot make hop-by-hop: dropping them would
 * change where the message ends for the next hop, or where it goes.
 */
static const char *const kept[] = {
	"content-length", "transfer-encoding", "host",
};

static bool is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool in_list(const char *const *list, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(list[i]) == len && !strncasecmp(list[i], name, len))
			return true;
	return false;
}

/* The next field line of the head after @p (the start of a line); NULL at
 * the empty line. Sets the line's name and its length with the CRLF.
 */
static const char *field_line(const char *p, const char *end, size_t *name_len,
			      size_t *line_len)
{
	const char *crlf, *colon;

	if (end - p < 2 || (p[0] == '\r' && p[1] == '\n'))
		return NULL;
	crlf = memmem(p, (size_t)(end - p), "\r\n", 2);
	if (!crlf)
		return NULL;
	colon = memchr(p, ':', (size_t)(crlf - p));
	*name_len = colon ? (size_t)(colon - p) : 0;
	*line_len = (size_t)(crlf + 2 - p);
	return p;
}

/* Whether the Connection fields of the head @fields..@end name @name. */
static bool named_by_connection(const char *fields, const char *end, const char *name,
				size_t len)
{
	size_t nl, ll;

	for (const char *p = fields; field_line(p, end, &nl, &ll); p += ll) {
		const char *v = p + nl + 1, *vend = p + ll - 2;

		if (nl != 10 || strncasecmp(p, "connection", 10))
			continue;
		while (v < vend) {
			const char *t;

			while (v < vend && (is_ows(*v) || *v == ','))
				v++;
			t = v;
			while (v < vend && *v != ',' && !is_ows(*v))
				v++;
			if ((size_t)(v - t) == len && !strncasecmp(t, name, len))
				return true;
		}
	}
	return false;
}

size_t hop_head_len(const char *buf, size_t len)
{
	const char *e = memmem(buf, len, "\r\n\r\n", 4);

	return e ? (size_t)(e + 4 - buf) : 0;
}

/* Whether the field line at @p, name @nl bytes long, goes. */
static bool dropped(const char *fields, const char *end, const char *p, size_t nl)
{
	if (in_list(kept, sizeof(kept) / sizeof(kept[0]), p, nl))
		return false;
	return in_list(always, sizeof(always) / sizeof(always[0]), p, nl) ||
	       named_by_connection(fields, end, p, nl);
}

static bool is_connection(const char *p, size_t nl)
{
	return nl == 10 && !strncasecmp(p, "connection", 10);
}

int hop_rewrite(char *buf, size_t head_len, size_t *len, size_t cap, const char *add)
{
	const char *end = buf + head_len, *fields, *p;
	size_t add_len = add ? strlen(add) : 0, drop = 0, nl, ll;
	char *w;

	fields = memmem(buf, head_len, "\r\n", 2);
	if (!fields)
		return 0;
	fields += 2;
	/* Measure first: nothing moves unless the result fits. */
	for (p = fields; field_line(p, end, &nl, &ll); p += ll)
		if (dropped(fields, end, p, nl))
			drop += ll;
	if (*len - drop + add_len > cap)
		return -ENOSPC;
	/* Mark the lines to drop by their first byte (a NUL cannot start a
	 * name framing.c accepted): the other lines first, the Connection
	 * lines last, as the others are judged by what those say.
	 */
	for (p = fields; field_line(p, end, &nl, &ll); p += ll)
		if (!is_connection(p, nl) && dropped(fields, end, p, nl))
			*(char *)p = '\0';
	for (p = fields; field_line(p, end, &nl, &ll); p += ll)
		if (is_connection(p, nl))
			*(char *)p = '\0';
	w = (char *)fields;
	for (p = fields; field_line(p, end, &nl, &ll); p += ll) {
		if (*p == '\0')
			continue;
		memmove(w, p, ll);
		w += ll;
	}
	/* @p is at the empty line, the head's last two bytes. */
	memmove(w + add_len + 2, end, *len - head_len);
	if (add_len)
		memcpy(w, add, add_len);
	memcpy(w + add_len, "\r\n", 2);
	*len = *len - drop + add_len;
	return 0;
}

/* ---------------------------------------------------------------- the relay's heads */

/* Drop the request head's hop-by-hop fields before it goes upstream: the
 * upstream connection is the proxy's, kept alive for the pod's next request
 * whatever this client does with its own. An HTTP/1.0 request asks for
 * keep-alive outright; its version stays, as a 1.0 client cannot read a
 * chunked response (without room for that line it goes as it is, and that
 * upstream connection closes after the response). Upgrades and CONNECT pass
 * untouched: their Connection and Upgrade fields are the point.
 */
void hop_request(struct conn *c)
{
	struct http_txn *h = &c->h;
	struct half *b = &c->c2u;
	size_t head = b->buf ? hop_head_len(b->buf, h->parsed) : 0, len = b->len;

	if (h->upgrade || !head)
		return;
	if (hop_rewrite(b->buf, head, &len, CONN_BUF_SIZE, h->qf.http10 ? HOP_KEEP_ALIVE : NULL))
		(void)hop_rewrite(b->buf, head, &len, CONN_BUF_SIZE, NULL);
	h->parsed = h->parsed + len - b->len;
	b->len = len;
}

/* The final response head is all in u2c from resp_at: drop its hop-by-hop
 * fields and tell the client what becomes of its connection. It ends after
 * this response when the client asked for that (Connection: close, or
 * HTTP/1.0 without keep-alive), when the response ends with the upstream's
 * close, or when the request was not read whole (what the client sends next
 * is the rest of its body, not a request). An HTTP/1.0 client, or any client
 * of an HTTP/1.0 response, is told keep-alive outright. -ENOSPC when the
 * head no longer fits the buffer.
 */
int hop_response(struct conn *c)
{
	struct http_txn *h = &c->h;
	struct half *b = &c->u2c;
	size_t end = b->off + b->len, head = hop_head_len(b->buf + h->resp_at, end - h->resp_at);
	const char *add = NULL;
	size_t len;
	int err;

	if (!head)
		return -EBADMSG;	/* cannot be: both parsers saw the head end */
	h->resp_close = !h->keep_alive || h->rf.until_eof || !h->complete || c->c2u.eof;
	if (h->resp_close)
		add = HOP_CLOSE;
	else if (h->qf.http10 || h->rf.http10)
		add = HOP_KEEP_ALIVE;
	len = end - h->resp_at;
	err = hop_rewrite(b->buf + h->resp_at, head, &len, CONN_BUF_SIZE - h->resp_at, add);
	if (err)
		return err;
	b->len = h->resp_at - b->off + len;
	h->resp_hold = false;
	h->resp_rewritten = true;
	return 0;
}
