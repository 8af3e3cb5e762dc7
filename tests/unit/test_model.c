// SPDX-License-Identifier: GPL-2.0-only
/* agent/model.c and agent/catalogue.c: objects in, snapshots out. Endpoint
 * resolution (named/unnamed ports, targetPort fallback, dual-stack, dedupe),
 * VIP lookups, removal, the conflict rule between sources, generations.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "model/model.h"
#include "registry/decode.h"
#include "registry/yaml.h"
#include "model_put.h"

#define NS_SHOP "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n" \
		"  labels: {weft.io/mesh: enabled}\n"

static struct cat_svc_port *vip(const struct catalogue *c, const char *ip_port)
{
	struct addr a;

	cr_assert_eq(addr_parse_ip_port(ip_port, &a), 0, "bad test address %s", ip_port);
	return catalogue_find_vip(c, &a);
}

/* The endpoints of @sp as "ip:port[!]" ('!' = not ready), space separated. */
static const char *eps(const struct cat_svc_port *sp, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sp->n_endpoints && n < len; i++) {
		char a[ADDR_STRLEN];

		n += (size_t)snprintf(buf + n, len - n, "%s%s%s", i ? " " : "",
				      addr_fmt(&sp->endpoints[i].addr, a, sizeof(a)),
				      sp->endpoints[i].ready ? "" : "!");
	}
	return buf;
}

static const char *web_service =
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop,\n"
	"  annotations: {weft.io/lb: round-robin}}\n"
	"spec:\n"
	"  clusterIPs: [198.19.0.10, \"fd00:198:19::10\"]\n"
	"  ports:\n"
	"  - {name: http, port: 80, targetPort: http}\n"
	"  - {name: metrics, port: 9090, targetPort: 9100}\n"
	"  - {name: syslog, port: 514, protocol: UDP}\n";

static const char *web_slices =
	"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	"metadata: {name: web-a, namespace: shop, labels: {kubernetes.io/service-name: web}}\n"
	"addressType: IPv4\n"
	"endpoints:\n"
	"- {addresses: [198.18.1.2], conditions: {ready: false}, nodeName: node-b}\n"
	"- {addresses: [198.18.1.1], nodeName: node-a, zone: zone-a}\n"
	"- {addresses: [198.18.1.3], conditions: {ready: false}}\n"
	"ports: [{name: http, port: 8080}]\n"
	"---\n"
	"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	"metadata: {name: web-b, namespace: shop, labels: {kubernetes.io/service-name: web}}\n"
	"addressType: IPv4\n"
	"endpoints:\n"
	"- {addresses: [198.18.1.3], conditions: {ready: true}}\n"
	"- {addresses: [198.18.1.4]}\n"
	"ports: [{name: http, port: 8080}]\n"
	"---\n"
	"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	"metadata: {name: web-v6, namespace: shop, labels: {kubernetes.io/service-name: web}}\n"
	"addressType: IPv6\n"
	"endpoints: [{addresses: [\"fd00:198:18::1:1\"]}]\n"
	"ports: [{name: http, port: 8080}]\n";

Test(model, named_port_dual_stack_and_dedupe)
{
	struct model *m = model_new();
	struct catalogue *c;
	struct cat_svc_port *sp4, *sp6;
	char buf[512];

	tmodel_put(m, "test", NS_SHOP);
	tmodel_put(m, "test", web_service);
	tmodel_put(m, "test", web_slices);
	c = model_build(m);
	cr_assert_not_null(c);

	sp4 = vip(c, "198.19.0.10:80");
	cr_assert_not_null(sp4);
	cr_assert_str_eq(sp4->svc->name, "web");
	cr_assert_str_eq(sp4->port_name, "http");
	/* Ready first, each group by address; 198.18.1.3 is in two slices, once
	 * not ready and once ready: one endpoint, ready. Each VIP gets the
	 * endpoints of its own family only, as kube-proxy does.
	 */
	cr_assert_str_eq(eps(sp4, buf, sizeof(buf)),
			 "198.18.1.1:8080 198.18.1.3:8080 198.18.1.4:8080 198.18.1.2:8080!");
	cr_assert_eq(sp4->n_ready, 3);
	cr_assert_str_eq(sp4->endpoints[0].node, "node-a");
	cr_assert_str_eq(sp4->endpoints[0].zone, "zone-a");

	sp6 = vip(c, "[fd00:198:19::10]:80");
	cr_assert_not_null(sp6, "every VIP of the Service is in the table");
	cr_assert_neq(sp6, sp4);
	cr_assert_str_eq(eps(sp6, buf, sizeof(buf)), "[fd00:198:18::1:1]:8080");
	cr_assert_eq(sp6->n_ready, 1);
	catalogue_unref(c);
	model_free(m);
}

