// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Steering of enrolled pods' outbound TCP to the agent's in-pod proxy listener:
 * connect4/6 rewrite the destination and remember the original, sockops files
 * it under the client's address once the handshake completes, getsockopt hands
 * it to the proxy as SO_ORIGINAL_DST, getpeername4/6 show it to the
 * application. DNS queries (UDP and TCP port 53) go to the pod's DNS
 * responder instead: connect4/6 and sendmsg4/6 rewrite them, recvmsg4/6 show
 * the responder's replies as the resolver's (docs/dns.md, "Capture"). One
 * skeleton (mesh_redirect), attached and detached together by
 * agent/datapath/dp.c.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "lib/maps.h"
#include "lib/metrics.h"
#include "lib/heartbeat.h"
#include "lib/config.h"
#include "lib/ctx.h"
#include "lib/addr.h"
#include "lib/decide.h"
#include "lib/inbound.h"
#include "lib/orig.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The kernel's PAGE_SIZE, set by the agent from sysconf() before load: it is
 * the size of the optval window getsockopt programs see (see mesh_getsockopt).
 */
const volatile __u32 mesh_page_size = 4096;

/* The id of the calling task's cgroup v2 ancestor at the agent's depth, what
 * mesh_is_agent_socket() compares with the agent's cgroup id. The task, not
 * the socket: sock_addr programs may not call bpf_sk_ancestor_cgroup_id
 * (Linux 6.18 refuses it), and the two agree here: connect() runs in the task
 * that made the socket (the agent never holds a pod's sockets, a pod never
 * the agent's), io_uring's workers and SQPOLL thread are threads of the
 * submitting process, and all threads of a process share its cgroup unless a
 * threaded cgroup splits them (then their sub-cgroups are still below the
 * agent's). 0 when nothing is configured.
 */
static __always_inline __u64 mesh_cgroup_at_agent_level(const struct mesh_config *cfg)
{
	if (!cfg || !cfg->agent_cgroup_level)
		return 0;
	return bpf_get_current_ancestor_cgroup_id((int)cfg->agent_cgroup_level);
}

/* Shared half of connect4/6: decide, and on "redirect" remember the original
 * destination in the socket's storage. Returns 1 with *@pod_out set when the
 * caller must rewrite the destination, 0 when it must leave the connect()
 * alone, or -1 when the connect() must fail.
 *
 * Fail closed. Without storage for the original destination the proxy could
 * not route the connection; letting it go out unredirected would let a pod
 * that drives the node's memory low escape the mesh, so the connect() fails
 * (EPERM, as for any cgroup connect program returning 0) and mesh_metrics
 * says why. Every other decision is not a failure: the connect() proceeds.
 */
static __always_inline int mesh_connect_prepare(struct bpf_sock_addr *ctx,
						struct mesh_connect_req *req,
						const struct mesh_pod **pod_out)
{
	const struct mesh_config *cfg = mesh_config_get();
	struct bpf_sock *sk = ctx->sk;
	const struct mesh_pod *pod;
	struct mesh_orig_dst *orig;
	enum mesh_reason reason;
	__u64 netns_cookie;

	if (!sk)
		return 0;
	netns_cookie = bpf_get_netns_cookie(ctx);
	pod = bpf_map_lookup_elem(&mesh_pods, &netns_cookie);
	req->cgroup_at_agent_level = mesh_cgroup_at_agent_level(cfg);
	req->fails_open = mesh_pod_fails_open(pod);
	reason = mesh_decide_connect(req, pod, cfg);
	if (reason != MESH_R_REDIRECTED || !pod) {
		/* A socket redirected once, disconnected (connect with
		 * AF_UNSPEC) and connected again elsewhere still carries the
		 * first destination: sockops would file it for this
		 * connection and getpeername would show it.
		 */
		bpf_sk_storage_delete(&mesh_sk_dst, sk);
		mesh_count(reason);
		return 0;
	}

	/* A second connect() on the same socket (after a failed attempt, or
	 * after AF_UNSPEC) finds the old entry and overwrites it.
	 */
	orig = bpf_sk_storage_get(&mesh_sk_dst, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!orig) {
		mesh_count(MESH_R_STORAGE_FAIL);
		return -1;
	}
	orig->addr = req->dst;
	orig->port = bpf_htons(req->port);
	orig->family = req->family;
	orig->pad[0] = 0;
	orig->pod_id = pod->pod_id;
	mesh_count(MESH_R_REDIRECTED);
	*pod_out = pod;
	return 1;
}

