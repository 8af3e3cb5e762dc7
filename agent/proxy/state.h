/* SPDX-License-Identifier: GPL-2.0-only */
/* The proxy's mutable view of services: one svc_state per service port
 * (namespace, name, VIP:port) and one ep_state per endpoint address under it,
 * holding what must outlive a catalogue snapshot — outstanding and open
 * connections, outlier state, the retry budget, idle pooled connections,
 * counters — plus the policy in force for the snapshot. A port's state and
 * its endpoints' are created on first use (state_svc_get(): the first
 * connection to the port), so a port no connection reached costs nothing.
 * state_bind() maps a new snapshot onto the states that exist, so nothing
 * is lost on a swap: only the Services that differ from the snapshot bound
 * before are visited (the catalogue shares unchanged ones, catalogue.h),
 * and each port's state is found by its slot. States that left the
 * catalogue live on while a connection uses them.
 * Owned by one proxy (one per worker loop later, issue #6): no locks. The
 * admin API reads it; only the proxy writes it.
 */
#ifndef WEFT_PROXY_STATE_H
#define WEFT_PROXY_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "proxy/latency.h"
#include "proxy/outlier.h"
#include "proxy/policy.h"
#include "proxy/retry.h"
#include "model/objects.h"
#include "spiffe.h"

struct catalogue;
struct cat_svc_port;
struct up;
struct px_pod;

/* Status classes 1xx..5xx are cls[0]..cls[4]. */
#define STATUS_CLASSES 5

enum overflow {
	OVF_CONNECTIONS,	/* max-connections */
	OVF_PENDING,		/* max-pending */
	OVF_REQUESTS,		/* max-requests */
	OVF_COUNT,
};

struct ep_ctr {
	uint64_t conns;		/* upstream connections opened */
	uint64_t requests;	/* HTTP requests sent */
	uint64_t cls[STATUS_CLASSES];	/* responses by status class */
	uint64_t connect_failures;	/* refused, reset, unreachable, timed out */
	uint64_t failures;	/* every failure outlier detection saw */
	uint64_t ejections;
	uint64_t reused;	/* requests sent on a pooled connection */
};

struct svc_ctr {
	uint64_t conns;		/* client connections to this service port */
	uint64_t requests;	/* HTTP requests from clients */
	uint64_t cls[STATUS_CLASSES];	/* responses to clients, local ones included */
	uint64_t retries;
	uint64_t budget_exhausted;	/* a retry the budget refused */
	uint64_t overflow[OVF_COUNT];	/* circuit-breaker rejections */
	uint64_t panic;		/* picks made with every ready endpoint ejected */
	uint64_t ejections;
	uint64_t no_endpoint;
	uint64_t connect_timeouts;
	uint64_t request_timeouts;
	uint64_t local_errors;	/* failed for the agent's own resources, not the endpoints' */
	uint64_t preempted;	/* a pod over its share lost a connection to one under it */
	uint64_t detected_http, detected_tcp;	/* protocol detection outcomes */
};

struct svc_state;

/* One client pod's upstream connections to a service port: its part of
 * what max-connections counts.
 */
struct svc_pod {
	struct px_pod *pod;
	uint32_t conns;		/* > 0: pods with none leave the table */
};

/* The identity a meshed endpoint must present: a SPIFFE ID without its
 * trust domain (the mTLS table's, compared apart), which would add 254
 * unused bytes to every endpoint's state.
 */
struct ep_peer {
	char ns[SPIFFE_NS_MAX];
	char sa[SPIFFE_SA_MAX];
};

struct ep_state {
	struct svc_state *svc;	/* holds a reference on it */
	struct ep_state *next;	/* in svc->all */
	struct addr addr;
	uint32_t weight;	/* under the policy in force */
	bool live;		/* listed by the current snapshot */
	bool ready;
	uint32_t active;	/* upstream connections busy for a client: outstanding */
	uint32_t conns;		/* upstream connections open: busy, idle or connecting */
	uint32_t refs;		/* upstream connections pointing here */
	struct outlier ol;
	struct up *idle;	/* pooled idle connections, most recent first */
	uint32_t n_idle;
	struct ep_ctr ctr;
	/* The endpoint is a meshed pod (cat_endpoint.pod): reached over mTLS,
	 * expected to present this identity. From the snapshot bound last.
	 */
	bool meshed;
	struct ep_peer peer;
};

