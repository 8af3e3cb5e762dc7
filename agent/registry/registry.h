/* SPDX-License-Identifier: GPL-2.0-only */
/* Registry backends, the table that names them, and the sink that carries
 * their changes to the agent's loop. Every backend (file, Kubernetes, etcd,
 * ZooKeeper, Consul) reads and decodes on threads of its own, so none holds
 * up the loop, and talks to the model only through a sink, so the model
 * stays single-threaded:
 *
 *   backend ──reg_sink_*()──► queue + eventfd ──► loop: model_* ──► publish
 *
 * Every event carries the time it was received, so the agent can measure the
 * registry → catalogue propagation latency. Backends read only struct
 * reg_opts, never the agent's configuration, and write only the sink; what
 * flows back is this node's EndpointSlices to register (register_local).
 */
#ifndef WEFT_REGISTRY_H
#define WEFT_REGISTRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/objects.h"

struct loop;
struct model;
struct reg_sink;

/* ---- the sink: callable from any thread ---- */

/* Insert or replace @obj under @source. Takes ownership of @obj (freed on
 * error too). 0 or -errno (-ENOMEM, -EPIPE after the agent stopped).
 */
int reg_sink_upsert(struct reg_sink *s, const char *source, struct obj *obj);

/* Remove one object of @source; unknown objects are fine. 0 or -errno. */
int reg_sink_delete(struct reg_sink *s, const char *source, enum obj_kind kind, const char *ns,
		    const char *name);

/* The events sent between batch_begin and batch_end are taken by the loop
 * together, after the end: a change made of several objects (a Service and
 * its endpoints rewritten in one file write) is never published half
 * applied. More than a publish's bound of changes still goes in parts. The
 * loop takes no other source's events meanwhile: keep a batch to what one
 * change needs. Batches of several threads may overlap: the loop takes
 * what is queued once the last of them has ended.
 */
void reg_sink_batch_begin(struct reg_sink *s);
void reg_sink_batch_end(struct reg_sink *s);

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

/* ---- the loop side (the agent's wiring) ---- */

/* Called after a batch of events was applied and the model changed, or a
 * source reported its first SYNCED (the catalogue became authoritative for it).
 */
typedef void (*reg_sink_changed_fn)(void *ctx);

/* A sink applying to @m on @loop; @changed runs on the loop after a drained
 * batch changed the model: at once, except while a source is listing, when
 * it is paced to take at most a quarter of the loop (a listing is drained
 * in many batches), and a part at a time through the gate below. NULL with
 * errno set.
 */
struct reg_sink *reg_sink_new(struct loop *loop, struct model *m, reg_sink_changed_fn changed,
			      void *ctx);
/* Apply what is queued now, as the loop would on its next turn, calling
 * @changed at once (no pacing) if the model changed or a paced call is
 * pending. On the loop's thread only; the agent
 * drains once after starting its backends so the first catalogue holds
 * what they loaded synchronously (the file backend).
 */
void reg_sink_drain(struct reg_sink *s);

/* Pacing publishes on their readers (the proxy's workers): @busy(@ctx)
 * says whether the last publish is still being taken up. While it is, at
 * most one part of a batch (a few hundred changes) is applied and held for
 * publishing; the rest of the batch waits, and the loop goes on, until
 * reg_sink_resume() or a bounded wait (then the next part goes anyway and
 * gate_stats.expired counts it). NULL @busy (the default): no gate; what
 * waits then goes at the next drain or timer. reg_sink_drain() ignores it.
 */
typedef bool (*reg_sink_busy_fn)(void *ctx);
void reg_sink_set_gate(struct reg_sink *s, reg_sink_busy_fn busy, void *ctx);
/* The last publish has been taken up: go on with what waits. On the loop's
 * thread; a call with nothing waiting does nothing.
 */
void reg_sink_resume(struct reg_sink *s);

struct reg_sink_gate_stats {
	uint64_t waits;		/* publishes held back until the readers were done */
	uint64_t expired;	/* publishes made after the bounded wait ran out */
};
const struct reg_sink_gate_stats *reg_sink_gate_stats(const struct reg_sink *s);

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

