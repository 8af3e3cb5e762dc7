// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Inbound capture: an sk_lookup program, attached to one pod's netns, hands
 * TCP connections arriving there to the agent's in-pod inbound listener (found
 * in mesh_inbound). No NAT and no conntrack: the accepted socket's own local
 * address is the original destination. Skeleton mesh_inbound, loaded once per
 * pod by agent/datapath/dp_inbound.c with that pod's netns cookie; it shares
 * the maps of mesh_redirect.
 */
/* No CO-RE for this program: it reads only its context, struct
 * bpf_sk_lookup, which is uapi (fields are appended, never moved), so the
 * offsets of the vmlinux.h it is built with hold on every kernel. Without a
 * CO-RE relocation libbpf loads it without parsing the kernel's BTF (5 MB,
 * the bulk of a load's time), and it is loaded once per meshed pod. A read
 * of a kernel-internal struct here would need BPF_CORE_READ (and brings the
 * parse back); bpf, inbound_needs_no_kernel_btf guards this.
 */
#define BPF_NO_PRESERVE_ACCESS_INDEX
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "lib/maps.h"
#include "lib/metrics.h"
#include "lib/heartbeat.h"
#include "lib/config.h"
#include "lib/ctx.h"
#include "lib/inbound.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The netns cookie of the pod this instance is attached to, set by the agent
 * before load. sk_lookup programs may not call bpf_get_netns_cookie (Linux
 * 6.18 still refuses it for this program type), and nothing else in the
 * context names the netns, so each pod gets its own instance of the program
 * with its cookie as a constant; the pod's settings stay in mesh_pods, so
 * changing them needs no reload.
 */
const volatile __u64 mesh_netns_cookie = 0;

/* Decisions not to capture (not TCP, capture off, the agent's own connection,
 * loopback, an excluded port) let the kernel's own lookup run (SK_PASS with
 * nothing assigned). A connection that must be captured but finds no
 * listener — the agent is down or restarting — fails the lookup (SK_DROP,
 * which for TCP the kernel answers with a reset): refused at once, never a
 * bypass of the mesh, as outbound capture and nft mode's REDIRECT to a port
 * nobody listens on behave. The one exception is asked for: a fail-open pod
 * (weft.io/fail-open) whose agent's heartbeat is stale gets SK_PASS before
 * the listener is looked for, so its application takes the connection.
 */
SEC("sk_lookup")
int mesh_sk_lookup(struct bpf_sk_lookup *ctx)
{
	struct mesh_listener_key key = {};
	struct mesh_inbound_req req = {
		.ingress_ifindex = ctx->ingress_ifindex,
		.local_port = (__u16)ctx->local_port,	/* host order in this context */
		.is_tcp = ctx->protocol == IPPROTO_TCP,
	};
	struct mesh_flow_key flow;
	const struct mesh_pod *pod;
	enum mesh_reason reason;
	struct bpf_sock *sk;
	__u64 cookie = mesh_netns_cookie;

	/* sk_lookup also runs for every unconnected UDP datagram; counting
	 * those would drown the per-connection counters.
	 */
	if (!req.is_tcp)
		return SK_PASS;
	pod = bpf_map_lookup_elem(&mesh_pods, &cookie);
	if (!pod || !pod->inbound_port) {
		mesh_count(MESH_R_IN_OFF);
		return SK_PASS;
	}
	req.family = ctx->family == MESH_AF_INET6 ? MESH_AF_INET6 : MESH_AF_INET;
	if (req.family == MESH_AF_INET) {
		req.remote.addr[0] = MESH_LOAD_U32(ctx, remote_ip4);
		req.local.addr[0] = MESH_LOAD_U32(ctx, local_ip4);
	} else {
		MESH_LOAD_IP6(&req.remote, ctx, remote_ip6);
		MESH_LOAD_IP6(&req.local, ctx, local_ip6);
	}
	mesh_flow_key_set(&flow, cookie, req.family, &req.remote,
			  bpf_ntohs(MESH_LOAD_U16(ctx, remote_port)), &req.local, req.local_port);
	req.is_agent = bpf_map_lookup_elem(&mesh_in_agent, &flow) != NULL;
	req.fails_open = mesh_pod_fails_open(pod);
	reason = mesh_decide_inbound(&req, pod);
	if (reason != MESH_R_IN_CAPTURED) {
		mesh_count(reason);
		return SK_PASS;
	}
	key.netns_cookie = cookie;
	key.family = req.family;
	sk = bpf_map_lookup_elem(&mesh_inbound, &key);
	if (!sk) {
		mesh_count(MESH_R_IN_NO_LISTENER);
		return SK_DROP;
	}
	/* Flags 0: the kernel then runs SO_REUSEPORT selection on the group
	 * of the assigned listener, so a group of per-worker listeners shares
	 * the connections as if the kernel had found them itself.
	 */
	if (bpf_sk_assign(ctx, sk, 0))
		reason = MESH_R_IN_ASSIGN_FAIL;
	bpf_sk_release(sk);
	mesh_count(reason);
	return reason == MESH_R_IN_CAPTURED ? SK_PASS : SK_DROP;
}
