// SPDX-License-Identifier: GPL-2.0-only
/* The etcd v3 registry backend (registry/etcd.h): parses --registry
 * etcd:URL[,URL...], starts the watcher and registrar threads, hands them
 * this node's endpoints, and stops them — revoking the lease, so this node's
 * endpoints vanish at once on a clean stop instead of after the TTL.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "clock.h"
#include "log.h"
#include "registry/etcd.h"
#include "registry/etcd_core.h"
#include "registry/etcd_lease.h"
#include "registry/etcd_watch.h"
#include "sync.h"

#define ETCD_REVOKE_TIMEOUT_MS 1000L	/* one attempt */
#define ETCD_REVOKE_BUDGET_MS 2000	/* all attempts */

/* "http://a:2379,http://b:2379" into e->urls. 0 or -EINVAL (logged). */
static int parse_urls(struct etcd *e, const char *arg)
{
	const char *p = arg;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		while (n && p[n - 1] == '/')
			n--;
		if (e->n_urls == ETCD_URLS_MAX) {
			log_err("option --registry: '%s': more than %d URLs", e->source,
				ETCD_URLS_MAX);
			return -EINVAL;
		}
		size_t scheme = !strncmp(p, "http://", 7) ? 7 : !strncmp(p, "https://", 8) ? 8 : 0;

		if (!scheme || n <= scheme) {
			log_err("option --registry: '%s': '%.*s' is not an http:// or https:// URL",
				e->source, (int)n, p);
			return -EINVAL;
		}
		e->urls[e->n_urls] = strndup(p, n);
		if (!e->urls[e->n_urls])
			return -ENOMEM;
		e->n_urls++;
		p = end ? end + 1 : p + n;
	}
	if (!e->n_urls) {
		log_err("option --registry: 'etcd:' needs at least one URL (etcd:http://HOST:2379)");
		return -EINVAL;
	}
	return 0;
}

/* The end of the prefix's key range: the prefix with its last byte below
 * 0xff incremented and what follows dropped (clientv3.GetPrefixRangeEnd);
 * "\0" (every key from the prefix on) if there is none.
 */
static int set_prefix(struct etcd *e, const char *prefix)
{
	size_t n = strlen(prefix);

	if (!n) {
		log_err("option --etcd-prefix: must not be empty");
		return -EINVAL;
	}
	e->prefix = strdup(prefix);
	e->range_end = strdup(prefix);
	if (!e->prefix || !e->range_end)
		return -ENOMEM;
	e->prefix_len = n;
	while (n && (unsigned char)e->range_end[n - 1] == 0xff)
		n--;
	if (n)
		e->range_end[n - 1]++;
	e->range_end_len = n ? n : 1;
	if (!n)
		e->range_end[0] = '\0';
	return 0;
}

