// SPDX-License-Identifier: GPL-2.0-only
/* The Consul watcher thread: one blocking query on the catalog's services
 * and one per service on its passing instances, all in flight at once on
 * one client, each resumed from the X-Consul-Index it last saw. Follows
 * Consul's guidance on blocking queries: an index that goes backwards (a
 * restored or rebuilt cluster) means a full listing again; an index below
 * 1 is taken as 1; and a query is never repeated in a tight loop — at most
 * every PACE_MS, and PACE_IDLE_MS after an answer that did not move the
 * index. A lost server: the next URL after a jittered backoff, resuming
 * from the indexes held (they are the cluster's, not one server's), the
 * source stale and its last state in force meanwhile.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "registry/consul_core.h"
#include "registry/consul_map.h"
#include "registry/consul_watch.h"

#define PACE_MS 100		/* between two starts of one query */
#define PACE_IDLE_MS 1000	/* after an answer with an unchanged index */
#define PACE_BAD_MS 2000	/* after a malformed answer for one service */
#define TICK_MS 1000

static const enum obj_kind kinds[] = { OBJ_SERVICE, OBJ_ENDPOINTSLICE };

/* One watched service. */
struct svcw {
	char *name;
	json_object *tags;		/* the catalog's, owned */
	json_object *health;		/* the last passing instances, owned; NULL = none yet */
	uint64_t index;			/* its query's X-Consul-Index; 0 = not asked yet */
	struct consul_call call;
	uint64_t next_ms;		/* start its query no sooner */
	bool answered;			/* in the listing under way */
	uint16_t last_port;
	bool skipped;			/* a skip was reported for the current state */
	char slices[CONSUL_MAP_SLICES_MAX][OBJ_NAME_MAX];	/* published */
	size_t n_slices;
	bool published;			/* its Service is in the sink */
};

struct watcher {
	struct consul *c;
	size_t url;
	uint64_t index;			/* the catalog's; 0 = list first */
	struct consul_call cat;
	uint64_t cat_next_ms;
	struct svcw **svcs;
	size_t n_svcs;
	bool listing;			/* a resync of the sink is open */
	bool synced;			/* SYNCED reported since the last failure */
	bool synced_once;
	struct reg_backoff bo;
	char token[CONSUL_TOKEN_MAX];
	char msg[512];
};

static void svc_free(struct watcher *w, struct svcw *s)
{
	consul_call_free(w->c->watch_http, &s->call);
	json_object_put(s->tags);
	json_object_put(s->health);
	free(s->name);
	free(s);
}

/* Count the service's published objects as listed: the version in force
 * stays (a rejected answer must not remove a working service).
 */
static int keep(struct watcher *w, struct svcw *s)
{
	struct consul *c = w->c;
	int ret = 0;

	if (!w->listing)
		return 0;
	if (s->published)
		ret = reg_sink_keep(c->sink, c->source, OBJ_SERVICE, c->k8s_ns, s->name);
	for (size_t i = 0; i < s->n_slices && !ret; i++)
		ret = reg_sink_keep(c->sink, c->source, OBJ_ENDPOINTSLICE, c->k8s_ns,
				    s->slices[i]);
	return ret;
}

static int unpublish(struct watcher *w, struct svcw *s)
{
	struct consul *c = w->c;
	int ret = 0;

	for (size_t i = 0; i < s->n_slices && !ret; i++)
		ret = reg_sink_delete(c->sink, c->source, OBJ_ENDPOINTSLICE, c->k8s_ns,
				      s->slices[i]);
	if (!ret && s->published)
		ret = reg_sink_delete(c->sink, c->source, OBJ_SERVICE, c->k8s_ns, s->name);
	if (!ret) {
		s->n_slices = 0;
		s->published = false;
	}
	return ret;
}

/* Map the service's tags and instances into the sink. 0, or -errno of the
 * sink (stopping, out of memory).
 */