/* ---- DNS capture */

/* The slot of IPv4 resolver @addr (network order) in mesh_dns_up, taking a
 * free one when it has none: its home (a multiplicative hash of the address)
 * or one of the next MESH_DNS_PROBES - 1. Two pods racing for the same free
 * slot with different resolvers are settled by BPF_NOEXIST: the loser reads
 * the winner's address and probes on. 0 with *@slot set, or -ENOSPC.
 */
static __always_inline int mesh_dns_slot(__u32 addr, __u32 *slot)
{
	__u32 home = (addr * 2654435761u) >> 16;

	for (__u32 i = 0; i < MESH_DNS_PROBES; i++) {
		__u32 s = (home + i) & (MESH_MAX_DNS_UP - 1);
		__u32 *held = bpf_map_lookup_elem(&mesh_dns_up, &s);

		if (!held) {
			(void)bpf_map_update_elem(&mesh_dns_up, &s, &addr, BPF_NOEXIST);
			held = bpf_map_lookup_elem(&mesh_dns_up, &s);
		}
		if (held && *held == addr) {
			*slot = s;
			return 0;
		}
	}
	return -1;
}

/* The same for IPv6 resolver @a in mesh_dns_up6, its home a hash of the
 * four words. 0 with *@slot set, or -1.
 */
static __always_inline int mesh_dns_slot6(const struct mesh_addr *a, __u32 *slot)
{
	__u32 home = ((a->addr[0] ^ a->addr[1] ^ a->addr[2] ^ a->addr[3]) * 2654435761u) >> 16;

	for (__u32 i = 0; i < MESH_DNS_PROBES; i++) {
		__u32 s = (home + i) & (MESH_MAX_DNS_UP - 1);
		struct mesh_addr *held = bpf_map_lookup_elem(&mesh_dns_up6, &s);

		if (!held) {
			(void)bpf_map_update_elem(&mesh_dns_up6, &s, a, BPF_NOEXIST);
			held = bpf_map_lookup_elem(&mesh_dns_up6, &s);
		}
		if (held && held->addr[0] == a->addr[0] && held->addr[1] == a->addr[1] &&
		    held->addr[2] == a->addr[2] && held->addr[3] == a->addr[3]) {
			*slot = s;
			return 0;
		}
	}
	return -1;
}

/* Whether the AF_INET6 socket of @ctx may be connected to an IPv4-mapped
 * address, the only way to the responder from an IPv6 resolver: not when it
 * is IPV6_V6ONLY (connect() would fail with ENETUNREACH). The flag is in
 * the kernel's socket, read through the socket-cast helpers.
 */
static __always_inline bool mesh_sk_takes_v4mapped(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct sock_common *skc = NULL;

	if (!sk)
		return false;
	if (ctx->protocol == IPPROTO_UDP) {
		struct udp6_sock *u = bpf_skc_to_udp6_sock(sk);

		if (u)
			skc = &u->udp.inet.sk.__sk_common;
	} else {
		struct tcp6_sock *t = bpf_skc_to_tcp6_sock(sk);

		if (t)
			skc = &t->tcp.inet_conn.icsk_inet.sk.__sk_common;
	}
	return skc && !BPF_CORE_READ_BITFIELD(skc, skc_ipv6only);
}

/* Decide on a query @req (port 53, TCP connect or UDP connect/sendmsg) of the
 * calling netns and, when it is captured, give the responder's address
 * (127.53.X.Y for an IPv4 resolver, 127.54.X.Y for an IPv6 one, X.Y the
 * resolver's slot, network order) in *@ip4 and its port in *@port. An IPv6
 * resolver is steered only when @v4mapped_ok (connect6 of a dual-stack
 * socket): the responder is reached over IPv4. Returns 1 when the caller
 * must rewrite, 0 when the call is not a DNS query or is left alone
 * (counted). Fail open: a resolver that finds no slot is reached directly,
 * as without the mesh; DNS capture adds names, it guards nothing.
 */