struct svc_state {
	char ns[OBJ_NS_MAX];
	char name[OBJ_NAME_MAX];
	struct addr vip;	/* with the service port: the key with ns/name */
	char port_name[OBJ_PORT_NAME_MAX];
	bool vip_allocated;	/* from --vip-range, not the registry (cat_svc_port) */
	struct svc_state *next, *prev;	/* in state.svcs */
	bool live;
	bool touched;		/* in state.touched */
	uint32_t refs;		/* client connections and endpoint states pointing here */
	struct policy pol;	/* in force for the current snapshot */
	struct ep_state **eps;	/* the snapshot's endpoints, ready first; n_eps */
	size_t n_eps, n_ready;
	struct ep_state *all;	/* every state, live or not */
	uint32_t conns;		/* upstream connections: busy, idle or connecting */
	uint32_t pending;	/* upstream connects in progress */
	uint32_t requests;	/* HTTP requests in flight */
	uint32_t clients;	/* client connections open */
	struct svc_pod *by_pod;	/* conns by client pod: by_pod[0..n_by_pod), unordered */
	uint32_t n_by_pod, cap_by_pod;
	uint32_t rr;		/* round-robin cursor */
	struct retry_budget budget;
	struct svc_ctr ctr;
	struct lat lat_connect;	/* upstream connect, start to established */
	struct lat lat_request;	/* HTTP: request dispatched to the final response head */
};

struct state {
	struct svc_state *svcs;
	size_t n_ports;			/* the bound catalogue's service ports */
	struct svc_state **by_slot;	/* by cat_svc_port.slot of the bound catalogue */
	size_t n_slots;
	/* States the last bind changed: their dead endpoints are flushed and
	 * freed by state_gc_touched().
	 */
	struct svc_state **touched;
	size_t n_touched, cap_touched;
};

void state_init(struct state *st);
/* Free every state; the caller closed every connection first. */
void state_done(struct state *st);

/* Map snapshot @c onto the table, @old being the one bound so far (NULL:
 * none): for each Service that differs between them, carry the state of
 * each service port that has one (same VIP:port) and join its endpoints'
 * (created if new), apply the Service's override
 * (decoded by the registry) to @defaults, and mark what left the snapshot.
 * O(services) pointer comparisons plus the changed Services' endpoints.
 * Call state_gc_touched() once the caller dropped what holds dead states.
 * 0 or -ENOMEM (the previous binding stays).
 */
int state_bind(struct state *st, const struct catalogue *old, const struct catalogue *c,
	       const struct policy *defaults);

/* Free the states the last bind touched that left the snapshot and nothing
 * references.
 */
void state_gc_touched(struct state *st);

/* The state of the @i-th service port (catalogue_svc_port_at()) of the
 * bound snapshot @c, NULL while no connection has used it. O(log services).
 */
struct svc_state *state_svc_at(const struct state *st, const struct catalogue *c, size_t i);

/* The state of service port @sp of the bound snapshot, NULL while no
 * connection has used it. O(1).
 */
struct svc_state *state_svc(const struct state *st, const struct catalogue *c,
			    const struct cat_svc_port *sp);

/* The state of service port @sp of the bound snapshot @c, created (with its
 * endpoints' states) on this first use: a port no connection has reached
 * holds nothing, and binds skip it. NULL: -ENOMEM, or @sp is not a port
 * of @c.
 */
struct svc_state *state_svc_get(struct state *st, const struct catalogue *c,
				const struct cat_svc_port *sp, const struct policy *defaults);

/* A detached state of @sp as a first use would create it, zero counters:
 * what the admin API shows of a port this proxy holds no state for. Its
 * endpoints are allocated one by one (as the workers' merged views are);
 * free with state_blank_free(). NULL: -ENOMEM.
 */
struct svc_state *state_blank(const struct cat_svc_port *sp, const struct policy *defaults);
void state_blank_free(struct svc_state *s);

/* Reference counting of connections on states; an unref may free a state
 * that left the catalogue.
 */
void svc_ref(struct svc_state *s);
void svc_unref(struct state *st, struct svc_state *s);
void ep_ref(struct ep_state *e);
void ep_unref(struct state *st, struct ep_state *e);

/* Count one more, or one fewer, upstream connection of @pod to @s. The add
 * returns 0 or -ENOMEM (nothing counted).
 */
int svc_pod_add(struct svc_state *s, struct px_pod *pod);
void svc_pod_del(struct svc_state *s, const struct px_pod *pod);
/* @pod's upstream connections to @s. */
uint32_t svc_pod_conns(const struct svc_state *s, const struct px_pod *pod);
/* @pod's fair share of @s's max-connections: the limit divided among the
 * pods holding connections to @s, @pod included; at least 1.
 */
uint32_t svc_pod_share(const struct svc_state *s, const struct px_pod *pod);
/* The pod holding the most upstream connections to @s, or NULL. */
struct px_pod *svc_pod_hog(const struct svc_state *s);

/* Ready endpoints of @s currently ejected at @now_ms. */
size_t svc_n_ejected(const struct svc_state *s, uint64_t now_ms);

#endif /* WEFT_PROXY_STATE_H */
