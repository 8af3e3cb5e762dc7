// SPDX-License-Identifier: GPL-2.0-only
/* The bpf/lib decision helpers (addr.h, decide.h, inbound.h, orig.h) compiled
 * with the host cc: loopback, IPv4-mapped, exclusions, the agent's cgroup, the
 * inbound decision, fail-open and the heartbeat, and the mesh_orig_dst key the two sides of the datapath
 * must agree on.
 */
#include <arpa/inet.h>
#include <linux/types.h>
#include <stdbool.h>
#include <string.h>

#include <criterion/criterion.h>

/* The shim: what vmlinux.h and bpf_endian.h give the BPF build. */
#define bpf_htonl(x) htonl(x)
#define bpf_ntohl(x) ntohl(x)
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#include "abi.h"
#include "lib/decide.h"
#include "lib/heartbeat.h"
#include "lib/inbound.h"
#include "lib/orig.h"

static struct mesh_addr ip(const char *s, __u8 *family)
{
	struct mesh_addr a = { { 0 } };

	if (inet_pton(AF_INET, s, &a.addr[0]) == 1) {
		*family = MESH_AF_INET;
	} else {
		cr_assert_eq(inet_pton(AF_INET6, s, a.addr), 1, "bad test address %s", s);
		*family = MESH_AF_INET6;
	}
	return a;
}

static struct mesh_connect_req req(const char *dst, __u16 port)
{
	struct mesh_connect_req r = { .port = port, .is_tcp = 1 };

	r.dst = ip(dst, &r.family);
	return r;
}

static struct mesh_cidr cidr(const char *net, __u8 prefix_len)
{
	struct mesh_cidr c = { .prefix_len = prefix_len };

	c.addr = ip(net, &c.family);
	return c;
}

/* The agent: marks 0x77 (upstream) and 0x79 (inbound side), cgroup id 4242 at
 * depth 3.
 */
#define AGENT_CG 4242
static const struct mesh_config marks = {
	.mark = 0x77, .inbound_mark = 0x79, .agent_cgroup_id = AGENT_CG, .agent_cgroup_level = 3,
};

static struct mesh_pod pod(void)
{
	return (struct mesh_pod){ .pod_id = 7, .proxy_port = 15001, .flags = MESH_POD_F_CAPTURE };
}

static bool loopback(const char *s)
{
	__u8 family;
	struct mesh_addr a = ip(s, &family);

	mesh_addr_unmap(&a, &family);
	return mesh_addr_is_loopback(&a, family);
}

Test(bpf_addr, loopback_covers_127_8_and_v6_and_mapped)
{
	cr_expect(loopback("127.0.0.1"));
	cr_expect(loopback("127.255.255.254"));
	cr_expect(loopback("::1"));
	cr_expect(loopback("::ffff:127.0.0.1"));
	cr_expect(loopback("::ffff:127.9.8.7"));
	cr_expect_not(loopback("128.0.0.1"));
	cr_expect_not(loopback("198.18.0.10"));
	cr_expect_not(loopback("::2"));
	cr_expect_not(loopback("::"));
	cr_expect_not(loopback("::127.0.0.1"), "IPv4-compatible is not mapped");
	cr_expect_not(loopback("::ffff:198.18.0.1"));
}

Test(bpf_addr, unmap_only_touches_mapped)
{
	__u8 family;
	struct mesh_addr a = ip("::ffff:198.18.0.10", &family);
	struct mesh_addr b;

	mesh_addr_unmap(&a, &family);
	cr_expect_eq(family, MESH_AF_INET);
	b = ip("198.18.0.10", &family);
	cr_expect_eq(memcmp(&a, &b, sizeof(a)), 0);

	a = ip("fd57:6566:7400::10", &family);
	b = a;
	mesh_addr_unmap(&a, &family);
	cr_expect_eq(family, MESH_AF_INET6);
	cr_expect_eq(memcmp(&a, &b, sizeof(a)), 0);
}

