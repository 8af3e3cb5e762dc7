/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The inbound decision of sk_lookup: hand a TCP connection arriving in a
 * pod's netns to the agent's inbound listener, or say why not (enum
 * mesh_reason). Pure, so tests/unit runs it with the host cc; used by
 * inbound.bpf.c.
 */
#ifndef WEFT_BPF_LIB_INBOUND_H
#define WEFT_BPF_LIB_INBOUND_H

/* ifindex of lo in every network namespace (loopback_net_init registers it
 * first, and ifindexes are per netns).
 */
#define MESH_LOOPBACK_IFINDEX 1

/* A listener lookup as sk_lookup sees it, copied out of bpf_sk_lookup. */
struct mesh_inbound_req {
	__u32 ingress_ifindex;	/* the interface the packet came in on */
	__u16 local_port;	/* destination port, host order */
	__u8 is_tcp;
	__u8 pad;
};

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
	/* The pod talking to itself, and the agent's own (transparent)
	 * connection to the application, which is routed to a local address
	 * and so arrives over lo: capturing it would loop it back to the agent.
	 */
	if (req->ingress_ifindex == MESH_LOOPBACK_IFINDEX)
		return MESH_R_IN_LOOPBACK;
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
	return MESH_R_IN_CAPTURED;
}

#endif /* WEFT_BPF_LIB_INBOUND_H */
