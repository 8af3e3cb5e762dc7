/* SPDX-License-Identifier: GPL-2.0-only */
/* The node's capture mode and what it does to one pod: the seam between the
 * pods table and the two ways weft steers a pod's TCP to the in-pod
 * listeners. eBPF mode (dp.h): cgroup programs for outbound, an sk_lookup
 * program per pod netns for inbound. nft mode (nft.h): table inet weft in
 * each pod netns, REDIRECT in output and prerouting. Both add the inbound
 * return path (retpath.h) so the application sees the real client as its
 * peer. Both also send the pod's DNS queries to the agent's in-pod responder
 * and tell it which resolver each was for (docs/dns.md, "Capture"). The mode
 * is chosen once per agent start (--mode), by probing the kernel;
 * docs/datapath.md, "Capture modes".
 */
#ifndef WEFT_CAPTURE_H
#define WEFT_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define CAPTURE_EXCL_PORTS_MAX 8	/* the smaller of the two modes' bounds */
#define CAPTURE_EXCL_CIDRS_MAX 8
/* Preference of the return path's rule: after the local table (0), before
 * main (32766), clear of the priorities CNI plugins and operators commonly use.
 */
#define CAPTURE_RETURN_PRIORITY 32000

enum capture_mode {
	CAPTURE_EBPF,
	CAPTURE_NFT,
	CAPTURE_MODES,
};

struct dp;

struct capture_opts {
	const char *mode;		/* "auto", "ebpf" or "nft" */
	const char *cgroup_path;	/* eBPF: the cgroup the programs attach to */
	const char *bpffs_dir;		/* eBPF: where maps and links are pinned */
	uint32_t mark;			/* the agent's outbound sockets */
	uint32_t inbound_mark;		/* the agent's sockets to applications */
	uint32_t return_table;		/* routing table of the inbound return path */
	uint32_t return_priority;	/* preference of its rule */
	/* --fail-open-after: a fail-open pod is not captured once the agent's
	 * heartbeat is this old. 0: no pod fails open.
	 */
	uint32_t fail_open_after_ms;
};

/* What one meshed pod's capture says, in either mode. Ports in host order. */
struct capture_pod {
	uint32_t pod_id;
	uint16_t outbound_port;		/* in-pod outbound listener (15001) */
	uint16_t inbound_port;		/* in-pod inbound listener (15006); 0: none */
	uint16_t excl_out_ports[CAPTURE_EXCL_PORTS_MAX];
	size_t n_excl_out_ports;
	struct cidr excl_out_cidrs[CAPTURE_EXCL_CIDRS_MAX];
	size_t n_excl_out_cidrs;
	uint16_t excl_in_ports[CAPTURE_EXCL_PORTS_MAX];
	size_t n_excl_in_ports;
	/* weft.io/deny-raw-sockets: refuse the pod's raw IP sockets. eBPF mode
	 * only (cgroup/sock_create); nft mode has no hook that could, and
	 * capture_pod_apply() says so in the log.
	 */
	bool deny_raw;
	/* weft.io/fail-open: while the agent's heartbeat is stale, capture
	 * nothing of the pod (both modes). Ignored with fail_open_after_ms 0.
	 */
	bool fail_open;
	/* DNS capture: queries to port 53 go to the in-pod responder on this
	 * port (docs/dns.md, "Capture"); 0: the pod's DNS is left alone.
	 */
	uint16_t dns_port;
};

/* One pod netns as capture needs it. */
struct capture_target {
	int netns_fd;			/* borrowed */
	uint64_t netns_cookie;
	int lfd4, lfd6;			/* the inbound listeners (eBPF mode hands them
					 * to sk_lookup); -1: none */
	/* Enrolled by an earlier agent, maybe in the other mode: what that
	 * mode left in the netns goes first.
	 */
	bool adopted;
};

struct capture;

/* Choose the mode (opts->mode "auto": eBPF when the kernel has every piece
 * it needs, nft otherwise) and open it. On success *@out says which mode and
 * why (capture_why()); on failure @why says what is missing for the mode
 * asked for (or for both, with "auto"). 0 or -errno.
 */
int capture_open(struct capture **out, const struct capture_opts *opts, char *why, size_t len);
/* Free the in-memory state; what pods have in place stays. Accepts NULL. */
void capture_close(struct capture *c);

enum capture_mode capture_mode(const struct capture *c);
const char *capture_mode_name(enum capture_mode m);
/* Why this mode: "asked for with --mode nft", or the probe's finding. */
const char *capture_why(const struct capture *c);
/* The eBPF datapath (counters, links, explain); NULL in nft mode. */
struct dp *capture_dp(const struct capture *c);

/* Put @p in place for the pod @t, or change what is there to say @p.
 * Idempotent; what a previous agent left is adopted, not re-created.
 * *@sysctls_before, when not NULL and the return path was written,
 * gets the pod's sysctls before the return path set them (for
 * capture_pod_remove()).
 * 0 or -errno (logged, naming the step).
 */
int capture_pod_apply(struct capture *c, const struct capture_target *t,
		      const struct capture_pod *p, int *sysctls_before);

/* Remove what capture_pod_apply() added for the pod; inbound first, so no new
 * connection reaches a closing listener. @sysctls_before as apply gave
 * it, or -1 (unknown: the sysctls stay). Missing pieces are fine. 0 or -errno.
 */