static bool in(const char *addr, const char *net, __u8 len)
{
	__u8 family;
	struct mesh_addr a = ip(addr, &family);
	struct mesh_cidr c = cidr(net, len);

	return mesh_addr_in_cidr(&a, family, &c);
}

Test(bpf_addr, cidr_match_at_the_boundaries)
{
	cr_expect(in("198.18.0.10", "198.18.0.0", 24));
	cr_expect(in("198.18.0.255", "198.18.0.0", 24));
	cr_expect_not(in("198.18.1.0", "198.18.0.0", 24));
	cr_expect(in("198.19.255.255", "198.18.0.0", 15));
	cr_expect_not(in("198.20.0.0", "198.18.0.0", 15));
	cr_expect(in("198.18.0.10", "198.18.0.10", 32));
	cr_expect_not(in("198.18.0.11", "198.18.0.10", 32));
	cr_expect(in("1.2.3.4", "0.0.0.0", 0), "/0 is every IPv4 address");
	cr_expect_not(in("fd57::1", "0.0.0.0", 0), "but no IPv6 address");
	cr_expect(in("fd57:6566:7400::10", "fd57:6566:7400::", 64));
	cr_expect_not(in("fd57:6566:7401::10", "fd57:6566:7400::", 48));
	cr_expect(in("fd57:6566:7400::11", "fd57:6566:7400::10", 127));
	cr_expect_not(in("fd57:6566:7400::12", "fd57:6566:7400::10", 127));
	cr_expect(in("fd57:6566:7400::10", "fd57:6566:7400::10", 128));
	cr_expect(in("fd57::1", "fc00::", 7));
	cr_expect_not(in("fe80::1", "fc00::", 7));
}

Test(bpf_addr, cidr_rejects_unused_and_impossible_slots)
{
	__u8 family;
	struct mesh_addr a = ip("198.18.0.10", &family);
	struct mesh_cidr unused = { 0 };
	struct mesh_cidr too_long = cidr("198.18.0.10", 33);

	cr_expect_not(mesh_addr_in_cidr(&a, family, &unused));
	cr_expect_not(mesh_addr_in_cidr(&a, family, &too_long));
}

Test(bpf_decide, redirects_enrolled_tcp)
{
	struct mesh_pod p = pod();
	struct mesh_connect_req r = req("198.18.0.10", 80);

	cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_REDIRECTED);
	r = req("fd57:6566:7400::10", 80);
	cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_REDIRECTED);
	r = req("::ffff:198.18.0.10", 80);
	cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_REDIRECTED);
}

Test(bpf_decide, leaves_udp_and_unenrolled_alone)
{
	struct mesh_pod p = pod();
	struct mesh_connect_req r = req("198.18.0.10", 80);

	cr_expect_eq(mesh_decide_connect(&r, NULL, NULL), MESH_R_NOT_ENROLLED);
	p.flags = 0;
	cr_expect_eq(mesh_decide_connect(&r, &p, NULL), MESH_R_NOT_ENROLLED, "capture off");
	p = pod();
	p.proxy_port = 0;
	cr_expect_eq(mesh_decide_connect(&r, &p, NULL), MESH_R_NOT_ENROLLED, "no listener");
	p = pod();
	r.is_tcp = 0;
	cr_expect_eq(mesh_decide_connect(&r, &p, NULL), MESH_R_NOT_TCP);
}

Test(bpf_decide, agent_cgroup_wins_before_loopback)
{
	struct mesh_pod p = pod();
	struct mesh_connect_req r = req("127.0.0.1", 80);

	r.cgroup_at_agent_level = AGENT_CG;
	cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_AGENT_CGROUP, "before loopback");
	r = req("198.18.0.10", 80);
	r.cgroup_at_agent_level = AGENT_CG;
	cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_AGENT_CGROUP);
	r.is_tcp = 0;
	cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_NOT_TCP, "not TCP comes first");
	r.is_tcp = 1;
	cr_expect_eq(mesh_decide_connect(&r, NULL, &marks), MESH_R_NOT_ENROLLED,
		     "an unenrolled netns comes first");
}

