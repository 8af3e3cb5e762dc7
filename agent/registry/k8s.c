// SPDX-License-Identifier: GPL-2.0-only
/* The Kubernetes backend's thread: one libcurl multi handle drives a
 * list-then-watch cycle per resource (k8s_watch.c turns what arrives into
 * sink calls), retries with jittered exponential backoff, relists on 410
 * Gone, re-reads a rotated token, and reports health to the sink. The loop
 * thread only starts and stops it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clock.h"
#include "log.h"
#include "registry/k8s.h"
#include "registry/k8s_config.h"
#include "registry/k8s_http.h"
#include "registry/k8s_stream.h"
#include "registry/k8s_watch.h"

/* The server ends each watch after timeoutSeconds, drawn in [MIN, MIN +
 * SPREAD) like client-go's reflector so that agents do not reconnect in
 * step; the client gives up GUARD seconds later on a silent connection.
 */
#define WATCH_TIMEOUT_MIN_S 300
#define WATCH_TIMEOUT_SPREAD_S 300
#define WATCH_GUARD_S 60
#define LIST_TIMEOUT_MS 120000L
/* A watch that delivered an event or stayed up this long proves the server
 * healthy: the backoff starts over.
 */
#define STABLE_MS 10000
#define IDLE_TICK_MS 1000
/* Largest list page or watch event; etcd caps objects at 1.5 MiB. */
#define BODY_MAX (256u << 20)
#define MSG_MAX 256

enum phase { PH_WAIT, PH_LIST, PH_WATCH };

/* A positive abort reason of a watch transfer: the server said 410 Gone. */
#define ABORT_GONE 1

struct k8s;

/* One resource's cycle and its transfer in flight (at most one). */
struct watcher {
	struct k8s *k;
	struct k8s_res res;
	enum phase phase;
	uint64_t next_ms;		/* PH_WAIT: when to start the next request */
	unsigned int attempts;		/* failures in a row */
	char error[MSG_MAX];		/* the failure being retried, "" when none */
	bool watching;			/* a watch answered 200 and is open */
	CURL *easy;
	struct curl_slist *headers;
	char *url;
	char *token;			/* the token this request sent */
	char curl_err[CURL_ERROR_SIZE];
	long status;			/* HTTP status of the final response, 0 before */
	struct k8s_stream stream;
	json_object *body;		/* a list page, or the body of an error */
	int abort;			/* why a callback stopped the transfer */
	char abort_msg[MSG_MAX];
	uint64_t started_ms;
	bool got_event;
};

/* Pod evictions asked by the loop (k8s_evict_pod), made one at a time on
 * the thread.
 */
#define EVICT_QUEUE_MAX 8
#define EVICT_TIMEOUT_MS 30000L

struct evict_req {
	char ns[OBJ_NS_MAX];
	char name[OBJ_NAME_MAX];
	char uid[OBJ_UID_MAX];
};

struct evictor {
	pthread_mutex_t lock;		/* queue and n: the loop adds, the thread takes */
	struct evict_req queue[EVICT_QUEUE_MAX];
	size_t n;
	struct evict_req cur;		/* the request in flight (thread only) */
	CURL *easy;			/* NULL when none is in flight */
	struct curl_slist *headers;
	char *url, *body;
	char curl_err[CURL_ERROR_SIZE];
	char reply[512];		/* the start of the answer, for the log */
	size_t reply_len;
	atomic_uint_fast64_t requested, evicted, refused, failed;
};

struct k8s {
	char *source;
	struct reg_sink *sink;
	struct k8s_conn_cfg conn;
	char *field_selector;		/* "spec.nodeName=NODE" for the Pods */
	char *token;			/* the last token read from conn.token_file */
	bool token_warned;		/* the token file failed; warned once */
	struct watcher w[OBJ_KIND_COUNT];
	size_t n;
	int lister;			/* the watcher owning the sink's resync, -1 */
	CURLM *multi;
	pthread_t thread;
	bool running;
	atomic_bool stop;
	enum reg_health health;
	char health_msg[MSG_MAX];
	uint64_t rng;
	struct evictor ev;
};

