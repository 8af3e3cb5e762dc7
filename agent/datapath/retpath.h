/* SPDX-License-Identifier: GPL-2.0-only */
/* The inbound return path of one pod netns: the policy-routing rules, the
 * local default routes and the tcp_fwmark_accept sysctl that bring an
 * application's replies to a client back to the agent's transparent socket
 * instead of out of the pod's interface. Programmed over rtnetlink (libmnl;
 * never by running `ip`), the sysctl through /proc/sys of the pod's netns.
 * docs/datapath.md, "Inbound return path".
 */
#ifndef WEFT_RETPATH_H
#define WEFT_RETPATH_H

#include <stdbool.h>
#include <stdint.h>

/* Where the rule sits among the netns's rules. It must come after the
 * `local` rule (0), so traffic to the pod's own addresses, the agent's marked
 * SYN to the application included, is still delivered by the local table,
 * and before `main` (32766), whose route to the client (out of eth0) is
 * exactly what the marked replies must not take. 32000 leaves the numbers
 * just below main (32765 down, where tools such as Istio's CNI put theirs)
 * free and stays clear of the low numbers routing daemons and CNIs use.
 */
#define RETPATH_PRIORITY_DEFAULT 32000

/* One netns's return path. Every socket carrying @mark is routed to local
 * delivery whatever its destination, so @mark must be used for nothing else
 * in the pod.
 */
struct retpath {
	uint32_t mark;		/* the inbound mark (SO_MARK of the agent's sockets
				 * to the application); not 0 */
	uint32_t table;		/* routing table for the local default routes;
				 * 1..251 or above 255 (not main, local, default) */
	uint32_t priority;	/* rule preference, 1..32765 (before main) */
};

/* What retpath_read() found. */
struct retpath_state {
	bool rule4, rule6;	/* fwmark @mark (mask ~0) lookup @table, pref @priority */
	bool route4, route6;	/* local 0.0.0.0/0 (::/0) dev lo in @table */
	int fwmark_accept;	/* net.ipv4.tcp_fwmark_accept: 0 or 1 */
	int fwmark_reflect4;	/* net.ipv4.fwmark_reflect: 0 or 1 */
	int fwmark_reflect6;	/* net.ipv6.fwmark_reflect: 0, 1, or -1 without IPv6 */
};

/* Make the pod netns @netns_fd route sockets marked r->mark back locally:
 * the rules for IPv4 and IPv6, the local default routes for both in
 * r->table, net.ipv4.tcp_fwmark_accept=1 (it covers IPv6 too), so the
 * application's accepted socket, its SYN-ACK included, carries the mark of
 * the agent's SYN, and net.ipv{4,6}.fwmark_reflect=1, so does the RST of a
 * port nothing listens on (the agent's connect is refused at once). Reads first and adds only what is missing: applying twice
 * changes nothing and never duplicates a rule. A netns without IPv6 (disabled
 * by sysctl or at boot) gets the IPv4 half and succeeds.
 * *@sysctls_before gets the sysctls' values before (one bit each, opaque to
 * the caller), for retpath_remove(). The calling thread enters the netns only to open the
 * netlink socket and the sysctl file, and blocks at most a few seconds on a
 * kernel that does not answer. 0, -EINVAL (@r out of the bounds above) or
 * -errno; a failure is logged once at error level naming the step.
 */
int retpath_apply(int netns_fd, const struct retpath *r, int *sysctls_before);

/* Remove exactly what retpath_apply(@r) adds: the rules with this mark, mask,
 * table and priority (every copy), the local default routes via lo in
 * r->table, and restore the sysctls to @sysctls_before (-1: leave them). Every other rule and route of the netns is untouched, except that the
 * kernel's rule delete takes selectors it is not given as wildcards: a rule
 * with this mark, table and priority that also matches, say, an interface
 * goes too. Missing pieces are not errors. 0, -EINVAL or -errno, logged as
 * retpath_apply() does.
 */
int retpath_remove(int netns_fd, const struct retpath *r, int sysctls_before);

/* Read the return path of @r in @netns_fd back over netlink and /proc/sys
 * into @out (zeroed first; IPv6 pieces false where the netns has no IPv6).
 * 0 or -errno.
 */
int retpath_read(int netns_fd, const struct retpath *r, struct retpath_state *out);

#endif /* WEFT_RETPATH_H */