Test(bpf_decide, any_other_cgroup_is_redirected)
{
	struct mesh_pod p = pod();
	struct mesh_connect_req r = req("198.18.0.10", 80);
	const __u64 others[] = { 0, 1, AGENT_CG - 1, AGENT_CG + 1, ~0ull };

	/* A sibling or parent of the agent's cgroup, a task shallower than its
	 * depth (0), anything: only the agent's own id is the agent.
	 */
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		r.cgroup_at_agent_level = others[i];
		cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_REDIRECTED,
			     "cgroup id %llu", (unsigned long long)others[i]);
	}
}

/* The config a pod's socket cannot make count as the agent's: no cgroup
 * written, the root (depth 0, which every task descends from), no config.
 */
Test(bpf_decide, unset_or_root_agent_cgroup_matches_nothing)
{
	struct mesh_pod p = pod();
	struct mesh_connect_req r = req("198.18.0.10", 80);
	struct mesh_config no_id = marks, root = marks;

	no_id.agent_cgroup_id = 0;
	root.agent_cgroup_level = 0;
	r.cgroup_at_agent_level = 0;
	cr_expect_eq(mesh_decide_connect(&r, &p, &no_id), MESH_R_REDIRECTED, "id 0 vs 0");
	r.cgroup_at_agent_level = AGENT_CG;
	cr_expect_eq(mesh_decide_connect(&r, &p, &root), MESH_R_REDIRECTED, "level 0");
	cr_expect_eq(mesh_decide_connect(&r, &p, NULL), MESH_R_REDIRECTED, "no config");
	cr_expect_eq(mesh_decide_connect(&r, &p, &(struct mesh_config){ 0 }), MESH_R_REDIRECTED);
	cr_expect(!mesh_is_agent_socket(&root, AGENT_CG));
	cr_expect(!mesh_is_agent_socket(&no_id, 0));
	cr_expect(mesh_is_agent_socket(&marks, AGENT_CG));
}

/* The marks prove nothing: the request carries none, and a config with only
 * marks set recognises no socket as the agent's.
 */
Test(bpf_decide, marks_alone_are_not_the_agent)
{
	struct mesh_pod p = pod();
	struct mesh_connect_req r = req("198.18.0.10", 8080);
	const struct mesh_config only_marks = { .mark = 0x77, .inbound_mark = 0x79 };

	cr_expect_eq(mesh_decide_connect(&r, &p, &only_marks), MESH_R_REDIRECTED);
	r.cgroup_at_agent_level = AGENT_CG;
	cr_expect_eq(mesh_decide_connect(&r, &p, &only_marks), MESH_R_REDIRECTED);
}

/* What sockops records for sk_lookup: the agent's socket carrying the inbound
 * mark, and nothing else.
 */
Test(bpf_decide, only_the_agents_inbound_socket_is_recorded)
{
	struct mesh_config no_inbound = marks;

	cr_expect(mesh_is_agent_inbound_socket(&marks, 0x79, AGENT_CG));
	cr_expect(!mesh_is_agent_inbound_socket(&marks, 0x79, AGENT_CG + 1),
		  "the inbound mark on a pod's socket");
	cr_expect(!mesh_is_agent_inbound_socket(&marks, 0x79, 0), "a task above the agent's depth");
	cr_expect(!mesh_is_agent_inbound_socket(&marks, 0x77, AGENT_CG),
		  "the agent's upstream socket");
	cr_expect(!mesh_is_agent_inbound_socket(&marks, 0, AGENT_CG), "unmarked");
	no_inbound.inbound_mark = 0;
	cr_expect(!mesh_is_agent_inbound_socket(&no_inbound, 0, AGENT_CG),
		  "no inbound mark configured: 0 is not a match");
	cr_expect(!mesh_is_agent_inbound_socket(NULL, 0x79, AGENT_CG));
}