/* xorshift64: jitter only, no secrets. */
static uint64_t rnd(struct k8s *k)
{
	k->rng ^= k->rng << 13;
	k->rng ^= k->rng >> 7;
	k->rng ^= k->rng << 17;
	return k->rng;
}

static uint64_t backoff_ms(struct k8s *k, unsigned int attempts)
{
	uint64_t d = K8S_BACKOFF_BASE_MS;

	for (unsigned int i = 1; i < attempts && d < K8S_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > K8S_BACKOFF_MAX_MS)
		d = K8S_BACKOFF_MAX_MS;
	/* "Equal jitter": never less than half, so retries stay spaced out,
	 * and spread enough that a fleet of agents does not stampede.
	 */
	return d / 2 + rnd(k) % (d / 2 + 1);
}

/* ---- health ---- */

/* STALE while any resource retries a failure; SYNCED once every resource
 * is watching (after its first listing) with no failure left; otherwise
 * unchanged: a watch reconnecting after the server's timeout is not news.
 */
static void health_update(struct k8s *k)
{
	const char *failure = NULL;
	bool all_watching = true;
	enum reg_health h;

	for (size_t i = 0; i < k->n; i++) {
		const char *e = k->w[i].error;

		/* Several resources fail together; report one failure until
		 * it is over rather than switching between them.
		 */
		if (e[0] && (!failure || !strcmp(e, k->health_msg)))
			failure = e;
		all_watching &= k->w[i].watching;
	}
	if (failure)
		h = REG_HEALTH_STALE;
	else if (all_watching)
		h = REG_HEALTH_SYNCED;
	else
		return;
	if (!failure)
		failure = "";
	if (h == k->health && !strcmp(failure, k->health_msg))
		return;
	k->health = h;
	snprintf(k->health_msg, sizeof(k->health_msg), "%s", failure);
	(void)reg_sink_health(k->sink, k->source, h, failure);
}

/* ---- one request ---- */

static void xfer_free(struct watcher *w)
{
	if (w->easy) {
		curl_multi_remove_handle(w->k->multi, w->easy);
		curl_easy_cleanup(w->easy);
		w->easy = NULL;
	}
	curl_slist_free_all(w->headers);
	w->headers = NULL;
	free(w->url);
	w->url = NULL;
	free(w->token);
	w->token = NULL;
	json_object_put(w->body);
	w->body = NULL;
}

static const char *verb(const struct watcher *w)
{
	return w->phase == PH_LIST ? "list" : "watch";
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
	struct watcher *w = ctx;
	long code = 0;

	/* The blank line ends a header block; 1xx blocks come before the final one. */
	if (n * size > 2 || (data[0] != '\r' && data[0] != '\n'))
		return size * n;
	curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200)
		return size * n;
	w->status = code;
	if (w->phase == PH_WATCH && code == 200) {
		w->watching = true;
		if (w->error[0])
			log_info("registry: %s: watch %s: connected again", w->k->source,
				 w->res.k->plural);
		w->error[0] = '\0';
		health_update(w->k);
	}
	return size * n;
}

static int on_value(json_object *v, void *ctx)
{
	struct watcher *w = ctx;
	struct k8s_out out = { .sink = w->k->sink, .source = w->k->source };
	int rc;

	if (w->phase != PH_WATCH || w->status != 200) {
		/* A list page, or the Status explaining an error: keep it whole. */
		if (!w->body)
			w->body = json_object_get(v);
		return 0;
	}
	rc = k8s_res_event(&w->res, &out, v, w->abort_msg, sizeof(w->abort_msg));
	if (rc == 1) {
		w->abort = ABORT_GONE;
		return -ECANCELED;
	}
	if (rc) {
		w->abort = rc;
		return rc;
	}
	w->got_event = true;
	w->attempts = 0;
	return 0;
}

/* An item of a list page, applied as it arrives (k8s_stream's split): the
 * page is never one tree. Error bodies and pages that do not say what they
 * are before their items are kept whole for list_done().
 */