static __always_inline int mesh_dns_decide(void *ctx, struct mesh_connect_req *req,
					   bool v4mapped_ok, __u32 *ip4, __u16 *port)
{
	const struct mesh_config *cfg = mesh_config_get();
	const struct mesh_pod *pod;
	struct mesh_addr dst = req->dst;
	enum mesh_reason reason;
	__u64 netns_cookie;
	__u8 family = req->family;
	__u32 slot, net = MESH_DNS_NET;

	if (req->port != MESH_DNS_PORT)
		return 0;
	netns_cookie = bpf_get_netns_cookie(ctx);
	pod = bpf_map_lookup_elem(&mesh_pods, &netns_cookie);
	req->cgroup_at_agent_level = mesh_cgroup_at_agent_level(cfg);
	req->fails_open = mesh_pod_fails_open(pod);
	reason = mesh_decide_dns(req, pod, cfg);
	if (reason == MESH_R_MAX)
		return 0;
	if (reason != MESH_R_DNS_CAPTURED || !pod) {
		mesh_count(reason);
		return 0;
	}
	mesh_addr_unmap(&dst, &family);
	if (family == MESH_AF_INET6) {
		if (!v4mapped_ok) {
			mesh_count(MESH_R_DNS_IPV6);
			return 0;
		}
		net = MESH_DNS_NET6;
		if (mesh_dns_slot6(&dst, &slot)) {
			mesh_count(MESH_R_DNS_TABLE_FULL);
			return 0;
		}
	} else if (mesh_dns_slot(dst.addr[0], &slot)) {
		mesh_count(MESH_R_DNS_TABLE_FULL);
		return 0;
	}
	*ip4 = bpf_htonl(net | slot);
	*port = bpf_htons(pod->dns_port);
	mesh_count(MESH_R_DNS_CAPTURED);
	return 1;
}

/* Whether a connect() is of a UDP or TCP socket: raw and ping sockets
 * connect too, and their "port" is no DNS port.
 */
static __always_inline bool mesh_is_udp_or_tcp(const struct bpf_sock_addr *ctx)
{
	return ctx->protocol == IPPROTO_UDP || ctx->protocol == IPPROTO_TCP;
}

/* connect4 and sendmsg4: a query to RESOLVER:53 goes to the responder. UDP
 * and TCP alike; a TCP query never meets the TCP proxy. Returns 1 when it
 * rewrote the destination.
 */
static __always_inline int mesh_dns_steer4(struct bpf_sock_addr *ctx, struct mesh_connect_req *req)
{
	__u32 ip4;
	__u16 port;

	if (!mesh_dns_decide(ctx, req, false, &ip4, &port))
		return 0;
	ctx->user_ip4 = ip4;
	ctx->user_port = port;
	return 1;
}

/* connect6 and sendmsg6: the responder listens on IPv4 (IPv6 has one
 * loopback address, no room for a slot), so every query goes to
 * ::ffff:127.53.X.Y (an IPv4 resolver, ::ffff:RESOLVER) or ::ffff:127.54.X.Y
 * (an IPv6 one). connect6 (@is_connect) of a dual-stack socket may switch
 * it to IPv4 that way; an IPV6_V6ONLY socket cannot, and neither can an
 * unconnected sendto() to an IPv6 resolver (udpv6_sendmsg() refuses a
 * program's rewrite to a mapped address with ENOTSUPP): those are counted
 * (dns_ipv6) and left alone. sendmsg6 never sees mapped addresses
 * (udpv6_sendmsg() hands them to udp_sendmsg(), which runs sendmsg4).
 */
static __always_inline int mesh_dns_steer6(struct bpf_sock_addr *ctx, struct mesh_connect_req *req,
					   bool is_connect)
{
	bool v4mapped_ok = false;
	__u32 ip4;
	__u16 port;

	if (req->port != MESH_DNS_PORT)
		return 0;
	if (is_connect && !mesh_addr_is_v4mapped(&req->dst))
		v4mapped_ok = mesh_sk_takes_v4mapped(ctx);
	if (!mesh_dns_decide(ctx, req, v4mapped_ok, &ip4, &port))
		return 0;
	ctx->user_ip6[0] = 0;
	ctx->user_ip6[1] = 0;
	ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
	ctx->user_ip6[3] = ip4;
	ctx->user_port = port;
	return 1;
}

