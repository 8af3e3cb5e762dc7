// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/admin/http.h: a unix socket listener on the agent's
 * loop, one fixed input buffer per client fed to http-parser, a route table,
 * and one response at a time per connection (pipelined requests wait in the
 * buffer). Every client lives under one deadline per request, so a slow or
 * idle client cannot hold one of the HTTP_MAX_CLIENTS slots for long.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>
#include <json-c/json.h>

#include "addr.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "unix_sock.h"

#define HTTP_HEAD_MAX 512	/* status line and our few headers */
#define STR(x) #x
#define XSTR(x) STR(x)

static const char too_large_msg[] = "request larger than " XSTR(HTTP_MAX_REQUEST) " bytes";

struct http_client {
	struct http_server *srv;
	int fd;
	struct loop_timer deadline;	/* the current request's */
	http_parser parser;	/* .data = this client */
	bool writing;		/* a response is going out; input waits */
	bool want_out;		/* registered for EPOLLOUT rather than EPOLLIN */
	bool close_after;	/* close once the response is out */
	bool complete;		/* the parser saw the end of a request */
	bool too_large;		/* Content-Length alone exceeds HTTP_MAX_REQUEST */
	size_t in_len;		/* bytes received into @in */
	size_t parsed;		/* bytes of @in consumed by the parser */
	size_t url_off, url_len;	/* the request target, inside @in */
	char *body;		/* HTTP_MAX_REQUEST + 1 bytes, allocated on first use */
	size_t body_len;
	char *out;		/* the response being written */
	size_t out_len, out_off;
	char in[HTTP_MAX_REQUEST];
};

struct http_server {
	struct loop *loop;
	int fd;
	char path[108];		/* sizeof(sockaddr_un.sun_path) */
	const struct http_route *routes;
	size_t n_routes;
	void *ctx;
	unsigned int timeout_ms;
	size_t n_clients;
	struct http_client *clients[HTTP_MAX_CLIENTS];
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
		c->url_off = (size_t)(at - c->in);
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

static void client_free(struct http_client *c)
{
	struct http_server *s = c->srv;

	for (size_t i = 0; i < HTTP_MAX_CLIENTS; i++) {
		if (s->clients[i] == c) {
			s->clients[i] = NULL;
			s->n_clients--;
		}
	}
	loop_timer_del(s->loop, &c->deadline);
	(void)loop_del_fd(s->loop, c->fd);
	close(c->fd);
	free(c->body);
	free(c->out);
	free(c);
}

static void on_deadline(struct loop_timer *t, uint64_t now)
{
	struct http_client *c = (struct http_client *)((char *)t -
						       offsetof(struct http_client, deadline));

	(void)now;
	log_debug("admin: client missed its %u ms deadline, closing", c->srv->timeout_ms);
	client_free(c);
}

static int arm_deadline(struct http_client *c)
{
	return loop_timer_set(c->srv->loop, &c->deadline, c->srv->timeout_ms, on_deadline);
}

static void start_request(struct http_client *c)
{
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
	char head[HTTP_HEAD_MAX];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		     "Connection: %s\r\n\r\n",
		     status, http_status_str((enum http_status)status), ctype, body_len,
		     extra_header ? extra_header : "", c->close_after ? "close" : "keep-alive");
	if (n < 0 || (size_t)n >= sizeof(head))
		return -EINVAL;
	if (head_only)
		body_len = 0;
	c->out = malloc((size_t)n + body_len);
	if (!c->out)
		return -ENOMEM;
	memcpy(c->out, head, (size_t)n);
	if (body_len)
		memcpy(c->out + n, body, body_len);
	c->out_len = (size_t)n + body_len;
	c->out_off = 0;
	c->writing = true;
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

	err = fn(req, &resp, c->srv->ctx);
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
	struct http_server *s = c->srv;
	struct http_parser_url u;
	struct http_request req = { .query = "", .body = "" };
	const char *method = http_method_str((enum http_method)c->parser.method);
	bool head = c->parser.method == HTTP_HEAD, path_known = false;
	char *url = c->in + c->url_off;
	char msg[160], methods[64] = "", allow[96];
	size_t off = 0;

