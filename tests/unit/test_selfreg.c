// SPDX-License-Identifier: GPL-2.0-only
/* Self-registration, the pure parts: the weft.io/register annotation
 * (registry/decode.c), which endpoints a node registers and the slices that
 * carry them, handed to the registering backends (selfreg.c), and the
 * key-value layout of the etcd and ZooKeeper registries
 * (registry/etcd_zk_layout.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "model/catalogue.h"
#include "model/model.h"
#include "pods.h"
#include "registry/decode.h"
#include "registry/etcd_zk_layout.h"
#include "selfreg.h"

static int decode_json(const char *json, struct obj **out, char *err)
{
	json_object *o = json_tokener_parse(json);
	int ret;

	cr_assert_not_null(o, "bad test JSON: %s", json);
	ret = reg_decode(o, out, err, REG_DECODE_ERR_MAX);
	json_object_put(o);
	return ret;
}

static char *pod_json(const char *ns, const char *name, const char *reg)
{
	char *s;

	cr_assert_gt(asprintf(&s,
			      "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
			      "\"namespace\":\"%s\",\"annotations\":{\"weft.io/register\":\"%s\"}}}",
			      name, ns, reg),
		     0);
	return s;
}

Test(selfreg, register_annotation_is_decoded)
{
	char err[REG_DECODE_ERR_MAX] = "", *j = pod_json("shop", "web-1", "web:8080, api:9090");
	struct obj *o = NULL;

	cr_assert_eq(decode_json(j, &o, err), 0, "%s", err);
	cr_assert_eq(o->pod.n_registers, 2);
	cr_expect_str_eq(o->pod.registers[0].service, "web");
	cr_expect_eq(o->pod.registers[0].port, 8080);
	cr_expect_str_eq(o->pod.registers[1].service, "api");
	cr_expect_eq(o->pod.registers[1].port, 9090);
	obj_free(o);
	free(j);
}

Test(selfreg, bad_register_annotation_rejects_the_pod)
{
	static const char *const bad[] = { "web", "web:", "web:0", "web:70000", "Web:80",
					   "-web:80", ":80", "web:80x" };
	char err[REG_DECODE_ERR_MAX];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *j = pod_json("shop", "web-1", bad[i]);
		struct obj *o = NULL;

		err[0] = '\0';
		cr_expect_eq(decode_json(j, &o, err), -EINVAL, "'%s' accepted", bad[i]);
		cr_expect(strstr(err, "is not SERVICE:PORT"), "'%s': %s", bad[i], err);
		obj_free(o);
		free(j);
	}
}

/* A catalogue holding Pods shop/web-1 (web:8080), shop/web-2 (web:8080 and
 * web:9090), shop/plain (no annotation) and other/api-1 (api:80).
 */
static struct catalogue *catalogue_with_pods(void)
{
	static const char *const pods[][3] = {
		{ "shop", "web-1", "web:8080" },
		{ "shop", "web-2", "web:9090,web:8080,web:8080" },
		{ "shop", "plain", "" },
		{ "other", "api-1", "api:80" },
	};
	struct model *m = model_new();
	struct catalogue *c;

	cr_assert_eq(model_declare_source(m, "test"), 0);
	for (size_t i = 0; i < sizeof(pods) / sizeof(pods[0]); i++) {
		char err[REG_DECODE_ERR_MAX], *j = pod_json(pods[i][0], pods[i][1], pods[i][2]);
		struct obj *o = NULL;

		cr_assert_eq(decode_json(j, &o, err), 0, "%s", err);
		cr_assert_eq(model_upsert(m, "test", o), 0);
		free(j);
	}
	c = model_build(m);
	cr_assert_not_null(c);
	model_free(m);
	return c;
}

static void set_pod(struct pod *p, const char *ns, const char *name, bool meshed,
		    const char *ip4, const char *ip6, struct pod *next)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->spec.ns, sizeof(p->spec.ns), "%s", ns);
	snprintf(p->spec.name, sizeof(p->spec.name), "%s", name);
	p->meshed = meshed;
	p->next = next;
	if (ip4)
		cr_assert_eq(addr_parse_ip(ip4, &p->spec.ips[p->spec.n_ips++]), 0);
	if (ip6)
		cr_assert_eq(addr_parse_ip(ip6, &p->spec.ips[p->spec.n_ips++]), 0);
}