static int on_item(json_object *head, json_object *item, void *ctx)
{
	struct watcher *w = ctx;
	struct k8s_out out = { .sink = w->k->sink, .source = w->k->source };
	int rc;

	if (w->status != 200)
		return K8S_STREAM_KEEP;
	rc = k8s_res_list_item(&w->res, &out, head, item, w->abort_msg, sizeof(w->abort_msg));
	if (rc == K8S_LIST_ITEM_LATER)
		return K8S_STREAM_KEEP;
	if (rc)
		w->abort = rc;
	return rc;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct watcher *w = ctx;
	int rc;

	if (atomic_load(&w->k->stop))
		return 0;
	if (!w->status)
		curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &w->status);
	rc = k8s_stream_feed(&w->stream, data, size * n);
	if (!rc)
		return size * n;
	/* Returning short makes libcurl end the transfer (CURLE_WRITE_ERROR). */
	if (!w->abort) {
		w->abort = rc;
		snprintf(w->abort_msg, sizeof(w->abort_msg), "%s", w->stream.err);
	}
	return 0;
}

/* Read the token file again: kubelet rotates projected tokens (about
 * hourly) and a request must never carry one older than the file.
 */
static void token_refresh(struct k8s *k)
{
	char *t = NULL;
	int err;

	if (!k->conn.token_file)
		return;
	err = k8s_token_read(k->conn.token_file, &t);
	if (err && k->token_warned)
		return;
	if (err) {
		k->token_warned = true;
		log_warn("registry: %s: read token file '%s': %s; "
			 "using the previous token, ignoring",
			 k->source, k->conn.token_file, err == -ENODATA ? "empty" : strerror(-err));
		return;
	}
	if (k->token && strcmp(k->token, t))
		log_info("registry: %s: token file '%s' changed, using the new token", k->source,
			 k->conn.token_file);
	free(k->token);
	k->token = t;
	k->token_warned = false;
}

static int xfer_start(struct watcher *w, bool list)
{
	struct k8s *k = w->k;
	const char *selector = w->res.k->kind == OBJ_POD ? k->field_selector : NULL;
	const char *token;
	long timeout_ms;
	int err = -ENOMEM;

	token_refresh(k);
	token = k->conn.token ? k->conn.token : k->token;
	if (list) {
		w->url = k8s_url_list(&k->conn, w->res.k, selector, w->res.cont);
		timeout_ms = LIST_TIMEOUT_MS;
	} else {
		unsigned int t = WATCH_TIMEOUT_MIN_S;

		t += (unsigned int)(rnd(k) % WATCH_TIMEOUT_SPREAD_S);
		w->url = k8s_url_watch(&k->conn, w->res.k, selector, w->res.rv, t);
		timeout_ms = (long)(t + WATCH_GUARD_S) * 1000;
	}
	w->token = token ? strdup(token) : NULL;
	w->easy = curl_easy_init();
	if (!w->url || (token && !w->token) || !w->easy)
		goto out_free;
	err = k8s_http_setup(w->easy, &k->conn, w->url, token, timeout_ms, &w->headers);
	if (err)
		goto out_free;
	curl_easy_setopt(w->easy, CURLOPT_PRIVATE, w);
	curl_easy_setopt(w->easy, CURLOPT_ERRORBUFFER, w->curl_err);
	curl_easy_setopt(w->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(w->easy, CURLOPT_HEADERDATA, w);
	curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, w);
	w->curl_err[0] = '\0';
	w->status = 0;
	w->abort = 0;
	w->abort_msg[0] = '\0';
	w->got_event = false;
	w->started_ms = mono_ms();
	k8s_stream_reset(&w->stream);
	k8s_stream_split(&w->stream, list ? on_item : NULL);
	w->phase = list ? PH_LIST : PH_WATCH;
	if (curl_multi_add_handle(k->multi, w->easy) != CURLM_OK) {
		err = -ENOMEM;
		goto out_free;
	}
	log_debug("registry: %s: GET %s", k->source, w->url);
	return 0;
out_free:
	w->phase = PH_WAIT;
	xfer_free(w);
	return err;
}

