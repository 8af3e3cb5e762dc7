// SPDX-License-Identifier: GPL-2.0-only
/* Consul's HTTP API over libcurl (registry/consul_http.h). Calls run on
 * the client's multi handle, polled in slices with curl_multi_poll(), so
 * another thread can cut a wait short with curl_multi_wakeup(): a blocking
 * query of minutes never delays the agent's exit.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "registry/consul_http.h"

struct consul_http {
	CURLM *multi;
	char *ca_file;
	atomic_bool canceled;
};

struct consul_http *consul_http_new(const char *ca_file)
{
	struct consul_http *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->multi = curl_multi_init();
	h->ca_file = ca_file && ca_file[0] ? strdup(ca_file) : NULL;
	if (!h->multi || (ca_file && ca_file[0] && !h->ca_file)) {
		consul_http_free(h);
		errno = ENOMEM;
		return NULL;
	}
	return h;
}

void consul_http_free(struct consul_http *h)
{
	if (!h)
		return;
	curl_multi_cleanup(h->multi);
	free(h->ca_file);
	free(h);
}

void consul_http_cancel(struct consul_http *h)
{
	atomic_store(&h->canceled, true);
	(void)curl_multi_wakeup(h->multi);
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct consul_call *c = ctx;
	size_t len = size * n;
	char *grown;

	if (c->len + len > REG_HTTP_BODY_MAX) {
		c->too_large = true;
		return 0;
	}
	grown = realloc(c->body, c->len + len + 1);
	if (!grown)
		return 0;
	memcpy(grown + c->len, data, len);
	c->body = grown;
	c->len += len;
	c->body[c->len] = '\0';
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
	static const char name[] = "X-Consul-Index:";
	struct consul_call *c = ctx;
	size_t len = size * n;
	char buf[64];

	if (len > sizeof(name) - 1 && len < sizeof(buf) &&
	    !strncasecmp(data, name, sizeof(name) - 1)) {
		char *end;
		unsigned long long v;

		memcpy(buf, data + sizeof(name) - 1, len - (sizeof(name) - 1));
		buf[len - (sizeof(name) - 1)] = '\0';
		v = strtoull(buf, &end, 10);
		if (end != buf) {
			c->index = v;
			c->has_index = true;
		}
	}
	return len;
}

static void reset_answer(struct consul_call *c)
{
	free(c->body);
	c->body = NULL;
	c->len = 0;
	c->too_large = false;
	c->status = 0;
	c->index = 0;
	c->has_index = false;
	c->result = 0;
	c->err[0] = '\0';
}

int consul_call_start(struct consul_http *h, struct consul_call *c, const char *method,
		      const char *url, const char *token, const char *body, long timeout_ms)
{
	char hdr[4200];

	if (atomic_load(&h->canceled))
		return -ECANCELED;
	consul_call_abort(h, c);
	reset_answer(c);
	if (!c->easy) {
		c->easy = curl_easy_init();
		if (!c->easy)
			return -ENOMEM;
	}
	curl_slist_free_all(c->headers);
	c->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (c->headers && token && token[0]) {
		struct curl_slist *l;

		snprintf(hdr, sizeof(hdr), "X-Consul-Token: %s", token);
		l = curl_slist_append(c->headers, hdr);
		if (!l) {
			curl_slist_free_all(c->headers);
			c->headers = NULL;
		} else {
			c->headers = l;
		}
	}
	if (!c->headers)
		return -ENOMEM;
	reg_curl_setup(c->easy, url, c->headers, timeout_ms, c->err);
	curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, method);
	if (body)
		curl_easy_setopt(c->easy, CURLOPT_COPYPOSTFIELDS, body);
	else if (strcmp(method, "GET"))
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, "");
	if (h->ca_file)
		curl_easy_setopt(c->easy, CURLOPT_CAINFO, h->ca_file);
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
	if (curl_multi_add_handle(h->multi, c->easy) != CURLM_OK)
		return -ENOMEM;
	c->busy = true;
	return 0;
}

void consul_call_abort(struct consul_http *h, struct consul_call *c)
{
	if (c->busy)
		(void)curl_multi_remove_handle(h->multi, c->easy);
	c->busy = false;
}

void consul_call_free(struct consul_http *h, struct consul_call *c)
{
	consul_call_abort(h, c);
	reset_answer(c);
	if (c->easy)
		curl_easy_cleanup(c->easy);
	curl_slist_free_all(c->headers);
	c->easy = NULL;
	c->headers = NULL;
}

/* Fill @c from its finished transfer and take it off the multi handle. */
static void finish(struct consul_http *h, struct consul_call *c, CURLcode rc)
{
	(void)curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->status);
	(void)curl_multi_remove_handle(h->multi, c->easy);
	c->busy = false;
	if (c->too_large) {
		snprintf(c->err, sizeof(c->err), "answer larger than %u bytes", REG_HTTP_BODY_MAX);
		c->result = -EPROTO;
	} else if (rc != CURLE_OK) {
		if (!c->err[0])
			snprintf(c->err, sizeof(c->err), "%s", curl_easy_strerror(rc));
		c->result = reg_curl_errno(rc);
	}
}

int consul_http_next(struct consul_http *h, int ms, struct consul_call **done)
{
	uint64_t until = mono_ms() + (uint64_t)(ms > 0 ? ms : 0);

	*done = NULL;
	for (;;) {
		int running = 0, left;
		CURLMsg *m;
		uint64_t now;

		if (atomic_load(&h->canceled))
			return -ECANCELED;
		if (curl_multi_perform(h->multi, &running) != CURLM_OK)
			return -EIO;
		while ((m = curl_multi_info_read(h->multi, &left))) {
			struct consul_call *c = NULL;

			if (m->msg != CURLMSG_DONE)
				continue;
			(void)curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
			finish(h, c, m->data.result);
			*done = c;
			return 0;
		}
		now = mono_ms();
		if (now >= until)
			return 0;
		(void)curl_multi_poll(h->multi, NULL, 0,
				      (int)(until - now < REG_HTTP_POLL_MS ? until - now : REG_HTTP_POLL_MS),
				      NULL);
	}
}

int consul_http_do(struct consul_http *h, struct consul_call *c, const char *method,
		   const char *url, const char *token, const char *body, long timeout_ms)
{
	struct consul_call *done;
	int ret = consul_call_start(h, c, method, url, token, body, timeout_ms);

	while (!ret && c->busy) {
		ret = consul_http_next(h, REG_HTTP_POLL_MS, &done);
	}
	if (ret)
		consul_call_abort(h, c);
	return ret;
}
