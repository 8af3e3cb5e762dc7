/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to registry/etcd*.c: etcd v3's JSON gateway (POST /v3/...) over
 * libcurl — unary calls, the watch stream, base64 for keys and values (the
 * transfer set-up and the backoff between attempts: registry/http_client.h).
 * One client per thread; any thread may cancel a client's call in progress,
 * which is how stop() stays prompt.
 */
#ifndef WEFT_REG_ETCD_HTTP_H
#define WEFT_REG_ETCD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "registry/http_client.h"

struct etcd_http;

/* A client, or NULL with errno set. Call curl_global_init() before. */
struct etcd_http *etcd_http_new(void);
/* Accepts NULL. No call may be in progress. */
void etcd_http_free(struct etcd_http *h);

/* Make the call in progress return -ECANCELED at once, and every later call
 * too. Any thread; does not block.
 */
void etcd_http_cancel(struct etcd_http *h);

/* POST @body to @base (an endpoint URL, "http://127.0.0.1:2379") + @path
 * ("/v3/kv/range") and wait at most @timeout_ms for the whole answer. Returns
 * 0 and the parsed answer in *@resp (the caller puts it); or -ECANCELED;
 * -ECONNREFUSED, -ETIMEDOUT, -EIO (transport, message in @err); -EPROTO (not
 * a JSON object, or an HTTP error without one); -EREMOTEIO (the server
 * answered {"error": ...}: its message in @err, its gRPC code in *@code when
 * @code is not NULL). Blocks (at most @timeout_ms).
 */
int etcd_http_call(struct etcd_http *h, const char *base, const char *path, json_object *body,
		   long timeout_ms, json_object **resp, int *code, char *err, size_t errlen);

/* Called for each message of a stream; a non-zero return ends the stream
 * with that value. @msg is borrowed.
 */
typedef int (*etcd_http_msg_fn)(json_object *msg, void *ctx);

/* POST @body and read the answer as a stream of JSON objects (the gateway's
 * server-streaming calls: /v3/watch), calling @fn for each. Returns when
 * @fn returns non-zero (that value), the server ends the stream or the
 * connection breaks (-ECONNRESET, or a transport error as etcd_http_call()),
 * the stream is not JSON (-EPROTO), or on cancel (-ECANCELED). Blocks for as
 * long as the stream lasts; TCP keepalive notices a dead peer in ~20 s.
 */
int etcd_http_stream(struct etcd_http *h, const char *base, const char *path, json_object *body,
		     etcd_http_msg_fn fn, void *ctx, char *err, size_t errlen);

/* Add @v to object @o under @key. Consumes @v even on failure and accepts a
 * NULL @v (a failed constructor), so a request body is a flat list of calls
 * whose results can be OR-ed. 0 or -ENOMEM.
 */
int etcd_json_add(json_object *o, const char *key, json_object *v);

/* Base64 (RFC 4648, padded) of @n bytes of @data as a new JSON string, or
 * NULL (out of memory).
 */
json_object *etcd_b64_string(const void *data, size_t n);

/* Decode the base64 string member @key of @o into a new NUL-terminated
 * buffer (*@out, the caller frees; *@len bytes without the NUL). An absent
 * member is the empty value (proto3 JSON leaves out empty fields).
 * 0, -EINVAL (not base64) or -ENOMEM.
 */
int etcd_b64_member(json_object *o, const char *key, char **out, size_t *len);

/* Integer member @key of @o (the gateway writes int64 as a string); 0 when
 * absent (proto3 JSON leaves out zeros). 0 or -EINVAL.
 */
int etcd_i64_member(json_object *o, const char *key, int64_t *out);

#endif /* WEFT_REG_ETCD_HTTP_H */
