/* SPDX-License-Identifier: GPL-2.0-only */
/* Registry backends and the sink that carries their changes to the agent's
 * loop. The file backend runs inside the loop (file.h); the network backends
 * (Kubernetes, etcd, ZooKeeper) run on threads of their own and talk to the
 * model only through a sink, so the model stays single-threaded:
 *
 *   backend thread ──reg_sink_*()──► queue + eventfd ──► loop: model_* ──► publish
 *
 * Every event carries the time it was received, so the agent can measure the
 * registry → catalogue propagation latency.
 */
#ifndef WEFT_REGISTRY_H
#define WEFT_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/objects.h"

struct loop;
struct model;
struct reg_sink;
struct agent_config;

/* ---- the sink: callable from any thread ---- */

/* Insert or replace @obj under @source. Takes ownership of @obj (freed on
 * error too). 0 or -errno (-ENOMEM, -EPIPE after the agent stopped).
 */
int reg_sink_upsert(struct reg_sink *s, const char *source, struct obj_obj *obj);

/* Remove one object of @source; unknown objects are fine. 0 or -errno. */
int reg_sink_delete(struct reg_sink *s, const char *source, enum obj_kind kind, const char *ns,
		    const char *name);

/* A full listing follows: the objects sent between begin and end replace every
 * object of @source of the listed @kinds at end, in one step (a relist after
 * 410 Gone, a reconnect, an etcd compaction). Objects upserted meanwhile count
 * as listed. Nothing is removed until end, so the catalogue never empties
 * half-way. A begin without end (connection lost mid-list) is abandoned by the
 * next begin. 0 or -errno.
 */
int reg_sink_resync_begin(struct reg_sink *s, const char *source, const enum obj_kind *kinds,
			  size_t n_kinds);
int reg_sink_resync_end(struct reg_sink *s, const char *source);

/* During a full listing of @source: count @kind/@ns/@name as listed without
 * changing it, so the version in force stays (the backend rejected the
 * listed value, and a typo must not remove an object). Outside a listing it
 * does nothing. 0 or -errno.
 */
int reg_sink_keep(struct reg_sink *s, const char *source, enum obj_kind kind, const char *ns,
		  const char *name);

enum reg_health {
	REG_HEALTH_STARTING = 0,	/* no full listing yet */
	REG_HEALTH_SYNCED,		/* watching, up to date */
	REG_HEALTH_STALE,		/* lost the server: last known state in force */
};

/* Report the backend's health and a one-line reason ("watch: 410 Gone,
 * relisting", "etcd 127.0.0.1:2379: connection refused"). 0 or -errno.
 */
int reg_sink_health(struct reg_sink *s, const char *source, enum reg_health h, const char *msg);

/* Count one rejected object (already logged by the backend with what and
 * where). 0 or -errno.
 */
int reg_sink_rejected(struct reg_sink *s, const char *source);

/* ---- the loop side (agent/main.c) ---- */

/* Called after a batch of events was applied and the model changed, or a
 * source reported its first SYNCED (the catalogue became authoritative for it).
 */
typedef void (*reg_sink_changed_fn)(void *ctx);

/* A sink applying to @m on @loop; @changed runs on the loop after each drained
 * batch that changed the model. NULL with errno set.
 */
struct reg_sink *reg_sink_new(struct loop *loop, struct model *m, reg_sink_changed_fn changed,
			      void *ctx);
/* Stop accepting events (later calls get -EPIPE), drop queued ones, free.
 * Backends must be stopped first. Accepts NULL.
 */
void reg_sink_free(struct reg_sink *s);

/* Per-source status for the admin API and metrics. */
struct reg_source_status {
	char source[128];
	enum reg_health health;
	char message[256];
	uint64_t events;		/* applied upserts + deletes */
	uint64_t resyncs;
	uint64_t rejected;
	uint64_t last_change_ms;	/* CLOCK_MONOTONIC ms of the last applied change, 0 = never */
	bool synced_once;		/* has been SYNCED at least once since start */
};

/* Copy up to @max sources' status into @out; returns how many there are. */
size_t reg_sink_status(const struct reg_sink *s, struct reg_source_status *out, size_t max);

/* Propagation latency: receive → applied to the model and published, in
 * microseconds, as a histogram with these upper bounds (the last is +Inf).
 */
#define REG_LAT_BUCKETS 12
extern const uint64_t reg_lat_bounds_us[REG_LAT_BUCKETS];
struct reg_latency {
	uint64_t count[REG_LAT_BUCKETS];	/* per bucket, not cumulative */
	uint64_t sum_us;
	uint64_t n;
};
const struct reg_latency *reg_sink_latency(const struct reg_sink *s);

/* ---- backends ---- */

/* A meshed pod of this node serving a service, for self-registration (etcd,
 * ZooKeeper): computed on the loop from enrolled pods whose Pod object carries
 * the annotation weft.io/register: "SERVICE:PORT[,SERVICE:PORT...]" (the
 * service in the pod's namespace).
 */
struct reg_local_ep {
	char ns[OBJ_NS_MAX];
	char service[OBJ_NAME_MAX];
	char pod[OBJ_NAME_MAX];
	char node[OBJ_NAME_MAX];
	struct addr addr;		/* pod IP and port */
};

struct reg_backend_ops {
	const char *scheme;	/* "kubernetes", "etcd", "zookeeper": --registry SCHEME[:ARG] */
	/* Parse @arg (what follows "SCHEME:" in --registry, "" if nothing) and
	 * start (threads, connections). Every sink call uses @source (the whole
	 * --registry value; the agent declared it, so its rank among sources is
	 * the order of the --registry options). Must not block on the network:
	 * the first listing arrives through @sink. 0 and *@state, or -errno with
	 * the problem logged (naming the option and the value).
	 */
	int (*start)(const char *source, const char *arg, const struct agent_config *cfg,
		     struct reg_sink *sink, void **state);
	/* Stop threads, close connections, free. Deregisters (etcd lease revoke,
	 * ZooKeeper session close) when @deregister. Accepts NULL.
	 */
	void (*stop)(void *state, bool deregister);
	/* Optional: the local endpoints changed (called on the loop; copy what
	 * you keep). NULL for backends that do not self-register.
	 */
	void (*local_endpoints)(void *state, const struct reg_local_ep *eps, size_t n);
};

/* The backends compiled in, NULL-terminated. */
extern const struct reg_backend_ops *const reg_backends[];

#endif /* WEFT_REGISTRY_H */
