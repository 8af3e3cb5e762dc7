/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every map of weft's datapath, in one place. agent/datapath pins all of them
 * under <bpffs_dir>/maps/<name>, so a restarted agent reuses them and traffic
 * keeps its state; both objects (redirect, inbound) declare all of them and
 * share one instance of each. Keys, values and sizes come from abi.h only.
 */
#ifndef WEFT_BPF_LIB_MAPS_H
#define WEFT_BPF_LIB_MAPS_H

/* Enrolled pods, keyed by the netns cookie of the pod's network namespace. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MESH_MAX_PODS);
	__type(key, __u64);
	__type(value, struct mesh_pod);
} mesh_pods SEC(".maps");

/* One entry (key 0) the agent rewrites at every start. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mesh_config);
} mesh_config SEC(".maps");

/* The agent's heartbeat (key 0), rewritten about every second: fail-open
 * pods are not captured while it is stale.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mesh_heartbeat);
} mesh_heartbeat SEC(".maps");

/* Decision counters indexed by enum mesh_reason, summed by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MESH_R_MAX);
	__type(key, __u32);
	__type(value, __u64);
} mesh_metrics SEC(".maps");

/* The original destination of a redirected socket, from connect() for the
 * socket's life: sockops files it in mesh_orig_dst when the handshake
 * completes, getpeername4/6 answer from it. Socket-local storage dies with
 * the socket, so nothing leaks.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct mesh_orig_dst);
} mesh_sk_dst SEC(".maps");

/* Established redirected connections, keyed by the client end as the proxy's
 * accepted socket sees its peer. LRU: an entry the proxy never asks for (it
 * died, or the client reset first) ages out instead of filling the map.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MESH_MAX_ORIG_DST);
	__type(key, struct mesh_conn_key);
	__type(value, struct mesh_orig_dst);
} mesh_orig_dst SEC(".maps");

/* The agent's in-pod inbound listeners, for sk_lookup to hand connections to.
 * The agent writes listener fds; a lookup from user space returns the socket
 * cookie. A closed listener leaves the map by itself.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, MESH_MAX_LISTENERS);
	__type(key, struct mesh_listener_key);
	__type(value, __u64);
} mesh_inbound SEC(".maps");

/* The agent's own connections to pods' applications (sockets carrying
 * mesh_config.inbound_mark), recorded by sockops before the SYN leaves so
 * sk_lookup does not capture them back to the agent. The SYN is routed over
 * lo but the kernel reports the pod interface as its ingress, so the ifindex
 * alone cannot tell. Looked up once, at the SYN; deleted by sockops when the
 * agent's socket reaches TCP_CLOSE (mesh_record_agent_flow), so a later
 * client on the same source address and port is captured. LRU as well, so
 * a full map evicts the oldest record rather than refuse a new one.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MESH_MAX_IN_AGENT);
	__type(key, struct mesh_flow_key);
	__type(value, __u8);
} mesh_in_agent SEC(".maps");

/* DNS capture: the resolvers pods asked, by slot (the low 16 bits of the
 * 127.53.X.Y address their queries are sent to instead; abi.h). Value: the
 * resolver's IPv4 address, network order. Filled by connect4/sendmsg4 with
 * BPF_NOEXIST, never emptied: a slot keeps its resolver for the map's life,
 * so a reply in flight always maps back. A plain hash, not LRU: evicting a
 * slot in use would hand a pod's answers to the wrong resolver. Full (65536
 * distinct resolvers), queries to a new resolver are left alone.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MESH_MAX_DNS_UP);
	__type(key, __u32);
	__type(value, __u32);
} mesh_dns_up SEC(".maps");

/* The same for IPv6 resolvers (127.54.X.Y, abi.h): slot → address. Filled
 * by connect6 alone, the one hook that can steer a query to an IPv6
 * resolver (docs/dns.md, "IPv6 resolvers").
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MESH_MAX_DNS_UP);
	__type(key, __u32);
	__type(value, struct mesh_addr);
} mesh_dns_up6 SEC(".maps");

#endif /* WEFT_BPF_LIB_MAPS_H */
