/* SPDX-License-Identifier: GPL-2.0-only */
/* The agent: the modules one node runs, wired together by main.c and
 * publish.c. Data flows one way: registry → model → catalogue → (pods,
 * proxy, datapath, self-registration).
 */
#ifndef WEFT_AGENT_H
#define WEFT_AGENT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <time.h>

#include "cni_proto.h"
#include "loop.h"
#include "proxy/proxy.h"
#include "spiffe.h"

struct agent_config;
struct handover_reg;
struct loop;
struct model;
struct reg_sink;
struct reg_backend_ops;
struct reg_evict_stats;
struct selfreg;

#define AGENT_MAX_REGISTRIES 8

/* One --registry source: a backend (registry/registry.h) feeding the sink. */
struct agent_registry {
	const char *spec;			/* the --registry value, also the model source */
	const struct reg_backend_ops *ops;
	void *state;
};
struct catalogue;
struct capture;
struct pods;
struct dnsr;
struct workers;
struct dp_fastpath;
struct cni_server;
struct http_server;
struct ca;
struct ca_client;
struct idset;
struct json_object;

struct agent {
	const struct agent_config *cfg;
	struct loop *loop;
	struct model *model;
	struct agent_registry regs[AGENT_MAX_REGISTRIES];
	unsigned int n_regs;
	struct reg_sink *sink;
	struct selfreg *selfreg;	/* this node's endpoints → registering backends */
	struct catalogue *cat;		/* the current snapshot; one reference held */
	struct capture *capture;	/* the capture mode (datapath/capture.h) */
	struct pods *pods;
	struct dnsr *dnsr;		/* the pods' DNS responders; NULL with --dns-port 0 */
	struct workers *workers;	/* the proxy workers (proxy/workers.h) */
	struct dp_fastpath *fastpath;	/* --opaque-fastpath sockmap; else NULL */
	struct px_fastpath px_fastpath;	/* the proxy's view of it */
	struct cni_server *cni;
	struct http_server *admin;
	struct http_server *metrics;	/* NULL without --metrics-addr */
	char metrics_addr[64];		/* where it listens (real port); "" = off */
	int home_netns_fd;		/* the agent's own netns */
	int signal_fd;
	uint64_t start_ms;
	char cgroup[PATH_MAX];		/* resolved --cgroup */
	/* Every network registry has completed a first listing: until then the
	 * catalogue cannot say which pods are meshed (pods.c holds decisions).
	 */
	bool registries_synced;
	/* The node state file as last read or written (publish.c): read from
	 * RUN_DIR once, at the first publish, then compared in memory.
	 */
	struct cni_proto_state node_state;
	bool node_state_loaded;
	/* Pods that escaped the mesh (repair.c): found every period, evicted
	 * one per period with --evict-escaped.
	 */
	struct loop_timer repair_timer;
	size_t escaped;			/* at the last look */
	/* Hand-over (handover.c) and drain (main.c). */
	int ho_lfd;			/* RUN_DIR/handover.sock; -1: not serving */
	int ho_cfd;			/* the other agent during a hand-over; -1: none */
	bool ho_passed;			/* the listeners went to it */
	bool ho_resumes;		/* the successor resumes what registries pass */
	bool ho_conns;			/* the successor relays established connections */
	struct handover_reg *ho_regs;	/* what they passed (AGENT_MAX_REGISTRIES) */
	unsigned int n_ho_regs;
	void (*ho_release)(struct agent *a);
	bool draining;			/* not accepting; exits once connections end */
	uint64_t drain_deadline_ms;
	struct loop_timer drain_timer;
	/* The heartbeat fail-open pods' capture checks (heartbeat.c). */
	struct loop_timer heartbeat_timer;
	bool beating;
	/* Workload identities (identities.c): NULL without --ca-cert/--ca-url. */
	struct ca *ca;			/* the standalone CA; NULL with weft-ca */
	struct ca_client *ca_client;	/* weft-ca (--ca-url); NULL otherwise */
	struct json_object *ca_status;	/* weft-ca's last GET /v1/status; NULL: none */
	int64_t ca_status_at;		/* when it answered (epoch s) */
	bool ca_status_pending;
	struct idset *ids;
	struct loop_timer identity_timer;	/* renewal, CA file changes */
	struct timespec identity_mtime[3];	/* --ca-cert, --ca-key, --trust-bundle */
};

/* Build a catalogue from the model, publish it to the proxy, and reconcile
 * pods against it. Returns 0 or -errno (the previous catalogue stays).
 */
int agent_publish(struct agent *a);

/* Hand the enrolled pods and the catalogue to self-registration
 * (selfreg.h), which gives this node's EndpointSlices to every backend that
 * registers them (etcd, ZooKeeper) when they changed. Called after each
 * publish and, through the pods table's changed callback, each CNI ADD/DEL.
 * Does not block.
 */
void agent_register_local(struct agent *a);

/* Start looking for pods that escaped (repair.c): every --repair-period, count and
 * log them, and with --evict-escaped evict one through the first registry
 * that can (the Kubernetes Eviction API). 0 or -errno.
 */
int agent_repair_start(struct agent *a);

/* Stop it. */
void agent_repair_stop(struct agent *a);

/* Load the standalone CA and bundle (--ca-cert, --ca-key, --trust-bundle),
 * or the bundle and the weft-ca client (--ca-url, --trust-bundle), and
 * issue the SVIDs of this node's meshed pods; nothing without either. 0 or
 * -errno (logged).
 */
int agent_identity_start(struct agent *a);
/* Drop every SVID and the CA. */
void agent_identity_stop(struct agent *a);
/* Issue or drop SVIDs so there is one per identity of this node's meshed
 * pods. Called after each publish and each CNI ADD/DEL. Does not block
 * beyond key generation and signing (about a millisecond each).
 */
void agent_identity_sync(struct agent *a);
/* The workload identity of pod @ns/@name: its Pod object's service account
 * in the catalogue, "default" when the registry has no Pod for it. 0 or
 * -ENAMETOOLONG.
 */
int agent_pod_identity(const struct agent *a, const char *ns, const char *name,
		       struct spiffe_id *out);

/* Beat now and every CAPTURE_HEARTBEAT_MS from now on (heartbeat.c): the
 * capture's heartbeat and each fail-open pod's (datapath/capture.h). Start
 * once the pods' listeners are up; stop when the agent stops accepting for
 * them (drain, exit). 0 or -errno; stop accepts a stopped heartbeat.
 */
int agent_heartbeat_start(struct agent *a);
void agent_heartbeat_stop(struct agent *a);

/* The eviction counters of the registries, summed. */
void agent_evict_stats(const struct agent *a, struct reg_evict_stats *out);

#endif /* WEFT_AGENT_H */
