/* SPDX-License-Identifier: GPL-2.0-only */
/* nft capture mode: weft's own nftables table, `inet weft`, inside a pod's
 * netns, programmed over netlink (libmnl + libnftnl; never by running `nft`).
 * Owns the table layout (an output chain redirecting the pod's TCP to the
 * outbound listener unless the socket belongs to the agent's cgroup, a
 * prerouting chain redirecting TCP arriving on the pod's interfaces to the
 * inbound listener; with DNS capture, rules ahead of those sending UDP and
 * TCP port 53, IPv4 and IPv6, to the DNS responder), its atomic apply and removal, its
 * read-back, the conntrack lookup that names a redirected query's resolver
 * (nft_ct.c), and the probe of whether this kernel can run it.
 * docs/datapath.md, "nft mode".
 */
#ifndef WEFT_NFT_H
#define WEFT_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define NFT_TABLE_NAME "weft"		/* family inet */
#define NFT_CHAIN_OUTPUT "output"	/* type nat hook output */
#define NFT_CHAIN_PREROUTING "prerouting"	/* type nat hook prerouting */
#define NFT_CHAIN_PRIO (-100)		/* NF_IP_PRI_NAT_DST: where DNAT runs */
/* Fail-open pods' heartbeat: a set holding the one element `tcp` with a
 * timeout the agent keeps refreshing; each chain's last rule before the
 * redirect returns TCP that is not in it (docs/datapath.md, "Fail-open").
 */
#define NFT_ALIVE_SET "agent_alive"
#define NFT_DNS_PORT 53
#define NFT_EXCL_PORTS_MAX 16
#define NFT_EXCL_CIDRS_MAX 16

/* What one pod's table says. Ports in host byte order. */
struct nft_pod_rules {
	uint16_t outbound_port;		/* in-pod outbound listener (15001) */
	uint16_t inbound_port;		/* in-pod inbound listener (15006); 0: no
					 * prerouting chain */
	uint64_t agent_cgroup_id;	/* cgroup v2 id of the agent (its dir's inode) */
	uint32_t agent_cgroup_level;	/* its depth below the cgroup v2 root, >= 1 */
	uint16_t excl_out_ports[NFT_EXCL_PORTS_MAX];	/* destination ports left alone */
	size_t n_excl_out_ports;
	struct cidr excl_out_cidrs[NFT_EXCL_CIDRS_MAX];	/* destinations left alone, v4 or v6 */
	size_t n_excl_out_cidrs;
	uint16_t excl_in_ports[NFT_EXCL_PORTS_MAX];	/* inbound ports left alone */
	size_t n_excl_in_ports;
	/* weft.io/fail-open: the set NFT_ALIVE_SET and, in each chain, a rule
	 * that lets TCP go uncaptured once its element has expired.
	 */
	bool fail_open;
	uint32_t fail_open_after_ms;	/* the element's timeout at apply; not read back */
	/* DNS capture: UDP and TCP to port 53 (IPv4 and IPv6), not from the
	 * agent's cgroup, redirected to this port (the in-pod responder on
	 * 127.0.0.1 or ::1); 0: none.
	 */
	uint16_t dns_port;
};

/* One base chain as the kernel reports it. */
struct nft_chain_state {
	bool present;
	char type[16];			/* "nat" */
	uint32_t hooknum;		/* NF_INET_LOCAL_OUT, NF_INET_PRE_ROUTING */
	int32_t prio;
	uint32_t n_rules;
};

/* What nft_pod_read() found in a netns: the table and, decoded from its
 * rules, the parameters of nft_pod_rules they carry. A table this module did
 * not write decodes to whatever of it it recognises.
 */
