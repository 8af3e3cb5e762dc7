// SPDX-License-Identifier: GPL-2.0-only
/* VIP allocation (agent/model/vip_alloc.c and its use in catalogue.c):
 * the same address for the same name on every build, whatever order the
 * services arrived in; collisions resolved by name order and counted; a
 * registry's own VIPs never shadowed; headless services left alone; one VIP
 * per family the service's slices have.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "model/model.h"
#include "model/vip_alloc.h"
#include "registry/decode.h"
#include "registry/yaml.h"
#include "model_put.h"

/* A Service @ns/@name without a cluster IP, one TCP port 80. */
static void put_svc(struct model *m, const char *ns, const char *name)
{
	char y[512];

	snprintf(y, sizeof(y),
		 "apiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: %s}\n"
		 "spec:\n  ports: [{name: http, port: 80}]\n", name, ns);
	tmodel_put(m, "file", y);
}

static struct cidr range(const char *s)
{
	struct cidr c;

	cr_assert_eq(addr_parse_cidr(s, &c.net, &c.prefix_len), 0, "bad test range %s", s);
	return c;
}

static struct model *model_with(const char *r4, const char *r6)
{
	struct model *m = model_new();
	struct cidr rs[2];
	size_t n = 0;

	cr_assert_not_null(m);
	if (r4)
		rs[n++] = range(r4);
	if (r6)
		rs[n++] = range(r6);
	cr_assert_eq(model_set_vip_ranges(m, rs, n), 0);
	return m;
}

/* The VIPs of @ns/@name in @c as "ip ip", "" for none. */
static const char *vips_of(const struct catalogue *c, const char *ns, const char *name,
			   char *buf, size_t len)
{
	const struct cat_service *s = catalogue_find_service(c, ns, name);
	size_t n = 0;

	cr_assert_not_null(s, "no service %s/%s", ns, name);
	buf[0] = '\0';
	for (size_t i = 0; i < s->n_vips && n < len; i++) {
		char a[ADDR_STRLEN];

		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? " " : "",
				      addr_fmt_ip(&s->vips[i], a, sizeof(a)));
	}
	return buf;
}

Test(vip_alloc, name_hash_is_fixed)
{
	/* Every node and every version must agree: pin the function. */
	cr_expect_eq(vip_name_hash("shop", "web"), vip_name_hash("shop", "web"));
	cr_expect_neq(vip_name_hash("shop", "web"), vip_name_hash("sho", "pweb"));
	cr_expect_neq(vip_name_hash("shop", "web"), vip_name_hash("web", "shop"));
	/* FNV-1a 64 of "a/b", computed independently. */
	cr_expect_eq(vip_name_hash("a", "b"), 0xe620c3190468cf61ull, "%llx",
		     (unsigned long long)vip_name_hash("a", "b"));
}

Test(vip_alloc, same_address_on_every_build_and_in_the_range)
{
	struct model *m = model_with("198.19.7.0/24", NULL);
	struct catalogue *c1, *c2;
	char b1[128], b2[128];
	struct addr a;

	put_svc(m, "shop", "catalog");
	put_svc(m, "shop", "cart");
	c1 = model_build(m);
	c2 = model_build(m);
	cr_assert(c1 && c2);
	cr_expect_str_eq(vips_of(c1, "shop", "catalog", b1, sizeof(b1)),
			 vips_of(c2, "shop", "catalog", b2, sizeof(b2)));
	cr_assert_eq(addr_parse_ip(b1, &a), 0, "%s", b1);
	cr_expect_eq(ntohl(a.ip.v4.s_addr) & 0xffffff00u, 0xc6130700u, "%s", b1);
	cr_expect_neq(ntohl(a.ip.v4.s_addr) & 0xff, 0, "network address given");
	cr_expect_neq(ntohl(a.ip.v4.s_addr) & 0xff, 255, "broadcast address given");
	/* The home address is the hash's, with nothing in its way. */
	cr_expect_eq(ntohl(a.ip.v4.s_addr) & 0xff, 1 + vip_name_hash("shop", "catalog") % 254);
	cr_expect_eq(catalogue_find_service(c1, "shop", "catalog")->vip_source, CAT_VIP_ALLOCATED);
	/* The proxy finds it like any VIP, marked as allocated. */
	a.port = 80;
	cr_assert_not_null(catalogue_find_vip(c1, &a));
	cr_expect(catalogue_find_vip(c1, &a)->vip_allocated);
	cr_expect_eq(catalogue_vip_stats(c1).allocated, 2);
	catalogue_unref(c1);
	catalogue_unref(c2);
	model_free(m);
}

/* Build a catalogue of services s0..s(n-1) in namespace "ns" inserted in
 * the order @order, in a range of 6 usable addresses (/29), and print every
 * service's VIP into @out.
 */