Test(bpf_decide, loopback_destinations_stay)
{
	struct mesh_pod p = pod();
	const char *dsts[] = { "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1" };

	for (size_t i = 0; i < sizeof(dsts) / sizeof(dsts[0]); i++) {
		struct mesh_connect_req r = req(dsts[i], 15001);

		cr_expect_eq(mesh_decide_connect(&r, &p, NULL), MESH_R_LOOPBACK, "%s", dsts[i]);
	}
}

Test(bpf_decide, excluded_ports)
{
	struct mesh_pod p = pod();
	struct mesh_connect_req r = req("198.18.0.10", 443);

	p.excl_ports[MESH_MAX_EXCL_PORTS - 1] = 443;
	cr_expect_eq(mesh_decide_connect(&r, &p, NULL), MESH_R_EXCL_PORT, "last slot counts");
	r.port = 80;
	cr_expect_eq(mesh_decide_connect(&r, &p, NULL), MESH_R_REDIRECTED);
	r.port = 0;
	cr_expect_eq(mesh_decide_connect(&r, &p, NULL), MESH_R_REDIRECTED,
		     "an unused slot (0) excludes nothing");
}

Test(bpf_decide, excluded_cidrs_cover_mapped_destinations)
{
	struct mesh_pod p = pod();
	struct mesh_connect_req r;

	p.excl_cidrs[0] = cidr("fd57:6566:7400::", 48);
	p.excl_cidrs[MESH_MAX_EXCL_CIDRS - 1] = cidr("198.18.0.0", 24);
	r = req("198.18.0.10", 80);
	cr_expect_eq(mesh_decide_connect(&r, &p, NULL), MESH_R_EXCL_CIDR);
	r = req("::ffff:198.18.0.10", 80);
	cr_expect_eq(mesh_decide_connect(&r, &p, NULL), MESH_R_EXCL_CIDR, "IPv4 rule, mapped dst");
	r = req("fd57:6566:7400::10", 80);
	cr_expect_eq(mesh_decide_connect(&r, &p, NULL), MESH_R_EXCL_CIDR);
	r = req("198.18.1.10", 80);
	cr_expect_eq(mesh_decide_connect(&r, &p, NULL), MESH_R_REDIRECTED);
	r = req("fd57:6566:7401::10", 80);
	cr_expect_eq(mesh_decide_connect(&r, &p, NULL), MESH_R_REDIRECTED);
}

Test(bpf_orig, key_of_mapped_client_is_ipv4)
{
	struct mesh_conn_key k4, k6;
	struct mesh_addr a;
	__u8 family;

	memset(&k4, 0xaa, sizeof(k4));
	memset(&k6, 0x55, sizeof(k6));
	a = ip("127.0.0.1", &family);
	mesh_conn_key_set(&k4, 42, family, &a, 40000);
	a = ip("::ffff:127.0.0.1", &family);
	mesh_conn_key_set(&k6, 42, family, &a, 40000);
	cr_expect_eq(memcmp(&k4, &k6, sizeof(k4)), 0, "padding included: the map hashes bytes");
	cr_expect_eq(k4.family, MESH_AF_INET);
	cr_expect_eq(k4.port, 40000);
	cr_expect_eq(k4.netns_cookie, 42);
}

Test(bpf_orig, key_of_ipv6_client_stays_ipv6)
{
	struct mesh_conn_key k;
	struct mesh_addr a;
	__u8 family;

	a = ip("::1", &family);
	mesh_conn_key_set(&k, 1, family, &a, 1);
	cr_expect_eq(k.family, MESH_AF_INET6);
	cr_expect_eq(memcmp(&k.addr, &a, sizeof(a)), 0);
}

