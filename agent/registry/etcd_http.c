// SPDX-License-Identifier: GPL-2.0-only
/* etcd's JSON gateway over libcurl (registry/etcd_http.h). Every transfer
 * runs on the client's own multi handle, polled in slices with
 * curl_multi_poll(), so another thread can cut it short with
 * curl_multi_wakeup(): a blocked watch never delays the agent's exit.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "growbuf.h"
#include "registry/etcd_http.h"
#include "registry/http_client.h"

struct etcd_http {
	CURLM *multi;
	CURL *easy;
	struct curl_slist *headers;
	atomic_bool canceled;
	char curl_err[CURL_ERROR_SIZE];
};

/* What a transfer collects: a whole body (unary) or a stream of messages. */
struct xfer {
	struct growbuf body;		/* unary: the body so far */
	json_tokener *tok;		/* stream: the message being parsed */
	size_t msg_bytes;		/* bytes of that message so far */
	etcd_http_msg_fn fn;
	void *ctx;
	int stop;			/* why the write callback ended the transfer */
};

struct etcd_http *etcd_http_new(void)
{
	struct etcd_http *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->multi = curl_multi_init();
	h->easy = curl_easy_init();
	h->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (!h->multi || !h->easy || !h->headers) {
		etcd_http_free(h);
		errno = ENOMEM;
		return NULL;
	}
	return h;
}

void etcd_http_free(struct etcd_http *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->easy);
	curl_multi_cleanup(h->multi);
	curl_slist_free_all(h->headers);
	free(h);
}

void etcd_http_cancel(struct etcd_http *h)
{
	atomic_store(&h->canceled, true);
	(void)curl_multi_wakeup(h->multi);
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct xfer *x = ctx;
	size_t len = size * n;
	int err = growbuf_add(&x->body, data, len);

	if (err) {
		x->stop = err == -EFBIG ? -EPROTO : err;
		return 0;
	}
	return len;
}

/* Split the stream into JSON objects as they complete; the gateway ends
 * each with a newline, but json-c does not need it.
 */
static size_t on_stream(char *data, size_t size, size_t n, void *ctx)
{
	struct xfer *x = ctx;
	size_t len = size * n, off = 0;

	while (off < len) {
		json_object *o = json_tokener_parse_ex(x->tok, data + off, (int)(len - off));
		size_t used = json_tokener_get_parse_end(x->tok);
		enum json_tokener_error je = json_tokener_get_error(x->tok);

		off += used;
		x->msg_bytes += used;
		if (!o && je == json_tokener_continue) {
			if (x->msg_bytes > REG_HTTP_BODY_MAX) {
				x->stop = -EPROTO;
				return 0;
			}
			break;
		}
		if (!o || !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			x->stop = -EPROTO;
			return 0;
		}
		json_tokener_reset(x->tok);
		x->msg_bytes = 0;
		x->stop = x->fn(o, x->ctx);
		json_object_put(o);
		if (x->stop)
			return 0;
		if (!used)
			break;
	}
	return len;
}

/* Run one POST on the client's multi handle until it completes or the client
 * is canceled. Returns the curl result as -errno (message in @err).
 */
static int perform(struct etcd_http *h, const char *base, const char *path, json_object *body,
		   long timeout_ms, struct xfer *x, curl_write_callback on_data, char *err,
		   size_t errlen)
{
	const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	char url[1024];
	CURLcode rc = CURLE_OK;
	int running = 1, ret = 0;
	bool done = false;

	if (snprintf(url, sizeof(url), "%s%s", base, path) >= (int)sizeof(url)) {
		snprintf(err, errlen, "URL too long");
		return -ENAMETOOLONG;
	}
	if (atomic_load(&h->canceled))
		return -ECANCELED;
	reg_curl_setup(h->easy, url, h->headers, timeout_ms, h->curl_err);
	curl_easy_setopt(h->easy, CURLOPT_COPYPOSTFIELDS, text);
	curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, x);
	if (curl_multi_add_handle(h->multi, h->easy) != CURLM_OK) {
		snprintf(err, errlen, "cannot start a transfer");
		return -ENOMEM;
	}
	while (!done) {
		CURLMsg *m;
		int left;

		if (atomic_load(&h->canceled)) {
			ret = -ECANCELED;
			break;
		}
		if (curl_multi_perform(h->multi, &running) != CURLM_OK) {
			snprintf(err, errlen, "transfer failed");
			ret = -EIO;
			break;
		}
		while ((m = curl_multi_info_read(h->multi, &left))) {
			if (m->msg == CURLMSG_DONE) {
				rc = m->data.result;
				done = true;
			}
		}
		if (!done && running)
			(void)curl_multi_poll(h->multi, NULL, 0, REG_HTTP_POLL_MS, NULL);
		else if (!running)
			done = true;
	}
	(void)curl_multi_remove_handle(h->multi, h->easy);
	if (ret)
		return ret;
	if (rc != CURLE_OK && rc != CURLE_WRITE_ERROR) {
		snprintf(err, errlen, "%s", h->curl_err[0] ? h->curl_err : curl_easy_strerror(rc));
		return reg_curl_errno(rc);
	}
	return 0;
}

/* {"error": "...", "message": "...", "code": N} (unary) or {"error":
 * {"grpc_code": N, "message": "..."}} (stream): the server's message.
 */