/* The resolver a reply from @ip4:@port (network order) stands for, when it
 * comes from the DNS responder of the calling netns: into *@out (an IPv4
 * resolver in addr[0]), with *@family. 0 when it is not such a reply.
 */
static __always_inline int mesh_dns_resolver_of(void *ctx, __u32 ip4, __u32 port,
						struct mesh_addr *out, __u8 *family)
{
	const struct mesh_pod *pod;
	__u64 netns_cookie;
	__u32 net = bpf_ntohl(ip4) & MESH_DNS_NET_MASK, slot;

	if (net != MESH_DNS_NET && net != MESH_DNS_NET6)
		return 0;
	netns_cookie = bpf_get_netns_cookie(ctx);
	pod = bpf_map_lookup_elem(&mesh_pods, &netns_cookie);
	if (!pod || !pod->dns_port || bpf_ntohs((__u16)port) != pod->dns_port)
		return 0;
	slot = bpf_ntohl(ip4) & ~MESH_DNS_NET_MASK;
	if (net == MESH_DNS_NET) {
		__u32 *resolver = bpf_map_lookup_elem(&mesh_dns_up, &slot);

		if (!resolver)
			return 0;
		__builtin_memset(out, 0, sizeof(*out));
		out->addr[0] = *resolver;
		*family = MESH_AF_INET;
		return 1;
	}
	struct mesh_addr *resolver6 = bpf_map_lookup_elem(&mesh_dns_up6, &slot);

	if (!resolver6)
		return 0;
	*out = *resolver6;
	*family = MESH_AF_INET6;
	return 1;
}

SEC("cgroup/sendmsg4")
int mesh_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct mesh_connect_req req = {
		.port = bpf_ntohs((__u16)ctx->user_port),
		.family = MESH_AF_INET,
	};

	req.dst.addr[0] = ctx->user_ip4;
	(void)mesh_dns_steer4(ctx, &req);
	return 1;
}

SEC("cgroup/sendmsg6")
int mesh_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct mesh_connect_req req = {
		.port = bpf_ntohs((__u16)ctx->user_port),
		.family = MESH_AF_INET6,
	};

	MESH_LOAD_IP6(&req.dst, ctx, user_ip6);
	(void)mesh_dns_steer6(ctx, &req, false);
	return 1;
}

/* recvfrom()/recvmsg() of a datagram from the responder: the application
 * sees RESOLVER:53, the address it sent to (glibc's resolver drops answers
 * from any other source). Never fails the call (recvmsg programs must
 * return 1).
 */
SEC("cgroup/recvmsg4")
int mesh_recvmsg4(struct bpf_sock_addr *ctx)
{
	struct mesh_addr resolver;
	__u8 family;

	/* An AF_INET socket asked an IPv4 resolver: never a 127.54 slot. */
	if (!mesh_dns_resolver_of(ctx, ctx->user_ip4, ctx->user_port, &resolver, &family) ||
	    family != MESH_AF_INET)
		return 1;
	ctx->user_ip4 = resolver.addr[0];
	ctx->user_port = bpf_htons(MESH_DNS_PORT);
	mesh_count(MESH_R_DNS_REPLY);
	return 1;
}

/* The same for a dual-stack socket, which names its IPv4 peer ::ffff:a.b.c.d:
 * the reply of an IPv4 resolver reads as ::ffff:RESOLVER, that of an IPv6
 * one as RESOLVER.
 */
SEC("cgroup/recvmsg6")
int mesh_recvmsg6(struct bpf_sock_addr *ctx)
{
	struct mesh_addr src, resolver;
	__u8 family;

	MESH_LOAD_IP6(&src, ctx, user_ip6);
	if (!mesh_addr_is_v4mapped(&src) ||
	    !mesh_dns_resolver_of(ctx, src.addr[3], ctx->user_port, &resolver, &family))
		return 1;
	if (family == MESH_AF_INET) {
		ctx->user_ip6[3] = resolver.addr[0];
	} else {
		ctx->user_ip6[0] = resolver.addr[0];
		ctx->user_ip6[1] = resolver.addr[1];
		ctx->user_ip6[2] = resolver.addr[2];
		ctx->user_ip6[3] = resolver.addr[3];
	}
	ctx->user_port = bpf_htons(MESH_DNS_PORT);
	mesh_count(MESH_R_DNS_REPLY);
	return 1;
}

