// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/fabric.h, on iproute2 as topo.c. */
#include "fabric.h"
#include "tns.h"

int tfabric_setup(void)
{
	char f[64];

	tns_name(FABRIC_NS, f, sizeof(f));
	if (tns_add(FABRIC_NS))
		return -1;
	/* No STP: the ports forward at once (a new port would otherwise
	 * listen and learn for the forward delay first).
	 */
	return tns_sh("ip -n %s link add " FABRIC_BRIDGE " type bridge stp_state 0 && "
		      "ip -n %s link set " FABRIC_BRIDGE " up",
		      f, f)
		       ? -1
		       : 0;
}

int tfabric_attach(const char *pod, const char *ip)
{
	char n[64], f[64];

	tns_name(pod, n, sizeof(n));
	tns_name(FABRIC_NS, f, sizeof(f));
	if (tns_add(pod) || tns_link(pod, FABRIC_NS))
		return -1;
	return tns_sh("ip -n %s link set " FABRIC_NS "-%s master " FABRIC_BRIDGE " && "
		      "ip -n %s addr add %s/24 dev %s-" FABRIC_NS " && "
		      "ip -n %s route add 198.19.0.0/16 dev %s-" FABRIC_NS,
		      f, pod, n, ip, pod, n, pod)
		       ? -1
		       : 0;
}

void tfabric_teardown(void)
{
	tns_del_all();
}
