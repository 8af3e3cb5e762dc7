/* SPDX-License-Identifier: GPL-2.0-only */
/* The datapath: loads weft's BPF programs from their skeletons, attaches them
 * to a cgroup with bpf_links, pins maps and links under a bpffs folder, and
 * keeps the pods map. The only part of the agent that includes libbpf; it
 * exports typed verbs, never fds or map pointers.
 */
#ifndef WEFT_DP_H
#define WEFT_DP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define DP_MAX_EXCL_PORTS 8	/* == MESH_MAX_EXCL_PORTS in bpf/abi.h */
#define DP_MAX_EXCL_CIDRS 8	/* == MESH_MAX_EXCL_CIDRS */

struct dp;

struct dp_opts {
	const char *cgroup_path;	/* cgroup v2 dir the programs attach to */
	const char *bpffs_dir;		/* pin folder; must be on a bpffs mount */
	uint32_t mark;			/* SO_MARK of the agent's upstream sockets (routing
					 * only; shown, never trusted) */
	uint32_t inbound_mark;		/* SO_MARK of its sockets toward applications, which
					 * sockops records for sk_lookup; 0 = none */
	/* The agent's own cgroup v2 (cgroup_self_id(), agent/cgroup.h): sockets of tasks in it
	 * or below it are the agent's and are never redirected. It must lie
	 * below cgroup_path, not be it, and hold no pod's processes.
	 */
	uint64_t agent_cgroup_id;	/* its folder's inode */
	uint32_t agent_cgroup_level;	/* its depth below the cgroup v2 root, >= 1 */
	/* max_entries of every map filled per pod or per connection (mesh_pods,
	 * mesh_inbound, mesh_orig_dst, mesh_in_agent); 0 = abi.h's. For tests
	 * of churn at many times a map's capacity; the agent never sets it.
	 */
	uint32_t map_capacity;
};

struct dp_cidr {
	struct addr net;		/* port ignored */
	unsigned int prefix_len;
};

/* What the datapath knows of one enrolled pod. */
struct dp_pod {
	uint32_t pod_id;
	uint16_t proxy_port;		/* in-pod listener port (15001) */
	bool capture;			/* redirect this pod's outbound TCP */
	uint16_t excl_ports[DP_MAX_EXCL_PORTS];	/* destination ports left alone; 0 = unused */
	struct dp_cidr excl_cidrs[DP_MAX_EXCL_CIDRS];	/* destinations left alone; prefix_len
							 * 0 with family 0 = unused */
	uint16_t inbound_port;		/* in-pod inbound listener (15006); 0: no capture */
	uint16_t excl_in_ports[DP_MAX_EXCL_PORTS];	/* local ports left alone; 0 = unused */
	bool deny_raw;			/* refuse raw IP sockets in the pod (sock_create) */
	bool fail_open;			/* capture nothing while the heartbeat is stale */
	uint16_t dns_port;		/* the in-pod DNS responder; 0: DNS not captured */
};

/* Check that the running kernel has what the eBPF mode needs (every feature
 * dp_probe_features() lists, then loading the real programs). Returns 0, or
 * -EOPNOTSUPP with a one-line human explanation (naming the first missing
 * feature and the kernel version that has it) in @why, or -EPERM (with @why)
 * when the caller may not load BPF programs at all. The environment variable
 * WEFT_PROBE_HIDE (comma-separated feature names, or "ebpf" for all) makes
 * those features count as missing, so tests can exercise the fallback.
 * Blocks for the few milliseconds the loads take.
 */
int dp_probe(char *why, size_t why_len);

/* dp_probe() but for its last check, loading the programs, which the caller
 * does right after with dp_load() (the programs as they will run, loaded
 * once): the same returns and reasons.
 */
int dp_probe_kernel(char *why, size_t why_len);

/* dp_probe()'s reason when the kernel refuses the programs, @err being the
 * load's -errno, into @why. Returns -EOPNOTSUPP.
 */
int dp_probe_refused(int err, char *why, size_t why_len);

/* One thing the eBPF mode needs from the kernel. */
struct dp_feature {
	const char *name;	/* short, stable: "prog_sk_lookup"; WEFT_PROBE_HIDE uses it */
	const char *what;	/* what it is for, one line */
	const char *min_kernel;	/* "5.9" */
	bool present;		/* false also when hidden by WEFT_PROBE_HIDE */
	bool hidden;		/* reported missing because WEFT_PROBE_HIDE names it */
};

/* Probe every feature the eBPF mode needs, in check order, into
 * @out[0..@n). Returns the total number of features (which may exceed @n:
 * call with n 0 to size), or -errno. Static strings; nothing to free. Without
 * the privilege to load programs every feature but the first ones reads as
 * missing.
 */
int dp_probe_features(struct dp_feature *out, size_t n);