static void etcd_free(struct etcd *e)
{
	etcd_http_free(e->watch_http);
	etcd_http_free(e->reg_http);
	reg_local_want_free(&e->want);
	for (size_t i = 0; i < e->n_urls; i++)
		free(e->urls[i]);
	free(e->prefix);
	free(e->range_end);
	free(e->source);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

/* Revoke the lease: the server deletes every key attached at once. Tries
 * the URLs in turn for at most ETCD_REVOKE_BUDGET_MS, so an unreachable
 * cluster delays the agent's exit by little; the lease then expires alone.
 */
static void revoke(struct etcd *e)
{
	struct etcd_http *h = etcd_http_new();
	json_object *body = json_object_new_object(), *resp = NULL;
	uint64_t until = mono_ms() + ETCD_REVOKE_BUDGET_MS;
	char err[256] = "", id[24];
	int ret = -ENOMEM, code = 0;

	snprintf(id, sizeof(id), "%lld", (long long)e->lease);
	if (h && !etcd_json_add(body, "ID", json_object_new_string(id))) {
		for (size_t i = 0; i < e->n_urls && mono_ms() < until; i++) {
			const char *url = e->urls[(e->reg_url + i) % e->n_urls];

			ret = etcd_http_call(h, url, "/v3/lease/revoke", body,
					     ETCD_REVOKE_TIMEOUT_MS, &resp, &code, err, sizeof(err));
			json_object_put(resp);
			resp = NULL;
			/* Not found: expired already, which is the same result. */
			if (ret == -EREMOTEIO && code == ETCD_GRPC_NOT_FOUND)
				ret = 0;
			if (!ret)
				break;
		}
	}
	if (ret)
		log_warn("registry: %s: cannot revoke lease %s: %s; this node's endpoints expire "
			 "with it within %u s, ignoring",
			 e->source, id, err[0] ? err : strerror(-ret), e->lease_ttl_s);
	else
		log_info("registry: %s: revoked lease %s: this node's endpoints are gone", e->source,
			 id);
	json_object_put(body);
	etcd_http_free(h);
}

static void etcd_stop(void *state, bool deregister)
{
	struct etcd *e = state;

	if (!e)
		return;
	sync_raise(&e->lock, &e->cond, &e->stopping);
	etcd_http_cancel(e->watch_http);
	etcd_http_cancel(e->reg_http);
	if (e->watch_started)
		pthread_join(e->watch_thread, NULL);
	if (e->reg_started)
		pthread_join(e->reg_thread, NULL);
	if (deregister && e->lease)
		revoke(e);
	etcd_free(e);
	curl_global_cleanup();
}

static int etcd_start(const char *source, const char *arg, const struct reg_opts *opts,
		      struct reg_sink *sink, void **state)
{
	struct etcd *e = calloc(1, sizeof(*e));
	char msg[256];
	int err;

	if (!e)
		return -ENOMEM;
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		free(e);
		return log_errno(-ENOMEM, "registry '%s': initialise libcurl", source);
	}
	sync_init_mono(&e->lock, &e->cond);
	e->sink = sink;
	e->lease_ttl_s = opts->etcd_lease_ttl_s;
	e->source = strdup(source);
	err = e->source ? parse_urls(e, arg) : -ENOMEM;
	if (!err)
		err = set_prefix(e, opts->etcd_prefix);
	if (err)
		goto out_free;
	e->registers = reg_local_registers(source, opts->node_name);
	e->watch_http = etcd_http_new();
	e->reg_http = etcd_http_new();
	if (!e->watch_http || !e->reg_http) {
		err = -ENOMEM;
		goto out_free;
	}
	snprintf(msg, sizeof(msg), "connecting to %s", e->urls[0]);
	(void)reg_sink_health(sink, source, REG_HEALTH_STARTING, msg);
	err = -pthread_create(&e->watch_thread, NULL, etcd_watch_main, e);
	if (err)
		goto out_stop;
	e->watch_started = true;
	if (e->registers) {
		err = -pthread_create(&e->reg_thread, NULL, etcd_lease_main, e);
		if (err)
			goto out_stop;
		e->reg_started = true;
	}
	log_info("registry: %s: watching prefix '%s'%s", source, e->prefix,
		 e->registers ? ", registering this node's endpoints under a lease" : "");
	*state = e;
	return 0;
out_stop:
	log_errno(err, "registry '%s': start a thread", source);
	etcd_stop(e, false);
	return err;
out_free:
	etcd_free(e);
	curl_global_cleanup();
	return err == -ENOMEM ? log_errno(err, "registry '%s'", source) : err;
}

static void etcd_register_local(void *state, const struct reg_local_slice *slices, size_t n,
				  bool complete)
{
	struct etcd *e = state;

	if (e->registers)
		reg_local_want_post(&e->want, &e->lock, &e->cond, e->source, slices, n,
				    complete);
}

const struct reg_backend_ops reg_etcd_ops = {
	.scheme = "etcd",
	.start = etcd_start,
	.stop = etcd_stop,
	.register_local = etcd_register_local,
};