static void build_in_order(const size_t *order, size_t n, char *out, size_t len)
{
	struct model *m = model_with("198.19.7.0/29", NULL);
	struct catalogue *c;
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		char name[32];

		snprintf(name, sizeof(name), "s%zu", order[i]);
		put_svc(m, "ns", name);
		/* Publishing in between must not matter either. */
		catalogue_unref(model_build(m));
	}
	c = model_build(m);
	cr_assert_not_null(c);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char name[32], b[64];

		snprintf(name, sizeof(name), "s%zu", i);
		w += (size_t)snprintf(out + w, len - w, "%s=%s ", name,
				      vips_of(c, "ns", name, b, sizeof(b)));
	}
	catalogue_unref(c);
	model_free(m);
}

Test(vip_alloc, arrival_order_does_not_matter)
{
	const size_t fwd[] = { 0, 1, 2, 3, 4 }, rev[] = { 4, 3, 2, 1, 0 }, mix[] = { 2, 0, 4, 1, 3 };
	char a[512], b[512], c[512];

	/* Five services in six addresses: collisions are near certain. */
	build_in_order(fwd, 5, a, sizeof(a));
	build_in_order(rev, 5, b, sizeof(b));
	build_in_order(mix, 5, c, sizeof(c));
	cr_expect_str_eq(a, b);
	cr_expect_str_eq(a, c);
}

Test(vip_alloc, collisions_go_by_name_order_and_are_counted)
{
	struct vip_req reqs[3] = { { .ns = "ns", .name = "a" }, { .ns = "ns", .name = "b" }, { .ns = "ns", .name = "c" } };
	struct cidr r = range("198.19.7.0/30");	/* two usable: .1 and .2 */
	struct addr taken;
	char buf[ADDR_STRLEN];

	cr_assert_eq(vip_alloc(&r, NULL, 0, reqs, 3), 0);
	/* Whoever hashes where, two get an address and the third none; the one
	 * that lost a contested home is after the winner in name order.
	 */
	size_t got = 0, home = 0, probed = 0;

	for (int i = 0; i < 3; i++) {
		got += reqs[i].outcome == VIP_HOME || reqs[i].outcome == VIP_PROBED;
		home += reqs[i].outcome == VIP_HOME;
		probed += reqs[i].outcome == VIP_PROBED;
	}
	cr_expect_eq(got, 2);
	cr_expect_geq(home, 1);
	cr_expect_eq(reqs[2].outcome == VIP_EXHAUSTED || reqs[1].outcome == VIP_EXHAUSTED ||
			     reqs[0].outcome == VIP_EXHAUSTED, true);
	cr_expect_eq(reqs[0].outcome == VIP_HOME, true, "the first name always gets its home");
	(void)probed;

	/* A registry's own VIP in the range is never given out again. */
	struct vip_req one[2] = { { .ns = "ns", .name = "a" }, { .ns = "ns", .name = "b" } };
	uint64_t ha = 1 + vip_name_hash("ns", "a") % 2;

	taken = r.net;
	taken.ip.v4.s_addr = htonl(ntohl(r.net.ip.v4.s_addr) + (uint32_t)ha);
	cr_assert_eq(vip_alloc(&r, &taken, 1, one, 2), 0);
	/* "a"'s home is the registry's: of the two addresses one is left. */
	cr_expect_neq(one[0].outcome, VIP_HOME, "home %s was the registry's",
		      addr_fmt_ip(&taken, buf, sizeof(buf)));
	cr_expect_eq((one[0].outcome == VIP_EXHAUSTED) + (one[1].outcome == VIP_EXHAUSTED), 1);
	for (int i = 0; i < 2; i++)
		if (one[i].outcome != VIP_EXHAUSTED)
			cr_expect_not(addr_ip_equal(&one[i].out, &taken));
}

