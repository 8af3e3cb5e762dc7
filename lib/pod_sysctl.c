// SPDX-License-Identifier: GPL-2.0-only
/* The table of lib/pod_sysctl.h. */
#include "pod_sysctl.h"

const struct pod_sysctl pod_sysctls[POD_SYSCTLS] = {
	[POD_SYSCTL_FWMARK_ACCEPT] = { "/proc/sys/net/ipv4/tcp_fwmark_accept", false },
	[POD_SYSCTL_REFLECT4] = { "/proc/sys/net/ipv4/fwmark_reflect", false },
	[POD_SYSCTL_REFLECT6] = { "/proc/sys/net/ipv6/fwmark_reflect", true },
};