static bool server_error(json_object *o, int *code, char *err, size_t errlen)
{
	json_object *e, *m = NULL, *c = NULL;

	if (!json_object_object_get_ex(o, "error", &e))
		return false;
	if (json_object_is_type(e, json_type_object)) {
		json_object_object_get_ex(e, "message", &m);
		json_object_object_get_ex(e, "grpc_code", &c);
	} else {
		if (!json_object_object_get_ex(o, "message", &m))
			m = e;
		json_object_object_get_ex(o, "code", &c);
	}
	snprintf(err, errlen, "%s", m ? json_object_get_string(m) : "error");
	if (code)
		*code = c ? json_object_get_int(c) : 0;
	return true;
}

int etcd_http_call(struct etcd_http *h, const char *base, const char *path, json_object *body,
		   long timeout_ms, json_object **resp, int *code, char *err, size_t errlen)
{
	struct xfer x = { .body.max = REG_HTTP_BODY_MAX };
	json_object *o = NULL;
	long status = 0;
	int ret;

	*resp = NULL;
	ret = perform(h, base, path, body, timeout_ms, &x, on_body, err, errlen);
	if (ret)
		goto out;
	if (x.stop) {
		snprintf(err, errlen, "%s", x.stop == -EPROTO ? "answer too large" : "out of memory");
		ret = x.stop;
		goto out;
	}
	(void)curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
	o = x.body.data ? json_tokener_parse(x.body.data) : NULL;
	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "HTTP %ld: not a JSON object (is this etcd's v3 gateway?)",
			 status);
		ret = -EPROTO;
		goto out;
	}
	if (server_error(o, code, err, errlen)) {
		ret = -EREMOTEIO;
		goto out;
	}
	*resp = o;
	o = NULL;
out:
	json_object_put(o);
	growbuf_free(&x.body);
	return ret;
}

int etcd_http_stream(struct etcd_http *h, const char *base, const char *path, json_object *body,
		     etcd_http_msg_fn fn, void *ctx, char *err, size_t errlen)
{
	struct xfer x = { .fn = fn, .ctx = ctx };
	int ret;

	x.tok = json_tokener_new();
	if (!x.tok)
		return -ENOMEM;
	ret = perform(h, base, path, body, 0, &x, on_stream, err, errlen);
	if (!ret && x.stop == -EPROTO)
		snprintf(err, errlen, "the stream is not JSON objects");
	if (!ret)
		ret = x.stop;
	if (!ret) {
		snprintf(err, errlen, "the server ended the stream");
		ret = -ECONNRESET;
	}
	json_tokener_free(x.tok);
	return ret;
}

int etcd_json_add(json_object *o, const char *key, json_object *v)
{
	if (!o || !v || json_object_object_add(o, key, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static const char b64_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

json_object *etcd_b64_string(const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t len = 4 * ((n + 2) / 3), o = 0;
	char *buf = malloc(len + 1);
	json_object *s;

	if (!buf)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		buf[o++] = b64_chars[(v >> 18) & 63];
		buf[o++] = b64_chars[(v >> 12) & 63];
		buf[o++] = i + 1 < n ? b64_chars[(v >> 6) & 63] : '=';
		buf[o++] = i + 2 < n ? b64_chars[v & 63] : '=';
	}
	buf[o] = '\0';
	s = json_object_new_string_len(buf, (int)o);
	free(buf);
	return s;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_chars, c) : NULL;

	return p ? (int)(p - b64_chars) : -1;
}

int etcd_b64_member(json_object *o, const char *key, char **out, size_t *len)
{
	json_object *v;
	const char *s;
	size_t n, o_len = 0;
	char *buf;

	*out = NULL;
	*len = 0;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
		*out = calloc(1, 1);
		return *out ? 0 : -ENOMEM;
	}
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n % 4)
		return -EINVAL;
	buf = malloc(n / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i += 4) {
		int a = b64_value(s[i]), b = b64_value(s[i + 1]);
		int c = s[i + 2] == '=' ? 0 : b64_value(s[i + 2]);
		int d = s[i + 3] == '=' ? 0 : b64_value(s[i + 3]);
		bool pad2 = s[i + 2] == '=', pad3 = s[i + 3] == '=';

		/* Padding only at the very end, and "x=y=" is not base64. */
		if (a < 0 || b < 0 || c < 0 || d < 0 || ((pad2 || pad3) && i + 4 != n) ||
		    (pad2 && !pad3)) {
			free(buf);
			return -EINVAL;
		}
		uint32_t v24 = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;

		buf[o_len++] = (char)(v24 >> 16);
		if (!pad2)
			buf[o_len++] = (char)(v24 >> 8);
		if (!pad3)
			buf[o_len++] = (char)v24;
	}
	buf[o_len] = '\0';
	*out = buf;
	*len = o_len;
	return 0;
}

int etcd_i64_member(json_object *o, const char *key, int64_t *out)
{
	json_object *v;
	const char *s;
	char *end;
	long long n;

	*out = 0;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	s = json_object_get_string(v);
	errno = 0;
	n = strtoll(s, &end, 10);
	if (!*s || *end || errno)
		return -EINVAL;
	*out = n;
	return 0;
}
