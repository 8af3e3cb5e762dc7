// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/topo.h. */
#include <stdio.h>

#include "tns.h"
#include "topo.h"

const char TOPO_REGISTRY[] =
	"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: mesh\n  labels:\n"
	"    weft.io/mesh: enabled\n"
	"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: plain\n"
	"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: mesh\n"
	"spec:\n  clusterIP: 198.19.0.10\n  clusterIPs: [198.19.0.10, \"fd00:198:19::10\"]\n"
	"  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n"
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-v4\n"
	"  namespace: mesh\n  labels:\n    kubernetes.io/service-name: web\naddressType: IPv4\n"
	"endpoints:\n- addresses: [198.18.2.11]\n- addresses: [198.18.2.12]\n"
	"- addresses: [198.18.2.13]\nports:\n- name: http\n  port: 8080\n"
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-v6\n"
	"  namespace: mesh\n  labels:\n    kubernetes.io/service-name: web\naddressType: IPv6\n"
	"endpoints:\n- addresses: [\"fd00:198:2::11\"]\nports:\n- name: http\n  port: 8080\n"
	"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: api\n  namespace: mesh\n"
	"spec:\n  clusterIP: 198.19.0.20\n  ports:\n  - name: http\n    port: 80\n"
	"    targetPort: 8080\n"
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: api-1\n"
	"  namespace: mesh\n  labels:\n    kubernetes.io/service-name: api\naddressType: IPv4\n"
	"endpoints:\n- addresses: [198.18.2.14]\nports:\n- name: http\n  port: 8080\n";

static int pod_link(const char *pod, int subnet)
{
	char n[64], r[64];

	tns_name(pod, n, sizeof(n));
	tns_name("r", r, sizeof(r));
	if (tns_add(pod) || tns_link(pod, "r"))
		return -1;
	return tns_sh("ip -n %s addr add 198.18.%d.2/24 dev %s-r && "
		      "ip -n %s addr add fd00:198:%d::2/64 dev %s-r nodad && "
		      "ip -n %s route add default via 198.18.%d.1 && "
		      "ip -n %s -6 route add default via fd00:198:%d::1 && "
		      "ip -n %s addr add 198.18.%d.1/24 dev r-%s && "
		      "ip -n %s addr add fd00:198:%d::1/64 dev r-%s nodad",
		      n, subnet, pod, n, subnet, pod, n, subnet, n, subnet, r, subnet, pod, r,
		      subnet, pod)
		       ? -1
		       : 0;
}

int ttopo_setup(void)
{
	char r[64], s[64];

	tns_name("r", r, sizeof(r));
	tns_name("s", s, sizeof(s));
	if (tns_add("r"))
		goto out_fail;
	/* Forwarding only inside the router netns: /proc/sys/net is per netns. */
	if (tns_sh("ip netns exec %s sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward && "
		   "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding'",
		   r))
		goto out_fail;
	if (pod_link("a", 1) || pod_link("b", 3) || pod_link("c", 4))
		goto out_fail;
	if (tns_add("s") || tns_link("s", "r"))
		goto out_fail;
	if (tns_sh("ip -n %s addr add 198.18.2.1/24 dev r-s && "
		   "ip -n %s addr add fd00:198:2::1/64 dev r-s nodad && "
		   "for i in 11 12 13 14; do ip -n %s addr add 198.18.2.$i/24 dev s-r && "
		   "ip -n %s addr add fd00:198:2::$i/64 dev s-r nodad; done && "
		   "ip -n %s route add default via 198.18.2.1 && "
		   "ip -n %s -6 route add default via fd00:198:2::1",
		   r, r, s, s, s, s))
		goto out_fail;
	return 0;
out_fail:
	ttopo_teardown();
	return -1;
}

void ttopo_teardown(void)
{
	tns_del_all();
}
