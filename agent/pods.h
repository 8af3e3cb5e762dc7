/* SPDX-License-Identifier: GPL-2.0-only */
/* Enrollment: the pods the CNI plugin told us about, whether each is meshed and
 * why, and what makes capture real for it — the in-pod listeners (a capture
 * the proxy workers return, proxy/workers.h) and the kernel's steering in
 * the node's capture mode (datapath/capture.h). Capture belongs to a network
 * namespace, known by its identity (nsfs inode), which several container ids
 * may share. State is saved under RUN_DIR/pods, with that identity, so a
 * restarted agent serves the pods enrolled before and nothing else. Its
 * collaborators come in struct pods_deps.
 */
#ifndef WEFT_PODS_H
#define WEFT_PODS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "datapath/capture.h"
#include "model/catalogue.h"
#include "cni_proto.h"

struct catalogue;
struct cidr;
struct loop;
struct px_capture;
struct workers;

struct pod_netns;

/* One enrolment: a container id the CNI plugin told us about. Capture is
 * per network namespace (struct pod_netns, keyed by the nsfs inode): a
 * runtime that enrols one netns under two container ids gets one capture,
 * shared and reference-counted, so the DEL of one keeps the other meshed.
 * The fields below the spec mirror the pod's netns for readers (admin).
 */
struct pod {
	struct cni_proto_pod spec;	/* as the CNI plugin sent it (lib/cni_proto.h) */
	struct pod *next;	/* in pods.list */
	uint32_t id;		/* agent-assigned, stable for the pod's life here */
	struct pod_netns *nsx;	/* the pod's netns, shared with pods in the same one */
	int netns_fd;		/* keeps the netns reachable until DEL */
	uint64_t netns_cookie;
	bool wants;		/* the meshing rule says this pod is meshed */
	bool meshed;		/* its netns is captured (maybe for another pod in it) */
	char reason[160];	/* why meshed or not, for meshctl */
	/* The proxy's capture of the pod's netns (listeners, connections)
	 * while meshed and its listeners are up; NULL otherwise. Shared by the
	 * pods of one netns. Read it through proxy/workers.h.
	 */
	struct px_capture *capture;
};

/* What the pods table uses of the rest of the agent. Everything is borrowed
 * and must outlive the table.
 */
struct pods_deps {
	struct capture *capture;	/* the node's capture mode */
	struct workers *workers;	/* capture open/close */
	/* The current catalogue snapshot, valid until the next publish. */
	const struct catalogue *(*catalogue)(void *ctx);
	/* Whether every registry has completed a first listing: until then the
	 * catalogue cannot say which pods are meshed.
	 */
	bool (*synced)(void *ctx);
	/* Called after a pod came or went; NULL: nobody listens. */
	void (*changed)(void *ctx);
	void *ctx;			/* passed to the three callbacks */
	const char *run_dir;		/* state files go under RUN_DIR/pods */
	uint16_t proxy_port;		/* the in-pod outbound listeners' port */
	uint16_t inbound_port;		/* the inbound listeners' port; 0: no inbound capture */
	/* Agent-wide exclusions every meshed pod's datapath entry carries. */
	const uint16_t *excl_ports;
	size_t n_excl_ports;
	const struct cidr *excl_cidrs;
	size_t n_excl_cidrs;
	/* A registry delivers this node's Pod objects (Kubernetes): an ADD in a
	 * meshed namespace waits up to this long for its Pod, so the Pod's
	 * opt-out and exclusions are never missed. 0: decide at once (the
	 * file, etcd and ZooKeeper registries need not hold Pods).
	 */
	unsigned int pod_wait_ms;
	struct loop *loop;		/* the waits' timers; needed with pod_wait_ms */
	/* DNS capture (docs/dns.md): the in-pod responder's port, 0 for none.
	 * A meshed netns whose lead pod does not opt out (weft.io/dns-capture
	 * "false", its own or its Namespace's) gets a responder from
	 * @dns_open (NULL with errno set when it cannot) before capture sends
	 * queries to it; @dns_close takes it back after capture stops.
	 */
	uint16_t dns_port;
	void *(*dns_open)(void *ctx, int netns_fd, uint32_t pod_id);
	void (*dns_close)(void *ctx, void *responder);
	const char *node_name;		/* this node, for pods_escaped(); "" = any */
};

struct pods;

/* NULL with errno set. @deps is copied; what it points to is borrowed. */
struct pods *pods_new(const struct pods_deps *deps);
/* Close every pod's listeners and connections (datapath entries and state files
 * stay, so capture survives an agent restart). Accepts NULL.
 */
void pods_free(struct pods *p);

/* The end of an ADD that waited for its Pod object: @err and @msg as
 * pods_add() would have returned them. Called on the loop, once.
 */
typedef void (*pods_add_done_fn)(void *ctx, int err, const char *msg);

struct pods_wait;