Test(bpf_orig, answers_in_the_family_asked)
{
	struct mesh_orig_dst o = { .family = MESH_AF_INET, .port = htons(80) };
	struct mesh_addr six, want;
	__u8 family;
	__u32 four;

	o.addr = ip("198.18.0.10", &family);
	cr_assert(mesh_orig_as_v4(&o, &four));
	cr_expect_eq(four, o.addr.addr[0]);
	cr_assert(mesh_orig_as_v6(&o, &six));
	want = ip("::ffff:198.18.0.10", &family);
	cr_expect_eq(memcmp(&six, &want, sizeof(six)), 0);

	o.family = MESH_AF_INET6;
	o.addr = ip("::ffff:198.18.0.10", &family);
	cr_assert(mesh_orig_as_v4(&o, &four), "mapped answers SOL_IP");
	cr_expect_eq(four, inet_addr("198.18.0.10"));

	o.addr = ip("fd57:6566:7400::10", &family);
	cr_expect_not(mesh_orig_as_v4(&o, &four), "real IPv6 cannot be a sockaddr_in");
	cr_assert(mesh_orig_as_v6(&o, &six));
	cr_expect_eq(memcmp(&six, &o.addr, sizeof(six)), 0);
}

Test(bpf_orig, only_original_dst_queries_are_ours)
{
	cr_expect(mesh_is_orig_dst_query(0, 80));
	cr_expect(mesh_is_orig_dst_query(41, 80));
	cr_expect_not(mesh_is_orig_dst_query(1, 80), "SOL_SOCKET 80 is something else");
	cr_expect_not(mesh_is_orig_dst_query(0, 1));
}

static struct mesh_pod inbound_pod(void)
{
	struct mesh_pod p = pod();

	p.inbound_port = 15006;
	return p;
}

/* A SYN from 198.18.9.1 to the pod's 198.18.9.2:@port, in on @ifindex. */
static struct mesh_inbound_req in_req(__u32 ifindex, __u16 port)
{
	struct mesh_inbound_req r = { .ingress_ifindex = ifindex, .local_port = port,
				      .is_tcp = 1 };

	r.remote = ip("198.18.9.1", &r.family);
	r.local = ip("198.18.9.2", &r.family);
	return r;
}

Test(bpf_inbound, captures_tcp_from_the_pods_interfaces)
{
	struct mesh_pod p = inbound_pod();
	struct mesh_inbound_req r = in_req(2, 8080);

	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_CAPTURED);
	r.local_port = 443;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_CAPTURED);
	p.flags = 0;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_CAPTURED,
		     "inbound capture does not depend on outbound capture");
}

Test(bpf_inbound, leaves_alone_in_counter_order)
{
	struct mesh_pod p = inbound_pod();
	struct mesh_inbound_req r = in_req(2, 8080);

	r.is_tcp = 0;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_NOT_TCP);
	r = in_req(2, 8080);
	cr_expect_eq(mesh_decide_inbound(&r, NULL), MESH_R_IN_OFF, "not enrolled");
	p.inbound_port = 0;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_OFF, "inbound port 0");
	p = inbound_pod();
	r = in_req(MESH_LOOPBACK_IFINDEX, 8080);
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_LOOPBACK);
	r = in_req(2, 8080);
	r.remote = r.local;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_LOOPBACK,
		     "to its own address, the kernel names the interface, not lo");
	r = in_req(2, 8080);
	r.is_agent = 1;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_AGENT);
	r.local_port = 15006;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_AGENT, "before the port checks");
	r = in_req(3, 15006);
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_PROXY_PORT, "the inbound port");
	r.local_port = 15001;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_PROXY_PORT, "the outbound port");
	p.excl_in_ports[MESH_MAX_EXCL_PORTS - 1] = 8080;
	r.local_port = 8080;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_EXCL_PORT, "last slot counts");
	r.local_port = 0;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_CAPTURED,
		     "an unused slot (0) excludes nothing");
	p.excl_ports[0] = 9090;
	r.local_port = 9090;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_CAPTURED,
		     "outbound exclusions are not inbound ones");
}