SEC("cgroup/connect4")
int mesh_connect4(struct bpf_sock_addr *ctx)
{
	struct mesh_connect_req req = {
		.port = bpf_ntohs((__u16)ctx->user_port),
		.family = MESH_AF_INET,
		.is_tcp = ctx->type == SOCK_STREAM && ctx->protocol == IPPROTO_TCP,
	};
	const struct mesh_pod *pod = NULL;
	int verdict;

	req.dst.addr[0] = ctx->user_ip4;
	if (mesh_is_udp_or_tcp(ctx) && mesh_dns_steer4(ctx, &req))
		return 1;
	verdict = mesh_connect_prepare(ctx, &req, &pod);
	if (verdict <= 0 || !pod)
		return verdict < 0 ? 0 : 1;
	/* The proxy listens on 127.0.0.1 inside the pod's own netns, so the
	 * rewritten connection never leaves the namespace.
	 */
	ctx->user_ip4 = bpf_htonl(0x7f000001);
	ctx->user_port = bpf_htons(pod->proxy_port);
	return 1;
}

SEC("cgroup/connect6")
int mesh_connect6(struct bpf_sock_addr *ctx)
{
	struct mesh_connect_req req = {
		.port = bpf_ntohs((__u16)ctx->user_port),
		.family = MESH_AF_INET6,
		.is_tcp = ctx->type == SOCK_STREAM && ctx->protocol == IPPROTO_TCP,
	};
	const struct mesh_pod *pod = NULL;
	bool mapped;
	int verdict;

	MESH_LOAD_IP6(&req.dst, ctx, user_ip6);
	mapped = mesh_addr_is_v4mapped(&req.dst);
	if (mesh_is_udp_or_tcp(ctx) && mesh_dns_steer6(ctx, &req, true))
		return 1;
	verdict = mesh_connect_prepare(ctx, &req, &pod);
	if (verdict <= 0 || !pod)
		return verdict < 0 ? 0 : 1;
	/* A dual-stack socket connecting to ::ffff:a.b.c.d is handed by
	 * tcp_v6_connect() to tcp_v4_connect() without running connect4, so
	 * this is the only hook that sees it; it must stay IPv4-mapped (a
	 * mapped socket cannot reach ::1), hence ::ffff:127.0.0.1.
	 */
	ctx->user_ip6[0] = 0;
	ctx->user_ip6[1] = 0;
	ctx->user_ip6[2] = mapped ? bpf_htonl(0x0000ffff) : 0;
	ctx->user_ip6[3] = mapped ? bpf_htonl(0x7f000001) : bpf_htonl(1);
	ctx->user_port = bpf_htons(pod->proxy_port);
	return 1;
}

/* Fill @key with the connection of @ctx as mesh_in_agent files it: the
 * client end (the socket's own) first.
 */
static __always_inline void mesh_agent_flow_key(struct bpf_sock_ops *ctx, struct mesh_flow_key *key)
{
	struct mesh_addr local = {}, remote = {};
	__u32 family = MESH_LOAD_U32(ctx, family);

	if (family == MESH_AF_INET) {
		local.addr[0] = MESH_LOAD_U32(ctx, local_ip4);
		remote.addr[0] = MESH_LOAD_U32(ctx, remote_ip4);
	} else {
		MESH_LOAD_IP6(&local, ctx, local_ip6);
		MESH_LOAD_IP6(&remote, ctx, remote_ip6);
	}
	/* remote_port is the network-order port in the upper half of the
	 * word on little-endian, hence ntohl (bpf_sock_ops in uapi bpf.h).
	 */
	mesh_flow_key_set(key, bpf_get_netns_cookie(ctx), (__u8)family, &local,
			  (__u16)MESH_LOAD_U32(ctx, local_port), &remote,
			  (__u16)bpf_ntohl(MESH_LOAD_U32(ctx, remote_port)));
}