int capture_pod_remove(struct capture *c, const struct capture_target *t,
		       int sysctls_before);

/* Whether what the kernel holds for the pod says @p (for CNI CHECK). 0, or
 * -EIO with @msg saying what differs, or -errno when it cannot be read.
 */
int capture_pod_verify(struct capture *c, const struct capture_target *t,
		       const struct capture_pod *p, char *msg, size_t len);

/* The agent's heartbeat, which fail-open pods' capture checks without the
 * agent: eBPF mode, the pinned map mesh_heartbeat (one write); nft mode has
 * one per fail-open pod, capture_pod_heartbeat(). The agent calls both about
 * every second (CAPTURE_HEARTBEAT_MS) while it accepts connections for the
 * pods. 0 or -errno.
 */
#define CAPTURE_HEARTBEAT_MS 1000
int capture_heartbeat(struct capture *c);
/* nft mode, a fail-open pod (@p->fail_open): renew the element of its
 * table's set so that it expires fail_open_after_ms from now. A no-op
 * otherwise. One netlink batch in the pod's netns; 0 or -errno.
 */
int capture_pod_heartbeat(struct capture *c, const struct capture_target *t,
			  const struct capture_pod *p);

/* The heartbeat as the pod's capture sees it now. */
struct capture_beat {
	bool fail_open;		/* the pod fails open (annotation, and not turned off) */
	bool stale;		/* the pod's capture counts the agent as gone */
	uint64_t age_ms;	/* eBPF: since the last beat */
	uint64_t left_ms;	/* until it counts as stale (0 when stale) */
	uint64_t failed_open;	/* nft: connections let through since the table
				 * was written (eBPF mode counts node-wide) */
};

/* Read @p's heartbeat in the kernel (eBPF: the map; nft: the element of the
 * pod's set and its rules' counters). 0 or -errno.
 */
int capture_pod_beat(struct capture *c, const struct capture_target *t,
		     const struct capture_pod *p, struct capture_beat *out);

/* Whether fail-open is on at all (fail_open_after_ms), and the threshold. */
uint32_t capture_fail_open_after_ms(const struct capture *c);

struct sockaddr;
struct sockaddr_storage;

/* What the DNS responder of the pod netns @netns_fd needs to find the
 * resolver of a query (capture_dns_resolver()), in *@ct_fd: nft mode, a
 * conntrack socket made in that netns (the caller closes it); eBPF mode,
 * nothing (-1). 0 or -errno.
 */
int capture_dns_open(struct capture *c, int netns_fd, int *ct_fd);

/* The resolver (address and port, network order) a captured query was sent
 * to, the query having arrived on @fd (a TCP connection, or the UDP socket)
 * at @local from @peer (both struct sockaddr_in, or both struct
 * sockaddr_in6): eBPF mode reads the slot of @local's 127.53.X.Y in
 * mesh_dns_up (127.53.X.Y: an IPv4 resolver, a struct sockaddr_in in *@out)
 * or mesh_dns_up6 (127.54.X.Y: an IPv6 one, a struct sockaddr_in6); nft mode
 * asks conntrack (UDP, through @ct_fd) or the connection's original
 * destination (TCP), of @local's family (127.0.0.1: an IPv4 resolver, ::1:
 * an IPv6 one). 0 with *@out set, or -errno (-ENOENT: not a query capture
 * sent here).
 */
int capture_dns_resolver(struct capture *c, int ct_fd, bool tcp, int fd,
			 const struct sockaddr *local, const struct sockaddr *peer,
			 struct sockaddr_storage *out);

struct dp_explain;

/* What capture would decide for a TCP connect() to @dst by an application
 * of the pod @t whose capture is @p: eBPF mode asks the programs' decision
 * over the maps the kernel holds; nft mode runs the same decision over @p,
 * which is what its rules encode, with the pod's heartbeat read from its
 * set. 0 or -errno.
 */
int capture_explain_connect(struct capture *c, const struct capture_target *t,
			    const struct capture_pod *p, const struct addr *dst,
			    struct dp_explain *out);

/* Call @fn for the netns cookie of every pod the datapath holds state for
 * (eBPF mode: the pods map; nft keeps nothing outside the pods' netns).
 */
int capture_for_each_cookie(struct capture *c, int (*fn)(uint64_t cookie, void *ctx),
			    void *ctx);
/* Drop the eBPF state of a pod no longer enrolled (restart). 0 or -errno. */
int capture_drop_cookie(struct capture *c, uint64_t cookie);

/* weft-agent --cleanup: remove everything capture may have put in the node
 * (eBPF programs, links and pins under opts->bpffs_dir) and in the pod netns
 * @netns_fds[0..@n) (table inet weft, the return path's rules and routes),
 * whichever mode wrote them. Missing pieces are fine. 0 or the first -errno.
 */
int capture_cleanup(const struct capture_opts *opts, const int *netns_fds, size_t n);

/* What a mode needs from the kernel and whether this node has it, for
 * `meshctl check`: one row per feature.
 */
struct capture_need {
	enum capture_mode mode;
	char name[64];
	char what[160];
	bool present;
};

/* Fill @out[0..@n) with the rows of both modes; returns the count. Runs the
 * probes (a throwaway netns for nft): for the admin API, not the hot path.
 */
size_t capture_needs(struct capture_need *out, size_t n);

#endif /* WEFT_CAPTURE_H */