/* Load the programs, reuse maps already pinned under bpffs_dir (a restarted
 * agent keeps the pods map and the recorded destinations), attach to the cgroup
 * or atomically replace the programs of links already pinned there, and pin
 * everything. Returns 0 and sets *@out, or -errno (logged once, naming the step).
 */
int dp_open(struct dp **out, const struct dp_opts *opts);

/* dp_open() in two steps, for a caller that must know whether the kernel
 * takes weft's programs before it commits to the eBPF mode (the agent's
 * --mode auto): dp_load() prepares opts->bpffs_dir and loads mesh_redirect
 * as dp_open() does (maps pinned there reused or migrated), attaching
 * nothing; dp_attach() then checks the agent's cgroup, writes the
 * configuration and attaches. dp_load() returns 0 with *@out set, or
 * -errno: logged, except when the kernel refused the programs (the verifier
 * log is at debug level), which sets *@refused (may be NULL) and is the
 * caller's to report. dp_attach() returns 0 or -errno (logged); either way
 * @dp stays the caller's to dp_close().
 */
int dp_load(struct dp **out, const struct dp_opts *opts, bool *refused);
int dp_attach(struct dp *dp, const struct dp_opts *opts);

/* Load an instance of the per-pod program (mesh_inbound) on @dp's maps and
 * drop it, attaching nothing: whether the kernel takes it, checked before
 * the first pod needs it. 0 or -errno (the kernel's refusal; the verifier
 * log is at debug level).
 */
int dp_inbound_try(struct dp *dp);

/* Free the in-memory state; pins and links stay, so traffic of enrolled pods
 * keeps being redirected (and refused while no agent listens). Accepts NULL.
 */
void dp_close(struct dp *dp);

/* Detach every link and remove every pin weft made under opts->bpffs_dir
 * (and the folder itself when empty). Missing pieces are not errors. 0 or -errno.
 */
int dp_cleanup(const struct dp_opts *opts);

/* Insert or replace the pod keyed by its netns cookie. 0 or -errno (-EINVAL:
 * capture without a proxy port, inbound_port == proxy_port, a bad CIDR).
 */
int dp_pod_upsert(struct dp *dp, uint64_t netns_cookie, const struct dp_pod *pod);

/* The IPv4 resolver (network order) whose queries the programs send to
 * 127.53.X.Y, @slot being X.Y (abi.h, MESH_DNS_NET): 0 with *@out set,
 * -ENOENT when the slot holds none, or -errno.
 */
int dp_dns_resolver(struct dp *dp, uint32_t slot, uint32_t *out);

struct in6_addr;

/* The same for an IPv6 resolver, whose queries go to 127.54.X.Y (abi.h,
 * MESH_DNS_NET6; mesh_dns_up6). 0 with *@out set, -ENOENT, or -errno.
 */
int dp_dns_resolver6(struct dp *dp, uint32_t slot, struct in6_addr *out);

/* Remove the pod; a missing pod is not an error. 0 or -errno. */
int dp_pod_del(struct dp *dp, uint64_t netns_cookie);

typedef int (*dp_pod_fn)(uint64_t netns_cookie, const struct dp_pod *pod, void *ctx);

/* Call @fn for every pod in the map; a non-zero return stops the walk and is
 * returned. Otherwise 0, or -errno.
 */
int dp_pod_for_each(struct dp *dp, dp_pod_fn fn, void *ctx);

/* Sum the per-CPU decision counters into @out[0..@n), indexed by enum
 * mesh_reason; returns the number of counters filled (min(@n, MESH_R_MAX)) or -errno.
 */
int dp_counters(struct dp *dp, uint64_t *out, size_t n);

/* Name of counter @i ("redirected", "loopback", ...), or NULL past the end. */
const char *dp_counter_name(size_t i);

/* How full one map that the datapath fills per pod or per connection is. */
struct dp_map_use {
	const char *map;	/* "mesh_pods", "mesh_orig_dst", ...: static */
	uint32_t entries;	/* keys present when counted */
	uint32_t capacity;	/* its max_entries */
	bool lru;		/* full, it evicts its oldest entry instead of refusing */
};

/* The occupancy of every map filled per pod or per connection (mesh_pods,
 * mesh_inbound, mesh_orig_dst, mesh_in_agent; not mesh_sk_dst, which lives
 * in the sockets themselves and has no count or bound) into @out[0..@n).
 * Counts key by key, as the kernel keeps no count of a hash map: at most
 * the sum of the capacities in system calls (about 150,000, tens of
 * milliseconds), for a scrape. Returns the number filled, or -errno.
 */
int dp_map_usage(struct dp *dp, struct dp_map_use *out, size_t n);

