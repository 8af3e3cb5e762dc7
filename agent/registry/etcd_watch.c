// SPDX-License-Identifier: GPL-2.0-only
/* The etcd watcher thread: list the prefix (paged, at one revision) as a
 * resync of the sink, then watch from the next revision, applying each event
 * as it comes. A broken stream resumes from the last revision applied on the
 * next URL after a jittered backoff; a compacted revision, or a server whose
 * store went backwards (restored, wiped), means a new listing instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "registry/decode.h"
#include "registry/etcd_core.h"
#include "registry/etcd_watch.h"
#include "registry/etcd_zk_layout.h"

#define LIST_PAGE 500		/* keys per range call of a listing */
#define LIST_TIMEOUT_MS 10000L	/* one page */

static const enum obj_kind all_kinds[] = { OBJ_NAMESPACE, OBJ_SERVICE, OBJ_ENDPOINTSLICE,
					   OBJ_POD };

struct watcher {
	struct etcd *e;
	size_t url;			/* index into e->urls */
	int64_t rev;			/* last revision applied; 0 = list first */
	int64_t term;			/* highest raft term seen */
	char cluster[24];		/* cluster_id of the listing (uint64 text) */
	bool synced_once;
	struct reg_backoff bo;
	char msg[256];			/* why the last attempt ended */
};

/* Check a response header against what this watcher saw before: a different
 * cluster or a lower raft term means the store was replaced, and revisions
 * no longer mean what they did. Returns 0 or -ESTALE (reason in w->msg).
 */
static int check_header(struct watcher *w, json_object *resp, int64_t *rev)
{
	json_object *h, *c;
	int64_t term = 0;

	*rev = 0;
	if (!json_object_object_get_ex(resp, "header", &h))
		return 0;
	(void)etcd_i64_member(h, "revision", rev);
	(void)etcd_i64_member(h, "raft_term", &term);
	if (json_object_object_get_ex(h, "cluster_id", &c)) {
		const char *id = json_object_get_string(c);

		if (w->cluster[0] && strcmp(w->cluster, id)) {
			snprintf(w->msg, sizeof(w->msg), "cluster id changed from %s to %s",
				 w->cluster, id);
			return -ESTALE;
		}
		snprintf(w->cluster, sizeof(w->cluster), "%s", id);
	}
	if (term && term < w->term) {
		snprintf(w->msg, sizeof(w->msg), "raft term went back from %lld to %lld",
			 (long long)w->term, (long long)term);
		return -ESTALE;
	}
	if (term > w->term)
		w->term = term;
	return 0;
}

/* Apply one key-value (a listed key or a PUT event). 0, or -errno from the
 * sink (the agent is stopping, or out of memory): end this attempt.
 */
static int apply_put(struct watcher *w, json_object *kv, bool listing)
{
	struct etcd *e = w->e;
	char *key = NULL, *val = NULL, err[REG_DECODE_ERR_MAX + 64];
	struct obj *obj = NULL;
	struct obj_key k;
	size_t klen, vlen;
	int ret;

	ret = etcd_b64_member(kv, "key", &key, &klen);
	if (!ret)
		ret = etcd_b64_member(kv, "value", &val, &vlen);
	if (ret)
		goto out;
	if (klen < e->prefix_len || memcmp(key, e->prefix, e->prefix_len) ||
	    reg_kv_parse_path(key + e->prefix_len, klen - e->prefix_len, &k)) {
		log_debug("registry: %s: key '%s' is not an object's, ignoring", e->source, key);
		goto out;
	}
	ret = reg_kv_decode(&k, val, vlen, &obj, err, sizeof(err));
	if (ret == -EINVAL) {
		log_warn("registry: %s: key '%s': %s (its previous version stays in force), "
			 "ignoring",
			 e->source, key, err);
		(void)reg_sink_rejected(e->sink, e->source);
		ret = listing ? reg_sink_keep(e->sink, e->source, k.kind, k.ns, k.name) : 0;
		goto out;
	}
	if (ret)
		goto out;
	ret = reg_sink_upsert(e->sink, e->source, obj);
out:
	free(key);
	free(val);
	return ret == -EINVAL ? 0 : ret;
}