/* ---- what happens after a request ---- */

static void schedule(struct watcher *w, uint64_t delay_ms)
{
	w->phase = PH_WAIT;
	w->next_ms = mono_ms() + delay_ms;
}

/* A failed request: log the first of a streak, report STALE, retry later. */
static void failed(struct watcher *w, const char *msg, uint64_t min_delay_ms)
{
	uint64_t delay;

	w->attempts++;
	delay = backoff_ms(w->k, w->attempts);
	if (delay < min_delay_ms)
		delay = min_delay_ms < K8S_BACKOFF_MAX_MS ? min_delay_ms : K8S_BACKOFF_MAX_MS;
	if (!w->error[0])
		log_warn("registry: %s: %s; the last known state stays in force, "
			 "retrying in %.1f s, ignoring",
			 w->k->source, msg, (double)delay / 1000);
	else
		log_debug("registry: %s: %s; attempt %u, retrying in %.1f s", w->k->source, msg,
			  w->attempts, (double)delay / 1000);
	snprintf(w->error, sizeof(w->error), "%s", msg);
	schedule(w, delay);
	health_update(w->k);
}

/* Why a request failed, in one line: an error status first (its body may
 * be an HTML page from a proxy that the JSON parser stopped at), then what
 * stopped the transfer.
 */
static void describe(const struct watcher *w, CURLcode rc, char *buf, size_t len)
{
	char status[MSG_MAX];

	if (w->status && w->status != 200 && k8s_status_str(w->body, status, sizeof(status))[0])
		snprintf(buf, len, "%s %s: HTTP %.200s", verb(w), w->res.k->plural, status);
	else if (w->status && w->status != 200)
		snprintf(buf, len, "%s %s: HTTP %ld", verb(w), w->res.k->plural, w->status);
	else if (w->abort && w->abort != ABORT_GONE)
		snprintf(buf, len, "%s %s: %.200s", verb(w), w->res.k->plural,
			 w->abort_msg[0] ? w->abort_msg : strerror(-w->abort));
	else if (rc != CURLE_OK)
		snprintf(buf, len, "%s %s: %.200s", verb(w), w->res.k->plural,
			 w->curl_err[0] ? w->curl_err : curl_easy_strerror(rc));
	else
		snprintf(buf, len, "%s %s: HTTP %ld without a usable body", verb(w),
			 w->res.k->plural, w->status);
}

static void release_lister(struct watcher *w)
{
	if (w->k->lister == (int)(w - w->k->w))
		w->k->lister = -1;
}

/* A 401: the token may have rotated under a request in flight. Retry at
 * once if the file now holds another token, else back off as usual.
 */
static bool token_rotated(struct watcher *w)
{
	struct k8s *k = w->k;

	if (w->status != 401 || !k->conn.token_file)
		return false;
	token_refresh(k);
	return k->token && (!w->token || strcmp(k->token, w->token));
}

static void list_done(struct watcher *w, CURLcode rc, uint64_t retry_after_ms)
{
	struct k8s_out out = { .sink = w->k->sink, .source = w->k->source };
	char msg[MSG_MAX], err[MSG_MAX];
	int r;

	if (rc == CURLE_OK && w->status == 200 && w->body && !w->abort) {
		r = k8s_res_list_page(&w->res, &out, w->body, err, sizeof(err));
		if (r >= 0) {
			w->error[0] = '\0';
			if (r == 0)
				release_lister(w);
			/* The next page, or the watch from the listing's version. */
			schedule(w, 0);
			health_update(w->k);
			return;
		}
		snprintf(msg, sizeof(msg), "list %s: %.200s", w->res.k->plural,
			 r == -EPROTO ? err : strerror(-r));
	} else if (rc == CURLE_OK && w->status == 410) {
		/* The continue token expired (the server compacted past the
		 * listing's snapshot): start again from the first page, at once
		 * the first time, as client-go does.
		 */
		log_info("registry: %s: list %s: continue token expired (410), listing again",
			 w->k->source, w->res.k->plural);
		release_lister(w);
		k8s_res_list_restart(&w->res);
		schedule(w, w->attempts ? backoff_ms(w->k, w->attempts) : 0);
		w->attempts++;
		return;
	} else {
		describe(w, rc, msg, sizeof(msg));
	}
	/* Any failure starts the listing over: a continue token may have
	 * expired (410), and a half listing ends nothing.
	 */
	release_lister(w);
	k8s_res_list_restart(&w->res);
	if (token_rotated(w)) {
		schedule(w, 0);
		return;
	}
	failed(w, msg, retry_after_ms);
}

