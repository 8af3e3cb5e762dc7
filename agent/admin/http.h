/* SPDX-License-Identifier: GPL-2.0-only */
/* A small HTTP/1.1 server on a unix socket for the admin API, driven by the
 * agent's loop and parsed with http-parser (nodejs). Requests and responses are
 * bounded in size and time; a route table maps METHOD + path to handlers.
 */
#ifndef WEFT_HTTP_H
#define WEFT_HTTP_H

#include <stddef.h>
#include <sys/types.h>

struct addr;
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

/* The same server on a TCP socket bound to @a (port 0: the kernel picks
 * one; see http_server_local_addr()), for the Prometheus endpoint. NULL with
 * errno set.
 */
struct http_server *http_server_new_tcp(struct loop *loop, const struct addr *a,
					const struct http_route *routes, size_t n_routes,
					void *ctx);

/* The address a TCP server listens on, with its real port. 0 or -errno. */
int http_server_local_addr(const struct http_server *s, struct addr *out);

/* Look @key up in the query string @query ("a=1&b=x%2Fy") and copy its value,
 * percent-decoded ('+' is a space), into @buf. Returns 1 when found, 0 when
 * absent, -EINVAL for a malformed escape or a NUL byte, -ENAMETOOLONG when
 * the value does not fit @len.
 */
int http_query_get(const char *query, const char *key, char *buf, size_t len);

/* The first parameter name of @query not listed in @known (NULL-terminated),
 * copied into @buf; 1 when there is one, 0 when every name is known.
 */
int http_query_unknown(const char *query, const char *const *known, char *buf, size_t len);

/* Set the per-client deadline (default HTTP_CLIENT_TIMEOUT_MS) for clients
 * accepted, or requests started, from now on: a client must send a complete
 * request within @timeout_ms of connecting or of its previous response.
 */
void http_server_set_timeout(struct http_server *s, unsigned int timeout_ms);

/* Close every client and the listener and unlink the socket file. Accepts NULL. */
void http_server_free(struct http_server *s);

#endif /* WEFT_HTTP_H */