Test(bpf_inbound, flow_key_of_mapped_pair_is_ipv4)
{
	struct mesh_flow_key k4, k6, other;
	struct mesh_addr s, d;
	__u8 family;

	memset(&k4, 0xaa, sizeof(k4));
	memset(&k6, 0x55, sizeof(k6));
	s = ip("198.18.9.1", &family);
	d = ip("198.18.9.2", &family);
	mesh_flow_key_set(&k4, 42, family, &s, 40000, &d, 8080);
	s = ip("::ffff:198.18.9.1", &family);
	d = ip("::ffff:198.18.9.2", &family);
	mesh_flow_key_set(&k6, 42, family, &s, 40000, &d, 8080);
	cr_expect_eq(memcmp(&k4, &k6, sizeof(k4)), 0, "padding included: the map hashes bytes");
	cr_expect_eq(k6.family, MESH_AF_INET);
	mesh_flow_key_set(&other, 42, family, &s, 40000, &d, 8081);
	cr_expect_neq(memcmp(&k4, &other, sizeof(k4)), 0, "the ports are part of the key");
	s = ip("fd57::1", &family);
	d = ip("fd57::2", &family);
	mesh_flow_key_set(&k6, 42, family, &s, 40000, &d, 8080);
	cr_expect_eq(k6.family, MESH_AF_INET6);
	cr_expect_eq(memcmp(&k6.src, &s, sizeof(s)), 0);
}

/* ------------------------------------------------------------ fail-open */

#define SEC_NS 1000000000ull

Test(bpf_heartbeat, stale_only_past_the_threshold)
{
	const struct mesh_heartbeat hb = { .beat_ns = 100 * SEC_NS, .stale_after_ns = 5 * SEC_NS };

	cr_expect_not(mesh_heartbeat_is_stale(&hb, 100 * SEC_NS), "just beat");
	cr_expect_not(mesh_heartbeat_is_stale(&hb, 105 * SEC_NS), "exactly the threshold");
	cr_expect(mesh_heartbeat_is_stale(&hb, 105 * SEC_NS + 1), "past it");
	cr_expect(mesh_heartbeat_is_stale(&hb, 1000 * SEC_NS));
}

Test(bpf_heartbeat, stale_takes_proof)
{
	struct mesh_heartbeat hb = { .beat_ns = 0, .stale_after_ns = 5 * SEC_NS };

	cr_expect_not(mesh_heartbeat_is_stale(NULL, 1000 * SEC_NS), "no entry");
	cr_expect_not(mesh_heartbeat_is_stale(&hb, 1000 * SEC_NS), "never beat");
	hb = (struct mesh_heartbeat){ .beat_ns = 100 * SEC_NS, .stale_after_ns = 0 };
	cr_expect_not(mesh_heartbeat_is_stale(&hb, 1000 * SEC_NS), "threshold 0: never stale");
	hb.stale_after_ns = 5 * SEC_NS;
	cr_expect_not(mesh_heartbeat_is_stale(&hb, 50 * SEC_NS), "a beat in the future");
}

Test(bpf_decide, fails_open_only_for_a_fail_open_pod_with_a_stale_agent)
{
	struct mesh_pod p = pod();
	struct mesh_connect_req r = req("198.18.0.10", 80);

	r.fails_open = 1;
	cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_REDIRECTED,
		     "a pod that did not ask is captured, heartbeat or not");
	p.flags |= MESH_POD_F_FAIL_OPEN;
	cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_FAIL_OPEN);
	r = req("fd57:6566:7400::10", 80);
	r.fails_open = 1;
	cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_FAIL_OPEN, "IPv6 too");
	r.fails_open = 0;
	cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_REDIRECTED,
		     "a fresh heartbeat captures a fail-open pod");
}