static void watch_done(struct watcher *w, CURLcode rc, uint64_t retry_after_ms)
{
	uint64_t lasted = mono_ms() - w->started_ms;
	bool stable = w->got_event || lasted >= STABLE_MS;
	char msg[MSG_MAX];

	w->watching = false;
	if (w->abort == ABORT_GONE || w->status == 410) {
		log_info("registry: %s: watch %s: resourceVersion %s is gone (410), listing again",
			 w->k->source, w->res.k->plural, w->res.rv);
		w->res.rv[0] = '\0';
		k8s_res_list_restart(&w->res);
		/* Relist at once, unless 410s come back to back (a server that
		 * compacts faster than it lists): then back off.
		 */
		schedule(w, w->attempts ? backoff_ms(w->k, w->attempts) : 0);
		w->attempts++;
		return;
	}
	if (rc == CURLE_OK && w->status == 200 && !w->abort && !k8s_stream_partial(&w->stream) &&
	    stable) {
		/* The server's timeoutSeconds ran out: resume where we were. */
		w->attempts = 0;
		schedule(w, 0);
		return;
	}
	if (w->abort && w->abort != -EPROTO && w->abort != -EINVAL && w->abort != -E2BIG) {
		/* The sink refused an event (out of memory, queue full): what
		 * the model holds is unknown, so list again.
		 */
		w->res.rv[0] = '\0';
		k8s_res_list_restart(&w->res);
	}
	if (stable)
		w->attempts = 0;
	if (token_rotated(w)) {
		schedule(w, 0);
		return;
	}
	if (rc == CURLE_OK && w->status == 200 && !w->abort)
		snprintf(msg, sizeof(msg),
			 "watch %s: the server ended the watch after %llu ms without an event",
			 w->res.k->plural, (unsigned long long)lasted);
	else
		describe(w, rc, msg, sizeof(msg));
	failed(w, msg, retry_after_ms);
}

static void xfer_done(struct watcher *w, CURLcode rc)
{
	curl_off_t retry_after = 0;

	if (w->status < 200)
		curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &w->status);
	/* 429/503 from API priority and fairness say when to come back. */
	curl_easy_getinfo(w->easy, CURLINFO_RETRY_AFTER, &retry_after);
	if (w->phase == PH_LIST)
		list_done(w, rc, (uint64_t)retry_after * 1000);
	else
		watch_done(w, rc, (uint64_t)retry_after * 1000);
	xfer_free(w);
}

/* ---- evictions ---- */

static void evict_free(struct evictor *ev, CURLM *multi)
{
	if (ev->easy) {
		curl_multi_remove_handle(multi, ev->easy);
		curl_easy_cleanup(ev->easy);
		ev->easy = NULL;
	}
	curl_slist_free_all(ev->headers);
	ev->headers = NULL;
	free(ev->url);
	free(ev->body);
	ev->url = ev->body = NULL;
}

static size_t on_evict_body(char *data, size_t size, size_t n, void *ctx)
{
	struct evictor *ev = ctx;
	size_t len = size * n, room = sizeof(ev->reply) - 1 - ev->reply_len;

	memcpy(ev->reply + ev->reply_len, data, len < room ? len : room);
	ev->reply_len += len < room ? len : room;
	ev->reply[ev->reply_len] = '\0';
	return len;
}

