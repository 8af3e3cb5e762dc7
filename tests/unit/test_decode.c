// SPDX-License-Identifier: GPL-2.0-only
/* agent/registry/decode.c: Kubernetes objects (written here as YAML, plus a
 * recorded watch event and API lists from tests/fixtures/) into obj, and
 * the exact messages of rejected ones. Run from the top of the tree.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "registry/decode.h"
#include "registry/yaml.h"

#define FIXTURES "tests/fixtures/"

static json_object *parse_one(const char *yaml)
{
	char err[REG_PARSE_ERR_MAX];
	json_object *docs, *d;

	cr_assert_eq(reg_yaml_parse(yaml, strlen(yaml), &docs, err, sizeof(err)), 0, "%s", err);
	d = json_object_get(json_object_array_get_idx(docs, 0));
	json_object_put(docs);
	return d;
}

/* Decode @yaml; returns reg_decode()'s result, message in @err. */
static int decode(const char *yaml, struct obj **out, char *err)
{
	json_object *o = parse_one(yaml);
	int ret = reg_decode(o, out, err, REG_DECODE_ERR_MAX);

	json_object_put(o);
	return ret;
}

static struct obj *decode_ok(const char *yaml)
{
	char err[REG_DECODE_ERR_MAX] = "";
	struct obj *o = NULL;

	cr_assert_eq(decode(yaml, &o, err), 0, "unexpected error: %s", err);
	cr_assert_not_null(o);
	return o;
}

static void expect_error(const char *yaml, const char *msg)
{
	char err[REG_DECODE_ERR_MAX] = "";
	struct obj *o = NULL;

	cr_assert_eq(decode(yaml, &o, err), -EINVAL, "accepted, expected: %s", msg);
	cr_assert_null(o);
	cr_assert_str_eq(err, msg);
}

static void expect_ip(const struct addr *a, const char *ip)
{
	char buf[ADDR_STRLEN];

	cr_assert_str_eq(addr_fmt_ip(a, buf, sizeof(buf)), ip);
}

Test(decode, service_fields)
{
	struct obj *o = decode_ok("apiVersion: v1\n"
				      "kind: Service\n"
				      "metadata:\n"
				      "  name: web\n"
				      "  namespace: shop\n"
				      "  uid: 6a1f3c2e-8d4b-4f0a-9c1e-2b7d5e8f9a01\n"
				      "  resourceVersion: \"48213\"\n"
				      "  annotations:\n"
				      "    weft.io/retries: \"3\"\n"
				      "    example.com/other: x\n"
				      "spec:\n"
				      "  clusterIP: 198.19.0.10\n"
				      "  clusterIPs: [198.19.0.10, \"fd00:198:19::10\"]\n"
				      "  ports:\n"
				      "  - {name: http, port: 80, targetPort: http}\n"
				      "  - {name: metrics, port: 9090, targetPort: 9100}\n"
				      "  - {name: syslog, port: 514, protocol: UDP}\n");

	cr_assert_eq(o->key.kind, OBJ_SERVICE);
	cr_assert_str_eq(o->key.ns, "shop");
	cr_assert_str_eq(o->key.name, "web");
	cr_assert_eq(o->svc.n_vips, 2);
	expect_ip(&o->svc.vips[0], "198.19.0.10");
	expect_ip(&o->svc.vips[1], "fd00:198:19::10");
	cr_assert_eq(o->svc.n_ports, 3);
	cr_assert_str_eq(o->svc.ports[0].name, "http");
	cr_assert_eq(o->svc.ports[0].port, 80);
	cr_assert_eq(o->svc.ports[0].target_port, 0);
	cr_assert_str_eq(o->svc.ports[0].target_port_name, "http");
	cr_assert_eq(o->svc.ports[0].proto, OBJ_PROTO_TCP, "protocol defaults to TCP");
	cr_assert_eq(o->svc.ports[1].target_port, 9100);
	cr_assert_eq(o->svc.ports[2].proto, OBJ_PROTO_UDP);
	cr_assert_eq(o->svc.ports[2].target_port, 514, "targetPort defaults to port");
	cr_assert_not_null(o->svc.policy);
	cr_assert_eq(o->svc.policy->set, 1u << (policy_knob_find("weft.io/retries") - policy_knobs),
		     "only weft.io/ annotations are kept");
	cr_assert_eq(o->svc.policy->v.retries, 3);
	obj_free(o);
}

