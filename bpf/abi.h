/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The kernel/user contract of weft's datapath: map keys and values, limits,
 * drop reasons. Included by bpf/ (after vmlinux.h) and by agent/datapath
 * (after <linux/types.h>); it includes nothing itself.
 */
#ifndef WEFT_BPF_ABI_H
#define WEFT_BPF_ABI_H

/* Address families as the kernel numbers them (AF_INET, AF_INET6). */
#define MESH_AF_INET 2
#define MESH_AF_INET6 10

/* Per-pod exclusion lists are fixed arrays so the programs loop a known count. */
#define MESH_MAX_EXCL_PORTS 8
#define MESH_MAX_EXCL_CIDRS 8

/* max_entries of the maps. */
#define MESH_MAX_PODS 4096
#define MESH_MAX_ORIG_DST 65536
#define MESH_MAX_LISTENERS (2 * MESH_MAX_PODS)	/* an IPv4 and an IPv6 one per pod */
#define MESH_MAX_IN_AGENT 65536	/* the agent's connections to pods' applications */

/* DNS capture (docs/dns.md, "Capture"). A query to RESOLVER:53 is sent to
 * 127.53.X.Y:<dns_port> instead, where X.Y is the slot of RESOLVER in
 * mesh_dns_up: the responder reads the slot from the address the datagram
 * (or connection) arrived on, and recvmsg4/6 map the reply's source back.
 * An IPv6 resolver, asked by a dual-stack socket's connect(), is sent to
 * ::ffff:127.54.X.Y, X.Y its slot in mesh_dns_up6: IPv6 has one loopback
 * address, so its queries travel as IPv4 inside the pod.
 */
#define MESH_DNS_PORT 53
#define MESH_DNS_NET 0x7f350000u	/* 127.53.0.0/16, host order */
#define MESH_DNS_NET6 0x7f360000u	/* 127.54.0.0/16: slots of mesh_dns_up6 */
#define MESH_DNS_NET_MASK 0xffff0000u
#define MESH_MAX_DNS_UP 65536	/* slots: the low 16 bits of the address */
#define MESH_DNS_PROBES 8	/* slots tried from a resolver's home before giving up */

/* An IPv4 or IPv6 address; IPv4 lives in addr[0], network order. */
struct mesh_addr {
	__u32 addr[4];
};
_Static_assert(sizeof(struct mesh_addr) == 16, "mesh_addr size");

struct mesh_cidr {
	struct mesh_addr addr;	/* network order, host bits zero */
	__u8 family;		/* MESH_AF_INET or MESH_AF_INET6; 0 = unused slot */
	__u8 prefix_len;
	__u8 pad[2];
};
_Static_assert(sizeof(struct mesh_cidr) == 20, "mesh_cidr size");

/* Value of mesh_pods, keyed by the pod's netns cookie (__u64). */
struct mesh_pod {
	__u32 pod_id;		/* agent-assigned, for counters and tracing */
	__u16 proxy_port;	/* host order: the in-pod listener port */
	__u16 flags;		/* MESH_POD_F_* */
	__u16 excl_ports[MESH_MAX_EXCL_PORTS];	/* host order; 0 = unused slot */
	struct mesh_cidr excl_cidrs[MESH_MAX_EXCL_CIDRS];
	/* Inbound capture (sk_lookup): 20 bytes appended. A pinned map of an
	 * older layout is migrated at start (agent/datapath/dp_migrate.c):
	 * values keep their common prefix and fields appended read as zero,
	 * so new fields go at the end.
	 */
	__u16 inbound_port;	/* host order: the in-pod inbound listener; 0 = no capture */
	__u16 excl_in_ports[MESH_MAX_EXCL_PORTS];	/* host order; 0 = unused slot */
	/* DNS capture: what was padding, so older pinned entries read 0. */
	__u16 dns_port;		/* host order: the in-pod DNS responder; 0 = DNS not captured */
};
_Static_assert(sizeof(struct mesh_pod) ==
		       8 + 2 * MESH_MAX_EXCL_PORTS + 20 * MESH_MAX_EXCL_CIDRS +
			       (2 + 2 * MESH_MAX_EXCL_PORTS + 2),
	       "mesh_pod size");

#define MESH_POD_F_CAPTURE 0x1	/* redirect outbound TCP of this pod */
#define MESH_POD_F_DENY_RAW 0x2	/* refuse SOCK_RAW sockets of AF_INET/AF_INET6 */
#define MESH_POD_F_FAIL_OPEN 0x4	/* capture nothing while mesh_heartbeat is stale */

