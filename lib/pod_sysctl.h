/* SPDX-License-Identifier: GPL-2.0-only */
/* The sysctls of a meshed pod's netns that weft's inbound return path needs
 * (agent/datapath/retpath.h), each set to 1: one table for the CNI plugin,
 * which sets them at ADD, and the agent, which sets or reads them back.
 *  - tcp_fwmark_accept: the application's accepted socket and its SYN-ACK
 *    take the mark of the agent's SYN (it covers IPv6 too);
 *  - fwmark_reflect (IPv4, IPv6): the replies the kernel makes for no socket
 *    (the RST of a closed port, ICMP errors) take the mark of what they
 *    answer, so the agent's connect to a port nothing listens on is refused
 *    at once instead of the RST leaving toward the real client.
 * Each changes only what happens to marked packets, which nothing in a pod
 * makes but the agent's inbound side.
 */
#ifndef WEFT_POD_SYSCTL_H
#define WEFT_POD_SYSCTL_H

#include <stdbool.h>

enum pod_sysctl_index {
	POD_SYSCTL_FWMARK_ACCEPT,
	POD_SYSCTL_REFLECT4,
	POD_SYSCTL_REFLECT6,
	POD_SYSCTLS,
};

struct pod_sysctl {
	const char *path;	/* under /proc/sys, resolved in the opener's netns */
	bool optional;		/* absent without IPv6 */
};

extern const struct pod_sysctl pod_sysctls[POD_SYSCTLS];

#endif /* WEFT_POD_SYSCTL_H */