Test(vip_alloc, collision_in_a_catalogue_is_reported)
{
	struct model *m = model_with("198.19.7.0/30", NULL);
	struct catalogue *c;
	struct cat_vip_stats st;
	char b[64];
	/* Two names with one home in a two-address range. */
	char second[32] = "";

	for (int i = 1; i < 100 && !second[0]; i++) {
		char name[32];

		snprintf(name, sizeof(name), "x%d", i);
		if (vip_name_hash("ns", name) % 2 == vip_name_hash("ns", "x0") % 2)
			snprintf(second, sizeof(second), "%s", name);
	}
	cr_assert(second[0]);
	put_svc(m, "ns", second);
	put_svc(m, "ns", "x0");
	c = model_build(m);
	cr_assert_not_null(c);
	st = catalogue_vip_stats(c);
	cr_expect_eq(st.allocated, 2);
	cr_expect_eq(st.collisions, 1);
	cr_expect_eq(st.exhausted, 0);
	/* "x0" sorts first: it keeps the home, the other moves. */
	cr_expect_eq(catalogue_find_service(c, "ns", "x0")->vip_source, CAT_VIP_ALLOCATED);
	cr_expect_eq(catalogue_find_service(c, "ns", second)->vip_source, CAT_VIP_PROBED);
	cr_expect_str_neq(vips_of(c, "ns", "x0", b, sizeof(b)), "");
	catalogue_unref(c);
	/* A third cannot fit: counted, left without a VIP, the others keep theirs. */
	put_svc(m, "ns", "zzz");
	c = model_build(m);
	cr_assert_not_null(c);
	st = catalogue_vip_stats(c);
	cr_expect_eq(st.exhausted, 1);
	cr_expect_eq(catalogue_find_service(c, "ns", "zzz")->vip_source, CAT_VIP_EXHAUSTED);
	cr_expect_str_eq(vips_of(c, "ns", "zzz", b, sizeof(b)), "");
	catalogue_unref(c);
	model_free(m);
}

Test(vip_alloc, registry_vips_and_headless_services_are_left_alone)
{
	struct model *m = model_with("198.19.7.0/24", NULL);
	struct catalogue *c;
	char b[64];

	tmodel_put(m, "file",
	    "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
	    "spec:\n  clusterIP: 198.19.0.10\n  ports: [{port: 80}]\n"
	    "---\n"
	    "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: shop}\n"
	    "spec:\n  clusterIP: None\n  ports: [{port: 5432}]\n");
	c = model_build(m);
	cr_assert_not_null(c);
	cr_expect_str_eq(vips_of(c, "shop", "web", b, sizeof(b)), "198.19.0.10");
	cr_expect_eq(catalogue_find_service(c, "shop", "web")->vip_source, CAT_VIP_REGISTRY);
	cr_expect_str_eq(vips_of(c, "shop", "db", b, sizeof(b)), "");
	cr_expect_eq(catalogue_vip_stats(c).allocated, 0);
	catalogue_unref(c);
	model_free(m);
}

Test(vip_alloc, one_vip_per_family_of_the_slices)
{
	struct model *m = model_with("198.19.7.0/24", "fd00:198:19:7::/64");
	struct catalogue *c;
	const struct cat_service *s;
	char b[128];

	put_svc(m, "shop", "only4");	/* no slices: the first range's family */
	put_svc(m, "shop", "dual");
	tmodel_put(m, "file",
	    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	    "metadata: {name: dual-4, namespace: shop, labels: {kubernetes.io/service-name: dual}}\n"
	    "addressType: IPv4\nendpoints: [{addresses: [198.18.1.1]}]\n"
	    "ports: [{name: http, port: 8080}]\n"
	    "---\n"
	    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	    "metadata: {name: dual-6, namespace: shop, labels: {kubernetes.io/service-name: dual}}\n"
	    "addressType: IPv6\nendpoints: [{addresses: [\"fd00:198:18::1\"]}]\n"
	    "ports: [{name: http, port: 8080}]\n");
	c = model_build(m);
	cr_assert_not_null(c);
	s = catalogue_find_service(c, "shop", "only4");
	cr_expect_eq(s->n_vips, 1);
	cr_expect_eq(s->vips[0].family, AF_INET);
	s = catalogue_find_service(c, "shop", "dual");
	cr_assert_eq(s->n_vips, 2, "%s", vips_of(c, "shop", "dual", b, sizeof(b)));
	cr_expect_eq(s->vips[0].family, AF_INET);
	cr_expect_eq(s->vips[1].family, AF_INET6);
	cr_expect_eq(memcmp(s->vips[1].ip.v6.s6_addr, "\xfd\x00\x01\x98\x00\x19\x00\x07", 8), 0);
	/* Each VIP is served by the endpoints of its family. */
	cr_expect_eq(s->n_ports, 2);
	for (size_t i = 0; i < s->n_ports; i++) {
		const struct cat_svc_port *sp = &s->ports[i];

		cr_expect_eq(catalogue_svc_port_at(c, catalogue_svc_port_index(c, sp)), sp);

		cr_expect_eq(sp->svc, s);
		cr_expect_eq(sp->n_endpoints, 1);
		cr_expect_eq(sp->endpoints[0].addr.family, sp->vip.family);
	}
	catalogue_unref(c);
	model_free(m);
}

Test(vip_alloc, no_ranges_no_allocation)
{
	struct model *m = model_new();
	struct catalogue *c;

	put_svc(m, "shop", "cart");
	c = model_build(m);
	cr_assert_not_null(c);
	cr_expect_eq(catalogue_find_service(c, "shop", "cart")->n_vips, 0);
	cr_expect_eq(catalogue_n_svc_ports(c), 0);
	catalogue_unref(c);
	model_free(m);
}
