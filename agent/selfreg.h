/* SPDX-License-Identifier: GPL-2.0-only */
/* Self-registration: which endpoints of this node's meshed pods the agent
 * registers (enrolled pods whose Pod object carries weft.io/register), the
 * EndpointSlice manifests that carry them, and handing those to the
 * registry backends that write them (etcd, ZooKeeper: reg_backend_ops
 * register_local). Fed by the enrolled pods and the catalogue; no I/O, no
 * threads.
 */
#ifndef WEFT_SELFREG_H
#define WEFT_SELFREG_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "model/objects.h"
#include "registry/registry.h"

struct pod;
struct catalogue;
struct selfreg;

/* A meshed pod of this node serving a service: from the annotation
 * weft.io/register: "SERVICE:PORT[,SERVICE:PORT...]" (the service in the
 * pod's namespace).
 */
struct selfreg_ep {
	char ns[OBJ_NS_MAX];
	char service[OBJ_NAME_MAX];
	char pod[OBJ_NAME_MAX];
	char node[OBJ_NAME_MAX];
	struct addr addr;		/* pod IP and port */
};

/* The endpoints to register for the pods listed from @pods (a pods.h list,
 * linked by ->next; borrowed): for every meshed pod whose Pod object in @cat
 * has weft.io/register "SERVICE:PORT,...", one endpoint per pod IP and entry
 * (the pod's namespace, SERVICE, pod IP:PORT, @node). Sorted by namespace,
 * service, family, port, address; duplicates dropped. Returns the count and
 * a new array in *@out (the caller frees it; NULL when 0), or -ENOMEM.
 * Does not block.
 */
int selfreg_endpoints(const struct pod *pods, const struct catalogue *cat, const char *node,
		      struct selfreg_ep **out);

/* Whether @a and @b (@n entries each, as selfreg_endpoints() returns) are the same. */
bool selfreg_endpoints_equal(const struct selfreg_ep *a, const struct selfreg_ep *b, size_t n);

/* Group @eps (sorted as selfreg_endpoints() returns them, all of one node)
 * into EndpointSlices, one per namespace, service, address family and port:
 * named <service>-<node> for the service's lowest port on IPv4, with
 * "-<port>" for its other ports and "-ipv6" for IPv6, labelled
 * kubernetes.io/service-name, endpointslice.kubernetes.io/managed-by:
 * weft-agent and weft.io/node. Endpoints are ready, with nodeName and a
 * targetRef to the pod; the one port is unnamed. Returns the count and a new
 * array in *@out (free with reg_local_slices_free(); NULL when 0),
 * -ENAMETOOLONG when a name would not fit (node name over
 * REG_LOCAL_NODE_MAX), or -ENOMEM. Does not block.
 */
int selfreg_slices(const struct selfreg_ep *eps, size_t n, struct reg_local_slice **out);

/* Self-registration of node @node (copied). With no node name, or one over
 * REG_LOCAL_NODE_MAX (the backends say so when they start), nothing is ever
 * registered. NULL with errno set.
 */
struct selfreg *selfreg_new(const char *node);

/* Free; accepts NULL. The backends keep what they were last given. */
void selfreg_free(struct selfreg *s);

/* Hand this node's slices to backend @ops (started, with state @state) from
 * now on; a backend without register_local is not added. 0, or -ENOSPC
 * beyond SELFREG_BACKENDS_MAX.
 */
#define SELFREG_BACKENDS_MAX 16
int selfreg_add_backend(struct selfreg *s, const struct reg_backend_ops *ops, void *state);

/* Whether any backend added registers this node's endpoints. */
bool selfreg_wanted(const struct selfreg *s);

/* Compute this node's slices from the enrolled pods listed from @pods and
 * catalogue @cat, and hand them to every backend added when they differ
 * from the last ones handed (the first time, always). Errors are logged and
 * the previous registrations stay. Called after each publish and each pod
 * enrolled or gone; @complete once every registry has synced (struct
 * reg_local_want: before that, nothing registered is removed). Does not
 * block.
 */
void selfreg_update(struct selfreg *s, const struct pod *pods, const struct catalogue *cat,
		    bool complete);

#endif /* WEFT_SELFREG_H */
