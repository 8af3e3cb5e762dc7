/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The inbound decision of sk_lookup: hand a TCP connection arriving in a
 * pod's netns to the agent's inbound listener, or say why not (enum
 * mesh_reason); and the mesh_in_agent key both sockops and sk_lookup build.
 * Pure, so tests/unit runs it with the host cc; used by inbound.bpf.c and
 * redirect.bpf.c. The includer provides bpf_htonl and abi.h.
 */
#ifndef WEFT_BPF_LIB_INBOUND_H
#define WEFT_BPF_LIB_INBOUND_H

#include "addr.h"

/* ifindex of lo in every network namespace (loopback_net_init registers it
 * first, and ifindexes are per netns).
 */
#define MESH_LOOPBACK_IFINDEX 1

/* A listener lookup as sk_lookup sees it, copied out of bpf_sk_lookup. */
struct mesh_inbound_req {
	struct mesh_addr remote;	/* network order */
	struct mesh_addr local;
	__u32 ingress_ifindex;	/* as the kernel reports it (inet_iif) */
	__u16 local_port;	/* destination port, host order */
	__u8 family;		/* MESH_AF_INET or MESH_AF_INET6 */
	__u8 is_tcp;
	__u8 is_agent;		/* the flow is in mesh_in_agent */
	__u8 fails_open;	/* the pod is fail-open and the agent's heartbeat stale */
	__u8 pad[2];
};

static __always_inline bool mesh_addr_equal(const struct mesh_addr *a, const struct mesh_addr *b)
{
	return a->addr[0] == b->addr[0] && a->addr[1] == b->addr[1] &&
	       a->addr[2] == b->addr[2] && a->addr[3] == b->addr[3];
}

/* Returns MESH_R_IN_CAPTURED when the connection goes to the pod's inbound
 * listener, or the reason it is left to the kernel's own lookup. @pod is NULL
 * when the netns is not enrolled. The first reason wins, in counter order.
 * Non-TCP is MESH_R_NOT_TCP; the program does not count it (see there).
 */
static __always_inline enum mesh_reason mesh_decide_inbound(const struct mesh_inbound_req *req,
							    const struct mesh_pod *pod)
{
	if (!req->is_tcp)
		return MESH_R_NOT_TCP;
	if (!pod || !pod->inbound_port)
		return MESH_R_IN_OFF;
	/* The pod talking to itself. Over 127/8 or ::1 the kernel reports lo
	 * as the ingress; to its own pod address it reports the interface
	 * that holds the address (the route's device, not lo), so the
	 * addresses tell: a connection from the pod's address to itself.
	 */
	if (req->ingress_ifindex == MESH_LOOPBACK_IFINDEX ||
	    mesh_addr_equal(&req->remote, &req->local))
		return MESH_R_IN_LOOPBACK;
	/* The agent's own connection to the application, from the client's
	 * address (transparent): capturing it would loop it back to the agent.
	 */
	if (req->is_agent)
		return MESH_R_IN_AGENT;
	/* A connection for the listeners themselves reaches them anyway;
	 * steering it would only hide the port from the kernel's lookup.
	 */
	if (req->local_port == pod->inbound_port ||
	    (pod->proxy_port && req->local_port == pod->proxy_port))
		return MESH_R_IN_PROXY_PORT;
	for (int i = 0; i < MESH_MAX_EXCL_PORTS; i++) {
		if (pod->excl_in_ports[i] && pod->excl_in_ports[i] == req->local_port)
			return MESH_R_IN_EXCL_PORT;
	}
	/* A fail-open pod whose agent stopped beating: its listener is gone
	 * with the agent, and the application takes the connection itself
	 * instead of it being reset. Last, as outbound.
	 */
	if (req->fails_open && (pod->flags & MESH_POD_F_FAIL_OPEN))
		return MESH_R_IN_FAIL_OPEN;
	return MESH_R_IN_CAPTURED;
}

/* Fill @key for the TCP connection @src:@sport -> @dst:@dport (network-order
 * addresses, host-order ports) of @family in netns @netns_cookie. A
 * dual-stack socket's IPv4-mapped pair becomes IPv4, as its packets are;
 * every byte is written, padding included, since the map hashes all of them.
 */
static __always_inline void mesh_flow_key_set(struct mesh_flow_key *key, __u64 netns_cookie,
					      __u8 family, const struct mesh_addr *src, __u16 sport,
					      const struct mesh_addr *dst, __u16 dport)
{
	struct mesh_addr s = *src, d = *dst;
	__u8 sfamily = family, dfamily = family;

	if (family == MESH_AF_INET6 && mesh_addr_is_v4mapped(&s) && mesh_addr_is_v4mapped(&d)) {
		mesh_addr_unmap(&s, &sfamily);
		mesh_addr_unmap(&d, &dfamily);
	}
	if (sfamily == MESH_AF_INET) {
		s.addr[1] = s.addr[2] = s.addr[3] = 0;
		d.addr[1] = d.addr[2] = d.addr[3] = 0;
	}
	key->netns_cookie = netns_cookie;
	key->src = s;
	key->dst = d;
	key->sport = sport;
	key->dport = dport;
	key->family = sfamily;
	for (int i = 0; i < (int)sizeof(key->pad); i++)
		key->pad[i] = 0;
}

#endif /* WEFT_BPF_LIB_INBOUND_H */