/* What backends read of the agent's configuration, built by the wiring. */
struct reg_opts {
	const char *node_name;		/* this node; "" = none (no Pods, no self-registration) */
	const char *kubeconfig;		/* kubernetes: ""/NULL = in-cluster service account */
	const char *etcd_prefix;	/* etcd: key prefix of the objects */
	uint32_t etcd_lease_ttl_s;	/* etcd: lease of this node's registrations */
	uint32_t zk_session_timeout_ms;	/* zookeeper: session timeout asked for */
	const char *consul_token_file;	/* consul: ACL token file; ""/NULL = CONSUL_HTTP_TOKEN */
	const char *consul_ca;		/* consul: CA file for https; ""/NULL = the system's */
	const char *consul_namespace;	/* consul: Enterprise namespace; ""/NULL = none */
	const char *consul_partition;	/* consul: Enterprise admin partition; ""/NULL = none */
	const char *consul_agent;	/* consul: local agent URL; ""/NULL = the first URL */
	uint32_t consul_check_ttl_s;	/* consul: TTL of this node's instances' checks */
	uint32_t consul_wait_s;		/* consul: blocking query wait; 0 = 300 */
};

/* One EndpointSlice this node registers (etcd, ZooKeeper, Consul): computed on the
 * loop by the self-registration module (agent/selfreg.h) from the enrolled
 * pods and the catalogue, and written by the backends as they are.
 */
struct reg_local_slice {
	char ns[OBJ_NS_MAX];
	char name[OBJ_NAME_MAX];	/* <service>-<node>[-<port>][-ipv6] */
	char *manifest;			/* discovery.k8s.io/v1 JSON, owned; deterministic */
};

/* Longest node name for which every slice name fits a DNS-1123 subdomain:
 * backends do not self-register for a longer one.
 */
#define REG_LOCAL_NODE_MAX (253 - 63 - 12)

/* Whether @a (@na slices) and @b (@nb) are the same, in the same order. */
bool reg_local_slices_equal(const struct reg_local_slice *a, size_t na,
			    const struct reg_local_slice *b, size_t nb);

/* A deep copy of @n slices in *@out (NULL when 0). 0 or -ENOMEM. */
int reg_local_slices_dup(const struct reg_local_slice *s, size_t n, struct reg_local_slice **out);

/* Free @n slices and the array. Accepts NULL. */
void reg_local_slices_free(struct reg_local_slice *s, size_t n);

/* Whether a backend registers this node's endpoints under @node (NULL or ""
 * for none): not when the name is missing, nor when it is longer than
 * REG_LOCAL_NODE_MAX (a warning names @source then).
 */
bool reg_local_registers(const char *source, const char *node);

/* This node's slices as a registering backend wants them: the backend's
 * copy (under its lock) or its registering thread's own copy.
 */
struct reg_local_want {
	struct reg_local_slice *slices;
	size_t n;
	uint64_t gen;		/* bumped on every change */
	/* Computed from a catalogue every registry had synced into. Until
	 * then the set may lack endpoints whose Service or Pod is still to be
	 * read, so a registering thread adds what it is given but removes
	 * nothing it finds registered (a resumed or inherited registration of
	 * a predecessor would otherwise be deleted and written again).
	 */
	bool complete;
};

/* register_local() for a backend with a registering thread: make @w
 * @slices (@n), @complete, under @lock unless it already is, bumping w->gen
 * and waking @cond; on ENOMEM @w stays and a warning names @source.
 */
void reg_local_want_post(struct reg_local_want *w, pthread_mutex_t *lock, pthread_cond_t *cond,
			 const char *source, const struct reg_local_slice *slices, size_t n,
			 bool complete);

/* The registering thread: bring its @copy up to @w (read under @lock) when
 * their gens differ. 0, or -ENOMEM with @copy unchanged.
 */
int reg_local_want_take(struct reg_local_want *copy, const struct reg_local_want *w,
			pthread_mutex_t *lock);

/* Free what @w holds and empty it. */
void reg_local_want_free(struct reg_local_want *w);

/* What a backend hands the same backend of its successor at a hand-over
 * (docs/lifecycle.md) so that this node's registrations live on: opaque
 * bytes, versioned by the backend (ZooKeeper: its session's id and
 * password). The agents carry it across under the --registry value.
 */