static void expect_ep(const struct selfreg_ep *e, const char *ns, const char *svc,
		      const char *pod, const char *addr)
{
	char buf[ADDR_STRLEN];

	cr_expect_str_eq(e->ns, ns);
	cr_expect_str_eq(e->service, svc);
	cr_expect_str_eq(e->pod, pod);
	cr_expect_str_eq(e->node, "node-a");
	cr_expect_str_eq(addr_fmt(&e->addr, buf, sizeof(buf)), addr);
}

Test(selfreg, meshed_annotated_pods_give_sorted_unique_endpoints)
{
	struct catalogue *c = catalogue_with_pods();
	struct pod pods[6];
	struct selfreg_ep *eps = NULL;
	int n;

	/* Not meshed, or without a Pod object, or without the annotation:
	 * nothing. Dual-stack: one endpoint per family.
	 */
	set_pod(&pods[5], "shop", "web-9", true, "198.18.1.9", NULL, NULL);
	set_pod(&pods[4], "other", "api-1", false, "198.18.2.1", NULL, &pods[5]);
	set_pod(&pods[3], "shop", "plain", true, "198.18.1.3", NULL, &pods[4]);
	set_pod(&pods[2], "shop", "web-2", true, "198.18.1.2", NULL, &pods[3]);
	set_pod(&pods[1], "shop", "web-1", true, "198.18.1.1", "fd00:198:1::1", &pods[2]);
	set_pod(&pods[0], "shop", "web-2", true, "198.18.1.2", NULL, &pods[1]);
	n = selfreg_endpoints(&pods[0], c, "node-a", &eps);
	cr_assert_eq(n, 4, "got %d", n);
	expect_ep(&eps[0], "shop", "web", "web-1", "198.18.1.1:8080");
	expect_ep(&eps[1], "shop", "web", "web-2", "198.18.1.2:8080");
	expect_ep(&eps[2], "shop", "web", "web-2", "198.18.1.2:9090");
	expect_ep(&eps[3], "shop", "web", "web-1", "[fd00:198:1::1]:8080");
	cr_expect(selfreg_endpoints_equal(eps, eps, (size_t)n));
	free(eps);
	cr_expect_eq(selfreg_endpoints(NULL, c, "node-a", &eps), 0);
	cr_expect_null(eps);
	catalogue_unref(c);
}

/* Decode a slice manifest back, as the backends' readers will. */
static struct obj *decode_slice(const struct reg_local_slice *s)
{
	char err[REG_DECODE_ERR_MAX] = "";
	struct obj *o = NULL;

	cr_assert_eq(decode_json(s->manifest, &o, err), 0, "%s: %s", s->manifest, err);
	cr_assert_eq(o->key.kind, OBJ_ENDPOINTSLICE);
	cr_expect_str_eq(o->key.ns, s->ns);
	cr_expect_str_eq(o->key.name, s->name);
	return o;
}

