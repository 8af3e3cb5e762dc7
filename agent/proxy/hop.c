// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/proxy/hop.h: dropping hop-by-hop field lines from
 * a head in place, and what the HTTP relay's request and response heads
 * become on their next hop. Heads are small (at most a buffer,
 * CONN_BUF_SIZE) and rewritten once per message; the tokens Connection
 * names are gathered once per head and each line is judged against them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/conn.h"
#include "proxy/hop.h"

/* A name and its length, so a field line's name is compared only with the
 * names of its length.
 */
struct name {
	const char *s;
	size_t len;
};

#define NAME(lit) { (lit), sizeof(lit) - 1 }

/* Fields that are hop-by-hop whatever Connection says (RFC 9110 7.6.1, and
 * Proxy-Connection, which clients still send). Transfer-Encoding is too, but
 * the relay passes bodies on as they are framed, so it stays.
 */
static const struct name always[] = {
	NAME("connection"),
	NAME("keep-alive"),
	NAME("proxy-connection"),
	NAME("te"),
	NAME("trailer"),
	NAME("upgrade"),
};

/* Fields a Connection field cannot make hop-by-hop: dropping them would
 * change where the message ends for the next hop, or where it goes.
 */
static const struct name kept[] = {
	NAME("content-length"),
	NAME("transfer-encoding"),
	NAME("host"),
};

static bool is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool in_list(const struct name *list, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (list[i].len == len && !strncasecmp(list[i].s, name, len))
			return true;
	return false;
}

/* The first CRLF in @p..@end, or NULL: memchr() for the LF (a vectorised
 * scan), where memmem() set up a two-byte search for every line.
 */
static const char *find_crlf(const char *p, const char *end)
{
	const char *lf;

	for (const char *q = p; q < end; q = lf + 1) {
		lf = memchr(q, '\n', (size_t)(end - q));
		if (!lf)
			return NULL;
		if (lf > p && lf[-1] == '\r')
			return lf - 1;
	}
	return NULL;
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
	crlf = find_crlf(p, end);
	if (!crlf)
		return NULL;
	colon = memchr(p, ':', (size_t)(crlf - p));
	*name_len = colon ? (size_t)(colon - p) : 0;
	*line_len = (size_t)(crlf + 2 - p);
	return p;
}

/* The tokens the Connection fields of a head name, gathered once per
 * rewrite and sorted (by length, then case-insensitively) so that each other
 * line is judged by a binary search: a head of many Connection lines and
 * many other lines costs n log n, where judging every line against every
 * Connection line was quadratic (a 16 KiB head made of both held a worker
 * for a few hundred milliseconds). Room for HOP_TOKENS_INLINE on the stack;
 * a head that names more, which no real peer sends, takes them from the
 * heap.
 */
#define HOP_TOKENS_INLINE 16

struct conn_tokens {
	struct name *v;
	size_t n;
	struct name inline_v[HOP_TOKENS_INLINE];
};

static bool is_connection(const char *p, size_t nl)
{
	return nl == 10 && !strncasecmp(p, "connection", 10);
}

static int name_cmp(const void *a, const void *b)
{
	const struct name *x = a, *y = b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return strncasecmp(x->s, y->s, x->len);
}

/* The tokens of the Connection field line at @p (name @nl, line @ll bytes,
 * CRLF included) into @out, as many as @room holds; returns how many
 * there are.
 */
static size_t line_tokens(const char *p, size_t nl, size_t ll, struct name *out, size_t room)
{
	const char *v = p + nl + 1, *vend = p + ll - 2;
	size_t n = 0;

	while (v < vend) {
		const char *t;

		while (v < vend && (is_ows(*v) || *v == ','))
			v++;
		t = v;
		while (v < vend && *v != ',' && !is_ows(*v))
			v++;
		if (v == t)
			continue;
		if (n < room)
			out[n] = (struct name){ t, (size_t)(v - t) };
		n++;
	}
	return n;
}

/* Gather the tokens of every Connection line of @fields..@end into @ct.
 * -ENOMEM when there are more than the stack holds and no heap for them.
 */
static int conn_tokens_get(struct conn_tokens *ct, const char *fields, const char *end)
{
	size_t nl, ll, n = 0;
	const char *p;

	ct->v = ct->inline_v;
	for (p = fields; field_line(p, end, &nl, &ll); p += ll)
		if (is_connection(p, nl))
			n += line_tokens(p, nl, ll, NULL, 0);
	if (n > HOP_TOKENS_INLINE) {
		ct->v = malloc(n * sizeof(*ct->v));
		if (!ct->v)
			return -ENOMEM;
	}
	ct->n = 0;
	for (p = fields; field_line(p, end, &nl, &ll); p += ll)
		if (is_connection(p, nl))
			ct->n += line_tokens(p, nl, ll, ct->v + ct->n, n - ct->n);
	if (ct->n > 1)
		qsort(ct->v, ct->n, sizeof(*ct->v), name_cmp);
	return 0;
}

static void conn_tokens_put(struct conn_tokens *ct)
{
	if (ct->v != ct->inline_v)
		free(ct->v);
}

/* Whether the Connection fields of the head name @name. */
static bool named_by_connection(const struct conn_tokens *ct, const char *name, size_t len)
{
	struct name key = { name, len };

	return ct->n && bsearch(&key, ct->v, ct->n, sizeof(*ct->v), name_cmp);
}

size_t hop_head_len(const char *buf, size_t len)
{
	const char *end = buf + len;

	/* The first CRLF CRLF, found by its first LF. */
	for (const char *p = buf, *lf; p < end; p = lf + 1) {
		lf = memchr(p, '\n', (size_t)(end - p));
		if (!lf || end - lf < 3)
			return 0;
		if (lf > buf && lf[-1] == '\r' && lf[1] == '\r' && lf[2] == '\n')
			return (size_t)(lf + 3 - buf);
	}
	return 0;
}

/* Whether the field line at @p, name @nl bytes long, goes. */
static bool dropped(const struct conn_tokens *ct, const char *p, size_t nl)
{
	if (in_list(kept, sizeof(kept) / sizeof(kept[0]), p, nl))
		return false;
	return in_list(always, sizeof(always) / sizeof(always[0]), p, nl) ||
	       named_by_connection(ct, p, nl);
}

int hop_rewrite(char *buf, size_t head_len, size_t *len, size_t cap, const char *add)
{
	const char *end = buf + head_len, *fields, *p;
	size_t add_len = add ? strlen(add) : 0, drop = 0, nl, ll;
	struct conn_tokens ct;
	char *w;
	int err;

	fields = find_crlf(buf, end);
	if (!fields)
		return 0;
	fields += 2;
	err = conn_tokens_get(&ct, fields, end);
	if (err)
		return err;
	/* Measure first: nothing moves unless the result fits. */
	for (p = fields; field_line(p, end, &nl, &ll); p += ll)
		if (dropped(&ct, p, nl))
			drop += ll;
	if (*len - drop + add_len > cap || (!drop && !add_len)) {
		/* Too big, or nothing hop-by-hop (most requests): nothing moves. */
		conn_tokens_put(&ct);
		return *len - drop + add_len > cap ? -ENOSPC : 0;
	}
	/* Mark the lines to drop by their first byte (a NUL cannot start a
	 * name framing.c accepted). The tokens point into the Connection
	 * lines: those are marked last, once every other line is judged.
	 */
	for (p = fields; field_line(p, end, &nl, &ll); p += ll)
		if (!is_connection(p, nl) && dropped(&ct, p, nl))
			*(char *)p = '\0';
	conn_tokens_put(&ct);
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