/* Start the next queued eviction when none is in flight. */
static void evict_start(struct k8s *k)
{
	struct evictor *ev = &k->ev;
	struct curl_slist *t;
	const char *token;
	int err = -ENOMEM;

	if (ev->easy)
		return;
	pthread_mutex_lock(&ev->lock);
	if (!ev->n) {
		pthread_mutex_unlock(&ev->lock);
		return;
	}
	ev->cur = ev->queue[0];
	memmove(ev->queue, ev->queue + 1, --ev->n * sizeof(ev->queue[0]));
	pthread_mutex_unlock(&ev->lock);
	token_refresh(k);
	token = k->conn.token ? k->conn.token : k->token;
	ev->url = k8s_url_eviction(&k->conn, ev->cur.ns, ev->cur.name);
	ev->body = k8s_eviction_body(ev->cur.ns, ev->cur.name, ev->cur.uid);
	ev->easy = curl_easy_init();
	if (!ev->url || !ev->body || !ev->easy)
		goto out_fail;
	err = k8s_http_setup(ev->easy, &k->conn, ev->url, token, EVICT_TIMEOUT_MS, &ev->headers);
	if (err)
		goto out_fail;
	t = curl_slist_append(ev->headers, "Content-Type: application/json");
	if (!t) {
		err = -ENOMEM;
		goto out_fail;
	}
	ev->headers = t;
	curl_easy_setopt(ev->easy, CURLOPT_HTTPHEADER, ev->headers);
	curl_easy_setopt(ev->easy, CURLOPT_POSTFIELDS, ev->body);
	curl_easy_setopt(ev->easy, CURLOPT_PRIVATE, NULL);
	curl_easy_setopt(ev->easy, CURLOPT_ERRORBUFFER, ev->curl_err);
	curl_easy_setopt(ev->easy, CURLOPT_WRITEFUNCTION, on_evict_body);
	curl_easy_setopt(ev->easy, CURLOPT_WRITEDATA, ev);
	ev->curl_err[0] = ev->reply[0] = '\0';
	ev->reply_len = 0;
	if (curl_multi_add_handle(k->multi, ev->easy) != CURLM_OK) {
		err = -ENOMEM;
		goto out_fail;
	}
	log_debug("registry: %s: POST %s", k->source, ev->url);
	return;
out_fail:
	atomic_fetch_add(&ev->failed, 1);
	log_warn("registry: %s: evict pod %s/%s: %s, ignoring", k->source, ev->cur.ns,
		 ev->cur.name, strerror(-err));
	evict_free(ev, k->multi);
}

/* The eviction in flight ended with @rc: log and count the outcome. */
static void evict_done(struct k8s *k, CURLcode rc)
{
	struct evictor *ev = &k->ev;
	long status = 0;

	curl_easy_getinfo(ev->easy, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK) {
		atomic_fetch_add(&ev->failed, 1);
		log_warn("registry: %s: evict pod %s/%s: %s, ignoring", k->source, ev->cur.ns,
			 ev->cur.name, ev->curl_err[0] ? ev->curl_err : curl_easy_strerror(rc));
	} else if (status == 200 || status == 201) {
		atomic_fetch_add(&ev->evicted, 1);
		log_info("registry: %s: evicted pod %s/%s, which escaped the mesh; it restarts "
			 "captured", k->source, ev->cur.ns, ev->cur.name);
	} else if (status == 429) {
		/* A PodDisruptionBudget allows no disruption now: asked again later. */
		atomic_fetch_add(&ev->refused, 1);
		log_warn("registry: %s: evict pod %s/%s: 429, a disruption budget forbids it "
			 "now: %s", k->source, ev->cur.ns, ev->cur.name, ev->reply);
	} else {
		atomic_fetch_add(&ev->failed, 1);
		log_warn("registry: %s: evict pod %s/%s: HTTP %ld: %s", k->source, ev->cur.ns,
			 ev->cur.name, status, ev->reply);
	}
	evict_free(ev, k->multi);
}

