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
	__u64 cgroup_at_agent_level;	/* see mesh_is_agent_socket() */
	__u16 port;		/* destination port, host order */
	__u8 family;		/* MESH_AF_INET (connect4) or MESH_AF_INET6 (connect6) */
	__u8 is_tcp;		/* SOCK_STREAM over IPPROTO_TCP */
	__u8 fails_open;	/* the pod is fail-open and the agent's heartbeat
				 * stale (mesh_pod_fails_open()) */
	__u8 pad[3];
};

/* Whether the connecting socket is the agent's own: @cgroup_at_agent_level is
 * the id of the connecting task's cgroup v2 ancestor at depth
 * cfg->agent_cgroup_level (bpf_get_current_ancestor_cgroup_id(); 0 when the
 * task's cgroup is shallower), and it must be the agent's cgroup. So the
 * agent's cgroup and everything below it are the agent; nothing else is,
 * whatever SO_MARK its sockets carry. @cfg NULL, or a zero id or level (an
 * agent that wrote no cgroup, or the root, which every task descends from),
 * is "no socket is the agent's": capture never fails open on a bad config.
 */
static __always_inline bool mesh_is_agent_socket(const struct mesh_config *cfg,
						 __u64 cgroup_at_agent_level)
{
	if (!cfg || !cfg->agent_cgroup_id || !cfg->agent_cgroup_level)
		return false;
	return cgroup_at_agent_level == cfg->agent_cgroup_id;
}

/* Whether sockops records the connection of a socket carrying @sk_mark, made
 * by a task whose cgroup ancestor at the agent's depth is
 * @cgroup_at_agent_level, in mesh_in_agent (sk_lookup then leaves it to the
 * application): the agent's own socket (by cgroup, as above) toward an
 * application, which the agent marks with cfg->inbound_mark. The mark alone
 * is no proof (CAP_NET_RAW sets any), and the agent's other sockets need no
 * record.
 */
static __always_inline bool mesh_is_agent_inbound_socket(const struct mesh_config *cfg,
							 __u32 sk_mark,
							 __u64 cgroup_at_agent_level)
{
	return mesh_is_agent_socket(cfg, cgroup_at_agent_level) && cfg->inbound_mark &&
	       sk_mark == cfg->inbound_mark;
}

/* Returns MESH_R_REDIRECTED when the connection goes to pod->proxy_port, or
 * the reason it is left alone. @pod is NULL when the netns is not enrolled;
 * @cfg is mesh_config (NULL: nothing is the agent's). The agent's own sockets,
 * recognised by cgroup (mesh_is_agent_socket), are left alone: its upstream
 * connections and its connections to the pod's own application on the inbound
 * side. The order of the checks is the order of the counters an operator
 * reads: the first reason wins.
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
	if (mesh_is_agent_socket(cfg, req->cgroup_at_agent_level))
		return MESH_R_AGENT_CGROUP;

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
	/* Last, so that the counter counts exactly the connections that
	 * would have been captured and went around the mesh instead: the pod
	 * asked to fail open (weft.io/fail-open) and no agent beats.
	 */
	if (req->fails_open && (pod->flags & MESH_POD_F_FAIL_OPEN))
		return MESH_R_FAIL_OPEN;
	return MESH_R_REDIRECTED;
}

/* Whether a query to port 53 (@req: TCP connect, or a UDP connect or
 * sendmsg) goes to the pod's DNS responder: MESH_R_DNS_CAPTURED, or the
 * reason it does not. MESH_R_MAX when it is no DNS query at all (another
 * port, another protocol): the caller counts nothing and carries on. The
 * pod's TCP exclusions do not apply (an excluded port 53 usually protects
 * the cluster DNS from the TCP proxy, which DNS capture does not involve);
 * the opt-out is weft.io/dns-capture, which leaves dns_port 0. An IPv6
 * resolver is captured like an IPv4 one; whether the socket can be steered
 * to the responder is the caller's to say (MESH_R_DNS_IPV6).
 */
static __always_inline enum mesh_reason
mesh_decide_dns(const struct mesh_connect_req *req, const struct mesh_pod *pod,
		const struct mesh_config *cfg)
{
	struct mesh_addr dst = req->dst;
	__u8 family = req->family;

	if (req->port != MESH_DNS_PORT)
		return MESH_R_MAX;
	if (!pod || !pod->dns_port)
		return MESH_R_MAX;
	if (mesh_is_agent_socket(cfg, req->cgroup_at_agent_level))
		return MESH_R_AGENT_CGROUP;
	mesh_addr_unmap(&dst, &family);
	if (mesh_addr_is_loopback(&dst, family))
		return MESH_R_LOOPBACK;
	if (req->fails_open && (pod->flags & MESH_POD_F_FAIL_OPEN))
		return MESH_R_FAIL_OPEN;
	return MESH_R_DNS_CAPTURED;
}

#endif /* WEFT_BPF_LIB_DECIDE_H */
