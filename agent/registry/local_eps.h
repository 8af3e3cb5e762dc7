/* SPDX-License-Identifier: GPL-2.0-only */
/* Self-registration, the pure part: which endpoints of this node's meshed
 * pods the agent registers (enrolled pods whose Pod object carries
 * weft.io/register), and the EndpointSlice manifests that carry them, which
 * the etcd and ZooKeeper backends write. No I/O, no threads: main.c computes,
 * the backends write (registry.h local_endpoints).
 */
#ifndef WEFT_REG_LOCAL_EPS_H
#define WEFT_REG_LOCAL_EPS_H

#include <stddef.h>

#include "registry/registry.h"

struct pod;
struct catalogue;

/* The endpoints to register for the pods listed from @pods (a pods.h list,
 * linked by ->next; borrowed): for every meshed pod whose Pod object in @cat
 * has weft.io/register "SERVICE:PORT,...", one endpoint per pod IP and entry
 * (the pod's namespace, SERVICE, pod IP:PORT, @node). Sorted by namespace,
 * service, family, port, address; duplicates dropped. Returns the count and
 * a new array in *@out (the caller frees it; NULL when 0), or -ENOMEM.
 * Does not block.
 */
int reg_local_eps(const struct pod *pods, const struct catalogue *cat, const char *node,
		  struct reg_local_ep **out);

/* Whether @a and @b (@n entries each, as reg_local_eps() returns) are the same. */
bool reg_local_eps_equal(const struct reg_local_ep *a, const struct reg_local_ep *b, size_t n);

/* One EndpointSlice this node registers. */
struct reg_local_slice {
	char ns[OBJ_NS_MAX];
	char name[OBJ_NAME_MAX];	/* <service>-<node>[-<port>][-ipv6] */
	char *manifest;			/* discovery.k8s.io/v1 JSON, owned; deterministic */
};

/* Longest node name for which every slice name fits a DNS-1123 subdomain. */
#define REG_LOCAL_NODE_MAX (253 - 63 - 12)

/* Group @eps (sorted as reg_local_eps() returns them, all of one node) into
 * EndpointSlices, one per namespace, service, address family and port:
 * named <service>-<node> for the service's lowest port on IPv4, with
 * "-<port>" for its other ports and "-ipv6" for IPv6, labelled
 * kubernetes.io/service-name, endpointslice.kubernetes.io/managed-by:
 * weft-agent and weft.io/node. Endpoints are ready, with nodeName and a
 * targetRef to the pod; the one port is unnamed. Returns the count and a new
 * array in *@out (free with reg_local_slices_free(); NULL when 0),
 * -ENAMETOOLONG when a name would not fit (node name over
 * REG_LOCAL_NODE_MAX), or -ENOMEM. Does not block.
 */
int reg_local_slices(const struct reg_local_ep *eps, size_t n, struct reg_local_slice **out);

/* Whether @a (@na slices) and @b (@nb) are the same, in the same order. */
bool reg_local_slices_equal(const struct reg_local_slice *a, size_t na,
			    const struct reg_local_slice *b, size_t nb);

/* Free @n slices and the array. Accepts NULL. */
void reg_local_slices_free(struct reg_local_slice *s, size_t n);

#endif /* WEFT_REG_LOCAL_EPS_H */