Test(decode, service_headless_and_default_namespace)
{
	struct obj *o = decode_ok("apiVersion: v1\nkind: Service\nmetadata: {name: db}\n"
				      "spec: {clusterIP: None, ports: [{port: 5432}]}\n");

	cr_assert_str_eq(o->key.ns, "default", "kubectl's default namespace");
	cr_assert_eq(o->svc.n_vips, 0, "headless: no VIP");
	cr_assert_eq(o->svc.n_ports, 1);
	obj_free(o);

	o = decode_ok("apiVersion: v1\nkind: Service\nmetadata: {name: db}\n"
		      "spec: {clusterIP: \"\", clusterIPs: [None]}\n");
	cr_assert_eq(o->svc.n_vips, 0);
	cr_assert_eq(o->svc.n_ports, 0);
	obj_free(o);
}

Test(decode, service_port_errors_name_object_and_field)
{
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n"
		     "spec:\n  ports:\n  - {name: http, port: 80}\n  - {name: admin, port: http}\n",
		     "Service default/web: spec.ports[1].port: must be an integer in 1..65535, "
		     "got \"http\"");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
		     "spec: {ports: [{port: 70000}]}\n",
		     "Service default/web: spec.ports[0].port: must be an integer in 1..65535, "
		     "got 70000");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
		     "spec: {ports: [{port: 80}, {port: 81}]}\n",
		     "Service default/web: spec.ports[0].name: required when the Service has "
		     "more than one port");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
		     "spec: {ports: [{name: a, port: 80}, {name: a, port: 81}]}\n",
		     "Service default/web: spec.ports[1]: duplicate port name 'a'");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
		     "spec: {ports: [{port: 80, protocol: HTTP}]}\n",
		     "Service default/web: spec.ports[0].protocol: must be TCP, UDP or SCTP, "
		     "got \"HTTP\"");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
		     "spec: {ports: [{port: 80, targetPort: \"8080\"}]}\n",
		     "Service default/web: spec.ports[0].targetPort: must be an IANA service "
		     "name (1-15 of a-z, 0-9, '-', with a letter), got \"8080\"");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
		     "spec: {ports: [{port: 80, targetPort: 1.5}]}\n",
		     "Service default/web: spec.ports[0].targetPort: must be an integer in "
		     "1..65535 or a port name, got 1.5");
}

Test(decode, service_cluster_ip_errors)
{
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
		     "spec: {clusterIP: 198.19.0.300}\n",
		     "Service default/web: spec.clusterIP: must be an IP address, got "
		     "\"198.19.0.300\"");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
		     "spec: {clusterIP: 198.19.0.10, clusterIPs: [198.19.0.11]}\n",
		     "Service default/web: spec.clusterIPs[0]: must equal spec.clusterIP "
		     "\"198.19.0.10\"");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
		     "spec: {clusterIPs: [198.19.0.10, 198.19.0.11]}\n",
		     "Service default/web: spec.clusterIPs[1]: must not repeat the family of "
		     "clusterIPs[0]");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
		     "spec: {clusterIPs: [198.19.0.10, \"fd00::1\", \"fd00::2\"]}\n",
		     "Service default/web: spec.clusterIPs: must have at most 2 entries, got 3");
}

Test(decode, long_strings_are_rejected_not_truncated)
{
	char yaml[1024], name[300];

	memset(name, 'a', 299);
	name[299] = '\0';
	snprintf(yaml, sizeof(yaml), "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\n", name);
	expect_error(yaml, "Pod: metadata.name: must be at most 253 characters, got 299");
	expect_error("apiVersion: v1\nkind: Service\nmetadata: {name: Web}\n",
		     "Service: metadata.name: must be a DNS-1035 label (a lower case letter, then "
		     "letters, digits, '-'), got \"Web\"");
}

Test(decode, too_many_ports_rejected)
{
	char yaml[8192];
	size_t n;

	n = (size_t)snprintf(yaml, sizeof(yaml),
			     "apiVersion: v1\nkind: Service\nmetadata: {name: big}\nspec:\n"
			     "  ports:\n");
	for (int i = 0; i <= OBJ_SVC_PORTS_MAX; i++)
		n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "  - {name: p%d, port: %d}\n", i,
				      1000 + i);
	cr_assert_lt(n, sizeof(yaml));
	expect_error(yaml,
		     "Service default/big: spec.ports: must have at most 100 entries, got 101");
}

