/* SPDX-License-Identifier: GPL-2.0-only */
/* Enrollment: the pods the CNI plugin told us about, whether each is meshed and
 * why, and what makes capture real for it — the in-pod listeners (proxy) and
 * the pods map entry (datapath). State is saved under RUN_DIR/pods so a
 * restarted agent serves the pods enrolled before.
 */
#ifndef WEFT_PODS_H
#define WEFT_PODS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "model/catalogue.h"
#include "cni_proto.h"

struct conn;
struct agent;

/* What identifies a pod, as the CNI plugin sends it. */
struct pod_spec {
	char container_id[CNI_PROTO_MAX_CONTAINER_ID + 1];
	char netns[PATH_MAX];
	char ifname[32];
	char ns[CNI_PROTO_MAX_NAMESPACE + 1];
	char name[CNI_PROTO_MAX_NAME + 1];
	char uid[CNI_PROTO_MAX_UID + 1];
	struct addr ips[CNI_PROTO_MAX_IPS];
	unsigned int n_ips;
	bool meshed_hint;	/* saved state only: meshed when the agent last ran */
};

struct pod {
	struct pod_spec spec;
	struct pod *next;	/* in pods.list */
	uint32_t id;		/* agent-assigned, stable for the pod's life here */
	int netns_fd;		/* keeps the netns reachable until DEL */
	uint64_t netns_cookie;
	bool meshed;
	char reason[160];	/* why meshed or not, for meshctl */
	int lfd4, lfd6;		/* in-pod listeners; -1 when not listening */
	struct proxy *proxy;	/* serving the listeners, set by proxy_pod_listen() */
	struct conn *conns;	/* live proxied connections of this pod */
	/* With N proxy workers, worker i>0 serves the pod through shadows[i-1]:
	 * a copy of this pod with that worker's listeners and connections
	 * (proxy/workers.h). NULL with one worker or when not listening.
	 */
	struct pod **shadows;
	uint64_t conns_active, conns_total;
};

struct pods;

/* NULL with errno set. @agent is borrowed and must outlive the table. */
struct pods *pods_new(struct agent *agent);
/* Close every pod's listeners and connections (datapath entries and state files
 * stay, so capture survives an agent restart). Accepts NULL.
 */
void pods_free(struct pods *p);

/* CNI ADD: record the pod, decide whether it is meshed, and if so put capture
 * in place before returning. Idempotent per container_id. On failure fills
 * @code (CNI error code) and @msg. Returns 0 or -errno. May block briefly
 * (setns, socket, bpf syscalls), never on the network.
 */
int pods_add(struct pods *p, const struct pod_spec *spec, int *code, char *msg, size_t msglen);

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
 * datapath entries no saved pod owns. Returns the number restored or -errno.
 */
int pods_restore(struct pods *p);

struct dp_pod;

/* The datapath entry @pod gets while meshed: agent-wide exclusions plus the
 * Pod's annotations. For the admin API.
 */
void pods_datapath_entry(const struct pods *p, const struct pod *pod, struct dp_pod *out);

/* Iteration for the admin API, in enrollment order. */
const struct pod *pods_first(const struct pods *p);
size_t pods_count(const struct pods *p, bool meshed_only);

/* Parse a pod spec from the JSON text of a CNI request (also the saved state).
 * Returns 0, or -EINVAL with @err naming the field.
 */
int pod_spec_parse(const char *json, struct pod_spec *spec, char *err, size_t errlen);
/* Serialise @spec as JSON into a malloc'd string (for the state file); NULL on ENOMEM. */
char *pod_spec_to_json(const struct pod_spec *spec);

#endif /* WEFT_PODS_H */
