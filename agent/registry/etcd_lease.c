// SPDX-License-Identifier: GPL-2.0-only
/* The etcd registrar thread: keeps this node's EndpointSlices under the
 * prefix, every one attached to one lease of --etcd-lease-ttl seconds that
 * it keeps alive (every third of the TTL). When the agent dies the
 * keepalives stop, the lease expires and etcd deletes the keys by itself:
 * a dead node's endpoints need nobody to clean up. A lease found expired
 * (an outage longer than the TTL) is replaced and every key written again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "array.h"
#include "clock.h"
#include "log.h"
#include "registry/etcd_core.h"
#include "registry/etcd_lease.h"
#include "registry/etcd_zk_layout.h"

/* A key this thread wrote under the current lease. */
struct written {
	char rel[REG_KV_PATH_MAX];
	char *manifest;
};

struct registrar {
	struct etcd *e;
	struct reg_local_want want;	/* a private copy of e->want */
	struct written *have;
	size_t n_have, cap_have;
	uint32_t ttl_s;			/* as granted */
	uint64_t next_keepalive_ms;
	bool failing;			/* the current outage was logged */
	struct reg_backoff bo;
	char msg[256];
};

static void forget_written(struct registrar *r)
{
	for (size_t i = 0; i < r->n_have; i++)
		free(r->have[i].manifest);
	r->n_have = 0;
}

static const char *url(struct registrar *r)
{
	return r->e->urls[r->e->reg_url];
}

/* POST @body (consumed) to @path; the answer in *@resp when wanted. */
static int call(struct registrar *r, const char *path, json_object *body, json_object **resp)
{
	json_object *o = NULL;
	int code = 0, ret;

	if (!body)
		return -ENOMEM;
	ret = etcd_http_call(r->e->reg_http, url(r), path, body, ETCD_CALL_TIMEOUT_MS, &o, &code,
			     r->msg, sizeof(r->msg));
	json_object_put(body);
	if (ret == -EREMOTEIO && code == ETCD_GRPC_NOT_FOUND)
		ret = -ENOENT;
	if (resp)
		*resp = o;
	else
		json_object_put(o);
	return ret;
}

static json_object *lease_body(int64_t id)
{
	json_object *b = json_object_new_object();

	return etcd_json_add(b, "ID", json_object_new_int64(id)) ? NULL : b;
}

static int grant(struct registrar *r)
{
	struct etcd *e = r->e;
	json_object *b = json_object_new_object(), *resp = NULL;
	int64_t id = 0, ttl = 0;
	int ret;

	if (etcd_json_add(b, "TTL", json_object_new_int64(e->lease_ttl_s))) {
		json_object_put(b);
		return -ENOMEM;
	}
	ret = call(r, "/v3/lease/grant", b, &resp);
	if (!ret && (etcd_i64_member(resp, "ID", &id) || etcd_i64_member(resp, "TTL", &ttl) ||
		     !id || ttl <= 0)) {
		snprintf(r->msg, sizeof(r->msg), "lease grant: no ID or TTL in the answer");
		ret = -EPROTO;
	}
	json_object_put(resp);
	if (ret)
		return ret;
	e->lease = id;
	r->ttl_s = (uint32_t)ttl;
	r->next_keepalive_ms = mono_ms() + (uint64_t)ttl * 1000 / 3;
	log_info("registry: %s: lease %lld granted (TTL %lld s)", e->source, (long long)id,
		 (long long)ttl);
	return 0;
}

/* Renew the lease; -ENOENT when it expired already. */
static int keepalive(struct registrar *r)
{
	json_object *resp = NULL, *res;
	int64_t ttl = 0;
	int ret;

	ret = call(r, "/v3/lease/keepalive", lease_body(r->e->lease), &resp);
	if (!ret) {
		/* A stream of one answer: {"result": {"ID", "TTL"}}; no TTL = gone. */
		if (json_object_object_get_ex(resp, "result", &res))
			(void)etcd_i64_member(res, "TTL", &ttl);
		ret = ttl > 0 ? 0 : -ENOENT;
	}
	json_object_put(resp);
	if (!ret)
		r->next_keepalive_ms = mono_ms() + (uint64_t)ttl * 1000 / 3;
	return ret;
}

static struct written *find_written(struct registrar *r, const char *rel)
{
	for (size_t i = 0; i < r->n_have; i++)
		if (!strcmp(r->have[i].rel, rel))
			return &r->have[i];
	return NULL;
}

static int put(struct registrar *r, const char *rel, const char *manifest)
{
	struct etcd *e = r->e;
	struct written *w = find_written(r, rel);
	json_object *b = json_object_new_object();
	char *copy;
	int ret;

	if (w && !strcmp(w->manifest, manifest)) {
		json_object_put(b);
		return 0;
	}
	if (!w && array_reserve(&r->have, &r->cap_have, r->n_have, sizeof(*r->have), 8)) {
		json_object_put(b);
		return -ENOMEM;
	}
	copy = strdup(manifest);
	ret = etcd_json_add(b, "key", etcd_key_b64(e, rel)) |
	      etcd_json_add(b, "value", etcd_b64_string(manifest, strlen(manifest))) |
	      etcd_json_add(b, "lease", json_object_new_int64(e->lease));
	if (ret || !copy) {
		json_object_put(b);
		free(copy);
		return -ENOMEM;
	}
	ret = call(r, "/v3/kv/put", b, NULL);
	if (ret) {
		free(copy);
		return ret;
	}
	if (!w) {
		w = &r->have[r->n_have++];
		snprintf(w->rel, sizeof(w->rel), "%s", rel);
	} else {
		free(w->manifest);
	}
	w->manifest = copy;
	log_debug("registry: %s: registered '%s%s'", e->source, e->prefix, rel);
	return 0;
}

