/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to registry/etcd*.c, the bottom of the backend: its state,
 * shared by its two threads — the watcher (etcd_watch.c: list, then watch,
 * into the sink) and the registrar (etcd_lease.c: this node's
 * EndpointSlices under a lease) — and the loop thread that starts, feeds and
 * stops them (etcd.c), with the few helpers they all use (etcd_core.c).
 * Layered one way: etcd.c → etcd_watch.c, etcd_lease.c → etcd_core.c →
 * etcd_http.c.
 */
#ifndef WEFT_REG_ETCD_CORE_H
#define WEFT_REG_ETCD_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "registry/etcd_http.h"
#include "registry/registry.h"

#define ETCD_URLS_MAX 16
#define ETCD_CALL_TIMEOUT_MS 3000L	/* one unary call, connection included */
#define ETCD_BACKOFF_MIN_MS 100
#define ETCD_BACKOFF_MAX_MS 5000
#define ETCD_GRPC_NOT_FOUND 5		/* "etcdserver: requested lease not found" */

struct etcd {
	char *source;			/* the --registry value: the sink's source */
	char *urls[ETCD_URLS_MAX];	/* "http://host:port", no trailing slash */
	size_t n_urls;
	char *prefix;			/* --etcd-prefix, raw key bytes */
	size_t prefix_len;
	char *range_end;		/* the prefix's range end (last byte + 1) */
	size_t range_end_len;
	uint32_t lease_ttl_s;		/* --etcd-lease-ttl */
	bool registers;			/* a node name is set: self-registration on */
	struct reg_sink *sink;		/* borrowed; thread-safe */

	pthread_mutex_t lock;
	pthread_cond_t cond;		/* CLOCK_MONOTONIC; stop or new want */
	bool stopping;			/* under lock */

	/* The watcher thread. */
	pthread_t watch_thread;
	bool watch_started;
	struct etcd_http *watch_http;

	/* The registrar thread. */
	pthread_t reg_thread;
	bool reg_started;
	struct etcd_http *reg_http;
	struct reg_local_want want;	/* under lock: what should be registered */
	int64_t lease;			/* registrar's; read by stop() after the join */
	size_t reg_url;			/* registrar's: index into urls */
};

/* Sleep up to @ms, waking early on stop or, when @gen is not NULL, when
 * want.gen differs from *@gen. Returns true when stopping. Any thread.
 */
bool etcd_wait(struct etcd *e, uint32_t ms, const uint64_t *gen);

/* Whether stop() was called. */
bool etcd_stopping(struct etcd *e);

/* The full key of @rel (a relative path of registry/etcd_zk_layout.h) as a
 * JSON base64 string, or NULL (out of memory or too long).
 */
json_object *etcd_key_b64(const struct etcd *e, const char *rel);

#endif /* WEFT_REG_ETCD_CORE_H */
