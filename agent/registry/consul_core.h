/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to registry/consul*.c, the bottom of the backend: its state,
 * shared by its two threads — the watcher (consul_watch.c: catalog and
 * health blocking queries into the sink) and the registrar
 * (consul_agent.c: this node's instances through the local agent, under TTL
 * checks) — and the loop thread that starts, feeds and stops them
 * (consul.c), with the helpers they all use (consul_core.c). Layered one
 * way: consul.c → consul_watch.c, consul_agent.c → consul_map.c,
 * consul_core.c → consul_http.c.
 */
#ifndef WEFT_REG_CONSUL_CORE_H
#define WEFT_REG_CONSUL_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "registry/consul_http.h"
#include "registry/registry.h"

#define CONSUL_URLS_MAX 16
#define CONSUL_CALL_TIMEOUT_MS 3000L	/* one non-blocking call, connection included */
#define CONSUL_BACKOFF_MIN_MS 100
#define CONSUL_BACKOFF_MAX_MS 5000
#define CONSUL_TOKEN_MAX 4096

struct consul {
	char *source;			/* the --registry value: the sink's source */
	char *urls[CONSUL_URLS_MAX];	/* "http://host:port", no trailing slash */
	size_t n_urls;
	char *agent_url;		/* the local agent: --consul-agent or urls[0] */
	char *token_file;		/* --consul-token-file, NULL = none */
	char *env_token;		/* CONSUL_HTTP_TOKEN at start, NULL = none */
	char *ca_file;			/* --consul-ca, NULL = the system's */
	char *query;			/* "ns=..&partition=.." for every call, or "" */
	char *k8s_ns;			/* the Kubernetes namespace of the objects */
	uint32_t wait_s;		/* blocking query wait */
	uint32_t check_ttl_s;		/* --consul-check-ttl */
	char *node;			/* --node-name */
	bool registers;			/* a node name is set: self-registration on */
	struct reg_sink *sink;		/* borrowed; thread-safe */

	pthread_mutex_t lock;
	pthread_cond_t cond;		/* CLOCK_MONOTONIC; stop or new want */
	bool stopping;			/* under lock */

	pthread_t watch_thread;
	bool watch_started;
	struct consul_http *watch_http;

	pthread_t reg_thread;
	bool reg_started;
	struct consul_http *reg_http;
	struct reg_local_want want;	/* under lock: what should be registered */
	char **have;			/* registrar's: service IDs registered; read by
					 * stop() after the join */
	size_t n_have;
};

/* Sleep up to @ms, waking early on stop or, when @gen is not NULL, when
 * want.gen differs from *@gen. Returns true when stopping. Any thread.
 */
bool consul_wait(struct consul *c, uint32_t ms, const uint64_t *gen);

/* Whether stop() was called. */
bool consul_stopping(struct consul *c);

/* The ACL token into @buf: the token file's first line, read on every call
 * so a rotated token is used at once, else CONSUL_HTTP_TOKEN, else "".
 * 0, or -errno when the file cannot be read (the caller reports it).
 */
int consul_token(struct consul *c, char *buf, size_t len);

/* @base + @path with the query parameters @params ("" for none) and those
 * every call carries (ns, partition) into @buf. 0 or -ENAMETOOLONG.
 */
int consul_url(const struct consul *c, const char *base, const char *path, const char *params,
	       char *buf, size_t len);

#endif /* WEFT_REG_CONSUL_CORE_H */
