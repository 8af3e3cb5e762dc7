// SPDX-License-Identifier: GPL-2.0-only
/* Names for services without a cluster IP, end to end: the real agent with
 * --vip-range 198.19.77.0/24 and a file registry holding a Service with no
 * clusterIP; its VIP is the one its name hashes to (computed here
 * independently of the agent), a meshed pod reaches it through the proxy, a
 * second service whose name hashes to the same address is moved and reported
 * in /v1/status, and meshctl shows the VIPs as allocated. Runs in both
 * capture modes.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "servers.h"
#include "sock.h"
#include "topo.h"

#define VIP_NET "198.19.77."

static void up(void)
{
	fixture_up_with("--vip-range " VIP_NET "0/24");
	fixture_backends_start(false);
}

static void down(void)
{
	fixture_backends_stop();
	fixture_down();
}

TestSuite(names, .init = up, .fini = down, .timeout = 120);

/* FNV-1a 64 of "ns/name": the documented home rule (docs/dns.md). */
static uint64_t fnv(const char *ns, const char *name)
{
	char key[256];
	uint64_t h = 14695981039346656037ull;

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	for (const char *p = key; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h;
}

/* The home host byte of @name in a /24: .1 .. .254. */
static unsigned int home_of(const char *name)
{
	return 1 + (unsigned int)(fnv("mesh", name) % 254);
}

/* A Service mesh/@name without clusterIP, port 80 → 198.18.2.14:8080 (api-1). */
static void svc_yaml(char *buf, size_t len, const char *name)
{
	snprintf(buf, len,
		 "---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: mesh}\n"
		 "spec:\n  ports: [{name: http, port: 80, targetPort: 8080}]\n"
		 "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
		 "metadata: {name: %s-1, namespace: mesh, labels: {kubernetes.io/service-name: %s}}\n"
		 "addressType: IPv4\nendpoints: [{addresses: [198.18.2.14]}]\n"
		 "ports: [{name: http, port: 8080}]\n",
		 name, name, name);
}

/* The VIP:port of mesh/@name from /v1/services, waiting up to ~5 s; "" if none. */
static void vip_of(const char *name, char *out, size_t len)
{
	out[0] = '\0';
	for (int i = 0; i < 50 && !out[0]; i++) {
		json_object *o = tenv_admin_get(&env, "/v1/services"), *arr, *s, *v;

		if (o && json_object_object_get_ex(o, "services", &arr)) {
			for (size_t j = 0; j < json_object_array_length(arr); j++) {
				s = json_object_array_get_idx(arr, j);
				if (json_object_object_get_ex(s, "name", &v) &&
				    !strcmp(json_object_get_string(v), name) &&
				    json_object_object_get_ex(s, "vip", &v))
					snprintf(out, len, "%s", json_object_get_string(v));
			}
		}
		json_object_put(o);
		if (!out[0])
			usleep(100000);
	}
}

Test(names, service_without_ip_is_reached_through_its_hashed_vip)
{
	char yaml[8192], one[1024], vip[64], want[64], ident[256];

	svc_yaml(one, sizeof(one), "catalog");
	snprintf(yaml, sizeof(yaml), "%s%s", TOPO_REGISTRY, one);
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	vip_of("catalog", vip, sizeof(vip));
	snprintf(want, sizeof(want), VIP_NET "%u:80", home_of("catalog"));
	cr_assert_str_eq(vip, want, "mesh/catalog got '%s', its home is %s", vip, want);
	cr_assert_eq(tsock_ident("a", vip, ident, sizeof(ident)), 0, "no answer through %s", vip);
	cr_expect_eq(strncmp(ident, "api-1", 5), 0, "answered by '%s'", ident);
	/* The non-meshed pod has no proxy: the VIP exists nowhere on the wire. */
	cr_expect_neq(tsock_ident("c", vip, ident, sizeof(ident)), 0,
		      "pod c reached an allocated VIP without the mesh: '%s'", ident);
	cr_expect_eq(tenv_status_counter(&env, "vips.allocated"), 1);
	cr_expect_eq(tenv_status_counter(&env, "vips.collisions"), 0);
}

Test(names, collision_moves_the_later_name_and_is_reported)
{
	char yaml[8192], a[1024], b[1024], vip_a[64], vip_b[64], ident[256], other[32] = "";
	char out[8192];

	/* A name sorting after "catalog" with the same home in the /24. */
	for (int i = 0; i < 100000 && !other[0]; i++) {
		char n[32];

		snprintf(n, sizeof(n), "shop%d", i);
		if (home_of(n) == home_of("catalog"))
			snprintf(other, sizeof(other), "%s", n);
	}
	cr_assert(other[0]);
	svc_yaml(a, sizeof(a), "catalog");
	svc_yaml(b, sizeof(b), other);
	/* The later name listed first: arrival order must not matter. */
	snprintf(yaml, sizeof(yaml), "%s%s%s", TOPO_REGISTRY, b, a);
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	vip_of("catalog", vip_a, sizeof(vip_a));
	vip_of(other, vip_b, sizeof(vip_b));
	cr_assert(vip_a[0] && vip_b[0], "'%s' '%s'", vip_a, vip_b);
	snprintf(out, sizeof(out), VIP_NET "%u:80", home_of("catalog"));
	cr_expect_str_eq(vip_a, out, "the first name keeps its home");
	cr_expect_str_neq(vip_b, vip_a);
	cr_expect_eq(strncmp(vip_b, VIP_NET, strlen(VIP_NET)), 0, "%s", vip_b);
	cr_expect_eq(tenv_status_counter(&env, "vips.collisions"), 1);
	cr_expect_eq(tenv_status_counter(&env, "vips.allocated"), 2);
	cr_assert_eq(tsock_ident("a", vip_b, ident, sizeof(ident)), 0, "no answer through %s",
		     vip_b);
	cr_expect_eq(strncmp(ident, "api-1", 5), 0, "answered by '%s'", ident);
	/* meshctl marks both as allocated. */
	cr_assert_eq(tenv_capture(out, sizeof(out), "%s/san/meshctl --socket %s/admin.sock services 2>&1",
				  env.build, env.run_dir),
		     0, "%s", out);
	cr_expect_not_null(strstr(out, "(alloc)"), "%s", out);
	cr_expect_null(strstr(out, "198.19.0.10:80 (alloc)"), "a registry VIP marked allocated:\n%s",
		       out);
}

Test(names, meshctl_resolve_answers_the_allocated_vip_along_the_search_path)
{
	char yaml[8192], one[1024], vip[64], want[128], out[8192];

	svc_yaml(one, sizeof(one), "catalog");
	snprintf(yaml, sizeof(yaml), "%s%s", TOPO_REGISTRY, one);
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	vip_of("catalog", vip, sizeof(vip));
	cr_assert(vip[0]);
	*strrchr(vip, ':') = '\0';
	cr_assert_eq(tenv_capture(out, sizeof(out),
				  "%s/san/meshctl --socket %s/admin.sock resolve catalog "
				  "--namespace mesh 2>&1",
				  env.build, env.run_dir),
		     0, "%s", out);
	snprintf(want, sizeof(want), "catalog.mesh.svc.cluster.local. 5 IN A %s", vip);
	cr_expect_not_null(strstr(out, want), "no '%s' in:\n%s", want, out);
	cr_expect_not_null(strstr(out, "answered by the agent"), "%s", out);
	cr_assert_eq(tenv_capture(out, sizeof(out),
				  "%s/san/meshctl --socket %s/admin.sock resolve "
				  "_http._tcp.catalog.mesh.svc.cluster.local --type SRV 2>&1",
				  env.build, env.run_dir),
		     0, "%s", out);
	cr_expect_not_null(strstr(out, "IN SRV 0 100 80 catalog.mesh.svc.cluster.local."), "%s",
			   out);
	/* Not the agent's: forwarded, never answered NXDOMAIN. */
	cr_assert_eq(tenv_capture(out, sizeof(out),
				  "%s/san/meshctl --socket %s/admin.sock resolve example.org "
				  "--namespace mesh 2>&1",
				  env.build, env.run_dir),
		     0, "%s", out);
	cr_expect_not_null(strstr(out, "forwarded unchanged"), "%s", out);
}