Test(selfreg, slices_per_service_family_and_port_read_back_as_endpointslices)
{
	struct catalogue *c = catalogue_with_pods();
	struct reg_local_slice *s = NULL, *s2 = NULL;
	struct selfreg_ep *eps = NULL;
	struct pod pods[2];
	struct obj *o;
	char ip[ADDR_STRLEN];
	int n, ne;

	set_pod(&pods[1], "shop", "web-2", true, "198.18.1.2", NULL, NULL);
	set_pod(&pods[0], "shop", "web-1", true, "198.18.1.1", "fd00:198:1::1", &pods[1]);
	ne = selfreg_endpoints(&pods[0], c, "node-a", &eps);
	cr_assert_eq(ne, 4);
	n = selfreg_slices(eps, (size_t)ne, &s);
	cr_assert_eq(n, 3, "got %d", n);
	cr_expect_str_eq(s[0].name, "web-node-a");
	cr_expect_str_eq(s[1].name, "web-node-a-9090");
	cr_expect_str_eq(s[2].name, "web-node-a-ipv6");

	o = decode_slice(&s[0]);
	cr_expect_str_eq(o->slice.service, "web");
	cr_expect_eq(o->slice.family, AF_INET);
	cr_assert_eq(o->slice.n_endpoints, 2);
	cr_expect_str_eq(addr_fmt_ip(&o->slice.endpoints[0].addrs[0], ip, sizeof(ip)), "198.18.1.1");
	cr_expect_str_eq(addr_fmt_ip(&o->slice.endpoints[1].addrs[0], ip, sizeof(ip)), "198.18.1.2");
	cr_expect(o->slice.endpoints[0].ready);
	cr_expect_str_eq(o->slice.endpoints[0].node, "node-a");
	cr_assert_eq(o->slice.n_ports, 1);
	cr_expect_str_eq(o->slice.ports[0].name, "");
	cr_expect_eq(o->slice.ports[0].port, 8080);
	obj_free(o);
	o = decode_slice(&s[2]);
	cr_expect_eq(o->slice.family, AF_INET6);
	obj_free(o);

	/* Deterministic: the same endpoints give the same manifests. */
	cr_assert_eq(selfreg_slices(eps, (size_t)ne, &s2), n);
	cr_expect(reg_local_slices_equal(s, (size_t)n, s2, (size_t)n));
	cr_expect_not(reg_local_slices_equal(s, (size_t)n, s2, (size_t)n - 1));
	reg_local_slices_free(s2, (size_t)n);
	reg_local_slices_free(s, (size_t)n);
	free(eps);
	catalogue_unref(c);
}

Test(selfreg, a_node_name_too_long_for_slice_names_is_refused)
{
	struct selfreg_ep e = { .ns = "shop", .service = "web", .pod = "p" };
	struct reg_local_slice *s = NULL;

	memset(e.node, 'n', OBJ_NAME_MAX - 1);
	cr_assert_eq(addr_parse_ip_port("198.18.1.1:80", &e.addr), 0);
	cr_expect_eq(selfreg_slices(&e, 1, &s), -ENAMETOOLONG);
	cr_expect_null(s);
	memset(e.node, 0, sizeof(e.node));
	memset(e.node, 'n', REG_LOCAL_NODE_MAX);
	memset(e.service, 'w', 63);
	cr_expect_eq(selfreg_slices(&e, 1, &s), 1);
	reg_local_slices_free(s, 1);
}

/* A registering backend that records what it is handed. */
struct handed {
	unsigned int calls;
	size_t n;
	bool complete;
	char first[OBJ_NAME_MAX];
};

static void record_local(void *state, const struct reg_local_slice *slices, size_t n,
			 bool complete)
{
	struct handed *h = state;

	h->calls++;
	h->n = n;
	h->complete = complete;
	snprintf(h->first, sizeof(h->first), "%s", n ? slices[0].name : "");
}

static const struct reg_backend_ops recording_ops = { .scheme = "rec",
						      .register_local = record_local };
static const struct reg_backend_ops watching_ops = { .scheme = "watch" };

Test(selfreg, slices_are_handed_to_registering_backends_when_they_change)
{
	struct catalogue *c = catalogue_with_pods();
	struct selfreg *s = selfreg_new("node-a"), *off;
	struct handed h = { 0 }, h2 = { 0 };
	struct pod pods[2];

	cr_assert_not_null(s);
	cr_expect_not(selfreg_wanted(s), "no backend registers yet");
	cr_assert_eq(selfreg_add_backend(s, &watching_ops, NULL), 0);
	cr_expect_not(selfreg_wanted(s), "a backend without register_local is left out");
	cr_assert_eq(selfreg_add_backend(s, &recording_ops, &h), 0);
	cr_assert_eq(selfreg_add_backend(s, &recording_ops, &h2), 0);
	cr_expect(selfreg_wanted(s));

	set_pod(&pods[1], "shop", "plain", true, "198.18.1.3", NULL, NULL);
	set_pod(&pods[0], "shop", "web-1", true, "198.18.1.1", NULL, &pods[1]);
	selfreg_update(s, &pods[0], c, false);
	cr_expect_eq(h.calls, 1);
	cr_expect_eq(h.n, 1);
	cr_expect_str_eq(h.first, "web-node-a");
	cr_expect_not(h.complete, "handed as partial before every registry synced");
	cr_expect_eq(h2.calls, 1, "every registering backend gets them");
	selfreg_update(s, &pods[0], c, true);
	cr_expect_eq(h.calls, 2, "the same slices, now complete, are handed again");
	cr_expect(h.complete);
	selfreg_update(s, &pods[0], c, true);
	cr_expect_eq(h.calls, 2, "the same slices are not handed again");
	pods[0].meshed = false;
	selfreg_update(s, &pods[0], c, true);
	cr_expect_eq(h.calls, 3);
	cr_expect_eq(h.n, 0, "the pod left the mesh: nothing to register");
	selfreg_free(s);

	/* No node name: nothing is ever registered. */
	off = selfreg_new("");
	cr_assert_not_null(off);
	cr_assert_eq(selfreg_add_backend(off, &recording_ops, &h), 0);
	cr_expect_not(selfreg_wanted(off));
	pods[0].meshed = true;
	selfreg_update(off, &pods[0], c, true);
	cr_expect_eq(h.calls, 3);
	selfreg_free(off);
	catalogue_unref(c);
}