Test(model, numeric_target_port_fallback_and_unresolvable_named_port)
{
	struct model *m = model_new();
	struct catalogue *c;
	struct cat_svc_port *sp;
	char buf[512];

	tmodel_put(m, "test", web_service);
	tmodel_put(m, "test", web_slices);
	c = model_build(m);
	/* The slices have no "metrics" port: the numeric targetPort 9100 is used. */
	sp = vip(c, "198.19.0.10:9090");
	cr_assert_not_null(sp);
	cr_assert_str_eq(eps(sp, buf, sizeof(buf)),
			 "198.18.1.1:9100 198.18.1.3:9100 198.18.1.4:9100 198.18.1.2:9100!");
	catalogue_unref(c);

	/* A named targetPort the slice does not list cannot be resolved. */
	tmodel_put(m, "test", "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		       "metadata: {name: web-a, namespace: shop, labels: "
		       "{kubernetes.io/service-name: web}}\n"
		       "addressType: IPv4\nendpoints: [{addresses: [198.18.9.9]}]\n"
		       "ports: [{name: grpc, port: 7000}]\n");
	cr_assert_eq(model_remove(m, "test", OBJ_ENDPOINTSLICE, "shop", "web-b"), 0);
	cr_assert_eq(model_remove(m, "test", OBJ_ENDPOINTSLICE, "shop", "web-v6"), 0);
	c = model_build(m);
	sp = vip(c, "198.19.0.10:80");
	cr_assert_not_null(sp, "the VIP stays, without endpoints");
	cr_assert_eq(sp->n_endpoints, 0);
	cr_assert_eq(sp->n_ready, 0);
	cr_assert_str_eq(eps(vip(c, "198.19.0.10:9090"), buf, sizeof(buf)), "198.18.9.9:9100");
	catalogue_unref(c);
	model_free(m);
}

Test(model, unnamed_ports_match_unnamed)
{
	struct model *m = model_new();
	struct catalogue *c;
	char buf[256];

	tmodel_put(m, "test", "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\n"
		       "spec: {clusterIP: 198.19.0.20, ports: [{port: 8080, targetPort: 80}]}\n"
		       "---\n"
		       "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		       "metadata: {name: api-1, namespace: shop, labels: "
		       "{kubernetes.io/service-name: api}}\n"
		       "addressType: IPv4\nendpoints: [{addresses: [198.18.2.1]}]\n"
		       "ports: [{name: \"\", port: 8081}, {name: other, port: 1}]\n"
		       "---\n"
		       "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		       "metadata: {name: api-2, namespace: shop, labels: "
		       "{kubernetes.io/service-name: api}}\n"
		       "addressType: IPv4\nendpoints: [{addresses: [198.18.2.2]}]\n");
	c = model_build(m);
	/* The slice's unnamed port wins over targetPort; a slice without ports
	 * falls back to the numeric targetPort.
	 */
	cr_assert_str_eq(eps(vip(c, "198.19.0.20:8080"), buf, sizeof(buf)),
			 "198.18.2.1:8081 198.18.2.2:80");
	cr_assert_null(vip(c, "198.19.0.20:80"), "the target port is not a VIP port");
	cr_assert_null(vip(c, "198.19.0.21:8080"));
	catalogue_unref(c);
	model_free(m);
}

Test(model, slices_of_other_services_and_namespaces_do_not_leak)
{
	struct model *m = model_new();
	struct catalogue *c;
	char buf[256];

	tmodel_put(m, "test", web_service);
	tmodel_put(m, "test", "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		       "metadata: {name: web-x, namespace: other, labels: "
		       "{kubernetes.io/service-name: web}}\n"
		       "addressType: IPv4\nendpoints: [{addresses: [198.18.7.1]}]\n"
		       "ports: [{name: http, port: 8080}]\n"
		       "---\n"
		       "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		       "metadata: {name: webby-1, namespace: shop, labels: "
		       "{kubernetes.io/service-name: webby}}\n"
		       "addressType: IPv4\nendpoints: [{addresses: [198.18.7.2]}]\n"
		       "ports: [{name: http, port: 8080}]\n");
	c = model_build(m);
	cr_assert_str_eq(eps(vip(c, "198.19.0.10:80"), buf, sizeof(buf)), "");
	catalogue_unref(c);
	model_free(m);
}

Test(model, only_tcp_ports_get_vips_and_headless_none)
{
	struct model *m = model_new();
	struct catalogue *c;

	tmodel_put(m, "test", web_service);
	tmodel_put(m, "test", "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: shop}\n"
		       "spec: {clusterIP: None, ports: [{port: 5432}]}\n");
	c = model_build(m);
	cr_assert_null(vip(c, "198.19.0.10:514"), "UDP is not proxied");
	cr_assert_eq(catalogue_n_services(c), 2, "a headless Service is still a Service");
	cr_assert_eq(catalogue_n_svc_ports(c), 4, "2 VIPs x 2 TCP ports");
	catalogue_unref(c);
	model_free(m);
}

Test(model, listing_order_is_stable)
{
	struct model *m = model_new();
	struct catalogue *c;
	const char *want[] = { "shop/api 198.19.0.20:8080", "shop/web 198.19.0.10:80",
			       "shop/web 198.19.0.10:9090", "shop/web [fd00:198:19::10]:80",
			       "shop/web [fd00:198:19::10]:9090" };

	tmodel_put(m, "test", web_service);
	tmodel_put(m, "test", "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\n"
		       "spec: {clusterIP: 198.19.0.20, ports: [{port: 8080}]}\n");
	c = model_build(m);
	cr_assert_eq(catalogue_n_svc_ports(c), 5);
	for (size_t i = 0; i < 5; i++) {
		const struct cat_svc_port *sp = catalogue_svc_port_at(c, i);
		char a[ADDR_STRLEN], line[512];

		snprintf(line, sizeof(line), "%s/%s %s", sp->svc->ns, sp->svc->name,
			 addr_fmt(&sp->vip, a, sizeof(a)));
		cr_assert_str_eq(line, want[i]);
	}
	cr_assert_null(catalogue_svc_port_at(c, 5));
	catalogue_unref(c);
	model_free(m);
}

Test(model, removal_and_generation)
{
	struct model *m = model_new();
	struct catalogue *empty = catalogue_new_empty(), *c1, *c2, *c3;

	cr_assert_eq(catalogue_generation(empty), 0);
	cr_assert_null(vip(empty, "198.19.0.10:80"));
	cr_assert_not(catalogue_ns_meshed(empty, "shop"));
	tmodel_put(m, "test", NS_SHOP);
	tmodel_put(m, "test", web_service);
	tmodel_put(m, "test", web_slices);
	c1 = model_build(m);
	cr_assert_eq(catalogue_generation(c1), 1);
	cr_assert_eq(vip(c1, "198.19.0.10:80")->n_endpoints, 4);

	cr_assert_eq(model_remove(m, "test", OBJ_ENDPOINTSLICE, "shop", "web-b"), 0);
	cr_assert_eq(model_remove(m, "test", OBJ_ENDPOINTSLICE, "shop", "missing"), 0,
		     "removing what is not there is fine");
	c2 = model_build(m);
	cr_assert_eq(catalogue_generation(c2), 2);
	cr_assert_eq(vip(c2, "198.19.0.10:80")->n_endpoints, 3, "198.18.1.4 went with web-b");
	cr_assert_eq(vip(c2, "198.19.0.10:80")->n_ready, 1);

	cr_assert_eq(model_remove(m, "test", OBJ_SERVICE, "shop", "web"), 0);
	c3 = model_build(m);
	cr_assert_eq(catalogue_generation(c3), 3);
	cr_assert_null(vip(c3, "198.19.0.10:80"));
	cr_assert_eq(catalogue_n_services(c3), 0);
	/* Snapshots are immutable: the older ones still answer as before. */
	cr_assert_eq(vip(c1, "198.19.0.10:80")->n_endpoints, 4);
	cr_assert_not_null(vip(c2, "[fd00:198:19::10]:80"));
	cr_assert_eq(catalogue_ref(c1), c1);
	catalogue_unref(c1);
	cr_assert_str_eq(vip(c1, "198.19.0.10:80")->svc->name, "web", "still referenced");
	catalogue_unref(c1);
	catalogue_unref(c2);
	catalogue_unref(c3);
	catalogue_unref(empty);
	catalogue_unref(NULL);
	model_free(m);
}

Test(model, namespaces_pods_and_annotations)
{
	struct model *m = model_new();
	struct catalogue *c;
	const struct cat_svc_port *sp;
	const struct cat_pod *pod;

	tmodel_put(m, "test", NS_SHOP);
	tmodel_put(m, "test", "apiVersion: v1\nkind: Namespace\nmetadata: {name: legacy}\n---\n"
		       "apiVersion: v1\nkind: Pod\nmetadata: {name: job-1, namespace: shop,\n"
		       "  annotations: {weft.io/mesh: disabled}}\n---\n"
		       "apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: shop,\n"
		       "  annotations: {weft.io/exclude-inbound-ports: \"9090,8443\",\n"
		       "                weft.io/exclude-outbound-ports: \"5432\"}}\n");
	tmodel_put(m, "test", web_service);
	c = model_build(m);
	pod = catalogue_find_pod(c, "shop", "web-1");
	cr_assert_not_null(pod);
	cr_assert_eq(pod->n_excl_in_ports, 2);
	cr_assert_eq(pod->excl_in_ports[0], 9090);
	cr_assert_eq(pod->excl_in_ports[1], 8443);
	cr_assert_eq(pod->n_excl_ports, 1);
	cr_assert_eq(pod->excl_ports[0], 5432);
	cr_assert_eq(catalogue_find_pod(c, "shop", "job-1")->n_excl_in_ports, 0);
	cr_assert(catalogue_ns_meshed(c, "shop"));
	cr_assert_not(catalogue_ns_meshed(c, "legacy"));
	cr_assert_not(catalogue_ns_meshed(c, "nowhere"));
	cr_assert(catalogue_pod_opted_out(c, "shop", "job-1"));
	cr_assert_not(catalogue_pod_opted_out(c, "shop", "web-1"));
	cr_assert_not(catalogue_pod_opted_out(c, "legacy", "job-1"));
	sp = vip(c, "198.19.0.10:80");
	cr_assert(policy_override_has(sp->svc->policy, policy_knob_find("weft.io/lb")));
	cr_assert_eq(sp->svc->policy->v.lb, LB_ROUND_ROBIN);
	cr_assert_not(policy_override_has(sp->svc->policy, policy_knob_find("weft.io/retries")));
	catalogue_unref(c);
	model_free(m);
}

/* The yes/no annotations (weft.io/deny-raw-sockets, weft.io/fail-open): a
 * Pod's own value, else its Namespace's, else no; a pod the registry has no
 * Pod object for takes its Namespace's.
 */
Test(model, switches_pod_over_namespace)
{
	static const char *const names[OBJ_SW_COUNT] = {
		[OBJ_SW_DENY_RAW] = "weft.io/deny-raw-sockets",
		[OBJ_SW_FAIL_OPEN] = "weft.io/fail-open",
		[OBJ_SW_DNS_CAPTURE] = "weft.io/dns-capture",
	};
	char yaml[2048];

	for (size_t sw = 0; sw < OBJ_SW_COUNT; sw++) {
		struct model *m = model_new();
		struct catalogue *c;

		snprintf(yaml, sizeof(yaml),
			 "apiVersion: v1\nkind: Namespace\nmetadata: {name: strict,\n"
			 "  annotations: {%s: \"true\"}}\n---\n"
			 "apiVersion: v1\nkind: Namespace\nmetadata: {name: loose}\n---\n"
			 "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: strict}\n---\n"
			 "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: strict,\n"
			 "  annotations: {%s: \"false\"}}\n---\n"
			 "apiVersion: v1\nkind: Pod\nmetadata: {name: c, namespace: loose}\n---\n"
			 "apiVersion: v1\nkind: Pod\nmetadata: {name: d, namespace: loose,\n"
			 "  annotations: {%s: \"true\"}}\n---\n"
			 "apiVersion: v1\nkind: Pod\nmetadata: {name: e, namespace: nowhere}\n",
			 names[sw], names[sw], names[sw]);
		tmodel_put(m, "test", yaml);
		c = model_build(m);
		cr_expect(catalogue_pod_switch(c, "strict", catalogue_find_pod(c, "strict", "a"), sw),
			  "%s", names[sw]);
		cr_expect_not(catalogue_pod_switch(c, "strict",
						   catalogue_find_pod(c, "strict", "b"), sw),
			      "%s", names[sw]);
		cr_expect_not(catalogue_pod_switch(c, "loose", catalogue_find_pod(c, "loose", "c"),
						   sw),
			      "%s", names[sw]);
		cr_expect(catalogue_pod_switch(c, "loose", catalogue_find_pod(c, "loose", "d"), sw),
			  "%s", names[sw]);
		cr_expect_not(catalogue_pod_switch(c, "nowhere",
						   catalogue_find_pod(c, "nowhere", "e"), sw),
			      "%s", names[sw]);
		/* No Pod object: the Namespace decides. */
		cr_expect(catalogue_pod_switch(c, "strict", NULL, sw), "%s", names[sw]);
		cr_expect_not(catalogue_pod_switch(c, "loose", NULL, sw), "%s", names[sw]);
		/* The other switch stays off everywhere. */
		cr_expect_not(catalogue_pod_switch(c, "strict", NULL, !sw), "%s leaks", names[sw]);
		cr_expect_not(catalogue_pod_switch(c, "loose", catalogue_find_pod(c, "loose", "d"),
						   !sw),
			      "%s leaks", names[sw]);
		catalogue_unref(c);
		model_free(m);
	}
}

Test(model, first_registered_source_wins)
{
	struct model *m = model_new();
	struct catalogue *c;
	const struct obj *o;

	tmodel_put(m, "file:/a.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: "
			       "shop}\nspec: {clusterIP: 198.19.0.10, ports: [{port: 80}]}\n");
	tmodel_put(m, "k8s", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
		      "spec: {clusterIP: 198.19.0.99, ports: [{port: 80}]}\n---\n"
		      "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: shop}\n"
		      "spec: {clusterIP: 198.19.0.20, ports: [{port: 8080}]}\n");
	/* A later write to the first source does not change who came first. */
	tmodel_put(m, "file:/a.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");
	c = model_build(m);
	cr_assert_not_null(vip(c, "198.19.0.10:80"), "the first source's web is used");
	cr_assert_null(vip(c, "198.19.0.99:80"), "the second source's web is not");
	cr_assert_not_null(vip(c, "198.19.0.20:8080"), "objects only the second has are used");
	cr_assert_eq(catalogue_n_services(c), 2);
	catalogue_unref(c);

	o = model_find(m, "k8s", OBJ_SERVICE, "shop", "web");
	cr_assert_not_null(o, "each source keeps its own version");
	cr_assert_null(model_find(m, "k8s", OBJ_NAMESPACE, "", "shop"));
	cr_assert_not_null(model_find(m, "file:/a.yaml", OBJ_NAMESPACE, "", "shop"));
	cr_assert_null(model_find(m, "nope", OBJ_SERVICE, "shop", "web"));

	cr_assert_eq(model_remove(m, "file:/a.yaml", OBJ_SERVICE, "shop", "web"), 0);
	c = model_build(m);
	cr_assert_not_null(vip(c, "198.19.0.99:80"), "with the first gone, the second shows");
	catalogue_unref(c);
	model_free(m);
}

Test(model, two_services_one_vip_first_keeps_it)
{
	struct model *m = model_new();
	struct catalogue *c;

	tmodel_put(m, "test", "apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: shop}\n"
		       "spec: {clusterIP: 198.19.0.10, ports: [{port: 80}]}\n---\n"
		       "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: shop}\n"
		       "spec: {clusterIP: 198.19.0.10, ports: [{port: 80}]}\n");
	c = model_build(m);
	cr_assert_str_eq(vip(c, "198.19.0.10:80")->svc->name, "a", "first in listing order");
	cr_assert_eq(catalogue_n_svc_ports(c), 2, "both stay listed");
	catalogue_unref(c);
	model_free(m);
}

Test(model, many_vips_all_found)
{
	struct model *m = model_new();
	struct catalogue *c;
	char yaml[256];

	/* Enough entries to wrap probe sequences around the table. */
	for (int i = 0; i < 300; i++) {
		snprintf(yaml, sizeof(yaml),
			 "apiVersion: v1\nkind: Service\nmetadata: {name: s%d, namespace: ns%d}\n"
			 "spec: {clusterIP: 198.19.%d.%d, ports: [{port: %d}]}\n",
			 i, i % 7, i / 250, i % 250, 1000 + i);
		tmodel_put(m, "test", yaml);
	}
	c = model_build(m);
	for (int i = 0; i < 300; i++) {
		char ip[64], name[16];
		struct cat_svc_port *sp;

		snprintf(ip, sizeof(ip), "198.19.%d.%d:%d", i / 250, i % 250, 1000 + i);
		snprintf(name, sizeof(name), "s%d", i);
		sp = vip(c, ip);
		cr_assert_not_null(sp, "%s", ip);
		cr_assert_str_eq(sp->svc->name, name);
		snprintf(ip, sizeof(ip), "198.19.%d.%d:%d", i / 250, i % 250, 2000 + i);
		cr_assert_null(vip(c, ip));
	}
	catalogue_unref(c);
	model_free(m);
}

/* An endpoint whose IP is a meshed pod's carries that pod (its identity);
 * opted-out, finished, unmeshed-namespace and unknown ones carry none.
 */
Test(model, endpoints_carry_their_meshed_pod)
{
	struct model *m = model_new();
	const struct cat_svc_port *sp;
	struct catalogue *c;

	tmodel_put(m, "test", NS_SHOP);
	tmodel_put(m, "test",
	    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: legacy\n"
	    "  annotations: {weft.io/mtls-mode: strict}\n---\n"
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: shop}\n"
	    "spec: {serviceAccountName: web}\nstatus: {podIP: 198.18.1.1, phase: Running}\n---\n"
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: web-2, namespace: shop,\n"
	    "  annotations: {weft.io/mesh: disabled}}\nstatus: {podIP: 198.18.1.2}\n---\n"
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: old-3, namespace: shop}\n"
	    "status: {podIP: 198.18.1.4, phase: Succeeded}\n---\n"
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: web-4, namespace: shop}\n"
	    "status: {podIP: 198.18.1.4, phase: Running}\n---\n"
	    "apiVersion: v1\nkind: Pod\nmetadata: {name: db-1, namespace: legacy}\n"
	    "status: {podIP: 198.18.1.3}\n");
	tmodel_put(m, "test", web_service);
	tmodel_put(m, "test", web_slices);
	c = model_build(m);
	cr_assert_eq(catalogue_ns_mtls_mode(c, "legacy"), OBJ_MTLS_STRICT);
	cr_assert_eq(catalogue_ns_mtls_mode(c, "shop"), OBJ_MTLS_UNSET);
	sp = vip(c, "198.19.0.10:80");
	cr_assert_not_null(sp);
	for (size_t i = 0; i < sp->n_endpoints; i++) {
		const struct cat_endpoint *e = &sp->endpoints[i];
		char a[ADDR_STRLEN];

		addr_fmt(&e->addr, a, sizeof(a));
		if (!strcmp(a, "198.18.1.1:8080")) {
			cr_assert_not_null(e->pod);
			cr_assert_str_eq(e->pod->name, "web-1");
			cr_assert_str_eq(e->pod->service_account, "web");
		} else if (!strcmp(a, "198.18.1.4:8080")) {
			cr_assert_not_null(e->pod, "a finished pod's old IP is the running one's");
			cr_assert_str_eq(e->pod->name, "web-4");
			cr_assert_str_eq(e->pod->service_account, "default");
		} else {
			cr_assert_null(e->pod, "%s: opted out, unmeshed namespace or unknown", a);
		}
	}
	catalogue_unref(c);
	model_free(m);
}

/* What the index test's objects are: i's kind, namespace and name. */
static struct obj *indexed_obj(size_t i)
{
	static const enum obj_kind kinds[] = { OBJ_NAMESPACE, OBJ_SERVICE, OBJ_ENDPOINTSLICE };
	struct obj *o = obj_new(kinds[i % 3]);

	cr_assert_not_null(o);
	if (o->key.kind != OBJ_NAMESPACE)
		snprintf(o->key.ns, sizeof(o->key.ns), "ns-%zu", i % 7);
	snprintf(o->key.name, sizeof(o->key.name), "o-%zu", i);
	return o;
}

static size_t indexed_at(const struct obj *o)
{
	size_t i;

	cr_assert_eq(sscanf(o->key.name, "o-%zu", &i), 1);
	return i;
}

static bool keep_not_seven(const struct obj *o, void *ctx)
{
	(void)ctx;
	return indexed_at(o) % 7 != 0;
}

Test(model, objects_found_through_inserts_replacements_and_removals)
{
	enum { N = 3000 };
	struct model *m = model_new();
	bool alive[N] = { false };
	struct catalogue *c;
	const char *prev = "";
	size_t n_ns = 0;
	int n;

	/* Out of key order, kinds interleaved: 7919 is prime, so i * 7919 % N
	 * visits every index once.
	 */
	for (size_t j = 0; j < N; j++) {
		size_t i = j * 7919 % N;

		cr_assert_eq(model_upsert(m, "test", indexed_obj(i)), 0);
		alive[i] = true;
	}
	for (size_t i = 0; i < N; i += 4)	/* a new version of each */
		cr_assert_eq(model_upsert(m, "test", indexed_obj(i)), 0);
	for (size_t i = 0; i < N; i += 5) {
		struct obj *o = indexed_obj(i);

		cr_assert_eq(model_remove(m, "test", o->key.kind, o->key.ns, o->key.name), 0);
		alive[i] = false;
		obj_free(o);
	}
	/* A listing's end in parts of 10: Services whose index is a multiple of 7 go. */
	do {
		n = model_retain(m, "test", OBJ_SERVICE, keep_not_seven, NULL, 10);
		cr_assert(n >= 0 && n <= 10);
	} while (n == 10);
	for (size_t i = 0; i < N; i++) {
		struct obj *o = indexed_obj(i);

		if (o->key.kind == OBJ_SERVICE && i % 7 == 0)
			alive[i] = false;
		cr_assert_eq(model_find(m, "test", o->key.kind, o->key.ns, o->key.name) != NULL,
			     alive[i], "object %zu", i);
		n_ns += o->key.kind == OBJ_NAMESPACE && alive[i];
		obj_free(o);
	}
	/* The catalogue reads the namespaces in name order from the model. */
	c = model_build(m);
	cr_assert_eq(catalogue_n_namespaces(c), n_ns);
	for (size_t i = 0; i < n_ns; i++) {
		bool meshed;
		const char *ns = catalogue_ns_at(c, i, &meshed);

		cr_assert_gt(strcmp(ns, prev), 0, "'%s' after '%s'", ns, prev);
		prev = ns;
	}
	catalogue_unref(c);
	model_free(m);
}
