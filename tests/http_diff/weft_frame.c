// SPDX-License-Identifier: GPL-2.0-only
/* weft's side of the differential framing test (tests/http_diff/run.py):
 * proxy/http.c itself, included to reach its static request_parse() and
 * response_parse(), frames one request and the response to it, the way the
 * relay does, and says what it decided. Input files are the HTTP fuzz
 * target's (tests/fuzz/fuzz_proxy_http.c): one byte giving the size of the
 * pieces the sockets deliver, the client's bytes, a NUL, the upstream's.
 * For each file, one line:
 *   <file> req accept <method> <consumed> <body> | req reject | req incomplete | req tunnel
 *   then, after an accepted request:
 *   resp accept <status> <consumed> <body> | resp reject | resp incomplete
 * where consumed counts the bytes that belong to the message (the next one
 * starts there) and body the payload bytes framed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../../agent/proxy/http.c"

#define INPUT_MAX (4 * CONN_BUF_SIZE)

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* The response to @c's request from @resp, fed in @piece-byte reads. */
static void frame_response(struct conn *c, const char *resp, size_t resp_len, size_t piece)
{
	struct http_txn *h = &c->h;
	struct up *u = c->up;
	size_t off = 0, consumed = 0;

	http_parser_init(&u->rp, HTTP_RESPONSE);
	u->rp.data = c;
	framing_init(&h->rf, FRAMING_RESPONSE);
	h->rf.req_head = h->is_head;
	while (!h->resp_done && off < resp_len) {
		size_t n = min_sz(resp_len - off, piece);
		ssize_t used = response_parse(c, (char *)resp + off, n);

		if (used < 0) {
			printf(" resp reject");
			return;
		}
		consumed += (size_t)used;
		off += n;
	}
	if (!h->resp_done) {
		/* The upstream closed here: as upstream_read() takes an EOF. */
		(void)http_parser_execute(&u->rp, &resp_settings, NULL, 0);
		if (HTTP_PARSER_ERRNO(&u->rp) == HPE_PAUSED && h->resp_head && !framing_eof(&h->rf))
			h->resp_done = true;
	}
	if (!h->resp_done) {
		printf(" resp incomplete");
		return;
	}
	printf(" resp accept %d %zu %llu", h->status, consumed, (unsigned long long)h->rf.body);
}

static int frame_file(const char *path)
{
	static char data[INPUT_MAX];
	const char *req, *resp, *nul;
	size_t size, req_len, resp_len, fed = 0, piece;
	struct conn *c;
	struct up *u;
	FILE *fp = fopen(path, "rb");

	if (!fp) {
		perror(path);
		return -1;
	}
	size = fread(data, 1, sizeof(data), fp);
	fclose(fp);
	printf("%s", path);
	if (size < 1) {
		printf(" req incomplete\n");
		return 0;
	}
	piece = 1 + (size_t)(unsigned char)data[0] * 4;
	req = data + 1;
	nul = memchr(req, '\0', size - 1);
	req_len = nul ? (size_t)(nul - req) : size - 1;
	resp = nul ? nul + 1 : req + req_len;
	resp_len = (size_t)(data + size - resp);
	if (req_len > CONN_BUF_SIZE)
		req_len = CONN_BUF_SIZE;
	c = calloc(1, sizeof(*c));
	u = calloc(1, sizeof(*u));
	if (!c || !u || !(c->c2u.buf = malloc(CONN_BUF_SIZE)))
		abort();
	c->up = u;
	u->c = c;
	memcpy(c->c2u.buf, req, req_len);
	txn_reset(c);
	while (!c->h.complete && !c->h.upgrade) {
		if (request_parse(c)) {
			printf(" req reject\n");
			goto out;
		}
		if (c->h.complete || c->h.upgrade || fed == req_len)
			break;
		fed += min_sz(req_len - fed, piece);
		c->c2u.len = fed;
	}
	if (c->h.upgrade) {
		printf(" req tunnel\n");
		goto out;
	}
	if (!c->h.complete) {
		printf(" req incomplete\n");
		goto out;
	}
	printf(" req accept %s %zu %llu", http_method_str((enum http_method)c->h.qp.method),
	       c->h.parsed, (unsigned long long)c->h.qf.body);
	frame_response(c, resp, resp_len, piece);
	printf("\n");
out:
	free(u);
	free(c->c2u.buf);
	free(c);
	return 0;
}

int main(int argc, char **argv)
{
	int err = 0;

	for (int i = 1; i < argc; i++)
		if (frame_file(argv[i]))
			err = 1;
	return err;
}
