// SPDX-License-Identifier: GPL-2.0-only
/* weft-ca client: libcurl's multi socket interface on the agent's loop.
 * curl says which sockets to watch (socket callback) and when to wake it
 * (timer callback); the loop calls curl_multi_socket_action() back, and
 * finished transfers are handed to their callbacks. One thread: the main
 * loop's, so nothing here needs a lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include <curl/curl.h>

#include "ca_client.h"
#include "fs.h"
#include "growbuf.h"
#include "loop.h"

/* Largest token or bundle file read. */
#define CA_CLIENT_FILE_MAX (1u << 20)

struct ca_client {
	struct loop *loop;
	struct ca_client_opts o;
	CURLM *multi;
	struct loop_timer timer;
	struct ca_req *reqs;	/* in flight, a list */
	struct ca_client_stats stats;
};

struct ca_req {
	struct ca_req *next, **pprev;
	struct ca_client *c;
	CURL *easy;
	struct curl_slist *headers;
	char *body;		/* what is sent; owned */
	char *bundle;		/* the CA blob curl verifies with; owned */
	struct growbuf resp;
	char errbuf[CURL_ERROR_SIZE];
	ca_client_done_fn fn;
	void *ctx;
};

/* One socket curl asked us to watch. */
struct ca_sock {
	int fd;
	struct loop_watch w;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct ca_req *r = ud;

	return growbuf_add(&r->resp, p, size * n) ? 0 : size * n;
}

static void req_free(struct ca_req *r)
{
	if (r->pprev) {
		*r->pprev = r->next;
		if (r->next)
			r->next->pprev = r->pprev;
	}
	if (r->easy) {
		curl_multi_remove_handle(r->c->multi, r->easy);
		curl_easy_cleanup(r->easy);
	}
	curl_slist_free_all(r->headers);
	free(r->body);
	free(r->bundle);
	growbuf_free(&r->resp);
	free(r);
}

/* Hand every finished transfer to its callback. */
static void reap(struct ca_client *c)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(c->multi, &left))) {
		struct ca_req *r = NULL;
		long code = 0;
		int status;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (m->data.result == CURLE_OK) {
			curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
			status = (int)code;
		} else {
			status = m->data.result == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
				 : m->data.result == CURLE_COULDNT_CONNECT  ? -ECONNREFUSED
				 : m->data.result == CURLE_PEER_FAILED_VERIFICATION ? -EKEYREJECTED
										   : -EIO;
		}
		if (status >= 200 && status < 300) {
			c->stats.ok++;
			c->stats.last_ok = time(NULL);
			c->stats.last_error[0] = '\0';
		} else {
			if (status >= 400 && status < 500)
				c->stats.refused++;
			else
				c->stats.failed++;
			if (status < 0)
				snprintf(c->stats.last_error, sizeof(c->stats.last_error), "%s",
					 r->errbuf[0] ? r->errbuf : strerror(-status));
			else
				snprintf(c->stats.last_error, sizeof(c->stats.last_error),
					 "HTTP %d: %.200s", status, r->resp.data ? r->resp.data : "");
		}
		r->fn(r->ctx, status, r->resp.data ? r->resp.data : "", r->errbuf);
		req_free(r);
	}
}

static void on_timer(struct loop_timer *t, uint64_t now_ms)
{
	struct ca_client *c = (struct ca_client *)((char *)t - offsetof(struct ca_client, timer));
	int running;

	(void)now_ms;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	reap(c);
}

static void on_fd(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct ca_client *c = ctx;
	int flags = 0, running;

	(void)loop;
	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	reap(c);
}

/* curl's CURLMOPT_SOCKETFUNCTION: watch @fd for @what. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp)
{
	struct ca_client *c = ud;
	struct ca_sock *s = sockp;
	uint32_t ev = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			(void)loop_watch(c->loop, &s->w, fd, 0, on_fd, c);
			free(s);
			curl_multi_assign(c->multi, fd, NULL);
		}
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->fd = fd;
		curl_multi_assign(c->multi, fd, s);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev |= EPOLLOUT;
	return loop_watch(c->loop, &s->w, fd, ev, on_fd, c) ? -1 : 0;
}

/* curl's CURLMOPT_TIMERFUNCTION: wake it in @ms (-1: never). */
static int on_curl_timer(CURLM *multi, long ms, void *ud)
{
	struct ca_client *c = ud;

	(void)multi;
	if (ms < 0) {
		loop_timer_del(c->loop, &c->timer);
		return 0;
	}
	return loop_timer_set(c->loop, &c->timer, (uint64_t)ms, on_timer) ? -1 : 0;
}