Test(decode, unsupported_kinds_and_versions)
{
	expect_error("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
		     "unsupported kind 'Deployment' (apiVersion 'apps/v1')");
	expect_error("apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\n"
		     "metadata: {name: web-1}\n",
		     "unsupported kind 'EndpointSlice' (apiVersion 'discovery.k8s.io/v1beta1')");
	expect_error("apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\n",
		     "unsupported kind 'Endpoints' (apiVersion 'v1')");
	expect_error("apiVersion: v1\nmetadata: {name: web}\n", "object: kind: required");
	expect_error("kind: Service\nmetadata: {name: web}\n",
		     "unsupported kind 'Service' (apiVersion '')");
	expect_error("apiVersion: v1\nkind: Service\nspec: {}\n", "Service: metadata: required");
	expect_error("- 1\n", "object: must be an object, got an array");
}

Test(decode, namespace_mesh_label)
{
	struct obj *o = decode_ok("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
				      "  labels: {weft.io/mesh: enabled}\n"
				      "  namespace: ignored-for-cluster-scoped\n");

	cr_assert_eq(o->key.kind, OBJ_NAMESPACE);
	cr_assert_str_eq(o->key.ns, "");
	cr_assert(o->nspace.meshed);
	obj_free(o);
	o = decode_ok("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
		      "  labels: {weft.io/mesh: disabled}\n");
	cr_assert_not(o->nspace.meshed);
	obj_free(o);
	expect_error("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
		     "  labels: {weft.io/mesh: true}\n",
		     "Namespace shop: metadata.labels[\"weft.io/mesh\"]: must be a string, "
		     "got true");
}

Test(decode, endpointslice_fields)
{
	struct obj *o = decode_ok("apiVersion: discovery.k8s.io/v1\n"
				      "kind: EndpointSlice\n"
				      "metadata:\n"
				      "  name: web-7xk2p\n"
				      "  namespace: shop\n"
				      "  labels: {kubernetes.io/service-name: web}\n"
				      "addressType: IPv4\n"
				      "endpoints:\n"
				      "- addresses: [198.18.1.1]\n"
				      "  conditions: {ready: true}\n"
				      "  nodeName: node-a\n"
				      "  zone: zone-a\n"
				      "- addresses: [198.18.1.2]\n"
				      "  conditions: {ready: false}\n"
				      "- addresses: [198.18.1.3]\n"
				      "- addresses: [198.18.1.4]\n"
				      "  conditions: {ready: null}\n"
				      "ports:\n"
				      "- {name: http, port: 8080}\n"
				      "- {port: 53, protocol: UDP}\n"
				      "- {name: any}\n");
	const struct obj_slice *s = &o->slice;

	cr_assert_eq(o->key.kind, OBJ_ENDPOINTSLICE);
	cr_assert_str_eq(s->service, "web");
	cr_assert_eq(s->family, AF_INET);
	cr_assert_eq(s->n_endpoints, 4);
	expect_ip(&s->endpoints[0].addrs[0], "198.18.1.1");
	cr_assert(s->endpoints[0].ready);
	cr_assert_str_eq(s->endpoints[0].node, "node-a");
	cr_assert_str_eq(s->endpoints[0].zone, "zone-a");
	cr_assert_not(s->endpoints[1].ready);
	cr_assert(s->endpoints[2].ready, "absent conditions.ready means ready");
	cr_assert(s->endpoints[3].ready, "null conditions.ready means ready");
	cr_assert_str_eq(s->endpoints[2].node, "");
	cr_assert_eq(s->n_ports, 3);
	cr_assert_str_eq(s->ports[0].name, "http");
	cr_assert_eq(s->ports[0].port, 8080);
	cr_assert_eq(s->ports[0].proto, OBJ_PROTO_TCP);
	cr_assert_str_eq(s->ports[1].name, "");
	cr_assert_eq(s->ports[1].proto, OBJ_PROTO_UDP);
	cr_assert_eq(s->ports[2].port, 0, "an unset port stays 0");
	obj_free(o);
}