struct nft_pod_state {
	bool table_present;
	uint32_t n_chains;		/* every chain of the table, base or not */
	struct nft_chain_state output, prerouting;
	struct nft_pod_rules rules;
	/* Connections the fail-open rules let go uncaptured (their counters),
	 * outbound and inbound, since the table was last written.
	 */
	uint64_t failed_open_out, failed_open_in;
	/* DNS rules that match IPv4 only, as tables written before IPv6
	 * queries were captured did: never what nft_pod_apply() writes now.
	 */
	bool dns_v4_only;
};

/* Make table inet weft in the netns @netns_fd say exactly @r. When it
 * already does (read back and compared: chains, hooks, priorities, rule
 * counts, every parameter), nothing is sent and the rules keep their handles
 * and counters. Otherwise one atomic netlink batch creates the table if
 * missing, deletes it and creates it again with its chains and rules: no
 * moment without rules, nothing left of an earlier layout or a hand-made
 * change. Every other table of the netns is untouched. The calling thread
 * enters the netns only to open the netlink socket.
 * Returns 1 (written), 0 (already in place), -EINVAL (@r is malformed: level
 * 0, port 0, bad CIDR, too many items), or -errno from the kernel
 * (-EOPNOTSUPP/-ENOENT: an expression or chain type is missing).
 */
int nft_pod_apply(int netns_fd, const struct nft_pod_rules *r);

/* Delete table inet weft from the netns @netns_fd and nothing else. A missing
 * table is not an error. 0 or -errno.
 */
int nft_pod_remove(int netns_fd);

/* Read table inet weft of the netns @netns_fd back over netlink into @out
 * (zeroed first; table_present false when there is none). 0 or -errno.
 */
int nft_pod_read(int netns_fd, struct nft_pod_state *out);

/* Whether the table read back as @st is exactly what nft_pod_apply(@r)
 * writes: the chains with their hooks, types and priorities, as many rules as
 * it writes, and every parameter decoded from them. A rule added by hand
 * changes a count; a rule changed by hand changes what it decodes to.
 */
bool nft_pod_state_matches(const struct nft_pod_state *st, const struct nft_pod_rules *r);

/* The heartbeat of a fail-open pod's table: replace the element of
 * NFT_ALIVE_SET by one that expires in @timeout_ms, in one transaction (a
 * flush of the set and an add: the set is never seen empty, and an element
 * already expired is replaced as well). -ENOENT when the table has no such
 * set (the pod is not fail-open). 0 or -errno.
 */
int nft_pod_heartbeat(int netns_fd, uint32_t timeout_ms);

/* Whether the element of NFT_ALIVE_SET in @netns_fd is present (the
 * heartbeat is fresh), and in how many ms it expires. -ENOENT: no such set.
 * 0 or -errno.
 */
int nft_pod_alive(int netns_fd, bool *alive, uint64_t *expires_ms);

/* Whether this kernel runs the nft mode: builds the full table (nat chains,
 * socket cgroupv2, redirect, payload and meta matches) in a throwaway netns,
 * reads it back, and lets the netns go. 0, or -errno with one line naming
 * what is missing in @why.
 */
int nft_probe(char *why, size_t len);

struct sockaddr;
struct sockaddr_storage;

/* A NETLINK_NETFILTER socket made in the netns @netns_fd for
 * nft_ct_orig_dst(); the caller closes it. The fd or -errno.
 */
int nft_ct_open(int netns_fd);

/* The original destination (the resolver and port asked) of the connection
 * of protocol @proto (IPPROTO_UDP) whose reply runs from @local (the
 * responder's address and port, as the redirect made them) to @peer (the
 * client), from conntrack through @ct_fd. @local and @peer are both a
 * struct sockaddr_in or both a struct sockaddr_in6 (else -EAFNOSUPPORT);
 * *@out is of the same family. 0 with *@out set, -ENOENT when conntrack has
 * no such entry, or -errno. Blocks for one netlink round trip (at most
 * 200 ms).
 */
int nft_ct_orig_dst(int ct_fd, uint8_t proto, const struct sockaddr *local,
		    const struct sockaddr *peer, struct sockaddr_storage *out);

#endif /* WEFT_NFT_H */
