// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The opaque-TCP fast path: a stream verdict program attached to the
 * SOCKHASH mesh_fp_socks. Every skb arriving on a socket of that map is
 * handed to the socket its mesh_fp_peers entry names, to be sent from there
 * (bpf_sk_redirect_hash() to egress), and its length added to the pair's
 * slot in mesh_fp_bytes, so the bytes never cross into user space and the
 * proxy still counts them. Skeleton mesh_fastpath, loaded by
 * agent/datapath/fastpath.c in both capture modes: it attaches to a map,
 * never to a cgroup. Its maps are pinned under the agent's bpffs folder
 * (fastpath/) so that a successor takes over the sockets of connections
 * handed to it without them leaving the map (leaving drops what the kernel
 * still queued for a socket).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The sockets on the fast path, keyed by socket cookie. A socket leaves by
 * itself when it is closed.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, MESH_MAX_FP_SOCKS);
	__type(key, __u64);
	__type(value, __u64);
} mesh_fp_socks SEC(".maps");

/* Socket cookie → its peer and counter slot, written by the agent before the
 * socket enters mesh_fp_socks and deleted when the connection closes. A
 * plain hash, not an LRU: an evicted entry would leave a live socket's
 * bytes passed up to a proxy that no longer reads them. Full, the agent's
 * next add fails and that connection is spliced instead.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MESH_MAX_FP_SOCKS);
	__type(key, __u64);
	__type(value, struct mesh_fp_peer);
} mesh_fp_peers SEC(".maps");

/* Bytes redirected per slot and direction; mapped by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, MESH_FP_SLOTS);
	__type(key, __u32);
	__type(value, struct mesh_fp_bytes);
} mesh_fp_bytes SEC(".maps");

/* Fails open to user space: an skb whose socket has no peer entry, or whose
 * peer is not in the map any more (closed), is passed to the socket's own
 * receive queue, where the proxy reads it like any other byte and relays or
 * drops it as the connection's state says. No byte is ever dropped here;
 * only the empty skb of a FIN is (below).
 */
SEC("sk_skb/stream_verdict")
int mesh_fp_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct mesh_fp_peer *peer;
	struct mesh_fp_bytes *ctr;
	__u32 slot, len = skb->len;

	/* A FIN with no data comes here as an empty skb, and is dropped.
	 * Redirected, the peer's sender would write zero bytes. Passed, it is
	 * queued behind the bytes redirected to this socket that wait to be
	 * sent (their queue is the same, psock->ingress_skb), and when the
	 * kernel's sender reaches it, its zero bytes are taken for a broken
	 * pipe too: sk_psock_backlog() (Linux 6.18) fails this socket with
	 * EPIPE and stops sending, and every byte redirected to it later is
	 * dropped. The FIN itself needs no skb: TCP has marked the socket
	 * shut for reading, so the proxy still reads EOF.
	 */
	if (!len)
		return SK_DROP;
	peer = bpf_map_lookup_elem(&mesh_fp_peers, &cookie);
	if (!peer)
		return SK_PASS;
	slot = peer->slot;
	if (bpf_sk_redirect_hash(skb, &mesh_fp_socks, &peer->peer_cookie, 0) != SK_PASS)
		return SK_PASS;
	ctr = bpf_map_lookup_elem(&mesh_fp_bytes, &slot);
	if (ctr)
		__sync_fetch_and_add(&ctr->bytes[peer->dir & 1], len);
	return SK_PASS;
}