static int k8s_evict_pod(void *state, const char *ns, const char *name, const char *uid)
{
	struct k8s *k = state;
	struct evictor *ev = &k->ev;
	struct evict_req *r;

	if (strlen(ns) >= sizeof(r->ns) || strlen(name) >= sizeof(r->name) ||
	    strlen(uid) >= sizeof(r->uid))
		return -EINVAL;
	pthread_mutex_lock(&ev->lock);
	if (ev->n == EVICT_QUEUE_MAX) {
		pthread_mutex_unlock(&ev->lock);
		return -EBUSY;
	}
	r = &ev->queue[ev->n++];
	snprintf(r->ns, sizeof(r->ns), "%s", ns);
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->uid, sizeof(r->uid), "%s", uid);
	pthread_mutex_unlock(&ev->lock);
	atomic_fetch_add(&ev->requested, 1);
	curl_multi_wakeup(k->multi);
	return 0;
}

static void k8s_evict_stats(void *state, struct reg_evict_stats *out)
{
	struct k8s *k = state;

	out->requested = atomic_load(&k->ev.requested);
	out->evicted = atomic_load(&k->ev.evicted);
	out->refused = atomic_load(&k->ev.refused);
	out->failed = atomic_load(&k->ev.failed);
}

/* ---- the thread ---- */

/* Start the requests that are due; returns how long to wait at most. */
static long start_due(struct k8s *k)
{
	uint64_t now = mono_ms();
	long wait = IDLE_TICK_MS;
	int err;

	for (size_t i = 0; i < k->n; i++) {
		struct watcher *w = &k->w[i];
		bool list = !w->res.rv[0];

		if (w->phase != PH_WAIT)
			continue;
		if (w->next_ms > now) {
			if ((long)(w->next_ms - now) < wait)
				wait = (long)(w->next_ms - now);
			continue;
		}
		/* The sink keeps one resync per source: list one resource at a
		 * time; the others wait for the lister, then go.
		 */
		if (list && k->lister >= 0 && k->lister != (int)i)
			continue;
		if (list)
			k->lister = (int)i;
		err = xfer_start(w, list);
		if (err) {
			char msg[MSG_MAX];

			release_lister(w);
			snprintf(msg, sizeof(msg), "%s %s: %s", list ? "list" : "watch",
				 w->res.k->plural, strerror(-err));
			failed(w, msg, 0);
		}
	}
	return wait;
}

static void *run(void *arg)
{
	struct k8s *k = arg;
	CURLMsg *m;
	int running, left;

	while (!atomic_load(&k->stop)) {
		long wait = start_due(k);

		evict_start(k);
		curl_multi_perform(k->multi, &running);
		while ((m = curl_multi_info_read(k->multi, &left))) {
			struct watcher *w = NULL;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&w);
			if (atomic_load(&k->stop))
				break;
			if (m->easy_handle == k->ev.easy) {
				evict_done(k, m->data.result);
				wait = 0;
				continue;
			}
			xfer_done(w, m->data.result);
			wait = 0;	/* a follow-up may be due right now */
		}
		if (atomic_load(&k->stop))
			break;
		curl_multi_poll(k->multi, NULL, 0, (int)wait, NULL);
	}
	for (size_t i = 0; i < k->n; i++)
		xfer_free(&k->w[i]);
	evict_free(&k->ev, k->multi);
	return NULL;
}

/* ---- the backend ---- */

static void k8s_free(struct k8s *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++) {
		xfer_free(&k->w[i]);
		k8s_stream_done(&k->w[i].stream);
		k8s_res_done(&k->w[i].res);
	}
	evict_free(&k->ev, k->multi);
	pthread_mutex_destroy(&k->ev.lock);
	if (k->multi)
		curl_multi_cleanup(k->multi);
	k8s_conn_done(&k->conn);
	free(k->field_selector);
	free(k->token);
	free(k->source);
	free(k);
	curl_global_cleanup();
}

static int load_conn(struct k8s *k, const struct reg_opts *opts)
{
	char err[K8S_CFG_ERR_MAX];
	int rc;

	if (opts->kubeconfig && opts->kubeconfig[0])
		rc = k8s_conn_from_kubeconfig(opts->kubeconfig, &k->conn, err, sizeof(err));
	else
		rc = k8s_conn_in_cluster(K8S_SA_DIR, getenv("KUBERNETES_SERVICE_HOST"),
					 getenv("KUBERNETES_SERVICE_PORT"), &k->conn, err,
					 sizeof(err));
	if (rc == -ENOENT && !(opts->kubeconfig && opts->kubeconfig[0])) {
		log_err("option --registry %s: %s, and no --kubeconfig (KUBECONFIG) is given",
			k->source, err);
		return -EINVAL;
	}
	if (rc)
		log_err("option --registry %s: %s", k->source, err);
	return rc;
}