static int publish(struct watcher *w, struct svcw *s)
{
	struct consul *c = w->c;
	struct consul_objs o;
	char err[640];	/* a decoder message (registry/decode.h) and context */
	char (*old)[OBJ_NAME_MAX] = NULL;
	size_t n_old = s->n_slices;
	int ret;

	ret = consul_map_service(c->source, c->k8s_ns, s->name, s->tags, s->health, &s->last_port,
				 &o, err, sizeof(err));
	for (size_t i = 0; i < o.rejected; i++)
		(void)reg_sink_rejected(c->sink, c->source);
	if (ret == -ENOENT || ret == -EINVAL) {
		/* Reported once per state, not on every answer. */
		if (!s->skipped) {
			log_warn("registry: %s: service %s: %s, %s", c->source, s->name, err,
				 ret == -ENOENT ? "skipped" : "its previous version stays in force");
			(void)reg_sink_rejected(c->sink, c->source);
			s->skipped = true;
		}
		/* Without a VIP there is nothing to route to: it goes. A service
		 * that does not decode keeps its last good version.
		 */
		return ret == -ENOENT ? unpublish(w, s) : keep(w, s);
	}
	if (ret)
		return ret;
	s->skipped = false;
	if (n_old) {
		old = malloc(n_old * sizeof(*old));
		if (!old) {
			consul_objs_free(&o);
			return -ENOMEM;
		}
		memcpy(old, s->slices, n_old * sizeof(*old));
	}
	ret = reg_sink_upsert(c->sink, c->source, o.svc);
	o.svc = NULL;
	s->published = !ret;
	for (size_t i = 0; i < o.n_slices; i++) {
		snprintf(s->slices[i], sizeof(s->slices[i]), "%s", o.slices[i]->key.name);
		if (!ret)
			ret = reg_sink_upsert(c->sink, c->source, o.slices[i]);
		else
			obj_free(o.slices[i]);
		o.slices[i] = NULL;
	}
	s->n_slices = o.n_slices;
	o.n_slices = 0;
	/* Slices of ports no instance uses any more. */
	for (size_t i = 0; i < n_old && !ret; i++) {
		bool still = false;

		for (size_t j = 0; j < s->n_slices; j++)
			still |= !strcmp(old[i], s->slices[j]);
		if (!still)
			ret = reg_sink_delete(c->sink, c->source, OBJ_ENDPOINTSLICE, c->k8s_ns,
					      old[i]);
	}
	free(old);
	return ret;
}

/* Check a blocking query's answer. 0 with the index to resume from in
 * *@index; -ESTALE when it went back below @prev (a full listing is due);
 * -EACCES (the token refused), -EPROTO (not a Consul answer) or the
 * transport's -errno, with the reason in w->msg.
 */
static int check_answer(struct watcher *w, struct consul_call *call, const char *what,
			uint64_t prev, uint64_t *index)
{
	const char *url = w->c->urls[w->url];

	if (call->result) {
		snprintf(w->msg, sizeof(w->msg), "%s: %s", url, call->err);
		return call->result;
	}
	if (call->status == 403 || call->status == 401) {
		snprintf(w->msg, sizeof(w->msg), "%s: %s: HTTP %ld, the ACL token was refused: %.80s",
			 url, what, call->status, call->body ? call->body : "");
		return -EACCES;
	}
	if (call->status != 200 || !call->has_index) {
		snprintf(w->msg, sizeof(w->msg), "%s: %s: HTTP %ld%s: %.80s", url, what,
			 call->status, call->has_index ? "" : " without X-Consul-Index",
			 call->body ? call->body : "");
		return -EPROTO;
	}
	*index = call->index < 1 ? 1 : call->index;
	if (*index < prev) {
		snprintf(w->msg, sizeof(w->msg), "%s: the index went back from %llu to %llu", what,
			 (unsigned long long)prev, (unsigned long long)*index);
		return -ESTALE;
	}
	return 0;
}

static uint64_t pace(uint64_t started_ms, uint64_t prev, uint64_t index)
{
	return started_ms + (index == prev ? PACE_IDLE_MS : PACE_MS);
}

static int start_query(struct watcher *w, struct consul_call *call, const char *path,
		       const char *extra, uint64_t index, void *ctx)
{
	struct consul *c = w->c;
	char url[2048], params[256];
	int ret;

	/* The token file is read for every query, so a rotated token is
	 * used from the next one on.
	 */
	ret = consul_token(c, w->token, sizeof(w->token));
	if (ret) {
		snprintf(w->msg, sizeof(w->msg), "cannot read --consul-token-file %s: %s",
			 c->token_file, strerror(-ret));
		return ret;
	}
	snprintf(params, sizeof(params), "%sindex=%llu&wait=%us", extra,
		 (unsigned long long)index, c->wait_s);
	ret = consul_url(c, c->urls[w->url], path, params, url, sizeof(url));
	if (ret)
		return ret;
	call->ctx = ctx;
	/* Consul adds up to wait/16 to spread wake-ups: allow for it. */
	return consul_call_start(c->watch_http, call, "GET", url, w->token,
				 NULL, (long)c->wait_s * 1000 * 17 / 16 + CONSUL_CALL_TIMEOUT_MS);
}