Test(bpf_decide, fail_open_counts_only_what_would_be_captured)
{
	struct mesh_pod p = pod();
	struct mesh_connect_req r = req("127.0.0.1", 80);

	p.flags |= MESH_POD_F_FAIL_OPEN;
	p.excl_ports[0] = 5432;
	r.fails_open = 1;
	cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_LOOPBACK);
	r = req("198.18.0.10", 5432);
	r.fails_open = 1;
	cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_EXCL_PORT);
	r = req("198.18.0.10", 80);
	r.fails_open = 1;
	r.cgroup_at_agent_level = AGENT_CG;
	cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_AGENT_CGROUP);
	p.flags = MESH_POD_F_FAIL_OPEN;
	cr_expect_eq(mesh_decide_connect(&r, &p, &marks), MESH_R_NOT_ENROLLED,
		     "capture off wins");
}

Test(bpf_inbound, fails_open_to_the_application)
{
	struct mesh_pod p = inbound_pod();
	struct mesh_inbound_req r = in_req(2, 8080);

	r.fails_open = 1;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_CAPTURED, "did not ask");
	p.flags |= MESH_POD_F_FAIL_OPEN;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_FAIL_OPEN);
	r.fails_open = 0;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_CAPTURED, "fresh heartbeat");
	r = in_req(MESH_LOOPBACK_IFINDEX, 8080);
	r.fails_open = 1;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_LOOPBACK, "first reason wins");
	r = in_req(2, 8080);
	r.fails_open = 1;
	r.is_agent = 1;
	cr_expect_eq(mesh_decide_inbound(&r, &p), MESH_R_IN_AGENT);
}

/* DNS capture: port 53 of a pod with a DNS port, UDP or TCP alike; IPv4,
 * IPv4-mapped and IPv6 resolvers, never the agent's own sockets or loopback.
 */
Test(bpf_decide, dns_queries_of_a_pod_with_a_dns_port)
{
	struct mesh_pod p = pod();
	struct mesh_connect_req r = req("198.18.2.53", 53);

	cr_expect_eq(mesh_decide_dns(&r, &p, &marks), MESH_R_MAX, "no DNS port: not DNS at all");
	p.dns_port = 15053;
	cr_expect_eq(mesh_decide_dns(&r, &p, &marks), MESH_R_DNS_CAPTURED);
	r.is_tcp = 0;
	cr_expect_eq(mesh_decide_dns(&r, &p, &marks), MESH_R_DNS_CAPTURED, "UDP as TCP");
	r = req("::ffff:198.18.2.53", 53);
	cr_expect_eq(mesh_decide_dns(&r, &p, &marks), MESH_R_DNS_CAPTURED, "IPv4-mapped");
	r = req("fd00::53", 53);
	cr_expect_eq(mesh_decide_dns(&r, &p, &marks), MESH_R_DNS_CAPTURED, "IPv6");
	r = req("::1", 53);
	cr_expect_eq(mesh_decide_dns(&r, &p, &marks), MESH_R_LOOPBACK, "IPv6 loopback");
	r = req("127.0.0.53", 53);
	cr_expect_eq(mesh_decide_dns(&r, &p, &marks), MESH_R_LOOPBACK);
	r = req("198.18.2.53", 5353);
	cr_expect_eq(mesh_decide_dns(&r, &p, &marks), MESH_R_MAX, "another port");
	r = req("198.18.2.53", 53);
	r.cgroup_at_agent_level = AGENT_CG;
	cr_expect_eq(mesh_decide_dns(&r, &p, &marks), MESH_R_AGENT_CGROUP);
	r.cgroup_at_agent_level = 0;
	/* The pod's TCP exclusions do not apply to DNS. */
	p.excl_ports[0] = 53;
	cr_expect_eq(mesh_decide_dns(&r, &p, &marks), MESH_R_DNS_CAPTURED);
	r.fails_open = 1;
	cr_expect_eq(mesh_decide_dns(&r, &p, &marks), MESH_R_DNS_CAPTURED,
		     "a stale heartbeat only matters to a fail-open pod");
	p.flags |= MESH_POD_F_FAIL_OPEN;
	cr_expect_eq(mesh_decide_dns(&r, &p, &marks), MESH_R_FAIL_OPEN);
	cr_expect_eq(mesh_decide_dns(&r, NULL, &marks), MESH_R_MAX, "not enrolled");
}