static int apply_delete(struct watcher *w, json_object *kv)
{
	struct etcd *e = w->e;
	struct obj_key k;
	char *key = NULL;
	size_t klen;
	int ret;

	ret = etcd_b64_member(kv, "key", &key, &klen);
	if (ret)
		return ret == -EINVAL ? 0 : ret;
	if (klen >= e->prefix_len && !memcmp(key, e->prefix, e->prefix_len) &&
	    !reg_kv_parse_path(key + e->prefix_len, klen - e->prefix_len, &k))
		ret = reg_sink_delete(e->sink, e->source, k.kind, k.ns, k.name);
	free(key);
	return ret;
}

/* One page of a listing from @from (base64, consumed), at w->rev once known. */
static json_object *range_body(struct watcher *w, json_object *from)
{
	json_object *b = json_object_new_object();
	int err;

	err = etcd_json_add(b, "key", from) |
	      etcd_json_add(b, "range_end", etcd_b64_string(w->e->range_end, w->e->range_end_len)) |
	      etcd_json_add(b, "limit", json_object_new_int(LIST_PAGE));
	if (!err && w->rev)
		err = etcd_json_add(b, "revision", json_object_new_int64(w->rev));
	if (err) {
		json_object_put(b);
		return NULL;
	}
	return b;
}

/* List every key under the prefix as one resync of the sink; sets w->rev
 * to the listing's revision. 0 or -errno (reason in w->msg).
 */
static int list(struct watcher *w, const char *url)
{
	struct etcd *e = w->e;
	json_object *from = etcd_b64_string(e->prefix, e->prefix_len);
	size_t n = 0;
	int ret;

	/* A new listing: whatever store answers now is the reference. */
	w->rev = 0;
	w->term = 0;
	w->cluster[0] = '\0';
	ret = reg_sink_resync_begin(e->sink, e->source, all_kinds,
				    sizeof(all_kinds) / sizeof(all_kinds[0]));
	while (!ret) {
		json_object *body = range_body(w, from), *resp = NULL, *kvs, *more;
		json_object *last = NULL;
		int64_t rev;

		from = NULL;
		if (!body) {
			ret = -ENOMEM;
			break;
		}
		ret = etcd_http_call(e->watch_http, url, "/v3/kv/range", body, LIST_TIMEOUT_MS,
				     &resp, NULL, w->msg, sizeof(w->msg));
		json_object_put(body);
		if (!ret)
			ret = check_header(w, resp, &rev);
		if (!ret && !w->rev)
			w->rev = rev;
		if (!ret && json_object_object_get_ex(resp, "kvs", &kvs) &&
		    json_object_is_type(kvs, json_type_array)) {
			size_t len = json_object_array_length(kvs);

			for (size_t i = 0; i < len && !ret; i++)
				ret = apply_put(w, json_object_array_get_idx(kvs, i), true);
			n += len;
			if (len)
				last = json_object_array_get_idx(kvs, len - 1);
		}
		if (!ret && last && json_object_object_get_ex(resp, "more", &more) &&
		    json_object_get_boolean(more)) {
			char *key;
			size_t klen;

			/* The next page starts right after the last key. */
			ret = etcd_b64_member(last, "key", &key, &klen);
			if (!ret) {
				from = etcd_b64_string(key, klen + 1);
				free(key);
			}
			json_object_put(resp);
			continue;
		}
		json_object_put(resp);
		break;
	}
	json_object_put(from);
	if (!ret)
		ret = reg_sink_resync_end(e->sink, e->source);
	if (ret) {
		w->rev = 0;
		return ret;
	}
	log_info("registry: %s: listed %zu key(s) at revision %lld", e->source, n,
		 (long long)w->rev);
	return 0;
}

