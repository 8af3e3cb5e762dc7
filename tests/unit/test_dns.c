// SPDX-License-Identifier: GPL-2.0-only
/* agent/dns/answer.c: which names the agent owns and what it answers for
 * them; everything else (unknown services, other zones, the search path's
 * misses, responses, garbage) is left to the upstream. Queries are built
 * and responses read with libldns, as a client library would.
 */
#include <arpa/inet.h>
#include <string.h>

#include <criterion/criterion.h>
#include <ldns/ldns.h>

#include "dns/dns.h"
#include "model/model.h"
#include "registry/decode.h"
#include "registry/yaml.h"
#include "model_put.h"

static const char registry[] =
	"apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
	"spec:\n  clusterIPs: [198.19.0.10, \"fd00:198:19::10\"]\n"
	"  ports: [{name: http, port: 80}, {name: grpc, port: 9000}, {port: 7, protocol: UDP, name: echo}]\n"
	"---\n"
	"apiVersion: v1\nkind: Service\nmetadata: {name: catalog, namespace: shop}\n"
	"spec:\n  ports: [{name: http, port: 8080}]\n"
	"---\n"
	"apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: shop}\n"
	"spec:\n  clusterIP: None\n  ports: [{port: 5432}]\n";

static struct model *m;
static struct catalogue *cat;

static void put(const char *yaml)
{
	tmodel_put(m, "file", yaml);
}

static void setup(void)
{
	struct cidr r;

	m = model_new();
	cr_assert_not_null(m);
	cr_assert_eq(addr_parse_cidr("198.19.77.0/24", &r.net, &r.prefix_len), 0);
	cr_assert_eq(model_set_vip_ranges(m, &r, 1), 0);
	put(registry);
	cat = model_build(m);
	cr_assert_not_null(cat);
}

static void teardown(void)
{
	catalogue_unref(cat);
	model_free(m);
}

TestSuite(dns, .init = setup, .fini = teardown);

/* A query for @name/@type (id 0x1234, RD), with EDNS size @edns (0: none). */
static uint8_t *query(const char *name, ldns_rr_type type, uint16_t edns, size_t *len)
{
	ldns_pkt *q = ldns_pkt_query_new(ldns_dname_new_frm_str(name), type, LDNS_RR_CLASS_IN,
					 LDNS_RD);
	uint8_t *wire = NULL;

	cr_assert_not_null(q);
	ldns_pkt_set_id(q, 0x1234);
	if (edns)
		ldns_pkt_set_edns_udp_size(q, edns);
	cr_assert_eq(ldns_pkt2wire(&wire, q, len), LDNS_STATUS_OK);
	ldns_pkt_free(q);
	return wire;
}

/* Ask @name/@type over UDP (@tcp false) or TCP; the parsed response, or NULL
 * when the agent would forward.
 */