static void expect_path(const char *rel, int ret, enum obj_kind kind, const char *ns,
			const char *name)
{
	struct obj_key k;
	char back[REG_KV_PATH_MAX];

	cr_assert_eq(reg_kv_parse_path(rel, strlen(rel), &k), ret, "'%s'", rel);
	if (ret)
		return;
	cr_expect_eq(k.kind, kind, "'%s'", rel);
	cr_expect_str_eq(k.ns, ns);
	cr_expect_str_eq(k.name, name);
	cr_assert_eq(reg_kv_path(&k, back, sizeof(back)), 0);
	cr_expect_str_eq(back, rel);
}

Test(kv_layout, paths_map_to_keys_and_back)
{
	expect_path("namespaces/shop", 0, OBJ_NAMESPACE, "", "shop");
	expect_path("services/shop/web", 0, OBJ_SERVICE, "shop", "web");
	expect_path("endpointslices/shop/web-node-a", 0, OBJ_ENDPOINTSLICE, "shop", "web-node-a");
	expect_path("pods/shop/web-1", 0, OBJ_POD, "shop", "web-1");
	expect_path("services", -EINVAL, 0, "", "");
	expect_path("services/shop", -EINVAL, 0, "", "");
	expect_path("services/shop/web/x", -EINVAL, 0, "", "");
	expect_path("services//web", -EINVAL, 0, "", "");
	expect_path("services/shop/", -EINVAL, 0, "", "");
	expect_path("namespaces/shop/x", -EINVAL, 0, "", "");
	expect_path("deployments/shop/web", -EINVAL, 0, "", "");
}

static void expect_kv_error(const char *rel, const char *val, const char *msg)
{
	char err[REG_DECODE_ERR_MAX + 64] = "";
	struct obj *o = NULL;
	struct obj_key k;

	cr_assert_eq(reg_kv_parse_path(rel, strlen(rel), &k), 0);
	cr_expect_eq(reg_kv_decode(&k, val, strlen(val), &o, err, sizeof(err)), -EINVAL);
	cr_expect_null(o);
	cr_expect(strstr(err, msg), "expected '%s' in '%s'", msg, err);
}

Test(kv_layout, values_decode_only_when_they_hold_the_keys_object)
{
	const char *ns = "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"shop\"}}";
	char err[REG_DECODE_ERR_MAX + 64] = "";
	struct obj *o = NULL;
	struct obj_key k;

	cr_assert_eq(reg_kv_parse_path("namespaces/shop", 15, &k), 0);
	cr_assert_eq(reg_kv_decode(&k, ns, strlen(ns), &o, err, sizeof(err)), 0, "%s", err);
	obj_free(o);
	expect_kv_error("namespaces/shop", "{\"apiVersion\":", "not JSON");
	expect_kv_error("namespaces/shop", "", "not JSON");
	expect_kv_error("namespaces/shop", "{} {}", "trailing data");
	expect_kv_error("namespaces/other", ns, "holds Namespace shop, not Namespace other");
	expect_kv_error("services/shop/web", ns, "holds Namespace shop, not Service shop/web");
	expect_kv_error("namespaces/shop", "{\"apiVersion\":\"v1\",\"kind\":\"Secret\"}",
			"unsupported");
}
