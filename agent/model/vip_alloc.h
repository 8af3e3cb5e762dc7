/* SPDX-License-Identifier: GPL-2.0-only */
/* VIP allocation for services that have no cluster IP (etcd, ZooKeeper,
 * Consul, file registries): an address from a configured range, chosen from
 * the service's namespace/name alone, so every node that sees the same
 * catalogue allocates the same address without talking to the others.
 * Private to the model (catalogue.c); plain computation, no I/O.
 */
#ifndef WEFT_VIP_ALLOC_H
#define WEFT_VIP_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

enum vip_outcome {
	VIP_NONE = 0,		/* not asked for */
	VIP_HOME,		/* got the address its name hashes to */
	VIP_PROBED,		/* its home was taken: the next free one in the range */
	VIP_EXHAUSTED,		/* the range is full: no address */
};

/* One service asking for an address of one family. */
struct vip_req {
	const char *ns;
	const char *name;
	struct addr out;	/* the address given, port 0 (VIP_HOME, VIP_PROBED) */
	enum vip_outcome outcome;
};

/* The offset of @ns/@name's home address in a range: a 64-bit FNV-1a of
 * "ns/name", the same on every node, architecture and version.
 */
uint64_t vip_name_hash(const char *ns, const char *name);

/* Give each of @reqs (@n, sorted by namespace then name, no duplicates) an
 * address of @range's family inside @range that is in neither @taken (@n_taken
 * addresses the registries assigned themselves) nor given to another request.
 * Deterministic in the set of names and @taken, not in their order of arrival:
 * first every request whose home address is free takes it, the first in name
 * order winning a contested home; then the others, in name order, take the
 * next free address after their home (wrapping). The network and broadcast
 * addresses of an IPv4 range of /30 or larger and the subnet-router anycast
 * (all zeros) of an IPv6 one are never given. Only the low 63 host bits of
 * a larger IPv6 range are used. 0, or -ENOMEM.
 */
int vip_alloc(const struct cidr *range, const struct addr *taken, size_t n_taken,
	      struct vip_req *reqs, size_t n);

#endif /* WEFT_VIP_ALLOC_H */