static ldns_pkt *ask(const char *domain, const char *name, ldns_rr_type type, uint16_t edns,
		     bool tcp)
{
	size_t len, out_len = 0;
	uint8_t *q = query(name, type, edns, &len), *out = NULL;
	ldns_pkt *r = NULL;
	int rc = dns_answer(cat, domain, q, len, tcp, &out, &out_len);

	free(q);
	cr_assert(rc == DNS_ANSWER || rc == DNS_FORWARD, "rc %d", rc);
	if (rc == DNS_FORWARD)
		return NULL;
	cr_assert_eq(ldns_wire2pkt(&r, out, out_len), LDNS_STATUS_OK);
	free(out);
	cr_expect_eq(ldns_pkt_id(r), 0x1234);
	cr_expect(ldns_pkt_qr(r));
	cr_expect(ldns_pkt_aa(r));
	cr_expect(ldns_pkt_rd(r));
	cr_expect_eq(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
	cr_expect_eq(ldns_pkt_qdcount(r), 1);
	return r;
}

/* The i-th record of @sec in presentation form ("name TTL IN A x"). */
static char *rr_text(const ldns_pkt *r, ldns_pkt_section sec, size_t i)
{
	ldns_rr_list *l = ldns_pkt_get_section_clone(r, sec);
	char *s;

	cr_assert_lt(i, ldns_rr_list_rr_count(l));
	s = ldns_rr2str(ldns_rr_list_rr(l, i));
	ldns_rr_list_deep_free(l);
	/* One line, without the newline and with single spaces. */
	for (char *p = s; *p; p++)
		if (*p == '\t' || *p == '\n')
			*p = *p == '\n' ? '\0' : ' ';
	return s;
}

static void expect_rr(const ldns_pkt *r, ldns_pkt_section sec, size_t i, const char *want)
{
	char *s = rr_text(r, sec, i);

	cr_expect_str_eq(s, want);
	free(s);
}

Test(dns, a_and_aaaa_of_a_service_are_its_vips)
{
	ldns_pkt *r = ask("cluster.local", "web.shop.svc.cluster.local.", LDNS_RR_TYPE_A, 0, false);

	cr_assert_not_null(r);
	cr_assert_eq(ldns_pkt_ancount(r), 1);
	expect_rr(r, LDNS_SECTION_ANSWER, 0, "web.shop.svc.cluster.local. 5 IN A 198.19.0.10");
	ldns_pkt_free(r);
	r = ask("cluster.local", "web.shop.svc.cluster.local.", LDNS_RR_TYPE_AAAA, 0, false);
	cr_assert_not_null(r);
	cr_assert_eq(ldns_pkt_ancount(r), 1);
	expect_rr(r, LDNS_SECTION_ANSWER, 0, "web.shop.svc.cluster.local. 5 IN AAAA fd00:198:19::10");
	ldns_pkt_free(r);
}

Test(dns, the_name_is_echoed_as_asked_and_matched_without_case)
{
	ldns_pkt *r = ask("cluster.local", "WeB.SHOP.svc.Cluster.Local.", LDNS_RR_TYPE_A, 0, false);

	cr_assert_not_null(r);
	expect_rr(r, LDNS_SECTION_ANSWER, 0, "WeB.SHOP.svc.Cluster.Local. 5 IN A 198.19.0.10");
	ldns_pkt_free(r);
}

Test(dns, an_allocated_vip_is_answered_and_a_missing_family_is_nodata)
{
	ldns_pkt *r = ask("cluster.local", "catalog.shop.svc.cluster.local.", LDNS_RR_TYPE_A, 0,
			  false);
	char *s;

	cr_assert_not_null(r);
	cr_assert_eq(ldns_pkt_ancount(r), 1);
	s = rr_text(r, LDNS_SECTION_ANSWER, 0);
	cr_expect_eq(strncmp(s, "catalog.shop.svc.cluster.local. 5 IN A 198.19.77.", 49), 0, "%s", s);
	free(s);
	ldns_pkt_free(r);
	/* No IPv6 VIP: NOERROR with no answer, so the client does not wait. */
	r = ask("cluster.local", "catalog.shop.svc.cluster.local.", LDNS_RR_TYPE_AAAA, 0, false);
	cr_assert_not_null(r);
	cr_expect_eq(ldns_pkt_ancount(r), 0);
	ldns_pkt_free(r);
	r = ask("cluster.local", "catalog.shop.svc.cluster.local.", LDNS_RR_TYPE_TXT, 0, false);
	cr_assert_not_null(r);
	cr_expect_eq(ldns_pkt_ancount(r), 0);
	ldns_pkt_free(r);
}

Test(dns, srv_of_a_named_port_and_of_the_service)
{
	ldns_pkt *r = ask("cluster.local", "_http._tcp.web.shop.svc.cluster.local.",
			  LDNS_RR_TYPE_SRV, 0, false);

	cr_assert_not_null(r);
	cr_assert_eq(ldns_pkt_ancount(r), 1);
	expect_rr(r, LDNS_SECTION_ANSWER, 0,
		  "_http._tcp.web.shop.svc.cluster.local. 5 IN SRV 0 100 80 web.shop.svc.cluster.local.");
	/* The target's addresses come along. */
	cr_expect_eq(ldns_pkt_arcount(r), 2);
	expect_rr(r, LDNS_SECTION_ADDITIONAL, 0, "web.shop.svc.cluster.local. 5 IN A 198.19.0.10");
	ldns_pkt_free(r);
	r = ask("cluster.local", "web.shop.svc.cluster.local.", LDNS_RR_TYPE_SRV, 0, false);
	cr_assert_not_null(r);
	cr_expect_eq(ldns_pkt_ancount(r), 2, "http and grpc; the UDP port has no VIP");
	ldns_pkt_free(r);
	/* A port's name has no address. */
	r = ask("cluster.local", "_grpc._tcp.web.shop.svc.cluster.local.", LDNS_RR_TYPE_A, 0, false);
	cr_assert_not_null(r);
	cr_expect_eq(ldns_pkt_ancount(r), 0);
	ldns_pkt_free(r);
}

Test(dns, names_the_agent_does_not_own_are_forwarded)
{
	static const char *const names[] = {
		"nosuch.shop.svc.cluster.local.",	/* unknown service */
		"web.other.svc.cluster.local.",		/* unknown namespace */
		"db.shop.svc.cluster.local.",		/* headless: the cluster DNS's */
		"web.shop.svc.cluster.example.",	/* another domain */
		"web.shop.mesh.svc.cluster.local.",	/* a search-path miss */
		"_http._udp.web.shop.svc.cluster.local.",
		"_nosuch._tcp.web.shop.svc.cluster.local.",
		"shop.svc.cluster.local.",
		"svc.cluster.local.",
		"cluster.local.",
		"example.org.",
		"web.shop.pod.cluster.local.",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		ldns_pkt *r = ask("cluster.local", names[i],
				  i == 5 || i == 6 ? LDNS_RR_TYPE_SRV : LDNS_RR_TYPE_A, 0, false);

		cr_expect_null(r, "%s was answered", names[i]);
		ldns_pkt_free(r);
	}
}

Test(dns, the_cluster_domain_is_the_configured_one)
{
	ldns_pkt *r = ask("corp.example", "web.shop.svc.cluster.local.", LDNS_RR_TYPE_A, 0, false);

	cr_expect_null(r);
	ldns_pkt_free(r);
	r = ask("corp.example", "web.shop.svc.corp.example.", LDNS_RR_TYPE_A, 0, false);
	cr_assert_not_null(r);
	cr_expect_eq(ldns_pkt_ancount(r), 1);
	ldns_pkt_free(r);
}

Test(dns, not_a_plain_query_is_forwarded)
{
	size_t len, out_len;
	uint8_t *q = query("web.shop.svc.cluster.local.", LDNS_RR_TYPE_A, 0, &len), *out = NULL;

	/* A response (QR set), a NOTIFY, a truncated message, nothing. */
	q[2] |= 0x80;
	cr_expect_eq(dns_answer(cat, "cluster.local", q, len, false, &out, &out_len), DNS_FORWARD);
	q[2] = (uint8_t)((q[2] & ~0x80) | (4 << 3));
	cr_expect_eq(dns_answer(cat, "cluster.local", q, len, false, &out, &out_len), DNS_FORWARD);
	q[2] &= (uint8_t)~(0xf << 3);
	cr_expect_eq(dns_answer(cat, "cluster.local", q, len - 3, false, &out, &out_len),
		     DNS_FORWARD);
	cr_expect_eq(dns_answer(cat, "cluster.local", q, 0, false, &out, &out_len), DNS_FORWARD);
	cr_expect_eq(dns_answer(cat, "cluster.local", q, len, false, &out, &out_len), DNS_ANSWER);
	free(out);
	free(q);
}

Test(dns, large_answers_truncate_over_udp_only)
{
	char yaml[16384];
	size_t n;
	ldns_pkt *r;

	/* 60 named ports: 60 SRV records are far more than 512 bytes. */
	n = (size_t)snprintf(yaml, sizeof(yaml),
			     "apiVersion: v1\nkind: Service\nmetadata: {name: big, namespace: shop}\n"
			     "spec:\n  clusterIP: 198.19.0.50\n  ports:\n");
	for (int i = 0; i < 60; i++)
		n += (size_t)snprintf(yaml + n, sizeof(yaml) - n,
				      "  - {name: port-number-%02d, port: %d}\n", i, 1000 + i);
	put(yaml);
	catalogue_unref(cat);
	cat = model_build(m);
	cr_assert_not_null(cat);
	r = ask("cluster.local", "big.shop.svc.cluster.local.", LDNS_RR_TYPE_SRV, 0, false);
	cr_assert_not_null(r);
	cr_expect(ldns_pkt_tc(r));
	cr_expect_eq(ldns_pkt_ancount(r), 0);
	ldns_pkt_free(r);
	r = ask("cluster.local", "big.shop.svc.cluster.local.", LDNS_RR_TYPE_SRV, 0, true);
	cr_assert_not_null(r);
	cr_expect_not(ldns_pkt_tc(r));
	cr_expect_eq(ldns_pkt_ancount(r), 60);
	ldns_pkt_free(r);
	/* EDNS raises the UDP limit (4000 bytes asked, 1232 given). */
	r = ask("cluster.local", "_port-number-07._tcp.big.shop.svc.cluster.local.",
		LDNS_RR_TYPE_SRV, 4000, false);
	cr_assert_not_null(r);
	cr_expect_not(ldns_pkt_tc(r));
	cr_expect(ldns_pkt_edns(r));
	cr_expect_eq(ldns_pkt_edns_udp_size(r), DNS_UDP_MAX);
	ldns_pkt_free(r);
}

Test(dns, cluster_domain_validation)
{
	cr_expect(dns_domain_valid("cluster.local"));
	cr_expect(dns_domain_valid("corp-1.example"));
	cr_expect_not(dns_domain_valid(""));
	cr_expect_not(dns_domain_valid("cluster.local."));
	cr_expect_not(dns_domain_valid(".local"));
	cr_expect_not(dns_domain_valid("a..b"));
	cr_expect_not(dns_domain_valid("a_b.local"));
	cr_expect_not(dns_domain_valid("a b"));
}