/* One message of the watch stream ({"result": WatchResponse}). */
static int on_watch_msg(json_object *msg, void *ctx)
{
	struct watcher *w = ctx;
	struct etcd *e = w->e;
	json_object *res, *v, *events;
	int64_t rev, compact = 0;
	size_t n;
	int ret;

	if (json_object_object_get_ex(msg, "error", &v)) {
		json_object *m = NULL;

		if (json_object_is_type(v, json_type_object))
			json_object_object_get_ex(v, "message", &m);
		snprintf(w->msg, sizeof(w->msg), "watch: %s",
			 json_object_get_string(m ? m : v));
		return -EREMOTEIO;
	}
	if (!json_object_object_get_ex(msg, "result", &res))
		return 0;
	ret = check_header(w, res, &rev);
	if (ret)
		return ret;
	if (json_object_object_get_ex(res, "canceled", &v) && json_object_get_boolean(v)) {
		(void)etcd_i64_member(res, "compact_revision", &compact);
		if (compact) {
			snprintf(w->msg, sizeof(w->msg),
				 "revision %lld was compacted (oldest kept: %lld)",
				 (long long)w->rev + 1, (long long)compact);
			return -ESTALE;
		}
		snprintf(w->msg, sizeof(w->msg), "watch canceled: %s",
			 json_object_object_get_ex(res, "cancel_reason", &v)
				 ? json_object_get_string(v) : "no reason given");
		return -ECONNRESET;
	}
	if (json_object_object_get_ex(res, "created", &v) && json_object_get_boolean(v)) {
		/* The header holds the store's current revision. */
		if (rev && rev < w->rev) {
			snprintf(w->msg, sizeof(w->msg), "the store went back from revision %lld "
				 "to %lld", (long long)w->rev, (long long)rev);
			return -ESTALE;
		}
		reg_backoff_reset(&w->bo);
		w->synced_once = true;
		snprintf(w->msg, sizeof(w->msg), "watching %s from revision %lld",
			 e->urls[w->url], (long long)w->rev + 1);
		return reg_sink_health(e->sink, e->source, REG_HEALTH_SYNCED, w->msg);
	}
	if (!json_object_object_get_ex(res, "events", &events) ||
	    !json_object_is_type(events, json_type_array)) {
		/* A progress notification: every event up to @rev was sent. */
		if (rev > w->rev)
			w->rev = rev;
		return 0;
	}
	n = json_object_array_length(events);
	for (size_t i = 0; i < n && !ret; i++) {
		json_object *ev = json_object_array_get_idx(events, i), *kv, *type;
		int64_t mod = 0;

		if (!json_object_object_get_ex(ev, "kv", &kv))
			continue;
		/* proto3 JSON leaves out the default type, PUT. */
		if (json_object_object_get_ex(ev, "type", &type) &&
		    !strcmp(json_object_get_string(type), "DELETE"))
			ret = apply_delete(w, kv);
		else
			ret = apply_put(w, kv, false);
		(void)etcd_i64_member(kv, "mod_revision", &mod);
		if (mod > w->rev)
			w->rev = mod;
	}
	return ret;
}

/* Watch from w->rev + 1 until the stream ends. Returns -ESTALE when a new
 * listing is needed, else why it ended (reason in w->msg).
 */
static int watch(struct watcher *w, const char *url)
{
	json_object *body = json_object_new_object(), *req = json_object_new_object();
	struct etcd *e = w->e;
	int ret;

	/* @req is attached first: @body owns it from here on. */
	ret = etcd_json_add(body, "create_request", req);
	if (!ret)
		ret = etcd_json_add(req, "key", etcd_b64_string(e->prefix, e->prefix_len)) |
		      etcd_json_add(req, "range_end",
				    etcd_b64_string(e->range_end, e->range_end_len)) |
		      etcd_json_add(req, "start_revision", json_object_new_int64(w->rev + 1)) |
		      etcd_json_add(req, "progress_notify", json_object_new_boolean(1));
	if (!ret)
		ret = etcd_http_stream(e->watch_http, url, "/v3/watch", body, on_watch_msg, w,
				       w->msg, sizeof(w->msg));
	else
		ret = -ENOMEM;
	json_object_put(body);
	return ret;
}

void *etcd_watch_main(void *arg)
{
	struct watcher w = { .e = arg };
	struct etcd *e = w.e;

	reg_backoff_init(&w.bo, ETCD_BACKOFF_MIN_MS, ETCD_BACKOFF_MAX_MS);
	while (!etcd_stopping(e)) {
		const char *url = e->urls[w.url];
		char health[sizeof(w.msg) + 128];
		int ret = 0;

		w.msg[0] = '\0';
		if (!w.rev)
			ret = list(&w, url);
		if (!ret)
			ret = watch(&w, url);
		if (ret == -ECANCELED || ret == -EPIPE)
			break;
		if (ret == -ESTALE) {
			/* Right away: the server is there, only our revision is not. */
			log_info("registry: %s: %s: listing again", e->source, w.msg);
			w.rev = 0;
			continue;
		}
		snprintf(health, sizeof(health), "%s: %s", url,
			 w.msg[0] ? w.msg : strerror(-ret));
		(void)reg_sink_health(e->sink, e->source,
				      w.synced_once ? REG_HEALTH_STALE : REG_HEALTH_STARTING,
				      health);
		w.url = (w.url + 1) % e->n_urls;
		if (etcd_wait(e, reg_backoff_next(&w.bo), NULL))
			break;
	}
	return NULL;
}