/* Value of the one-entry array mesh_heartbeat: the agent's proof of life,
 * written about every second by the agent that serves the pods (and by its
 * successor from before a hand-over completes). A pod carrying
 * MESH_POD_F_FAIL_OPEN is not captured while the beat is older than
 * stale_after_ns (bpf/lib/heartbeat.h). A map of its own, not a field of
 * mesh_config: during a hand-over two agents of different cgroups run at
 * once, and only the successor may write mesh_config, while either may beat.
 */
struct mesh_heartbeat {
	__u64 beat_ns;		/* CLOCK_MONOTONIC (bpf_ktime_get_ns()); 0 = never beat */
	__u64 stale_after_ns;	/* --fail-open-after; 0 = never stale */
};
_Static_assert(sizeof(struct mesh_heartbeat) == 16, "mesh_heartbeat size");

/* Key of mesh_inbound (a SOCKHASH of the agent's in-pod inbound listeners):
 * one IPv4 and one IPv6 listener per pod netns.
 */
struct mesh_listener_key {
	__u64 netns_cookie;
	__u8 family;		/* MESH_AF_INET or MESH_AF_INET6 */
	__u8 pad[7];
};
_Static_assert(sizeof(struct mesh_listener_key) == 16, "mesh_listener_key size");

/* Key of mesh_in_agent: one TCP connection by its client end (src) and
 * server end (dst) within one netns. IPv4-mapped addresses are keyed as IPv4,
 * since that is what the packet carries.
 */
struct mesh_flow_key {
	__u64 netns_cookie;
	struct mesh_addr src;	/* network order */
	struct mesh_addr dst;
	__u16 sport;		/* host order */
	__u16 dport;		/* host order */
	__u8 family;
	__u8 pad[3];
};
_Static_assert(sizeof(struct mesh_flow_key) == 48, "mesh_flow_key size");

/* Key of mesh_orig_dst: the client end of a redirected connection, as the
 * proxy's accepted socket sees its peer, within one netns.
 */
struct mesh_conn_key {
	__u64 netns_cookie;
	struct mesh_addr addr;	/* client address, network order */
	__u16 port;		/* client port, host order */
	__u8 family;
	__u8 pad[5];
};
_Static_assert(sizeof(struct mesh_conn_key) == 32, "mesh_conn_key size");

/* The destination the application asked for before connect4/6 rewrote it. */
struct mesh_orig_dst {
	struct mesh_addr addr;	/* network order; IPv4-mapped stays IPv6 */
	__u16 port;		/* network order, as in sockaddr */
	__u8 family;
	__u8 pad[1];
	__u32 pod_id;
};
_Static_assert(sizeof(struct mesh_orig_dst) == 24, "mesh_orig_dst size");

/* One-entry array map of values the agent writes at every start.
 *
 * The agent's own sockets are told from the pods' by cgroup, never by mark:
 * any process holding CAP_NET_RAW in its netns (containerd grants it by
 * default) can set any SO_MARK, while a socket's cgroup is its creator's and
 * moving a process into the agent's cgroup takes write access to the node's
 * cgroup tree. A socket is the agent's when its cgroup v2 ancestor at depth
 * agent_cgroup_level is agent_cgroup_id, the agent's own cgroup (so the
 * agent's cgroup and everything below it): the rule of nft mode's `socket
 * cgroupv2 level L`. The marks stay for routing only (the inbound return
 * path), and inbound_mark tells which of the agent's sockets sockops records.
 *
 * Grown from 8 to 24 bytes on purpose: the pinned map of an older agent is
 * refused at load and must be removed (weft-agent --cleanup), as for any
 * change of a map's value size.
 */
struct mesh_config {
	__u32 mark;		/* the agent's upstream SO_MARK: routing only, never trusted */
	__u32 inbound_mark;	/* the agent's sockets toward applications; 0 = none */
	__u64 agent_cgroup_id;	/* cgroup v2 id of the agent (its folder's inode); 0 = none */
	__u32 agent_cgroup_level;	/* its depth below the cgroup v2 root, >= 1 */
	__u32 pad;
};
_Static_assert(sizeof(struct mesh_config) == 24, "mesh_config size");

/* The opaque-TCP fast path (bpf/fastpath.bpf.c, --opaque-fastpath sockmap):
 * both sockets of a relayed connection sit in mesh_fp_socks keyed by their
 * socket cookie, and each has an entry in mesh_fp_peers naming the other one
 * and the counter slot its bytes are added to. Slots are the proxy's: each
 * worker owns a range of them (MESH_FP_SLOTS in all) and reads them through
 * a mapping of mesh_fp_bytes, without a system call.
 */
#define MESH_FP_SLOTS 65536	/* connections on the fast path at once, node-wide */
#define MESH_MAX_FP_SOCKS (2 * MESH_FP_SLOTS)