static struct svcw *find(struct watcher *w, const char *name, size_t *at)
{
	for (size_t i = 0; i < w->n_svcs; i++)
		if (!strcmp(w->svcs[i]->name, name)) {
			if (at)
				*at = i;
			return w->svcs[i];
		}
	return NULL;
}

static int add_svc(struct watcher *w, const char *name, struct svcw **out)
{
	struct svcw **grown = realloc(w->svcs, (w->n_svcs + 1) * sizeof(*grown));
	struct svcw *s = calloc(1, sizeof(*s));

	if (grown)
		w->svcs = grown;
	if (!grown || !s || !(s->name = strdup(name))) {
		free(s);
		return -ENOMEM;
	}
	w->svcs[w->n_svcs++] = s;
	*out = s;
	return 0;
}

/* The listing is complete once every service answered: end the resync. */
static int maybe_synced(struct watcher *w)
{
	struct consul *c = w->c;
	int ret = 0;

	if (w->synced || !w->index)
		return 0;
	for (size_t i = 0; i < w->n_svcs; i++)
		if (!w->svcs[i]->answered)
			return 0;
	if (w->listing) {
		ret = reg_sink_resync_end(c->sink, c->source);
		w->listing = false;
		log_info("registry: %s: listed %zu service(s) at index %llu", c->source, w->n_svcs,
			 (unsigned long long)w->index);
	}
	if (ret)
		return ret;
	w->synced = w->synced_once = true;
	reg_backoff_reset(&w->bo);
	snprintf(w->msg, sizeof(w->msg), "watching %s at index %llu", c->urls[w->url],
		 (unsigned long long)w->index);
	return reg_sink_health(c->sink, c->source, REG_HEALTH_SYNCED, w->msg);
}

/* The catalog's services: follow additions, removals and tag changes. */
static int on_catalog(struct watcher *w, uint64_t started_ms)
{
	struct consul *c = w->c;
	json_object *o = NULL;
	uint64_t index;
	int ret;

	ret = check_answer(w, &w->cat, "/v1/catalog/services", w->index, &index);
	if (ret)
		return ret;
	o = w->cat.body ? json_tokener_parse(w->cat.body) : NULL;
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(w->msg, sizeof(w->msg), "%s: /v1/catalog/services: not a JSON object",
			 c->urls[w->url]);
		json_object_put(o);
		return -EPROTO;
	}
	json_object_object_foreach(o, name, tags) {
		struct svcw *s = find(w, name, NULL);
		bool changed;

		if (!s) {
			ret = add_svc(w, name, &s);
			if (ret)
				break;
		}
		changed = !s->tags || !json_object_equal(s->tags, tags);
		json_object_put(s->tags);
		s->tags = json_object_get(tags);
		/* New tags reshape the Service; instances come with the health
		 * answer (asked for already when the service is new).
		 */
		if (changed && s->index) {
			s->skipped = false;
			ret = publish(w, s);
			if (ret)
				break;
		}
	}
	for (size_t i = 0; i < w->n_svcs && !ret;) {
		struct svcw *s = w->svcs[i];

		if (json_object_object_get_ex(o, s->name, NULL)) {
			i++;
			continue;
		}
		ret = unpublish(w, s);
		svc_free(w, s);
		w->svcs[i] = w->svcs[--w->n_svcs];
	}
	json_object_put(o);
	if (ret)
		return ret;
	w->cat_next_ms = pace(started_ms, w->index, index);
	w->index = index;
	return maybe_synced(w);
}

/* One service's passing instances. */
static int on_health(struct watcher *w, struct svcw *s, uint64_t started_ms)
{
	struct consul *c = w->c;
	json_object *o;
	uint64_t index;
	int ret;

	ret = check_answer(w, &s->call, s->name, s->index, &index);
	if (ret)
		return ret;
	o = s->call.body ? json_tokener_parse(s->call.body) : NULL;
	s->answered = true;
	if (!json_object_is_type(o, json_type_array)) {
		/* This service's answer alone is bad: the rest stays watched. */
		json_object_put(o);
		log_warn("registry: %s: /v1/health/service/%s: not a JSON array, its previous "
			 "version stays in force",
			 c->source, s->name);
		(void)reg_sink_rejected(c->sink, c->source);
		s->index = 0;
		s->next_ms = started_ms + PACE_BAD_MS;
		ret = keep(w, s);
		return ret ? ret : maybe_synced(w);
	}
	json_object_put(s->health);
	s->health = o;
	s->next_ms = pace(started_ms, s->index, index);
	/* An unchanged index is the wait running out: nothing to apply. */
	if (index != s->index || w->listing)
		ret = publish(w, s);
	s->index = index;
	return ret ? ret : maybe_synced(w);
}