	c->close_after = !http_should_keep_alive(&c->parser);
	http_parser_url_init(&u);
	if (!c->url_len || http_parser_parse_url(url, c->url_len, 0, &u) ||
	    !(u.field_set & (1 << UF_PATH))) {
		c->close_after = true;
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

/* Parse what has arrived. 0 or -errno (the client is then dropped). */
static int parse_input(struct http_client *c)
{
	enum http_errno herr;
	char msg[128];
	size_t n;

	n = http_parser_execute(&c->parser, &parser_settings, c->in + c->parsed,
				c->in_len - c->parsed);
	c->parsed += n;
	if (c->complete)
		return dispatch(c);
	herr = HTTP_PARSER_ERRNO(&c->parser);
	if (herr != HPE_OK || c->too_large) {
		c->close_after = true;
		if (c->too_large)
			return respond_error(c, 413, too_large_msg, NULL);
		snprintf(msg, sizeof(msg), "malformed request: %s", http_errno_description(herr));
		return respond_error(c, 400, msg, NULL);
	}
	if (c->in_len == sizeof(c->in)) {
		c->close_after = true;
		return respond_error(c, 413, too_large_msg, NULL);
	}
	return 0;
}

static int watch(struct http_client *c, bool out)
{
	if (c->want_out == out)
		return 0;
	c->want_out = out;
	return loop_mod_fd(c->srv->loop, c->fd, out ? EPOLLOUT : EPOLLIN);
}

/* Send what is queued. 0 when done, -EAGAIN when the socket is full, -errno. */
static int flush(struct http_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		c->out_off += (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	c->writing = false;
	return 0;
}

/* Answer requests until the client has to send more or take what is queued.
 * Frees @c on error and after a response that closes the connection. A loop,
 * not recursion, so pipelined requests cannot deepen the stack.
 */
static void client_run(struct http_client *c)
{
	int err = 0;

	for (;;) {
		if (c->writing) {
			err = flush(c);
			if (err == -EAGAIN) {
				err = watch(c, true);
				if (err)
					break;
				return;
			}
			if (err || c->close_after)
				break;
			/* Keep-alive: the next request starts from the unparsed rest. */
			memmove(c->in, c->in + c->parsed, c->in_len - c->parsed);
			c->in_len -= c->parsed;
			c->parsed = 0;
			start_request(c);
			err = arm_deadline(c);
			if (err)
				break;
			continue;
		}
		if (c->parsed == c->in_len) {
			err = watch(c, false);
			if (err)
				break;
			return;
		}
		err = parse_input(c);
		if (err)
			break;
		if (!c->writing) {
			err = watch(c, false);
			if (err)
				break;
			return;
		}
	}
	if (err && err != -EPIPE && err != -ECONNRESET)
		log_debug("admin: dropping client: %s", strerror(-err));
	client_free(c);
}

static void on_client(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct http_client *c = ctx;
	ssize_t n;

	(void)loop;
	if (events & EPOLLERR) {
		client_free(c);
		return;
	}
	if (c->writing) {
		client_run(c);
		return;
	}
	n = recv(fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* EOF: a half-sent request is abandoned; nothing is owed. */
		client_free(c);
		return;
	}
	c->in_len += (size_t)n;
	client_run(c);
}

/* The slots are full: say so and hang up, without reading the request. */
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
	close(fd);
}

static void on_accept(struct loop *loop, int lfd, uint32_t events, void *ctx)
{
	struct http_server *s = ctx;

	(void)events;
	for (;;) {
		struct http_client *c;
		size_t slot = 0;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR)
				log_debug("admin: accept: %s", strerror(errno));
			return;
		}
		if (s->n_clients == HTTP_MAX_CLIENTS) {
			refuse(fd);
			continue;
		}
		while (s->clients[slot])
			slot++;
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = s;
		c->fd = fd;
		start_request(c);
		if (loop_add_fd(loop, fd, EPOLLIN, on_client, c)) {
			close(fd);
			free(c);
			continue;
		}
		s->clients[slot] = c;
		s->n_clients++;
		if (arm_deadline(c))
			client_free(c);
	}
}

/* ---------------------------------------------------------------- server */

static struct http_server *server_alloc(struct loop *loop, const struct http_route *routes,
					size_t n_routes, void *ctx)
{
	struct http_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->loop = loop;
	s->routes = routes;
	s->n_routes = n_routes;
	s->ctx = ctx;
	s->timeout_ms = HTTP_CLIENT_TIMEOUT_MS;
	s->fd = -1;
	return s;
}

struct http_server *http_server_new(struct loop *loop, const char *sock_path, mode_t mode,
				    const struct http_route *routes, size_t n_routes, void *ctx)
{
	struct http_server *s;
	int err;

	if (strlen(sock_path) >= sizeof(s->path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	s = server_alloc(loop, routes, n_routes, ctx);
	if (!s)
		return NULL;
	memcpy(s->path, sock_path, strlen(sock_path) + 1);
	/* unix_listen() narrows the umask around bind(), so the socket file
	 * never exists with a wider mode than @mode.
	 */
	s->fd = unix_listen(sock_path, mode, HTTP_MAX_CLIENTS);
	if (s->fd < 0) {
		err = s->fd;
		goto out_free;
	}
	err = loop_add_fd(loop, s->fd, EPOLLIN, on_accept, s);
	if (err)
		goto out_close;
	return s;

out_close:
	close(s->fd);
	(void)unlink(sock_path);
out_free:
	free(s);
	errno = -err;
	return NULL;
}

struct http_server *http_server_new_tcp(struct loop *loop, const struct addr *a,
					const struct http_route *routes, size_t n_routes,
					void *ctx)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_to_sockaddr(a, &ss);
	struct http_server *s;
	int one = 1, err;

	s = server_alloc(loop, routes, n_routes, ctx);
	if (!s)
		return NULL;
	s->fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd == -1) {
		err = -errno;
		goto out_free;
	}
	/* A restarted agent must not wait out TIME_WAIT of the last scrape. */
	if (setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(s->fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(s->fd, HTTP_MAX_CLIENTS) == -1) {
		err = -errno;
		goto out_close;
	}
	err = loop_add_fd(loop, s->fd, EPOLLIN, on_accept, s);
	if (err)
		goto out_close;
	return s;

out_close:
	close(s->fd);
out_free:
	free(s);
	errno = -err;
	return NULL;
}

int http_server_local_addr(const struct http_server *s, struct addr *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(s->fd, (struct sockaddr *)&ss, &len) == -1)
		return -errno;
	return addr_from_sockaddr(out, (struct sockaddr *)&ss, len);
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
	s->timeout_ms = timeout_ms;
}

void http_server_free(struct http_server *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < HTTP_MAX_CLIENTS; i++) {
		if (s->clients[i])
			client_free(s->clients[i]);
	}
	(void)loop_del_fd(s->loop, s->fd);
	close(s->fd);
	if (s->path[0])
		(void)unlink(s->path);
	free(s);
}