Test(decode, empty_string_means_unset)
{
	struct obj *o = decode_ok("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
				      "metadata: {name: api-1, namespace: \"\", labels: "
				      "{kubernetes.io/service-name: api}}\n"
				      "addressType: IPv4\nendpoints: [{addresses: [198.18.2.1], "
				      "nodeName: \"\"}]\nports: [{name: \"\", port: 80}]\n");

	cr_assert_str_eq(o->key.ns, "default");
	cr_assert_str_eq(o->slice.ports[0].name, "", "the controller writes unnamed ports so");
	cr_assert_str_eq(o->slice.endpoints[0].node, "");
	obj_free(o);
	expect_error("apiVersion: v1\nkind: Pod\nmetadata: {name: \"\"}\n",
		     "Pod: metadata.name: required");
}

Test(decode, endpointslice_errors)
{
	expect_error("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		     "metadata: {name: web-1, namespace: shop}\naddressType: IPv4\n",
		     "EndpointSlice shop/web-1: metadata.labels[\"kubernetes.io/service-name\"]: "
		     "required (the name of the Service this slice belongs to)");
	expect_error("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		     "metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}\n"
		     "addressType: FQDN\nendpoints: [{addresses: [web-0.example]}]\n",
		     "EndpointSlice default/web-1: addressType: FQDN slices are not supported "
		     "(only IPv4 and IPv6)");
	expect_error("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		     "metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}\n"
		     "addressType: IPv4\nendpoints:\n- addresses: [198.18.1.1]\n"
		     "- addresses: [\"fd00::1\"]\n",
		     "EndpointSlice default/web-1: endpoints[1].addresses[0]: must be an IPv4 "
		     "address, got \"fd00::1\"");
	expect_error("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		     "metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}\n"
		     "addressType: IPv6\nendpoints: [{addresses: []}]\n",
		     "EndpointSlice default/web-1: endpoints[0].addresses: must have at least one "
		     "address");
	expect_error("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		     "metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}\n"
		     "addressType: IPv4\nendpoints: [{addresses: [198.18.1.1], "
		     "conditions: {ready: \"yes\"}}]\n",
		     "EndpointSlice default/web-1: endpoints[0].conditions.ready: must be true or "
		     "false, got \"yes\"");
}

Test(decode, pod_opt_out_and_ips)
{
	struct obj *o = decode_ok("apiVersion: v1\nkind: Pod\nmetadata:\n"
				      "  name: nightly-report-28391\n  namespace: shop\n"
				      "  annotations: {weft.io/mesh: disabled}\n"
				      "spec: {nodeName: node-b}\n"
				      "status: {podIP: 198.18.3.7}\n");

	cr_assert_eq(o->key.kind, OBJ_POD);
	cr_assert(o->pod.opted_out);
	cr_assert_str_eq(o->pod.node, "node-b");
	cr_assert_eq(o->pod.n_ips, 1, "podIP is used when podIPs is absent");
	expect_ip(&o->pod.ips[0], "198.18.3.7");
	obj_free(o);

	o = decode_ok("apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, namespace: shop}\n"
		      "status:\n  podIP: 198.18.1.1\n"
		      "  podIPs: [{ip: 198.18.1.1}, {ip: \"fd00:198:18::1:1\"}]\n");
	cr_assert_not(o->pod.opted_out);
	cr_assert_eq(o->pod.n_ips, 2);
	expect_ip(&o->pod.ips[1], "fd00:198:18::1:1");
	obj_free(o);
}

Test(decode, pod_exclusion_annotations)
{
	char buf[ADDR_STRLEN];
	struct obj *o = decode_ok("apiVersion: v1\nkind: Pod\nmetadata:\n"
				  "  name: web-0\n  namespace: shop\n  annotations:\n"
				  "    weft.io/exclude-outbound-ports: \"5432, 6379\"\n"
				  "    weft.io/exclude-outbound-cidrs: \"198.18.9.0/24,fd00:198::/32\"\n"
				  "    weft.io/exclude-inbound-ports: \"9090,15090\"\n");

	cr_assert_eq(o->pod.n_excl_ports, 2);
	cr_assert_eq(o->pod.excl_ports[0], 5432);
	cr_assert_eq(o->pod.excl_ports[1], 6379);
	cr_assert_eq(o->pod.n_excl_cidrs, 2);
	cr_assert_str_eq(cidr_fmt(&o->pod.excl_cidrs[1], buf, sizeof(buf)), "fd00:198::/32");
	cr_assert_eq(o->pod.n_excl_in_ports, 2, "inbound is its own list");
	cr_assert_eq(o->pod.excl_in_ports[0], 9090);
	cr_assert_eq(o->pod.excl_in_ports[1], 15090);
	obj_free(o);

	/* Absent or empty: nothing excluded, either way. */
	o = decode_ok("apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: shop,\n"
		      "  annotations: {weft.io/exclude-inbound-ports: \"\"}}\n");
	cr_assert_eq(o->pod.n_excl_in_ports, 0);
	cr_assert_eq(o->pod.n_excl_ports, 0);
	obj_free(o);
	o = decode_ok("apiVersion: v1\nkind: Pod\nmetadata: {name: web-2, namespace: shop,\n"
		      "  annotations: {weft.io/exclude-inbound-ports: \"8080\"}}\n");
	cr_assert_eq(o->pod.n_excl_in_ports, 1);
	cr_assert_eq(o->pod.n_excl_ports, 0, "the inbound list does not leak into outbound");
	obj_free(o);
}