/* CNI ADD: record the pod, decide whether it is meshed, and if so put capture
 * in place before returning. Idempotent per container_id.
 *
 * With deps.pod_wait_ms, an ADD in a meshed namespace whose Pod object (by
 * namespace, name and uid when the plugin sent one) is not in the catalogue
 * yet returns -EINPROGRESS with *@wait set: @done(@done_ctx, ...) follows
 * once a publish brings the Pod, or after pod_wait_ms with -EAGAIN (the
 * runtime retries: starting the pod without knowing its annotations could
 * mesh a pod that opted out, or miss its exclusions). Until @done runs the
 * caller may withdraw with pods_wait_cancel().
 *
 * The netns path is opened without blocking and must name a network
 * namespace other than the agent's own (netns_open_id()). A second
 * container id in an enrolled netns shares its capture.
 *
 * Returns 0, or with @msg saying why:
 *   -EINVAL  the container id cannot name a state file; the netns path is
 *            not a network namespace (a FIFO, a file, another namespace
 *            type) or is the agent's own
 *   -EEXIST  the container is enrolled already with another netns
 *   -ENOENT  the netns cannot be opened (the container is gone)
 *   -EAGAIN  the registries have not synced yet: try again later
 *   -ENOMEM, -EIO  capture or the state file failed
 * May block briefly (setns, socket, bpf syscalls), never on the network.
 */
int pods_add(struct pods *p, const struct cni_proto_pod *spec, pods_add_done_fn done,
	     void *done_ctx, struct pods_wait **wait, char *msg, size_t msglen);

/* Forget an ADD waiting for its Pod (its client went): @done never runs. */
void pods_wait_cancel(struct pods *p, struct pods_wait *w);

/* ADDs waiting for their Pod object now. */
size_t pods_waiting(const struct pods *p);

/* Pods that escaped the mesh: in the catalogue, on this node (deps.node_name),
 * Running, not terminating, not on the host's network, in a meshed
 * namespace, not opted out, and never enrolled here (they started before
 * weft was chained, or while it was not). Calls @fn for each, in (namespace,
 * name) order, and returns how many there are; 0 until the registries have
 * synced.
 */
size_t pods_escaped(const struct pods *p, void (*fn)(const struct cat_pod *cp, void *ctx),
		    void *ctx);

/* CNI DEL: remove capture and forget the pod. Unknown pods are fine. */
int pods_del(struct pods *p, const char *container_id);

/* CNI CHECK: 0 if the pod is known and its capture matches what it should be;
 * else -ENOENT/-EIO with @msg saying what is wrong.
 */
int pods_check(struct pods *p, const char *container_id, char *msg, size_t msglen);

/* The catalogue changed: mesh or unmesh pods whose namespace label or opt-out
 * annotation changed. Logs what it did.
 */
void pods_reconcile(struct pods *p);

/* Re-enroll the pods saved under RUN_DIR/pods by a previous agent and remove
 * datapath entries no saved pod owns. A saved pod whose path now names
 * another netns than the one saved (inode or cookie), or no netns, is
 * forgotten and logged. A pod whose listeners cannot be opened (the port
 * squatted while no agent ran) stays enrolled with its capture in place and
 * its listeners retried. Returns the number restored or -errno.
 */
int pods_restore(struct pods *p);

struct px_capture;
typedef void (*pods_capture_fn)(struct px_capture *cap, void *ctx);
/* Call @fn with the proxy capture of every pod netns that has one (its
 * listeners are open): what a hand-over passes and a drain stops.
 */
void pods_each_capture(struct pods *p, pods_capture_fn fn, void *ctx);
/* Cancel every pending retry of a blocked listener: a draining agent opens
 * no new listener.
 */
void pods_stop_retries(struct pods *p);

/* Whether @pod's DNS queries go to the agent's responder now. */
bool pods_dns_captured(const struct pod *pod);

/* The capture @pod gets while meshed: agent-wide exclusions plus the Pod's
 * annotations. For the admin API.
 */
void pods_capture_entry(const struct pods *p, const struct pod *pod, struct capture_pod *out);

/* Renew the heartbeat of every meshed fail-open pod whose capture keeps
 * its own (nft mode: capture_pod_heartbeat()). A pod whose renewal fails is
 * logged once, when it starts failing. Blocks for one netlink batch per such
 * pod.
 */
void pods_heartbeat(struct pods *p);

/* Open the netns of every pod saved under @run_dir by an agent, into
 * @fds[0..@max) (the caller closes them): for weft-agent --cleanup. Returns
 * the count (pods whose netns is gone are left out) or -errno.
 */
int pods_saved_netns(const char *run_dir, int *fds, size_t max);

/* Whether new pods can be enrolled: every registry has completed a first
 * listing (pods_add() answers -EAGAIN until then). For CNI STATUS.
 */
bool pods_can_enroll(const struct pods *p);
/* Why @pod's netns is meshed but has no listeners ("listener blocked: port
 * 15001 held by another socket"), or NULL when it is not blocked. The
 * capture stays in place meanwhile and the agent retries (docs/cni.md,
 * "A squatted proxy port").
 */
const char *pods_listener_blocked(const struct pod *pod);
/* How many times the listeners of @pod's netns were retried while blocked. */
uint64_t pods_listener_retries(const struct pod *pod);
/* How many enrolments share @pod's netns, @pod included. */
unsigned int pods_netns_refs(const struct pod *pod);

/* Iteration for the admin API, in enrollment order. */
const struct pod *pods_first(const struct pods *p);
size_t pods_count(const struct pods *p, bool meshed_only);

#endif /* WEFT_PODS_H */