/* Start the queries that are due; the time of the next due one in *@next. */
static int start_due(struct watcher *w, uint64_t now, uint64_t *next)
{
	char path[1024], *esc;
	int ret = 0;

	*next = now + TICK_MS;
	if (!w->cat.busy) {
		if (w->cat_next_ms <= now)
			ret = start_query(w, &w->cat, "/v1/catalog/services", "", w->index, NULL);
		else if (w->cat_next_ms < *next)
			*next = w->cat_next_ms;
	}
	/* Services only once the catalog named them. */
	for (size_t i = 0; i < w->n_svcs && !ret; i++) {
		struct svcw *s = w->svcs[i];

		if (s->call.busy)
			continue;
		if (s->next_ms > now) {
			if (s->next_ms < *next)
				*next = s->next_ms;
			continue;
		}
		/* Consul names are free text: escaped, and rejected later by
		 * the decoder if they are no DNS label.
		 */
		esc = curl_easy_escape(NULL, s->name, 0);
		if (!esc)
			return -ENOMEM;
		snprintf(path, sizeof(path), "/v1/health/service/%s", esc);
		curl_free(esc);
		ret = start_query(w, &s->call, path, "passing=1&", s->index, s);
	}
	return ret;
}

/* Watch from the indexes held until something fails: the reason. */
static int run(struct watcher *w)
{
	struct consul *c = w->c;
	int ret;

	w->synced = false;
	w->cat_next_ms = 0;
	if (!w->index) {
		ret = reg_sink_resync_begin(c->sink, c->source, kinds, 2);
		if (ret)
			return ret;
		w->listing = true;
		for (size_t i = 0; i < w->n_svcs; i++)
			w->svcs[i]->index = 0;
	}
	for (size_t i = 0; i < w->n_svcs; i++) {
		w->svcs[i]->next_ms = 0;
		w->svcs[i]->answered = false;
	}
	for (;;) {
		struct consul_call *done;
		uint64_t now = mono_ms(), next, started;

		ret = start_due(w, now, &next);
		if (ret)
			return ret;
		ret = consul_http_next(c->watch_http, (int)(next - now), &done);
		if (ret)
			return ret;
		if (!done)
			continue;
		/* Pacing counts from when the answer came back, a bound on
		 * how often one query can run.
		 */
		started = mono_ms();
		if (done == &w->cat)
			ret = on_catalog(w, started);
		else
			ret = on_health(w, done->ctx, started);
		if (ret)
			return ret;
	}
}

static void abort_all(struct watcher *w)
{
	consul_call_abort(w->c->watch_http, &w->cat);
	for (size_t i = 0; i < w->n_svcs; i++)
		consul_call_abort(w->c->watch_http, &w->svcs[i]->call);
}

void *consul_watch_main(void *arg)
{
	struct watcher w = { .c = arg };
	struct consul *c = w.c;

	reg_backoff_init(&w.bo, CONSUL_BACKOFF_MIN_MS, CONSUL_BACKOFF_MAX_MS);
	while (!consul_stopping(c)) {
		int ret;

		w.msg[0] = '\0';
		ret = run(&w);
		abort_all(&w);
		if (ret == -ECANCELED || ret == -EPIPE)
			break;
		if (ret == -ESTALE) {
			/* Right away: the server is there, only our index is not. */
			log_info("registry: %s: %s: listing again", c->source, w.msg);
			w.index = 0;
			continue;
		}
		if (!w.msg[0])
			snprintf(w.msg, sizeof(w.msg), "%s: %s", c->urls[w.url], strerror(-ret));
		(void)reg_sink_health(c->sink, c->source,
				      w.synced_once ? REG_HEALTH_STALE : REG_HEALTH_STARTING, w.msg);
		w.url = (w.url + 1) % c->n_urls;
		if (consul_wait(c, reg_backoff_next(&w.bo), NULL))
			break;
	}
	for (size_t i = 0; i < w.n_svcs; i++)
		svc_free(&w, w.svcs[i]);
	free(w.svcs);
	consul_call_free(c->watch_http, &w.cat);
	return NULL;
}
