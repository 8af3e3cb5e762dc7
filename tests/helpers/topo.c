// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/topo.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

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

/* The pods behind the router: short name, subnet (198.18.<n>.0/24). */
static const struct {
	const char *ns;
	int subnet;
} pods[] = { { "a", 1 }, { "b", 3 }, { "c", 4 } };

/* Append printf-style to @buf (one script line); -1 once it would not fit. */
static int __attribute__((format(printf, 4, 5)))
script_add(char *buf, size_t len, size_t *at, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *at, len - *at, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len - *at)
		return -1;
	*at += (size_t)n;
	return 0;
}

/* The whole topology is one shell script of `ip -batch` runs, one for the
 * namespaces and veth pairs (created straight into their namespaces) and one
 * per namespace for its addresses and routes: a few processes instead of
 * one or two per command, which made this most of a test's set-up time.
 * `ip -batch` stops at the first command that fails, and so does the script.
 */
int ttopo_setup(void)
{
	char script[8192], r[64], s[64], n[64];
	size_t at = 0, len = sizeof(script);
	int err = 0, rc;

	tns_name("r", r, sizeof(r));
	tns_name("s", s, sizeof(s));
	err |= script_add(script, len, &at,
			  "set -e\nip -batch - <<EOF\nnetns add %s\nnetns add %s\n", r, s);
	for (size_t i = 0; i < sizeof(pods) / sizeof(pods[0]); i++)
		err |= script_add(script, len, &at, "netns add %s\n",
				  tns_name(pods[i].ns, n, sizeof(n)));
	for (size_t i = 0; i < sizeof(pods) / sizeof(pods[0]); i++)
		err |= script_add(script, len, &at,
				  "link add %s-r netns %s type veth peer name r-%s netns %s\n",
				  pods[i].ns, tns_name(pods[i].ns, n, sizeof(n)), pods[i].ns, r);
	err |= script_add(script, len, &at,
			  "link add s-r netns %s type veth peer name r-s netns %s\nEOF\n", s, r);
	/* The router: forwarding only there (/proc/sys/net is per netns). */
	err |= script_add(script, len, &at,
			  "ip netns exec %s sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward && "
			  "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding'\n"
			  "ip -n %s -batch - <<EOF\nlink set lo up\n"
			  "link set r-s up\naddr add 198.18.2.1/24 dev r-s\n"
			  "addr add fd00:198:2::1/64 dev r-s nodad\n",
			  r, r);
	for (size_t i = 0; i < sizeof(pods) / sizeof(pods[0]); i++)
		err |= script_add(script, len, &at,
				  "link set r-%s up\naddr add 198.18.%d.1/24 dev r-%s\n"
				  "addr add fd00:198:%d::1/64 dev r-%s nodad\n",
				  pods[i].ns, pods[i].subnet, pods[i].ns, pods[i].subnet,
				  pods[i].ns);
	err |= script_add(script, len, &at, "EOF\n");
	for (size_t i = 0; i < sizeof(pods) / sizeof(pods[0]); i++) {
		const char *p = pods[i].ns;
		int sub = pods[i].subnet;

		err |= script_add(script, len, &at,
				  "ip -n %s -batch - <<EOF\nlink set lo up\nlink set %s-r up\n"
				  "addr add 198.18.%d.2/24 dev %s-r\naddr add fd00:198:%d::2/64 "
				  "dev %s-r nodad\n"
				  "route add default via 198.18.%d.1\nroute add default via "
				  "fd00:198:%d::1\nEOF\n",
				  tns_name(p, n, sizeof(n)), p, sub, p, sub, p, sub, sub);
	}
	/* The backends' netns: four addresses of each family. */
	err |= script_add(script, len, &at,
			  "ip -n %s -batch - <<EOF\nlink set lo up\nlink set s-r up\n", s);
	for (int i = 11; i <= 14; i++)
		err |= script_add(script, len, &at,
				  "addr add 198.18.2.%d/24 dev s-r\naddr add fd00:198:2::%d/64 dev "
				  "s-r nodad\n",
				  i, i);
	err |= script_add(
		script, len, &at,
		"route add default via 198.18.2.1\nroute add default via fd00:198:2::1\nEOF\n");
	if (err)
		goto out_fail;
	/* Not tns_sh(): the script is longer than its command buffer. */
	rc = system(script);
	if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc))
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