struct ca_client *ca_client_new(struct loop *loop, const struct ca_client_opts *o)
{
	struct ca_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->loop = loop;
	c->o = *o;
	c->multi = curl_multi_init();
	if (!c->multi) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
}

void ca_client_free(struct ca_client *c)
{
	if (!c)
		return;
	while (c->reqs) {
		struct ca_req *r = c->reqs;

		r->fn(r->ctx, -ECANCELED, "", "");
		req_free(r);
	}
	loop_timer_del(c->loop, &c->timer);
	curl_multi_cleanup(c->multi);
	free(c);
}

/* "Authorization: Bearer <token>" from the token file, as a new string. */
static char *auth_header(const char *path, int *err)
{
	char *tok = NULL, *hdr = NULL;
	size_t len = 0;

	*err = fs_read_file(path, CA_CLIENT_FILE_MAX, &tok, &len, NULL);
	if (*err)
		return NULL;
	while (len && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
		tok[--len] = '\0';
	if (!len || asprintf(&hdr, "Authorization: Bearer %s", tok) < 0) {
		*err = len ? -ENOMEM : -ENODATA;
		hdr = NULL;
	}
	free(tok);
	return hdr;
}

int ca_client_request(struct ca_client *c, const char *path, const char *body,
		      ca_client_done_fn fn, void *ctx)
{
	struct ca_req *r = calloc(1, sizeof(*r));
	struct curl_blob blob;
	char url[1024], *hdr;
	size_t blen = 0;
	int err;

	if (!r)
		return -ENOMEM;
	r->c = c;
	r->fn = fn;
	r->ctx = ctx;
	r->resp.max = CA_CLIENT_BODY_MAX;
	c->stats.requests++;
	if ((size_t)snprintf(url, sizeof(url), "%s%s", c->o.url, path) >= sizeof(url)) {
		err = -ENAMETOOLONG;
		goto fail;
	}
	/* Read again every time: kubelet rotates both files. */
	hdr = auth_header(c->o.token_file, &err);
	if (!hdr)
		goto fail;
	r->headers = curl_slist_append(NULL, hdr);
	free(hdr);
	err = fs_read_file(c->o.bundle_file, CA_CLIENT_FILE_MAX, &r->bundle, &blen, NULL);
	if (err)
		goto fail;
	r->easy = curl_easy_init();
	if (!r->headers || !r->easy ||
	    !(r->headers = curl_slist_append(r->headers, "Content-Type: application/json"))) {
		err = -ENOMEM;
		goto fail;
	}
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(r->easy, CURLOPT_PROXY, "");
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)CA_CLIENT_TIMEOUT_MS);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
	/* weft-ca's certificate must chain to the mesh's bundle, nothing else. */
	blob = (struct curl_blob){ .data = r->bundle, .len = blen, .flags = CURL_BLOB_NOCOPY };
	curl_easy_setopt(r->easy, CURLOPT_CAINFO_BLOB, &blob);
	curl_easy_setopt(r->easy, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (body) {
		r->body = strdup(body);
		if (!r->body) {
			err = -ENOMEM;
			goto fail;
		}
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
	}
	if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
		err = -ENOMEM;
		goto fail;
	}
	r->next = c->reqs;
	if (r->next)
		r->next->pprev = &r->next;
	r->pprev = &c->reqs;
	c->reqs = r;
	return 0;
fail:
	c->stats.failed++;
	snprintf(c->stats.last_error, sizeof(c->stats.last_error), "%s: %s", path,
		 strerror(-err));
	if (r->easy) {
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	req_free(r);
	return err;
}

void ca_client_stats(const struct ca_client *c, struct ca_client_stats *out)
{
	*out = c->stats;
}

const char *ca_client_url(const struct ca_client *c)
{
	return c->o.url;
}
