/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The connect() decision: given what the hook saw and the pod's entry in
 * mesh_pods, redirect to the proxy or say why not (enum mesh_reason). Pure, so
 * tests/unit runs it with the host cc; used by redirect.bpf.c.
 */
#ifndef WEFT_BPF_LIB_DECIDE_H
#define WEFT_BPF_LIB_DECIDE_H

#include "addr.h"

/* A connect() as the cgroup hook sees it, copied out of bpf_sock_addr. */
struct mesh_connect_req {
	struct mesh_addr dst;	/* network order; IPv4 in addr[0]; IPv4-mapped as given */
	__u16 port;		/* destination port, host order */
	__u8 family;		/* MESH_AF_INET (connect4) or MESH_AF_INET6 (connect6) */
	__u8 is_tcp;		/* SOCK_STREAM over IPPROTO_TCP */
	__u32 sk_mark;		/* SO_MARK of the connecting socket */
};

/* Whether @sk_mark is one of the agent's marks in @cfg (NULL: none is set).
 * A mark of 0 is "not configured", never a match: unmarked sockets are the
 * pods'.
 */
static __always_inline bool mesh_is_agent_mark(const struct mesh_config *cfg, __u32 sk_mark)
{
	if (!cfg || !sk_mark)
		return false;
	return sk_mark == cfg->mark || sk_mark == cfg->inbound_mark;
}

/* Returns MESH_R_REDIRECTED when the connection goes to pod->proxy_port, or
 * the reason it is left alone. @pod is NULL when the netns is not enrolled;
 * @cfg is mesh_config (NULL: no agent mark is configured). Both of the
 * agent's marks exempt a socket: its upstream connections (mark) and its
 * connections to the pod's own application on the inbound side
 * (inbound_mark). The order of the checks is the order of the counters an
 * operator reads: the first reason wins.
 */
static __always_inline enum mesh_reason
mesh_decide_connect(const struct mesh_connect_req *req, const struct mesh_pod *pod,
		    const struct mesh_config *cfg)
{
	struct mesh_addr dst = req->dst;
	__u8 family = req->family;

	if (!req->is_tcp)
		return MESH_R_NOT_TCP;
	/* A pod without capture, or without a listener to capture to, is known
	 * to the agent but must not be redirected: treat it as not enrolled.
	 */
	if (!pod || !(pod->flags & MESH_POD_F_CAPTURE) || !pod->proxy_port)
		return MESH_R_NOT_ENROLLED;
	if (mesh_is_agent_mark(cfg, req->sk_mark))
		return MESH_R_AGENT_MARK;

	/* A dual-stack socket names IPv4 peers as ::ffff:a.b.c.d: decide on the
	 * IPv4 address, so 127/8 and IPv4 exclusions hold for it too.
	 */
	mesh_addr_unmap(&dst, &family);
	if (mesh_addr_is_loopback(&dst, family))
		return MESH_R_LOOPBACK;
	for (int i = 0; i < MESH_MAX_EXCL_PORTS; i++) {
		if (pod->excl_ports[i] && pod->excl_ports[i] == req->port)
			return MESH_R_EXCL_PORT;
	}
	for (int i = 0; i < MESH_MAX_EXCL_CIDRS; i++) {
		if (mesh_addr_in_cidr(&dst, family, &pod->excl_cidrs[i]))
			return MESH_R_EXCL_CIDR;
	}
	return MESH_R_REDIRECTED;
}

#endif /* WEFT_BPF_LIB_DECIDE_H */
