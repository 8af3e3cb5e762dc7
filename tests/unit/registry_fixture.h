/* SPDX-License-Identifier: GPL-2.0-only */
/* For unit tests of the network registry backends (test_etcd.c,
 * test_zk.c): a backend started as the agent starts it — a loop, a model and
 * a sink on this thread, the backend's threads feeding the sink — and ways to
 * run the loop until the model or the source's status says something.
 */
#ifndef WEFT_TEST_REGISTRY_FIXTURE_H
#define WEFT_TEST_REGISTRY_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "loop.h"
#include "registry/registry.h"
#include "selfreg.h"

struct loop;
struct model;

struct rfix {
	struct loop *loop;
	struct model *model;
	struct reg_sink *sink;
	const struct reg_backend_ops *ops;
	void *state;			/* the backend's; NULL while stopped */
	struct reg_opts opts;		/* node_name, etcd_*, zk_* set by the test */
	char source[256];		/* the --registry value */
	unsigned int publishes;		/* sink batches that changed the model */
	struct loop_timer timer;	/* ends rfix_run() */
};

/* Fill @f->opts with test defaults: node "node-a", etcd prefix "/t/", lease
 * TTL 2 s, ZooKeeper session 2 s. Call before rfix_start().
 */
void rfix_init(struct rfix *f);

/* Make the loop, model and sink, and start backend @ops with --registry
 * @source (SCHEME:ARG). Asserts on failure.
 */
void rfix_start(struct rfix *f, const struct reg_backend_ops *ops, const char *source);

/* Stop the backend only (deregistering), keeping loop, model and sink: a
 * later rfix_start_backend() is a restarted backend feeding the same model.
 */
void rfix_stop_backend(struct rfix *f);
void rfix_start_backend(struct rfix *f);

/* Stop the backend and free everything. Idempotent. */
void rfix_stop(struct rfix *f);

/* Hand this node's endpoints @eps[0..n) to the backend as the agent does:
 * as EndpointSlices (selfreg.h) through register_local, as a complete set
 * (every registry synced); _as() says which. Asserts on failure.
 */
void rfix_register_local(struct rfix *f, const struct selfreg_ep *eps, size_t n);
void rfix_register_local_as(struct rfix *f, const struct selfreg_ep *eps, size_t n,
			    bool complete);

/* Run the loop for @ms. */
void rfix_run(struct rfix *f, uint32_t ms);

typedef bool (*rfix_cond_fn)(struct rfix *f, const void *ctx);

/* Run the loop until @cond holds (checked every 20 ms) or @ms pass.
 * Returns whether it held.
 */
bool rfix_until(struct rfix *f, uint32_t ms, rfix_cond_fn cond, const void *ctx);

/* The source's status (health, counters). */
struct reg_source_status rfix_status(struct rfix *f);

/* Conditions for rfix_until(): ctx is an enum reg_health, a const char *
 * "Kind ns/name" key, or that key's absence.
 */
bool rfix_health_is(struct rfix *f, const void *health);
bool rfix_has(struct rfix *f, const void *key);
bool rfix_lacks(struct rfix *f, const void *key);

/* Conditions for rfix_until() on counters: at least *@count (a const
 * uint64_t *) objects rejected; a second full listing done and synced again.
 */
bool rfix_rejected_at_least(struct rfix *f, const void *count);
bool rfix_resynced_twice(struct rfix *f, const void *unused);

/* The object "Kind ns/name" (Kind: Namespace, Service, EndpointSlice, Pod;
 * "Namespace shop" has no ns/) of the source, or NULL.
 */
const struct obj *rfix_find(struct rfix *f, const char *key);

/* The first address of the first endpoint of EndpointSlice @key as text
 * into @buf ("" when none); returns @buf.
 */
const char *rfix_slice_ip(struct rfix *f, const char *key, char *buf, size_t len);

/* Condition for rfix_until(): the first address of EndpointSlice @key is @ip. */
struct rfix_ip_is {
	const char *key, *ip;
};
bool rfix_slice_ip_is(struct rfix *f, const void *ip_is);

#endif /* WEFT_TEST_REGISTRY_FIXTURE_H */