/* The yes/no annotations of Namespaces and Pods (enum obj_switch), each
 * decoded on its own: "true", "false", absent; anything else rejects the
 * object naming the annotation.
 */
static const char *const switch_names[OBJ_SW_COUNT] = {
	[OBJ_SW_DENY_RAW] = "weft.io/deny-raw-sockets",
	[OBJ_SW_FAIL_OPEN] = "weft.io/fail-open",
	[OBJ_SW_DNS_CAPTURE] = "weft.io/dns-capture",
};

Test(decode, switches_on_pods_and_namespaces)
{
	static const struct {
		const char *value;	/* NULL: no annotation */
		enum obj_tristate want;
	} cases[] = {
		{ NULL, OBJ_UNSET }, { "", OBJ_UNSET },
		{ "true", OBJ_YES }, { "false", OBJ_NO },
	};
	char yaml[512];
	struct obj *o;

	for (size_t sw = 0; sw < OBJ_SW_COUNT; sw++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			const char *v = cases[i].value;
			char ann[128] = "";

			if (v)
				snprintf(ann, sizeof(ann), "  annotations: {%s: \"%s\"}\n",
					 switch_names[sw], v);
			snprintf(yaml, sizeof(yaml),
				 "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-0\n"
				 "  namespace: shop\n%s", ann);
			o = decode_ok(yaml);
			cr_expect_eq(o->pod.sw[sw], cases[i].want, "Pod, %s '%s'", switch_names[sw],
				     v ? v : "(none)");
			/* The other switch is untouched. */
			cr_expect_eq(o->pod.sw[!sw], OBJ_UNSET, "Pod, %s leaks", switch_names[sw]);
			obj_free(o);
			snprintf(yaml, sizeof(yaml),
				 "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n%s", ann);
			o = decode_ok(yaml);
			cr_expect_eq(o->nspace.sw[sw], cases[i].want, "Namespace, %s '%s'",
				     switch_names[sw], v ? v : "(none)");
			cr_expect_eq(o->nspace.sw[!sw], OBJ_UNSET, "Namespace, %s leaks",
				     switch_names[sw]);
			obj_free(o);
		}
	}
}

Test(decode, switch_errors_name_the_annotation)
{
	static const char *const bad[] = { "yes", "1", "True", "on" };
	char yaml[512], want[256];

	for (size_t sw = 0; sw < OBJ_SW_COUNT; sw++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(yaml, sizeof(yaml),
				 "apiVersion: v1\nkind: Pod\nmetadata: {name: web-3, namespace: shop,\n"
				 "  annotations: {%s: \"%s\"}}\n", switch_names[sw], bad[i]);
			snprintf(want, sizeof(want),
				 "Pod shop/web-3: metadata.annotations[\"%s\"]: '%s' is neither "
				 "\"true\" nor \"false\"", switch_names[sw], bad[i]);
			expect_error(yaml, want);
			snprintf(yaml, sizeof(yaml),
				 "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop,\n"
				 "  annotations: {%s: \"%s\"}}\n", switch_names[sw], bad[i]);
			snprintf(want, sizeof(want),
				 "Namespace shop: metadata.annotations[\"%s\"]: '%s' is neither "
				 "\"true\" nor \"false\"", switch_names[sw], bad[i]);
			expect_error(yaml, want);
		}
	}
}