static int del(struct registrar *r, size_t i)
{
	json_object *b = json_object_new_object();
	int ret;

	if (etcd_json_add(b, "key", etcd_key_b64(r->e, r->have[i].rel))) {
		json_object_put(b);
		return -ENOMEM;
	}
	ret = call(r, "/v3/kv/deleterange", b, NULL);
	if (ret)
		return ret;
	log_debug("registry: %s: deregistered '%s%s'", r->e->source, r->e->prefix,
		  r->have[i].rel);
	free(r->have[i].manifest);
	r->have[i] = r->have[--r->n_have];
	return 0;
}

/* Make the keys under the lease what @want says. 0 or -errno. */
static int reconcile(struct registrar *r)
{
	char rel[REG_KV_PATH_MAX];
	int ret = 0;

	for (size_t i = 0; i < r->want.n && !ret; i++) {
		struct obj_key k = { .kind = OBJ_ENDPOINTSLICE };

		snprintf(k.ns, sizeof(k.ns), "%s", r->want.slices[i].ns);
		snprintf(k.name, sizeof(k.name), "%s", r->want.slices[i].name);
		ret = reg_kv_path(&k, rel, sizeof(rel));
		if (!ret)
			ret = put(r, rel, r->want.slices[i].manifest);
	}
	if (!r->want.complete)
		return ret;	/* a partial set removes nothing (struct reg_local_want) */
	for (size_t i = r->n_have; i-- > 0 && !ret;) {
		bool wanted = false;

		for (size_t j = 0; j < r->want.n && !wanted; j++) {
			struct obj_key k = { .kind = OBJ_ENDPOINTSLICE };

			snprintf(k.ns, sizeof(k.ns), "%s", r->want.slices[j].ns);
			snprintf(k.name, sizeof(k.name), "%s", r->want.slices[j].name);
			wanted = !reg_kv_path(&k, rel, sizeof(rel)) && !strcmp(rel, r->have[i].rel);
		}
		if (!wanted)
			ret = del(r, i);
	}
	return ret;
}

/* One round: a lease if anything is or was registered, the keys, the
 * keepalive when due. 0 or -errno (reason in r->msg).
 */
static int round_trip(struct registrar *r)
{
	struct etcd *e = r->e;
	int ret = reg_local_want_take(&r->want, &e->want, &e->lock);

	if (ret)
		return ret;
	if (!e->lease && !r->want.n && !r->n_have)
		return 0;
	if (!e->lease) {
		ret = grant(r);
		if (ret)
			return ret;
	}
	ret = reconcile(r);
	if (!ret && mono_ms() >= r->next_keepalive_ms)
		ret = keepalive(r);
	return ret;
}

void *etcd_lease_main(void *arg)
{
	struct registrar r = { .e = arg };
	struct etcd *e = r.e;

	reg_backoff_init(&r.bo, ETCD_BACKOFF_MIN_MS, ETCD_BACKOFF_MAX_MS);
	while (!etcd_stopping(e)) {
		uint64_t now, wait_ms;
		int ret;

		r.msg[0] = '\0';
		ret = round_trip(&r);
		if (ret == -ECANCELED)
			break;
		if (ret == -ENOENT && e->lease) {
			/* Its keys went with it: write them all again. */
			log_warn("registry: %s: lease %lld expired (etcd unreachable for longer "
				 "than its TTL?), registering again",
				 e->source, (long long)e->lease);
			e->lease = 0;
			forget_written(&r);
			continue;
		}
		if (ret) {
			if (!r.failing)
				log_warn("registry: %s: cannot register this node's endpoints at %s: "
					 "%s; retrying, ignoring",
					 e->source, url(&r), r.msg[0] ? r.msg : strerror(-ret));
			r.failing = true;
			e->reg_url = (e->reg_url + 1) % e->n_urls;
			/* Retry well within the TTL, so a short outage loses no lease. */
			wait_ms = reg_backoff_next(&r.bo);
			if (r.ttl_s && wait_ms > r.ttl_s * 1000 / 3)
				wait_ms = r.ttl_s * 1000 / 3;
			if (etcd_wait(e, (uint32_t)wait_ms, NULL))
				break;
			continue;
		}
		if (r.failing)
			log_info("registry: %s: registering at %s again", e->source, url(&r));
		r.failing = false;
		reg_backoff_reset(&r.bo);
		now = mono_ms();
		wait_ms = !e->lease ? 3600 * 1000
			  : r.next_keepalive_ms > now ? r.next_keepalive_ms - now : 0;
		if (etcd_wait(e, (uint32_t)wait_ms, &r.want.gen))
			break;
	}
	forget_written(&r);
	free(r.have);
	reg_local_want_free(&r.want);
	return NULL;
}