static int add_watcher(struct k8s *k, enum obj_kind kind)
{
	struct watcher *w = &k->w[k->n];

	w->k = k;
	w->res.k = &k8s_kinds[kind];
	w->phase = PH_WAIT;
	if (k8s_stream_init(&w->stream, BODY_MAX, on_value, w))
		return -ENOMEM;
	k->n++;
	return 0;
}

static int k8s_start(const char *source, const char *arg, const struct reg_opts *opts,
		     struct reg_sink *sink, void **state)
{
	struct k8s *k;
	int err;

	if (arg[0]) {
		log_err("option --registry: '%s': the kubernetes source takes no argument "
			"(use --kubeconfig for a kubeconfig)", source);
		return -EINVAL;
	}
	/* Before any thread: curl_global_init() is not thread-safe everywhere. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return log_errno(-ENOMEM, "registry %s: initialise libcurl", source);
	k = calloc(1, sizeof(*k));
	if (!k) {
		curl_global_cleanup();
		return log_errno(-ENOMEM, "registry %s", source);
	}
	pthread_mutex_init(&k->ev.lock, NULL);
	k->sink = sink;
	k->lister = -1;
	k->rng = mono_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)k;
	k->source = strdup(source);
	k->multi = curl_multi_init();
	if (!k->source || !k->multi) {
		err = log_errno(-ENOMEM, "registry %s", source);
		goto out_free;
	}
	err = load_conn(k, opts);
	if (err)
		goto out_free;
	err = add_watcher(k, OBJ_NAMESPACE);
	if (!err)
		err = add_watcher(k, OBJ_SERVICE);
	if (!err)
		err = add_watcher(k, OBJ_ENDPOINTSLICE);
	if (!err && opts->node_name && opts->node_name[0]) {
		if (asprintf(&k->field_selector, "spec.nodeName=%s", opts->node_name) < 0) {
			k->field_selector = NULL;
			err = -ENOMEM;
		} else {
			err = add_watcher(k, OBJ_POD);
		}
	}
	if (err) {
		err = log_errno(err, "registry %s", source);
		goto out_free;
	}
	if (!k->field_selector)
		log_warn("registry: %s: --node-name (NODE_NAME) is empty: not watching Pods, "
			 "so no Pod annotation (weft.io/mesh, exclusions) is read, ignoring",
			 source);
	if (k->conn.insecure)
		log_warn("registry: %s: insecure-skip-tls-verify: "
			 "the API server's certificate is not checked, ignoring",
			 source);
	err = -pthread_create(&k->thread, NULL, run, k);
	if (err) {
		err = log_errno(err, "registry %s: start its thread", source);
		goto out_free;
	}
	k->running = true;
	log_info("registry: %s: API server %s (%s), "
		 "watching namespaces, services, endpointslices%s%s",
		 source, k->conn.server, k->conn.origin,
		 k->field_selector ? " and pods of node " : "",
		 k->field_selector ? opts->node_name : "");
	*state = k;
	return 0;
out_free:
	k8s_free(k);
	return err;
}

static void k8s_stop(void *state, bool deregister)
{
	struct k8s *k = state;

	/* Nothing is registered in Kubernetes: the API server owns the objects. */
	(void)deregister;
	if (!k)
		return;
	if (k->running) {
		atomic_store(&k->stop, true);
		curl_multi_wakeup(k->multi);
		pthread_join(k->thread, NULL);
	}
	k8s_free(k);
}

const struct reg_backend_ops reg_k8s_ops = {
	.scheme = "kubernetes",
	.start = k8s_start,
	.stop = k8s_stop,
	.evict_pod = k8s_evict_pod,
	.evict_stats = k8s_evict_stats,
};
