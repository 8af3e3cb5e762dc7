/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to registry/consul*.c: Consul's HTTP API over libcurl. One client
 * (a curl multi handle) per thread runs any number of calls at once — the
 * watcher keeps one blocking query per service in flight — and another
 * thread may cancel it, which is how stop() stays prompt. Knows nothing of
 * the catalogue: a call is a method, a URL, headers, an optional body, and
 * an answer with its status and X-Consul-Index.
 */
#ifndef WEFT_REG_CONSUL_HTTP_H
#define WEFT_REG_CONSUL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "registry/http_client.h"

struct consul_http;

/* One call: started by consul_call_start(), finished when
 * consul_http_next() hands it back, reusable after.
 */
struct consul_call {
	CURL *easy;			/* NULL until first started */
	struct curl_slist *headers;
	bool busy;			/* in flight */
	int result;			/* 0 or -errno of the transport (message in err) */
	long status;			/* HTTP status, 0 when none */
	uint64_t index;			/* X-Consul-Index, 0 when absent */
	bool has_index;
	char *body;			/* NUL-terminated answer, NULL when empty */
	size_t len;
	bool too_large;
	char err[CURL_ERROR_SIZE];
	void *ctx;			/* the caller's */
};

/* A client verifying https servers against @ca_file (NULL or "": the
 * system's CAs). NULL with errno set. Call curl_global_init() before.
 */
struct consul_http *consul_http_new(const char *ca_file);
/* Ends every call in flight (leaving them not busy) and frees. Accepts NULL. */
void consul_http_free(struct consul_http *h);

/* Make every wait return at once, and every later start fail with
 * -ECANCELED. Any thread; does not block.
 */
void consul_http_cancel(struct consul_http *h);

/* Start @method ("GET", "PUT") of @url with @token as X-Consul-Token (none
 * when NULL or ""), @body when not NULL, bounded by @timeout_ms in all.
 * 0, -ECANCELED or -ENOMEM. Does not block.
 */
int consul_call_start(struct consul_http *h, struct consul_call *c, const char *method,
		      const char *url, const char *token, const char *body, long timeout_ms);

/* Abort @c if in flight (it is not handed back). */
void consul_call_abort(struct consul_http *h, struct consul_call *c);

/* Free what @c holds (aborting it first). */
void consul_call_free(struct consul_http *h, struct consul_call *c);

/* Wait up to @ms for a call to finish: 0 with it in *@done (result, status,
 * index, body filled), 0 with *@done NULL when time ran out or nothing is in
 * flight, or -ECANCELED. Blocks at most @ms.
 */
int consul_http_next(struct consul_http *h, int ms, struct consul_call **done);

/* Start @c and wait for it alone (other calls progress meanwhile but are
 * not handed back: use a client of its own). 0 (see c->result, c->status)
 * or -ECANCELED/-ENOMEM. Blocks at most @timeout_ms.
 */
int consul_http_do(struct consul_http *h, struct consul_call *c, const char *method,
		   const char *url, const char *token, const char *body, long timeout_ms);

#endif /* WEFT_REG_CONSUL_HTTP_H */
