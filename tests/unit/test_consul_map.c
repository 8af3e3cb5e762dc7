// SPDX-License-Identifier: GPL-2.0-only
/* How one Consul service maps onto model objects (registry/consul_map.h):
 * VIP and port tags, weft.io/ tags read as annotations, instances grouped
 * into EndpointSlices by family and port, Consul's empty-address rule, and
 * what is skipped, rejected or left out.
 */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>

#include "addr.h"
#include "registry/consul_map.h"

static json_object *parse(const char *text)
{
	json_object *o = json_tokener_parse(text);

	cr_assert(o, "bad test JSON: %s", text);
	return o;
}

#define ENTRY(id, addr, node, port)                                                                \
	"{\"Node\":{\"Node\":\"n\",\"Address\":\"" node "\"},\"Service\":{\"ID\":\"" id "\","      \
	"\"Service\":\"web\",\"Address\":\"" addr "\",\"Port\":" port ",\"Weights\":"              \
	"{\"Passing\":1,\"Warning\":1}},\"Checks\":[]}"

static int map(const char *tags, const char *health, uint16_t *last, struct consul_objs *o,
	       char *err, size_t len)
{
	json_object *t = parse(tags), *h = health ? parse(health) : NULL;
	int ret = consul_map_service("test", "shop", "web", t, h, last, o, err, len);

	json_object_put(t);
	json_object_put(h);
	return ret;
}

Test(consul_map, tags_and_instances_make_a_service_and_slices_per_family_and_port)
{
	struct consul_objs o;
	uint16_t last = 0;
	char err[640], ip[64];
	int ret;

	ret = map("[\"weft.io/vip=198.19.0.10,fd00:19::10\",\"weft.io/port=http:80\","
		  "\"weft.io/connect-timeout=2s\",\"v2\",\"weft.io/no-equals\"]",
		  "[" ENTRY("a", "198.18.1.1", "198.18.9.9", "8080") ","
		  ENTRY("b", "", "198.18.1.2", "8080") ","
		  ENTRY("c", "fd00:18::3", "198.18.9.9", "8080") ","
		  ENTRY("d", "198.18.1.4", "198.18.9.9", "9090") "]",
		  &last, &o, err, sizeof(err));
	cr_assert_eq(ret, 0, "%s", err);
	cr_expect_eq(o.svc->svc.n_vips, 2);
	cr_expect_eq(o.svc->svc.n_ports, 1);
	cr_expect_eq(o.svc->svc.ports[0].port, 80);
	cr_expect_str_eq(o.svc->svc.ports[0].name, "http");
	cr_expect_str_eq(o.svc->key.ns, "shop");
	cr_expect(o.svc->svc.policy, "weft.io/connect-timeout was not read as the annotation");
	cr_assert_eq(o.n_slices, 3, "IPv4:8080, IPv6:8080, IPv4:9090");
	cr_expect_str_eq(o.slices[0]->key.name, "web-consul-8080");
	cr_expect_eq(o.slices[0]->slice.n_endpoints, 2);
	/* An empty Service.Address is the node's. */
	addr_fmt_ip(&o.slices[0]->slice.endpoints[1].addrs[0], ip, sizeof(ip));
	cr_expect_str_eq(ip, "198.18.1.2");
	cr_expect_str_eq(o.slices[1]->key.name, "web-consul-8080-v6");
	cr_expect_eq(o.slices[1]->slice.family, AF_INET6);
	cr_expect_str_eq(o.slices[2]->key.name, "web-consul-9090");
	cr_expect_str_eq(o.slices[2]->slice.ports[0].name, "http");
	cr_expect_eq(o.rejected, 0);
	consul_objs_free(&o);
}

Test(consul_map, malformed_instances_are_left_out_alone)
{
	struct consul_objs o;
	uint16_t last = 0;
	char err[640];
	int ret;

	ret = map("[\"weft.io/vip=198.19.0.10\"]",
		  "[" ENTRY("a", "198.18.1.1", "x", "8080") ","
		  ENTRY("b", "not-an-ip", "x", "8080") ","
		  ENTRY("c", "198.18.1.3", "x", "\"8080\"") ","
		  ENTRY("d", "198.18.1.4", "x", "70000") ",42]",
		  &last, &o, err, sizeof(err));
	cr_assert_eq(ret, 0, "%s", err);
	cr_expect_eq(o.rejected, 4);
	cr_assert_eq(o.n_slices, 1);
	cr_expect_eq(o.slices[0]->slice.n_endpoints, 1);
	cr_expect_eq(o.svc->svc.ports[0].port, 8080, "the port of the instances");
	cr_expect_eq(last, 8080);
	consul_objs_free(&o);
}

Test(consul_map, skipped_rejected_or_kept_port)
{
	struct consul_objs o;
	uint16_t last = 0;
	char err[640];

	cr_expect_eq(map("[]", "[]", &last, &o, err, sizeof(err)), -ENOENT, "no port: skipped");
	/* No weft.io/vip tag: no cluster IP, the catalogue allocates one. */
	cr_assert_eq(map("[\"weft.io/port=http:80\"]", "[]", &last, &o, err, sizeof(err)), 0,
		     "%s", err);
	cr_expect_eq(o.svc->svc.n_vips, 0);
	cr_expect_not(o.svc->svc.headless);
	consul_objs_free(&o);
	last = 0;
	cr_expect_eq(map("[\"weft.io/vip=198.19.0.10\"]", "[]", &last, &o, err, sizeof(err)),
		     -ENOENT, "no port known");
	last = 443;
	cr_assert_eq(map("[\"weft.io/vip=198.19.0.10\"]", "[]", &last, &o, err, sizeof(err)), 0,
		     "the last port known keeps a service with no healthy instance: %s", err);
	cr_expect_eq(o.svc->svc.ports[0].port, 443);
	cr_expect_eq(o.n_slices, 0);
	consul_objs_free(&o);
	cr_expect_eq(map("[\"weft.io/vip=not-an-ip\",\"weft.io/port=80\"]", NULL, &last, &o, err,
			 sizeof(err)),
		     -EINVAL, "a bad VIP does not decode");
	cr_expect_eq(map("[\"weft.io/vip=198.19.0.10\",\"weft.io/port=http:0\"]", NULL, &last, &o,
			 err, sizeof(err)),
		     -EINVAL);
}