/* Remember a connection the agent opens to a pod's application, so the pod's
 * sk_lookup program leaves it to the application instead of capturing it back
 * to the agent. The agent's by cgroup (mesh_is_agent_inbound_socket: the mark
 * only tells which of its sockets, a pod can set it too). TCP_CONNECT_CB runs
 * in tcp_connect(), in the task that called connect() (or sendmsg() with
 * MSG_FASTOPEN, or the first write of a TCP_FASTOPEN_CONNECT socket), with
 * the local port chosen and before the SYN is sent, so the record is there
 * when the SYN is looked up.
 *
 * The record must not outlive the connection: a later client that picks the
 * same source address and port would otherwise meet it and reach the
 * application uncaptured. So the socket asks for its state changes
 * (BPF_SOCK_OPS_STATE_CB_FLAG, a flag of the socket itself) and
 * mesh_forget_agent_flow() deletes the record when it reaches TCP_CLOSE.
 * The kernel makes that transition for every end of a TCP socket (close,
 * reset, a failed connect, TIME_WAIT taking over, an orphan timing out, the
 * agent killed and its sockets closed by the kernel), so no path of the
 * agent, not even SIGKILL, can leave a record behind.
 */
static __always_inline void mesh_record_agent_flow(struct bpf_sock_ops *ctx, struct bpf_sock *sk)
{
	const struct mesh_config *cfg = mesh_config_get();
	struct mesh_flow_key key;
	__u8 one = 1;

	if (!mesh_is_agent_inbound_socket(cfg, sk->mark, mesh_cgroup_at_agent_level(cfg)))
		return;
	mesh_agent_flow_key(ctx, &key);
	if (bpf_map_update_elem(&mesh_in_agent, &key, &one, BPF_ANY)) {
		mesh_count(MESH_R_IN_AGENT_MAP_FULL);
		return;
	}
	mesh_count(MESH_R_IN_AGENT_RECORDED);
	/* Cannot fail on a full TCP socket; if it ever did, LRU still
	 * bounds the map (and mesh_in_agent's occupancy is in /metrics).
	 */
	bpf_sock_ops_cb_flags_set(ctx, ctx->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

/* STATE_CB of a socket mesh_record_agent_flow() recorded (only those ask for
 * it): on TCP_CLOSE its record goes. It runs in whatever context closes the
 * socket (softirq for a reset or a timer), so it checks no cgroup; only the
 * agent's recorded sockets carry the flag.
 */
static __always_inline void mesh_forget_agent_flow(struct bpf_sock_ops *ctx)
{
	struct mesh_flow_key key;

	if (ctx->args[1] != BPF_TCP_CLOSE)
		return;
	mesh_agent_flow_key(ctx, &key);
	bpf_map_delete_elem(&mesh_in_agent, &key);
}

/* File the original destination of a redirected socket under its client end,
 * where the proxy will look for it. ACTIVE_ESTABLISHED_CB runs from
 * tcp_finish_connect(), before the client sends the final ACK of the
 * handshake; the proxy's listener cannot accept the connection before that
 * ACK arrives, so the entry always exists by the time the proxy asks. And
 * TCP_CONNECT_CB and STATE_CB: see mesh_record_agent_flow().
 */
SEC("sockops")
int mesh_sockops(struct bpf_sock_ops *ctx)
{
	struct mesh_conn_key key = {};
	struct mesh_addr local = {};
	struct mesh_orig_dst *orig;
	struct bpf_sock *sk;
	__u32 family;

	if (ctx->op == BPF_SOCK_OPS_STATE_CB) {
		mesh_forget_agent_flow(ctx);
		return 1;
	}
	if (ctx->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    ctx->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
		return 1;
	sk = ctx->sk;
	if (!sk)
		return 1;
	if (ctx->op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
		mesh_record_agent_flow(ctx, sk);
		return 1;
	}
	orig = bpf_sk_storage_get(&mesh_sk_dst, sk, 0, 0);
	if (!orig)
		return 1;	/* not a socket we redirected */

	family = MESH_LOAD_U32(ctx, family);
	if (family == MESH_AF_INET)
		local.addr[0] = MESH_LOAD_U32(ctx, local_ip4);
	else
		MESH_LOAD_IP6(&local, ctx, local_ip6);
	mesh_conn_key_set(&key, bpf_get_netns_cookie(ctx), (__u8)family, &local,
			  (__u16)MESH_LOAD_U32(ctx, local_port));
	if (bpf_map_update_elem(&mesh_orig_dst, &key, orig, BPF_ANY))
		mesh_count(MESH_R_ORIG_MAP_FULL);
	else
		mesh_count(MESH_R_ORIG_RECORDED);
	/* The storage stays for the socket's life: getpeername4/6 answer
	 * from it (24 bytes per redirected connection).
	 */
	return 1;
}

/* getpeername() on a redirected socket: the application sees the address it
 * dialled (the VIP), not the proxy's 127.0.0.1:15001, as with a real
 * connection (cilium's sock4_getpeername does the same for its socket LB).
 * Runs after the kernel filled the address; only the sockets connect4/6
 * redirected carry mesh_sk_dst. Never fails the call (always 1).
 */
SEC("cgroup/getpeername4")
int mesh_getpeername4(struct bpf_sock_addr *ctx)
{
	const struct mesh_orig_dst *orig;
	struct bpf_sock *sk = ctx->sk;

	if (!sk)
		return 1;
	orig = bpf_sk_storage_get(&mesh_sk_dst, sk, 0, 0);
	/* connect4 stores IPv4 only; an AF_INET socket cannot name more. */
	if (!orig || orig->family != MESH_AF_INET)
		return 1;
	ctx->user_ip4 = orig->addr.addr[0];
	ctx->user_port = orig->port;
	mesh_count(MESH_R_PEER_REWRITTEN);
	return 1;
}

/* The same for AF_INET6 sockets: connect6 stored the address as dialled, so a
 * dual-stack socket that dialled ::ffff:a.b.c.d gets that back, mapped.
 */
SEC("cgroup/getpeername6")
int mesh_getpeername6(struct bpf_sock_addr *ctx)
{
	const struct mesh_orig_dst *orig;
	struct bpf_sock *sk = ctx->sk;

	if (!sk)
		return 1;
	orig = bpf_sk_storage_get(&mesh_sk_dst, sk, 0, 0);
	if (!orig || orig->family != MESH_AF_INET6)
		return 1;
	ctx->user_ip6[0] = orig->addr.addr[0];
	ctx->user_ip6[1] = orig->addr.addr[1];
	ctx->user_ip6[2] = orig->addr.addr[2];
	ctx->user_ip6[3] = orig->addr.addr[3];
	ctx->user_port = orig->port;
	mesh_count(MESH_R_PEER_REWRITTEN);
	return 1;
}

/* A raw IP socket (SOCK_RAW, AF_INET or AF_INET6) can send hand-made TCP
 * segments that no connect() hook sees: with CAP_NET_RAW, which container
 * runtimes grant by default, a process of a pod could speak TCP past the
 * proxy. For the pods that ask for it (MESH_POD_F_DENY_RAW: the annotation
 * weft.io/deny-raw-sockets), creating one fails with EPERM. Runs in
 * inet_create()/inet6_create() only: AF_PACKET sockets have no cgroup hook
 * and are not covered (docs/datapath.md). Never fails anything else.
 */
SEC("cgroup/sock_create")
int mesh_sock_create(struct bpf_sock *ctx)
{
	const struct mesh_pod *pod;
	__u64 netns_cookie;

	if (ctx->type != SOCK_RAW ||
	    (ctx->family != MESH_AF_INET && ctx->family != MESH_AF_INET6))
		return 1;
	netns_cookie = bpf_get_netns_cookie(ctx);
	pod = bpf_map_lookup_elem(&mesh_pods, &netns_cookie);
	if (!pod || !(pod->flags & MESH_POD_F_DENY_RAW))
		return 1;
	mesh_count(MESH_R_RAW_DENIED);
	return 0;
}

/* Write the record into optval as the sockaddr the asking level expects.
 * Returns the length written, or 0 when it does not fit or cannot be said
 * in that family.
 */
static __always_inline int mesh_orig_write(struct bpf_sockopt *ctx, const struct mesh_orig_dst *o)
{
	void *end = ctx->optval_end;

	if (ctx->level == MESH_SOL_IP) {
		struct sockaddr_in *sin = ctx->optval;
		__u32 ip4;

		if ((void *)(sin + 1) > end || !mesh_orig_as_v4(o, &ip4))
			return 0;
		__builtin_memset(sin, 0, sizeof(*sin));
		sin->sin_family = MESH_AF_INET;
		sin->sin_port = o->port;
		sin->sin_addr.s_addr = ip4;
		return sizeof(*sin);
	}

	struct sockaddr_in6 *sin6 = ctx->optval;
	struct mesh_addr ip6;

	if ((void *)(sin6 + 1) > end || !mesh_orig_as_v6(o, &ip6))
		return 0;
	__builtin_memset(sin6, 0, sizeof(*sin6));
	sin6->sin6_family = MESH_AF_INET6;
	sin6->sin6_port = o->port;
	__builtin_memcpy(&sin6->sin6_addr, &ip6, sizeof(ip6));
	return sizeof(*sin6);
}

/* Answer SO_ORIGINAL_DST (SOL_IP) and IP6T_SO_ORIGINAL_DST (SOL_IPV6) for the
 * proxy's accepted sockets. Runs after the kernel's own getsockopt and only
 * for sockets created inside the attached cgroup (the accepted socket inherits
 * the listener's cgroup), which is why the agent runs in that cgroup.
 *
 * Not ours: the kernel's answer stands, so an nftables/conntrack redirect
 * (nft mode) is answered by the same call. Answered: the entry is deleted.
 * The proxy asks once per accepted connection; deleting frees the slot at
 * once instead of leaving LRU eviction to pick, and under pressure LRU would
 * otherwise evict an entry still waiting for its question. A second ask for
 * the same connection falls through to the kernel's answer.
 *
 * Never rejects (always 1): this hook sees every getsockopt of the cgroup.
 */
SEC("cgroup/getsockopt")
int mesh_getsockopt(struct bpf_sockopt *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct mesh_conn_key key = {};
	struct mesh_addr peer = {};
	const struct mesh_orig_dst *orig;
	const struct mesh_pod *pod;
	__u64 netns_cookie;
	__u32 family;
	int len;

	if (!mesh_is_orig_dst_query(ctx->level, ctx->optname))
		goto out_kernel_answer;
	if (!sk || sk->protocol != IPPROTO_TCP)
		goto out_miss;

	/* Only the pod's proxy listener accepts redirected connections; asking
	 * on any other socket must not return a record that happens to share
	 * the peer address and port.
	 */
	netns_cookie = bpf_get_netns_cookie(ctx);
	pod = bpf_map_lookup_elem(&mesh_pods, &netns_cookie);
	if (!pod || sk->src_port != pod->proxy_port)
		goto out_miss;

	family = MESH_LOAD_U32(sk, family);
	if (family == MESH_AF_INET)
		peer.addr[0] = MESH_LOAD_U32(sk, dst_ip4);
	else
		MESH_LOAD_IP6(&peer, sk, dst_ip6);
	mesh_conn_key_set(&key, netns_cookie, (__u8)family, &peer,
			  bpf_ntohs(MESH_LOAD_U16(sk, dst_port)));
	orig = bpf_map_lookup_elem(&mesh_orig_dst, &key);
	if (!orig)
		goto out_miss;
	len = mesh_orig_write(ctx, orig);
	if (!len)
		goto out_miss;
	ctx->optlen = len;
	ctx->retval = 0;
	bpf_map_delete_elem(&mesh_orig_dst, &key);
	mesh_count(MESH_R_ORIG_ANSWERED);
	return 1;

out_miss:
	mesh_count(MESH_R_ORIG_MISS);
out_kernel_answer:
	/* Past PAGE_SIZE the program sees only the first page of optval, and an
	 * optlen it leaves above that makes older kernels fail the call with
	 * EFAULT (6.5 ignores it instead). optlen 0 tells the kernel to keep
	 * its own answer untouched (Documentation/bpf/prog_cgroup_sockopt.rst,
	 * "Large optval"; selftests progs/sockopt_sk.c).
	 */
	if (ctx->optlen > (int)mesh_page_size)
		ctx->optlen = 0;
	return 1;
}
