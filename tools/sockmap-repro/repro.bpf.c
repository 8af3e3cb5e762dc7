// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The minimal sk_skb redirect of the reproducer: every non-empty skb on a
 * socket of socks goes to the egress of the socket peers names.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} peers SEC(".maps");

/* 0: redirect count, 1: bytes, 2: failed redirects (passed up) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static void bump(__u32 k, __u64 v)
{
	__u64 *p = bpf_map_lookup_elem(&stats, &k);

	if (p)
		__sync_fetch_and_add(p, v);
}

SEC("sk_skb/stream_parser")
int repro_parser(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int repro_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	__u64 *peer;
	__u32 len = skb->len;

	/* An empty skb is a FIN without data. */
	if (!len)
		return REPRO_EMPTY;
	peer = bpf_map_lookup_elem(&peers, &cookie);
	if (!peer)
		return SK_PASS;
	if (bpf_sk_redirect_hash(skb, &socks, peer, REPRO_FLAGS) != SK_PASS) {
		bump(2, 1);
		return SK_PASS;
	}
	bump(0, 1);
	bump(1, len);
	return SK_PASS;
}
