/* SPDX-License-Identifier: GPL-2.0-only */
/* A small HTTP/1.1 server on a unix socket for the admin API, driven by the
 * agent's loop and parsed with http-parser (nodejs). Requests and responses are
 * bounded in size and time; a route table maps METHOD + path to handlers.
 */
#ifndef WEFT_HTTP_H
#define WEFT_HTTP_H

#include <stddef.h>
#include <sys/types.h>

struct loop;
struct http_server;

#define HTTP_MAX_REQUEST 65536		/* head + body, bytes */
#define HTTP_MAX_CLIENTS 64
#define HTTP_CLIENT_TIMEOUT_MS 5000	/* a client must finish its request in this time */

struct http_request {
	const char *method;	/* "GET" */
	const char *path;	/* "/v1/pods", without the query */
	const char *query;	/* "pod=a&x=y" or "" */
	const char *body;	/* NUL-terminated; "" if none */
	size_t body_len;
};

struct http_response {
	int status;			/* 200 by default */
	char *body;			/* malloc'd by the handler; the server frees it */
	size_t body_len;
	const char *content_type;	/* "application/json" by default */
};

/* Fill @resp; return 0, or -errno for a 500 with the errno text. May not block. */
typedef int (*http_handler_fn)(const struct http_request *req, struct http_response *resp,
			       void *ctx);

struct http_route {
	const char *method;
	const char *path;	/* exact match */
	http_handler_fn fn;
};

/* Listen on @sock_path (an existing socket file is replaced) with file mode
 * @mode, serving @routes (borrowed; must outlive the server). Unknown paths get
 * 404, a known path with another method 405, oversized or malformed requests 400
 * or 413, all as JSON {"error": "..."}. Returns NULL with errno set on failure.
 */
struct http_server *http_server_new(struct loop *loop, const char *sock_path, mode_t mode,
				    const struct http_route *routes, size_t n_routes, void *ctx);

/* Set the per-client deadline (default HTTP_CLIENT_TIMEOUT_MS) for clients
 * accepted, or requests started, from now on: a client must send a complete
 * request within @timeout_ms of connecting or of its previous response.
 */
void http_server_set_timeout(struct http_server *s, unsigned int timeout_ms);

/* Close every client and the listener and unlink the socket file. Accepts NULL. */
void http_server_free(struct http_server *s);

#endif /* WEFT_HTTP_H */