#define REG_PASS_MAX 64
struct reg_pass {
	uint32_t len;			/* 0: nothing passed */
	uint8_t data[REG_PASS_MAX];
};

/* What a backend did with the pod evictions asked of it (evict_pod). */
struct reg_evict_stats {
	uint64_t requested;	/* accepted into the queue */
	uint64_t evicted;	/* 201: the API server evicts the pod */
	uint64_t refused;	/* 429: a PodDisruptionBudget says not now */
	uint64_t failed;	/* anything else: the pod went (404), no access, no server */
};

struct reg_backend_ops {
	/* "file", "kubernetes", "etcd", "zookeeper", "consul": --registry SCHEME[:ARG] */
	const char *scheme;
	/* Parse @arg (what follows "SCHEME:" in --registry, "" if nothing) and
	 * start (threads, connections, a first file load). Every sink call uses
	 * @source (the whole --registry value; the agent declared it, so its
	 * rank among sources is the order of the --registry options). Must not
	 * block on the network: the first listing arrives through @sink.
	 * Borrows @opts for the call only. 0 and *@state, or -errno with the
	 * problem logged (naming the option and the value).
	 */
	int (*start)(const char *source, const char *arg, const struct reg_opts *opts,
		     struct reg_sink *sink, void **state);
	/* Stop threads, close connections, leave the loop, free. Deregisters
	 * (etcd lease revoke, ZooKeeper session close) when @deregister.
	 * Accepts NULL.
	 */
	void (*stop)(void *state, bool deregister);
	/* Optional: this node's EndpointSlices to register changed (called on
	 * the loop with the whole set, sorted; borrowed: copy what you keep;
	 * @complete as in struct reg_local_want). NULL for backends that do
	 * not self-register.
	 */
	void (*register_local)(void *state, const struct reg_local_slice *slices, size_t n,
			       bool complete);
	/* Optional, a hand-over's predecessor: stop as stop(@state, false)
	 * does, but leave this node's registrations in the hands of the
	 * successor's backend of the same --registry value: fill @out with
	 * what its resume() needs (len 0 when nothing could be passed; the
	 * registrations then go as stop() leaves them). Frees @state. Called
	 * on the loop; blocks for about one round trip to the server.
	 */
	void (*pass)(void *state, struct reg_pass *out);
	/* Optional, with pass: start what pass() does and return at once, so
	 * that the registries of one hand-over let go side by side, not one
	 * after the other's round trip (each one's session times out from its
	 * own let-go). pass() follows. Called on the loop; does not block.
	 */
	void (*pass_begin)(void *state);
	/* Optional, with pass, a hand-over's successor: a predecessor is
	 * handing over; register nothing (keep what register_local gives)
	 * until resume(). Called on the loop; does not block.
	 */
	void (*hold)(void *state);
	/* Optional, with pass: what the predecessor's backend of the same
	 * --registry value passed, or NULL for nothing (a predecessor of an
	 * earlier version, another --registry value, a hand-over that broke
	 * off): take its registrations over, or register as usual. Ends
	 * hold(). Called on the loop; does not block.
	 */
	void (*resume)(void *state, const struct reg_pass *p);
	/* Optional (Kubernetes): ask the API server to evict Pod @ns/@name
	 * (the Eviction API, which honours PodDisruptionBudgets), only while
	 * its uid is @uid when @uid is not "". Called on the loop; does not
	 * block: the request is made on the backend's thread and its outcome
	 * logged and counted (evict_stats). 0, or -EBUSY when too many are
	 * queued already, -ENOMEM.
	 */
	int (*evict_pod)(void *state, const char *ns, const char *name, const char *uid);
	/* Optional, with evict_pod: its counters so far. */
	void (*evict_stats)(void *state, struct reg_evict_stats *out);
};

/* The backends compiled in, NULL-terminated. */
extern const struct reg_backend_ops *const reg_backends[];

/* The backend of --registry value @spec ("SCHEME" or "SCHEME:ARG"), with
 * *@arg pointed at ARG ("" when none), or NULL when no scheme matches.
 */
const struct reg_backend_ops *reg_backend_find(const char *spec, const char **arg);

#endif /* WEFT_REGISTRY_H */