struct mesh_fp_peer {
	__u64 peer_cookie;	/* the socket this one's bytes are redirected to */
	__u32 slot;		/* index in mesh_fp_bytes, < MESH_FP_SLOTS */
	__u32 dir;		/* 0: client to upstream, 1: upstream to client */
	/* Agent only, for a successor: bytes the peer's TCP had taken that
	 * the relay's counts of this direction do not cover (written before
	 * the relay began); 0 until a hand-over notes it.
	 */
	__u64 wr_off;
	/* Agent only: this direction's count in the slot when the hand-over
	 * read it, so the successor adds what the kernel counted there since.
	 */
	__u64 counted;
};
_Static_assert(sizeof(struct mesh_fp_peer) == 32, "mesh_fp_peer size");

/* Bytes redirected by the kernel, per direction (mesh_fp_peer.dir). */
struct mesh_fp_bytes {
	__u64 bytes[2];
};
_Static_assert(sizeof(struct mesh_fp_bytes) == 16, "mesh_fp_bytes size");

/* Every decision a program takes that is not "redirect" bumps one of these in
 * the per-CPU array mesh_metrics; meshctl prints them by name.
 */
enum mesh_reason {
	MESH_R_REDIRECTED = 0,	/* connect rewritten to the proxy */
	MESH_R_NOT_ENROLLED,	/* netns not in mesh_pods */
	MESH_R_AGENT_CGROUP,	/* a socket of the agent's cgroup: its own, left alone */
	MESH_R_NOT_TCP,
	MESH_R_LOOPBACK,
	MESH_R_EXCL_PORT,
	MESH_R_EXCL_CIDR,
	MESH_R_STORAGE_FAIL,	/* no room to remember the original destination */
	MESH_R_ORIG_RECORDED,	/* sockops stored the client 4-tuple */
	MESH_R_ORIG_MAP_FULL,
	MESH_R_ORIG_ANSWERED,	/* getsockopt(SO_ORIGINAL_DST) answered */
	MESH_R_ORIG_MISS,	/* asked, not ours: the kernel's answer stands */
	MESH_R_PEER_REWRITTEN,	/* getpeername() of a redirected socket gave the original */
	MESH_R_IN_CAPTURED,	/* sk_lookup handed a connection to the inbound listener */
	MESH_R_IN_OFF,		/* netns not in mesh_pods, or inbound_port 0 */
	MESH_R_IN_LOOPBACK,	/* arrived over lo: the pod itself, or the agent */
	MESH_R_IN_PROXY_PORT,	/* for the inbound or outbound listener's own port */
	MESH_R_IN_EXCL_PORT,	/* the pod's excluded inbound ports */
	MESH_R_IN_NO_LISTENER,	/* no listener of that family in mesh_inbound */
	MESH_R_IN_ASSIGN_FAIL,	/* bpf_sk_assign refused the listener */
	MESH_R_IN_AGENT,	/* the agent's own connection to the app (mesh_in_agent) */
	MESH_R_IN_AGENT_RECORDED,	/* sockops recorded the agent's connection to an app */
	MESH_R_IN_AGENT_MAP_FULL,	/* mesh_in_agent refused the record */
	MESH_R_RAW_DENIED,	/* sock_create refused a raw IP socket (MESH_POD_F_DENY_RAW) */
	MESH_R_FAIL_OPEN,	/* connect left alone: fail-open pod, agent's heartbeat stale */
	MESH_R_IN_FAIL_OPEN,	/* sk_lookup left it to the app: the same, inbound */
	MESH_R_DNS_CAPTURED,	/* a query to port 53 sent to the pod's DNS responder */
	MESH_R_DNS_REPLY,	/* recvmsg showed a responder's reply as the resolver's */
	MESH_R_DNS_TABLE_FULL,	/* no slot in mesh_dns_up for the resolver: left alone */
	MESH_R_DNS_IPV6,	/* a query to an IPv6 resolver that cannot be steered (an
				 * IPV6_V6ONLY socket, an unconnected sendto()): left
				 * alone (docs/dns.md) */
	MESH_R_MAX,
};

#define MESH_REASON_NAMES                                                                          \
	{                                                                                          \
		"redirected", "not_enrolled", "agent_cgroup", "not_tcp", "loopback",                 \
		"excluded_port", "excluded_cidr", "storage_fail", "orig_recorded",                 \
		"orig_map_full", "orig_answered", "orig_miss", "peer_rewritten",                   \
		"inbound_captured", "inbound_off", "inbound_loopback", "inbound_proxy_port",       \
		"inbound_excluded_port", "inbound_no_listener", "inbound_assign_fail",             \
		"inbound_agent", "inbound_agent_recorded", "inbound_agent_map_full",               \
		"raw_socket_denied", "fail_open", "inbound_fail_open", "dns_captured",             \
		"dns_reply", "dns_table_full", "dns_ipv6",                                         \
	}

#endif /* WEFT_BPF_ABI_H */