Test(decode, pod_exclusion_errors_name_the_annotation)
{
	expect_error("apiVersion: v1\nkind: Pod\nmetadata: {name: web-3, namespace: shop,\n"
		     "  annotations: {weft.io/exclude-outbound-ports: \"80,http\"}}\n",
		     "Pod shop/web-3: metadata.annotations[\"weft.io/exclude-outbound-ports\"]: "
		     "'http' is not a port (1..65535)");
	expect_error("apiVersion: v1\nkind: Pod\nmetadata: {name: web-3, namespace: shop,\n"
		     "  annotations: {weft.io/exclude-inbound-ports: \"80,http\"}}\n",
		     "Pod shop/web-3: metadata.annotations[\"weft.io/exclude-inbound-ports\"]: "
		     "'http' is not a port (1..65535)");
	expect_error("apiVersion: v1\nkind: Pod\nmetadata: {name: web-3, namespace: shop,\n"
		     "  annotations: {weft.io/exclude-inbound-ports: \"0\"}}\n",
		     "Pod shop/web-3: metadata.annotations[\"weft.io/exclude-inbound-ports\"]: "
		     "'0' is not a port (1..65535)");
	expect_error("apiVersion: v1\nkind: Pod\nmetadata: {name: web-3, namespace: shop,\n"
		     "  annotations: {weft.io/exclude-inbound-ports: \"65536\"}}\n",
		     "Pod shop/web-3: metadata.annotations[\"weft.io/exclude-inbound-ports\"]: "
		     "'65536' is not a port (1..65535)");
	expect_error("apiVersion: v1\nkind: Pod\nmetadata: {name: web-3, namespace: shop,\n"
		     "  annotations: {weft.io/exclude-inbound-ports: \"1,2,3,4,5,6,7,8,9\"}}\n",
		     "Pod shop/web-3: metadata.annotations[\"weft.io/exclude-inbound-ports\"]: "
		     "more than 8 ports");
	expect_error("apiVersion: v1\nkind: Pod\nmetadata: {name: web-3, namespace: shop,\n"
		     "  annotations: {weft.io/exclude-outbound-ports: \"1,2,3,4,5,6,7,8,9\"}}\n",
		     "Pod shop/web-3: metadata.annotations[\"weft.io/exclude-outbound-ports\"]: "
		     "more than 8 ports");
	expect_error("apiVersion: v1\nkind: Pod\nmetadata: {name: web-3, namespace: shop,\n"
		     "  annotations: {weft.io/exclude-outbound-cidrs: \"198.18.0.0/33\"}}\n",
		     "Pod shop/web-3: metadata.annotations[\"weft.io/exclude-outbound-cidrs\"]: "
		     "'198.18.0.0/33' is not a CIDR (IP/LEN)");
}

Test(decode, pod_phase_host_network_and_deletion)
{
	struct obj *o = decode_ok("apiVersion: v1\nkind: Pod\nmetadata:\n"
				  "  name: web-0\n  namespace: shop\n  uid: 0b5c6a3e-1f2d\n"
				  "spec: {nodeName: node-b, hostNetwork: true}\n"
				  "status: {phase: Running}\n");

	cr_assert_str_eq(o->pod.uid, "0b5c6a3e-1f2d");
	cr_assert(o->pod.host_network);
	cr_assert_eq(o->pod.phase, OBJ_POD_RUNNING);
	cr_assert_not(o->pod.terminating);
	obj_free(o);

	/* No phase, an unknown one: UNKNOWN, and the Pod still counts. */
	o = decode_ok("apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: shop,\n"
		      "  deletionTimestamp: \"2026-12-04T00:00:00Z\"}\n"
		      "status: {phase: Hibernating}\n");
	cr_assert_eq(o->pod.phase, OBJ_POD_PHASE_UNKNOWN);
	cr_assert_not(o->pod.host_network);
	cr_assert(o->pod.terminating);
	obj_free(o);
	o = decode_ok("apiVersion: v1\nkind: Pod\nmetadata: {name: web-2, namespace: shop}\n"
		      "status: {phase: Pending}\n");
	cr_assert_eq(o->pod.phase, OBJ_POD_PENDING);
	obj_free(o);
	expect_error("apiVersion: v1\nkind: Pod\nmetadata: {name: web-3, namespace: shop}\n"
		     "spec: {hostNetwork: \"yes\"}\n",
		     "Pod shop/web-3: spec.hostNetwork: must be true or false, got \"yes\"");
}

