// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/admin/http.h: HTTP/1.1 over the server core of
 * agent/srv.h (which owns the listener, the HTTP_MAX_CLIENTS slots, each
 * client's input buffer and deadline): http-parser over the buffer, a route
 * table, and one response at a time per connection (pipelined requests wait
 * in the buffer).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <http_parser.h>
#include <json-c/json.h>

#include "addr.h"
#include "http.h"
#include "srv.h"

#define HTTP_HEAD_MAX 512	/* status line and our few headers */
#define STR(x) #x
#define XSTR(x) STR(x)

static const char too_large_msg[] = "request larger than " XSTR(HTTP_MAX_REQUEST) " bytes";

struct http_client {
	struct srv_client base;	/* first: @in, the fd, the deadline */
	http_parser parser;	/* .data = this client */
	bool complete;		/* the parser saw the end of a request */
	bool too_large;		/* Content-Length alone exceeds HTTP_MAX_REQUEST */
	size_t url_off, url_len;	/* the request target, inside @in */
	char *body;		/* HTTP_MAX_REQUEST + 1 bytes, allocated on first use */
	size_t body_len;
};

struct http_server {
	struct srv *srv;
	const struct http_route *routes;
	size_t n_routes;
	void *ctx;
};

/* ---------------------------------------------------------------- parser callbacks */

static int on_message_begin(http_parser *p)
{
	struct http_client *c = p->data;

	c->url_off = c->url_len = 0;
	c->body_len = 0;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_client *c = p->data;

	/* The target may arrive in pieces, but always contiguous in @in. */
	if (!c->url_len)
		c->url_off = (size_t)(at - c->base.in);
	c->url_len += len;
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_client *c = p->data;

	/* Refuse a declared body that cannot fit before reading any of it.
	 * content_length is ULLONG_MAX when the request has none.
	 */
	if (p->content_length != UINT64_MAX && p->content_length > HTTP_MAX_REQUEST) {
		c->too_large = true;
		return -1;
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_client *c = p->data;

	if (!c->body) {
		c->body = malloc(HTTP_MAX_REQUEST + 1);
		if (!c->body)
			return -1;
	}
	/* Chunked bodies are not contiguous in @in, so they are copied out. The
	 * raw request fits @in, hence the body fits HTTP_MAX_REQUEST.
	 */
	if (c->body_len + len > HTTP_MAX_REQUEST) {
		c->too_large = true;
		return -1;
	}
	memcpy(c->body + c->body_len, at, len);
	c->body_len += len;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_client *c = p->data;

	/* Stop here: bytes after this request belong to the next one, which is
	 * parsed only once this one is answered.
	 */
	c->complete = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* ---------------------------------------------------------------- clients */

/* srv_ops.start: a new request begins. */
static void start_request(struct srv_client *sc)
{
	struct http_client *c = (struct http_client *)sc;

	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->complete = false;
	c->too_large = false;
	c->url_off = c->url_len = 0;
	c->body_len = 0;
}

/* Queue a response. Takes nothing: @body is copied. 0 or -ENOMEM. */
static int respond(struct http_client *c, int status, const char *ctype, const char *body,
		   size_t body_len, bool head_only, const char *extra_header)
{
	char head[HTTP_HEAD_MAX], *out;
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		     "Connection: %s\r\n\r\n",
		     status, http_status_str((enum http_status)status), ctype, body_len,
		     extra_header ? extra_header : "",
		     c->base.close_after ? "close" : "keep-alive");
	if (n < 0 || (size_t)n >= sizeof(head))
		return -EINVAL;
	if (head_only)
		body_len = 0;
	out = malloc((size_t)n + body_len);
	if (!out)
		return -ENOMEM;
	memcpy(out, head, (size_t)n);
	if (body_len)
		memcpy(out + n, body, body_len);
	srv_reply(&c->base, out, (size_t)n + body_len);
	return 0;
}

static int respond_error(struct http_client *c, int status, const char *msg,
			 const char *extra_header)
{
	struct json_object *o = json_object_new_object();
	const char *text;
	int err;

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "error", json_object_new_string(msg));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
	err = respond(c, status, "application/json", text, strlen(text), false, extra_header);
	json_object_put(o);
	return err;
}

/* Run the handler of @route; a failing handler becomes a 500. */
static int run_handler(struct http_client *c, http_handler_fn fn, const struct http_request *req,
		       bool head_only)
{
	struct http_response resp = { .status = 200, .content_type = "application/json" };
	char msg[128];
	int err;

	err = fn(req, &resp, ((struct http_server *)c->base.ctx)->ctx);
	if (!err && (resp.status < 100 || resp.status > 599))
		err = -EINVAL;
	if (err) {
		free(resp.body);
		snprintf(msg, sizeof(msg), "internal error: %s", strerror(err < 0 ? -err : err));
		return respond_error(c, 500, msg, NULL);
	}
	err = respond(c, resp.status, resp.content_type ? resp.content_type : "application/json",
		      resp.body ? resp.body : "", resp.body ? resp.body_len : 0, head_only, NULL);
	free(resp.body);
	return err;
}

/* Route a complete request. 0 or -errno (the client is then dropped). */
static int dispatch(struct http_client *c)
{
	struct http_server *s = c->base.ctx;
	struct http_parser_url u;
	struct http_request req = { .query = "", .body = "" };
	const char *method = http_method_str((enum http_method)c->parser.method);
	bool head = c->parser.method == HTTP_HEAD, path_known = false;
	char *url = c->base.in + c->url_off;
	char msg[160], methods[64] = "", allow[96];
	size_t off = 0;

	c->base.close_after = !http_should_keep_alive(&c->parser);
	http_parser_url_init(&u);
	if (!c->url_len || http_parser_parse_url(url, c->url_len, 0, &u) ||
	    !(u.field_set & (1 << UF_PATH))) {
		c->base.close_after = true;
		return respond_error(c, 400, "malformed request target", NULL);
	}
	/* The head is consumed, so the byte after the path ('?', '#' or the
	 * space before the version) can become the terminating NUL.
	 */
	url[u.field_data[UF_PATH].off + u.field_data[UF_PATH].len] = '\0';
	req.path = url + u.field_data[UF_PATH].off;
	if (u.field_set & (1 << UF_QUERY)) {
		url[u.field_data[UF_QUERY].off + u.field_data[UF_QUERY].len] = '\0';
		req.query = url + u.field_data[UF_QUERY].off;
	}
	if (c->body) {
		c->body[c->body_len] = '\0';
		req.body = c->body;
	}
	req.body_len = c->body_len;
	req.method = method;

	for (size_t i = 0; i < s->n_routes; i++) {
		const struct http_route *r = &s->routes[i];

		if (strcmp(r->path, req.path))
			continue;
		path_known = true;
		if (!strcmp(r->method, method))
			return run_handler(c, r->fn, &req, false);
		/* HEAD is GET without the body (RFC 9110 9.3.2). */
		if (head && !strcmp(r->method, "GET")) {
			req.method = "GET";
			return run_handler(c, r->fn, &req, true);
		}
		if (off < sizeof(methods))
			off += (size_t)snprintf(methods + off, sizeof(methods) - off, "%s%s",
						off ? ", " : "", r->method);
	}
	if (path_known) {
		snprintf(msg, sizeof(msg), "method %s not allowed on %.64s", method, req.path);
		snprintf(allow, sizeof(allow), "Allow: %s\r\n", methods);
		return respond_error(c, 405, msg, allow);
	}
	snprintf(msg, sizeof(msg), "no such path '%.64s'", req.path);
	return respond_error(c, 404, msg, NULL);
}

/* srv_ops.input: parse what has arrived. 0 or -errno (the client is then
 * dropped).
 */
static int parse_input(struct srv_client *sc)
{
	struct http_client *c = (struct http_client *)sc;
	enum http_errno herr;
	char msg[128];
	size_t n;

	n = http_parser_execute(&c->parser, &parser_settings, sc->in + sc->used,
				sc->in_len - sc->used);
	sc->used += n;
	if (c->complete)
		return dispatch(c);
	herr = HTTP_PARSER_ERRNO(&c->parser);
	if (herr != HPE_OK || c->too_large) {
		sc->close_after = true;
		if (c->too_large)
			return respond_error(c, 413, too_large_msg, NULL);
		snprintf(msg, sizeof(msg), "malformed request: %s", http_errno_description(herr));
		return respond_error(c, 400, msg, NULL);
	}
	if (sc->in_len == HTTP_MAX_REQUEST) {
		sc->close_after = true;
		return respond_error(c, 413, too_large_msg, NULL);
	}
	return 0;
}

/* srv_ops.done: the client goes. */
static void client_done(struct srv_client *sc)
{
	struct http_client *c = (struct http_client *)sc;

	free(c->body);
	c->body = NULL;
}

/* srv_ops.refuse: the slots are full: say so, without reading the request. */
static void refuse(int fd)
{
	static const char body[] = "{\"error\":\"too many admin clients\"}";
	char resp[HTTP_HEAD_MAX];
	int n;

	n = snprintf(resp, sizeof(resp),
		     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     sizeof(body) - 1, body);
	/* Best effort: a client that cannot take 200 bytes learns by the close. */
	if (n > 0 && (size_t)n < sizeof(resp))
		(void)send(fd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static const struct srv_ops http_ops = {
	.name = "admin",
	.client_size = sizeof(struct http_client),
	.in_max = HTTP_MAX_REQUEST,
	.max_clients = HTTP_MAX_CLIENTS,
	.backlog = HTTP_MAX_CLIENTS,
	.timeout_ms = HTTP_CLIENT_TIMEOUT_MS,
	.start = start_request,
	.input = parse_input,
	.done = client_done,
	.refuse = refuse,
};

/* ---------------------------------------------------------------- server */

static struct http_server *server_alloc(const struct http_route *routes, size_t n_routes,
					void *ctx)
{
	struct http_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->routes = routes;
	s->n_routes = n_routes;
	s->ctx = ctx;
	return s;
}

/* @s serving on @srv, or NULL when @srv is (errno kept, @s freed). */
static struct http_server *server_listen(struct http_server *s, struct srv *srv)
{
	int err = errno;

	if (!srv) {
		free(s);
		errno = err;
		return NULL;
	}
	s->srv = srv;
	return s;
}

struct http_server *http_server_new(struct loop *loop, const char *sock_path, mode_t mode,
				    const struct http_route *routes, size_t n_routes, void *ctx)
{
	struct http_server *s = server_alloc(routes, n_routes, ctx);

	return s ? server_listen(s, srv_new_unix(loop, sock_path, mode, &http_ops, s)) : NULL;
}

struct http_server *http_server_new_tcp(struct loop *loop, const struct addr *a,
					const struct http_route *routes, size_t n_routes,
					void *ctx)
{
	struct http_server *s = server_alloc(routes, n_routes, ctx);

	return s ? server_listen(s, srv_new_tcp(loop, a, &http_ops, s)) : NULL;
}

int http_server_local_addr(const struct http_server *s, struct addr *out)
{
	return srv_local_addr(s->srv, out);
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int http_query_get(const char *query, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);

	for (const char *p = query; *p;) {
		const char *end = strchrnul(p, '&'), *v;
		size_t o = 0;

		if (strncmp(p, key, klen) || (p[klen] != '=' && p + klen != end)) {
			p = *end ? end + 1 : end;
			continue;
		}
		for (v = p[klen] == '=' ? p + klen + 1 : end; v < end; v++) {
			int hi, lo;
			char c = *v;

			if (c == '+') {
				c = ' ';
			} else if (c == '%') {
				if (end - v < 3)
					return -EINVAL;
				hi = hex_val(v[1]);
				lo = hi < 0 ? -1 : hex_val(v[2]);
				if (lo < 0)
					return -EINVAL;
				c = (char)(hi << 4 | lo);
				v += 2;
			}
			if (!c)
				return -EINVAL;
			if (o + 1 >= len)
				return -ENAMETOOLONG;
			buf[o++] = c;
		}
		buf[o] = '\0';
		return 1;
	}
	return 0;
}

int http_query_unknown(const char *query, const char *const *known, char *buf, size_t len)
{
	for (const char *p = query; *p;) {
		const char *end = strchrnul(p, '&');
		size_t n = strcspn(p, "=&");
		bool ok = false;

		for (const char *const *k = known; *k && !ok; k++)
			ok = strlen(*k) == n && !strncmp(*k, p, n);
		if (!ok && n) {
			snprintf(buf, len, "%.*s", (int)(n > 64 ? 64 : n), p);
			return 1;
		}
		p = *end ? end + 1 : end;
	}
	return 0;
}

void http_server_set_timeout(struct http_server *s, unsigned int timeout_ms)
{
	srv_set_timeout(s->srv, timeout_ms);
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	srv_free(s->srv);
	free(s);
}