/* Write the agent's heartbeat: now (CLOCK_MONOTONIC, the clock of
 * bpf_ktime_get_ns()) and @stale_after_ns, past which fail-open pods are
 * not captured. Called about every second by the agent that serves the
 * pods. One map update; 0 or -errno.
 */
int dp_heartbeat(struct dp *dp, uint64_t stale_after_ns);

/* The heartbeat as the programs see it. */
struct dp_heartbeat_state {
	uint64_t age_ns;		/* since the last beat; 0 when never beat */
	uint64_t stale_after_ns;	/* its threshold; 0 = never stale */
	bool beat;			/* a beat was ever written */
	bool stale;			/* the programs' own test (bpf/lib/heartbeat.h) */
};

/* ---- inspection (admin API, metrics): read-only */

/* Read the heartbeat and judge it now, as the programs would. 0 or -errno. */
int dp_heartbeat_read(struct dp *dp, struct dp_heartbeat_state *out);

/* The entry of netns @netns_cookie in mesh_pods, as the kernel holds it.
 * 0, -ENOENT when there is none, or -errno.
 */
int dp_pod_lookup(struct dp *dp, uint64_t netns_cookie, struct dp_pod *out);

/* The index of the "redirected" counter: the one decision that captures. */
#define DP_REASON_REDIRECTED 0

/* What connect4/6 would decide for a connect() in a netns, computed by the
 * programs' own decision function (bpf/lib/decide.h) over the entries the
 * kernel holds now (mesh_pods, mesh_config), so it cannot drift from them.
 */
struct dp_explain {
	bool enrolled;		/* the netns cookie has an entry in mesh_pods */
	struct dp_pod pod;	/* that entry, when enrolled */
	uint64_t agent_cgroup_id;	/* mesh_config's: the agent's sockets are its */
	uint32_t agent_cgroup_level;
	bool heartbeat_stale;	/* the agent's heartbeat is stale (fail-open pods bypass) */
	size_t reason;		/* enum mesh_reason: name with dp_counter_name() */
};

/* Explain a TCP connect() to @dst from netns @netns_cookie by one of the
 * pod's applications (a task outside the agent's cgroup, whatever SO_MARK it
 * sets). 0 or -errno (a map could not be read).
 */
int dp_explain_connect(struct dp *dp, uint64_t netns_cookie, const struct addr *dst,
		       struct dp_explain *out);

/* The same decision over @pod as given (NULL: not enrolled), without the
 * maps: what nft mode's rules encode, for the admin API's trace;
 * @heartbeat_stale says whether the agent's heartbeat counts as stale.
 */
void dp_explain_entry(const struct dp_pod *pod, const struct addr *dst, bool heartbeat_stale,
		      struct dp_explain *out);

/* One program's pinned link, as the kernel reports it. */
struct dp_link_status {
	char prog[32];		/* program name ("mesh_connect4") */
	bool attached;		/* the link holds a live cgroup */
	uint32_t link_id;
	uint32_t prog_id;	/* 0 when the kernel could not say */
	uint64_t cgroup_id;	/* 0 once the cgroup is gone */
};

/* Fill @out[0..@n) with the status of every program's link, in attach order.
 * Returns the count filled.
 */
size_t dp_links(struct dp *dp, struct dp_link_status *out, size_t n);

/* ---- inbound capture (sk_lookup, one program instance per pod netns) */

/* Attach (or adopt the pinned link of) the sk_lookup program to netns
 * @netns_fd, whose cookie is @netns_cookie, and point the pod's entries of the
 * listener map at @lfd4 / @lfd6 (-1: none of that family; an IPv6 listener
 * must be IPV6_V6ONLY, either may be one member of a SO_REUSEPORT group). The
 * link is pinned at <bpffs_dir>/inbound/<cookie as 16 hex digits>, so it
 * survives the agent. Idempotent: a restarted agent calls it again with its
 * new listeners and keeps the link (same id, the program swapped atomically).
 * The pod's mesh_pods entry (inbound_port) decides what is captured; the fds
 * are borrowed. 0 or -errno (-EEXIST: the pin belongs to another netns).
 * Blocks for one program load.
 */
int dp_inbound_attach(struct dp *dp, int netns_fd, uint64_t netns_cookie, int lfd4, int lfd6);

/* Detach and unpin the pod's sk_lookup link and drop its listener entries;
 * missing pieces are fine. 0 or -errno.
 */
int dp_inbound_detach(struct dp *dp, uint64_t netns_cookie);

/* Whether the pod's link is pinned and attached (its netns alive), and how
 * many listener entries (0..2) it has (for CNI CHECK and meshctl). 0 or -errno.
 */
int dp_inbound_state(struct dp *dp, uint64_t netns_cookie, bool *attached,
		     unsigned int *n_listeners);

#endif /* WEFT_DP_H */