Test(decode, recorded_watch_event)
{
	json_object *ev = json_object_from_file(FIXTURES "watch-event-endpointslice.json");
	char err[REG_DECODE_ERR_MAX] = "";
	struct obj *o = NULL;
	json_object *obj;

	cr_assert_not_null(ev, "run from the top of the tree");
	cr_assert(json_object_object_get_ex(ev, "object", &obj));
	cr_assert_eq(reg_decode(obj, &o, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(o->key.name, "web-7xk2p");
	cr_assert_eq(o->slice.n_endpoints, 2);
	cr_assert_not(o->slice.endpoints[1].ready);
	cr_assert_str_eq(o->slice.endpoints[1].zone, "zone-b");
	obj_free(o);
	json_object_put(ev);
}

Test(decode, typed_list_items_inherit_kind)
{
	json_object *list = json_object_from_file(FIXTURES "registry-servicelist.json");
	char err[REG_DECODE_ERR_MAX] = "";
	json_object *items;
	struct obj *o;

	cr_assert_not_null(list);
	cr_assert_eq(reg_list_items(list, &items, err, sizeof(err)), 1);
	cr_assert_eq(json_object_array_length(items), 2);
	cr_assert_eq(reg_decode_list_item(list, json_object_array_get_idx(items, 1), &o, err,
					  sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(o->key.kind, OBJ_SERVICE);
	cr_assert_str_eq(o->key.ns, "kube-system");
	cr_assert_eq(o->svc.n_ports, 2);
	obj_free(o);
	/* A lone item without kind is not decodable on its own. */
	cr_assert_eq(reg_decode(json_object_array_get_idx(items, 0), &o, err, sizeof(err)),
		     -EINVAL);
	json_object_put(list);
}

Test(decode, list_detection)
{
	char err[REG_DECODE_ERR_MAX] = "";
	json_object *items = NULL, *o;

	o = parse_one("apiVersion: v1\nkind: List\nitems: []\n");
	cr_assert_eq(reg_list_items(o, &items, err, sizeof(err)), 1);
	cr_assert_eq(json_object_array_length(items), 0);
	json_object_put(o);
	o = parse_one("apiVersion: v1\nkind: List\n");
	cr_assert_eq(reg_list_items(o, &items, err, sizeof(err)), 1);
	cr_assert_null(items, "absent items is an empty list");
	json_object_put(o);
	o = parse_one("apiVersion: v1\nkind: Service\nmetadata: {name: a}\n");
	cr_assert_eq(reg_list_items(o, &items, err, sizeof(err)), 0);
	json_object_put(o);
	o = parse_one("apiVersion: v1\nkind: ServiceList\nitems: {a: 1}\n");
	cr_assert_eq(reg_list_items(o, &items, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "ServiceList: items: must be an array, got an object");
	json_object_put(o);
}

Test(decode, key_of_rejected_object)
{
	json_object *o = parse_one("apiVersion: v1\nkind: Service\nmetadata: {name: web, "
				   "namespace: shop}\nspec: {ports: [{port: http}]}\n");
	struct obj_key k;

	cr_assert_eq(reg_decode_key(NULL, o, &k), 0);
	cr_assert_eq(k.kind, OBJ_SERVICE);
	cr_assert_str_eq(k.ns, "shop");
	cr_assert_str_eq(k.name, "web");
	json_object_put(o);
	o = parse_one("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n");
	cr_assert_eq(reg_decode_key(NULL, o, &k), -EINVAL);
	json_object_put(o);
}

Test(decode, dup_is_deep)
{
	struct obj *o = decode_ok("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
				      "metadata: {name: s, labels: {kubernetes.io/service-name: "
				      "web}}\naddressType: IPv4\n"
				      "endpoints: [{addresses: [198.18.1.1]}]\n"
				      "ports: [{port: 80}]\n");
	struct obj *c = obj_dup(o);

	cr_assert_not_null(c);
	cr_assert_neq(c->slice.endpoints, o->slice.endpoints);
	cr_assert_neq(c->slice.endpoints[0].addrs, o->slice.endpoints[0].addrs);
	cr_assert(addr_equal(&c->slice.endpoints[0].addrs[0], &o->slice.endpoints[0].addrs[0]));
	obj_free(o);
	cr_assert_eq(c->slice.ports[0].port, 80, "the copy outlives the original");
	obj_free(c);
}

Test(decode, pod_service_account_and_namespace_mtls_mode)
{
	struct obj *o = decode_ok("apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, namespace: shop}\n"
				  "spec: {serviceAccountName: frontend}\n");

	cr_assert_str_eq(o->pod.service_account, "frontend");
	obj_free(o);
	o = decode_ok("apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: shop}\n");
	cr_assert_str_eq(o->pod.service_account, "default", "the API server's default");
	obj_free(o);
	expect_error("apiVersion: v1\nkind: Pod\nmetadata: {name: web-2, namespace: shop}\n"
		     "spec: {serviceAccountName: Front_End}\n",
		     "Pod shop/web-2: spec.serviceAccountName: must be a DNS-1123 subdomain "
		     "(lower case letters, digits, '-', '.'), got \"Front_End\"");

	o = decode_ok("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
		      "  labels: {weft.io/mtls-mode: strict}\n");
	cr_assert_eq(o->nspace.mtls_mode, OBJ_MTLS_STRICT);
	obj_free(o);
	o = decode_ok("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
		      "  labels: {weft.io/mtls-mode: strict}\n"
		      "  annotations: {weft.io/mtls-mode: permissive}\n");
	cr_assert_eq(o->nspace.mtls_mode, OBJ_MTLS_PERMISSIVE, "the annotation wins");
	obj_free(o);
	o = decode_ok("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n");
	cr_assert_eq(o->nspace.mtls_mode, OBJ_MTLS_UNSET);
	obj_free(o);
	expect_error("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
		     "  annotations: {weft.io/mtls-mode: Strict}\n",
		     "Namespace shop: metadata.annotations[\"weft.io/mtls-mode\"]: "
		     "must be permissive or strict, got \"Strict\"");
}

Test(decode, allow_from_on_services_and_namespaces)
{
	struct obj *o = decode_ok("apiVersion: v1\nkind: Service\nmetadata:\n  name: cart\n"
				  "  namespace: shop\n"
				  "  annotations: {weft.io/allow-from: \"shop/sa/frontend, ops/*\"}\n"
				  "spec: {clusterIP: 198.19.0.40, ports: [{port: 80}]}\n");

	cr_assert_str_eq(o->svc.allow_from, "shop/sa/frontend, ops/*");
	cr_assert_null(o->svc.policy, "not a resilience knob");
	obj_free(o);
	o = decode_ok("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
		      "  annotations: {weft.io/allow-from: \"shop/*\"}\n");
	cr_assert_str_eq(o->nspace.allow_from, "shop/*");
	obj_free(o);
	expect_error("apiVersion: v1\nkind: Service\nmetadata:\n  name: cart\n  namespace: shop\n"
		     "  annotations: {weft.io/allow-from: \"shop/frontend\"}\n"
		     "spec: {clusterIP: 198.19.0.40, ports: [{port: 80}]}\n",
		     "Service shop/cart: metadata.annotations[\"weft.io/allow-from\"]: "
		     "\"shop/frontend\" is not NAMESPACE/sa/ACCOUNT or NAMESPACE/*");
	expect_error("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
		     "  annotations: {weft.io/allow-from: \" , \"}\n",
		     "Namespace shop: metadata.annotations[\"weft.io/allow-from\"]: "
		     "names no identity (remove it to allow everyone)");
}

/* Only a Pod's uid is kept (and checked); no kind keeps its resourceVersion,
 * so neither can reject a Service any more.
 */
Test(decode, only_a_pods_uid_is_read)
{
	struct obj *o = decode_ok("apiVersion: v1\nkind: Service\nmetadata:\n"
				  "  name: web\n  namespace: shop\n"
				  "  uid: 6a1f3c2e-8d4b-4f0a-9c1e-2b7d5e8f9a01-6a1f3c2e-8d4b-4f0a-9c1e-2b7d\n"
				  "  resourceVersion: 48213\n"
				  "spec: {clusterIP: 198.19.0.10, ports: [{port: 80}]}\n");

	cr_assert_eq(o->key.kind, OBJ_SERVICE);
	cr_assert_eq(o->svc.n_vips, 1);
	obj_free(o);
	expect_error("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-0\n  namespace: shop\n"
		     "  uid: 6a1f3c2e-8d4b-4f0a-9c1e-2b7d5e8f9a01-6a1f3c2e-8d4b-4f0a-9c1e-2b7d\n",
		     "Pod shop/web-0: metadata.uid: must be at most 63 characters, got 65");
}
