// SPDX-License-Identifier: GPL-2.0-only
/* DNS answers for the catalogue's services (dns.h): the question is read and
 * the response written by libldns (docs/dependencies.md says why a library);
 * here are only the Kubernetes naming rules and what a service answers with.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dns/dns.h"

#define LABELS_MAX 128		/* a name of 255 bytes has at most 127 labels */
#define DNS_HDR_LEN 12		/* a message's header: the question starts after it */

struct label {
	const uint8_t *p;
	size_t len;
};

/* What a question names, once recognised. */
struct ask {
	const struct cat_service *svc;
	char port[OBJ_PORT_NAME_MAX];	/* _<port>._tcp.<svc>...: the port; "" otherwise */
};

/* Split uncompressed wire-format name @d (@n bytes, from ldns) into labels,
 * root excluded. Returns the count, or -1 if it is not a well-formed name.
 */
static int split_wire(const uint8_t *d, size_t n, struct label *out)
{
	size_t i = 0;
	int k = 0;

	while (i < n && d[i]) {
		if (d[i] > 63 || i + 1 + d[i] > n || k == LABELS_MAX)
			return -1;
		out[k++] = (struct label){ d + i + 1, d[i] };
		i += 1 + (size_t)d[i];
	}
	return i < n ? k : -1;
}

static bool label_is(const struct label *l, const char *s, size_t len)
{
	if (l->len != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (tolower(l->p[i]) != tolower((unsigned char)s[i]))
			return false;
	return true;
}

/* Copy @l lowercased into @buf (@len) if it is a DNS-1123 label (what a
 * namespace, service or port name is), optionally after a leading '_'.
 */
static bool label_name(const struct label *l, bool underscore, char *buf, size_t len)
{
	size_t off = underscore ? 1 : 0;

	if (l->len <= off || l->len - off >= len || (underscore && l->p[0] != '_'))
		return false;
	for (size_t i = off; i < l->len; i++) {
		int ch = tolower(l->p[i]);

		if (!(islower(ch) || isdigit(ch) || ch == '-'))
			return false;
		buf[i - off] = (char)ch;
	}
	buf[l->len - off] = '\0';
	return true;
}

bool dns_domain_valid(const char *domain)
{
	size_t len = strlen(domain), run = 0;

	if (!len || len >= DNS_DOMAIN_MAX || domain[0] == '.' || domain[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)domain[i];

		if (ch == '.') {
			if (!run)
				return false;
			run = 0;
		} else if ((isalnum(ch) || ch == '-') && ++run <= 63) {
			continue;
		} else {
			return false;
		}
	}
	return true;
}

/* Whether the last labels of @l (@n) are @domain's; *@n_domain its count. */
static bool ends_in_domain(const struct label *l, int n, const char *domain, int *n_domain)
{
	const char *end = domain + strlen(domain);
	int k = n;

	while (end > domain) {
		const char *dot = end;

		while (dot > domain && dot[-1] != '.')
			dot--;
		if (!k || !label_is(&l[--k], dot, (size_t)(end - dot)))
			return false;
		end = dot > domain ? dot - 1 : domain;
	}
	*n_domain = n - k;
	return true;
}

/* The service's ports of its first VIP (every VIP has the same ports). */
static const struct cat_svc_port *port_at(const struct catalogue *c, const struct cat_service *s,
					  size_t i)
{
	const struct cat_svc_port *sp = i < s->n_ports ? &s->ports[i] : NULL;

	(void)c;
	return sp && addr_ip_equal(&sp->vip, &s->vips[0]) ? sp : NULL;
}

/* Whether @s has a TCP port named @port (a name with no port is not owned). */
static bool has_port(const struct catalogue *c, const struct cat_service *s, const char *port)
{
	const struct cat_svc_port *sp;

	for (size_t i = 0; (sp = port_at(c, s, i)); i++)
		if (!strcmp(sp->port_name, port))
			return true;
	return false;
}

/* Recognise <svc>.<ns>.svc.<domain> and _<port>._tcp.<svc>.<ns>.svc.<domain>
 * for a service of @c with VIPs. A pod's search path (<ns>.svc.<domain>,
 * svc.<domain>, <domain>) turns every short form into one of these before
 * it is sent, so the pod's own namespace never needs guessing.
 */
static bool recognise(const struct catalogue *c, const char *domain, const uint8_t *qname,
		      size_t qname_len, struct ask *a)
{
	struct label l[LABELS_MAX];
	char ns[OBJ_NS_MAX], name[OBJ_NAME_MAX];
	int n = split_wire(qname, qname_len, l), n_dom, pre;

	if (n < 0 || !ends_in_domain(l, n, domain, &n_dom))
		return false;
	pre = n - n_dom - 1;	/* labels before "svc" */
	if (pre < 2 || !label_is(&l[pre], "svc", 3))
		return false;
	a->port[0] = '\0';
	if (pre == 4) {
		if (!label_is(&l[1], "_tcp", 4) || !label_name(&l[0], true, a->port, sizeof(a->port)))
			return false;
	} else if (pre != 2) {
		return false;
	}
	if (!label_name(&l[pre - 1], false, ns, sizeof(ns)) ||
	    !label_name(&l[pre - 2], false, name, sizeof(name)))
		return false;
	a->svc = catalogue_find_service(c, ns, name);
	if (!a->svc || !a->svc->n_vips)
		return false;
	return !a->port[0] || has_port(c, a->svc, a->port);
}

static ldns_rr *new_rr(const ldns_rdf *owner, ldns_rr_type type)
{
	ldns_rr *rr = ldns_rr_new();
	ldns_rdf *o = ldns_rdf_clone(owner);

	if (!rr || !o) {
		ldns_rr_free(rr);
		ldns_rdf_deep_free(o);
		return NULL;
	}
	ldns_rr_set_owner(rr, o);
	ldns_rr_set_type(rr, type);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	ldns_rr_set_ttl(rr, DNS_TTL_S);
	return rr;
}

/* Push @rdf onto @rr; frees @rdf on failure. */
static bool push_rdf(ldns_rr *rr, ldns_rdf *rdf)
{
	if (rdf && ldns_rr_push_rdf(rr, rdf))
		return true;
	ldns_rdf_deep_free(rdf);
	return false;
}

/* Append to @sec the A (@family AF_INET) or AAAA records of @s at @owner. */
static int add_addrs(ldns_pkt *p, ldns_pkt_section sec, const ldns_rdf *owner,
		     const struct cat_service *s, int family)
{
	for (size_t i = 0; i < s->n_vips; i++) {
		const struct addr *v = &s->vips[i];
		bool v4 = family == AF_INET;
		ldns_rr *rr;

		if (v->family != family)
			continue;
		rr = new_rr(owner, v4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA);
		if (!rr || !push_rdf(rr, ldns_rdf_new_frm_data(v4 ? LDNS_RDF_TYPE_A
								    : LDNS_RDF_TYPE_AAAA,
							       v4 ? 4 : 16, &v->ip)) ||
		    !ldns_pkt_push_rr(p, sec, rr)) {
			ldns_rr_free(rr);
			return -ENOMEM;
		}
	}
	return 0;
}

/* SRV 0 100 PORT <svc>.<ns>.svc.<domain>. for each named TCP port of
 * @a->svc (only @a->port when set), then the target's addresses. Returns
 * the number of SRV records, or -ENOMEM.
 */
static int add_srv(ldns_pkt *p, const struct catalogue *c, const char *domain,
		   const ldns_rdf *owner, const struct ask *a)
{
	char target[OBJ_NAME_MAX + OBJ_NS_MAX + DNS_DOMAIN_MAX + 8];
	const struct cat_svc_port *sp;
	ldns_rdf *tname;
	int n = 0, err = 0;

	snprintf(target, sizeof(target), "%s.%s.svc.%s.", a->svc->name, a->svc->ns, domain);
	tname = ldns_dname_new_frm_str(target);
	if (!tname)
		return -ENOMEM;
	for (size_t i = 0; (sp = port_at(c, a->svc, i)) && !err; i++) {
		ldns_rr *rr;

		if (!sp->port_name[0] || (a->port[0] && strcmp(a->port, sp->port_name)))
			continue;
		rr = new_rr(owner, LDNS_RR_TYPE_SRV);
		if (!rr || !push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, 0)) ||
		    !push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, 100)) ||
		    !push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, sp->vip.port)) ||
		    !push_rdf(rr, ldns_rdf_clone(tname)) || !ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr)) {
			ldns_rr_free(rr);
			err = -ENOMEM;
			break;
		}
		n++;
	}
	if (!err && n)
		err = add_addrs(p, LDNS_SECTION_ADDITIONAL, tname, a->svc, AF_INET) ?:
		      add_addrs(p, LDNS_SECTION_ADDITIONAL, tname, a->svc, AF_INET6);
	ldns_rdf_deep_free(tname);
	return err ? err : n;
}

/* A response skeleton for query @q: id, flags and the question. */
static ldns_pkt *response_to(const ldns_pkt *q, const ldns_rr *question)
{
	ldns_pkt *r = ldns_pkt_new();
	ldns_rr *qr = ldns_rr_clone(question);

	if (!r || !qr || !ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION, qr)) {
		ldns_rr_free(qr);
		ldns_pkt_free(r);
		return NULL;
	}
	ldns_pkt_set_id(r, ldns_pkt_id(q));
	ldns_pkt_set_qr(r, true);
	ldns_pkt_set_opcode(r, LDNS_PACKET_QUERY);
	ldns_pkt_set_aa(r, true);
	ldns_pkt_set_rd(r, ldns_pkt_rd(q));
	ldns_pkt_set_cd(r, ldns_pkt_cd(q));
	/* Recursion is available: what the agent does not answer it forwards. */
	ldns_pkt_set_ra(r, true);
	ldns_pkt_set_rcode(r, LDNS_RCODE_NOERROR);
	if (ldns_pkt_edns(q))
		ldns_pkt_set_edns_udp_size(r, DNS_UDP_MAX);
	return r;
}

/* Fill @r with the records @a's question of @type is answered with. */
static int fill(ldns_pkt *r, const struct catalogue *c, const char *domain, const ldns_rdf *owner,
		const struct ask *a, ldns_rr_type type)
{
	int rc;

	if (type == LDNS_RR_TYPE_SRV) {
		rc = add_srv(r, c, domain, owner, a);
		return rc < 0 ? rc : 0;
	}
	if (a->port[0])
		return 0;	/* the port's name has SRV only */
	if (type == LDNS_RR_TYPE_A)
		return add_addrs(r, LDNS_SECTION_ANSWER, owner, a->svc, AF_INET);
	if (type == LDNS_RR_TYPE_AAAA)
		return add_addrs(r, LDNS_SECTION_ANSWER, owner, a->svc, AF_INET6);
	return 0;		/* a name owned, a type it has none of: NODATA */
}

/* The wire form of @r within @limit bytes, else of @q's header and question
 * with TC set. 0 or -ENOMEM.
 */
static int to_wire(ldns_pkt *r, size_t limit, uint8_t **out, size_t *out_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	if (ldns_pkt2wire(&buf, r, &len) != LDNS_STATUS_OK)
		return -ENOMEM;
	if (len > limit) {
		free(buf);
		buf = NULL;
		ldns_rr_list_deep_free(ldns_pkt_answer(r));
		ldns_rr_list_deep_free(ldns_pkt_additional(r));
		ldns_pkt_set_answer(r, ldns_rr_list_new());
		ldns_pkt_set_additional(r, ldns_rr_list_new());
		ldns_pkt_set_ancount(r, 0);
		ldns_pkt_set_arcount(r, 0);
		ldns_pkt_set_tc(r, true);
		if (ldns_pkt2wire(&buf, r, &len) != LDNS_STATUS_OK)
			return -ENOMEM;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

/* Whether @q (@len bytes) is certainly not a question the agent owns, read
 * straight from the wire: most queries a pod sends (external names, the
 * search path's misses) are forwarded, and parsing each with libldns only to
 * learn that was most of the agent's work per forwarded query. Conservative:
 * false whenever the full parse might say otherwise (a compressed or
 * malformed question name is left to libldns), so the verdict of
 * dns_answer() is the same with or without this screen.
 */
static bool surely_not_owned(const struct catalogue *c, const char *domain, const uint8_t *q,
			     size_t len)
{
	struct ask a;
	size_t i = DNS_HDR_LEN;

	if (len < DNS_HDR_LEN + 1)
		return false;
	/* QR set, another opcode or not one question: forwarded anyway. */
	if ((q[2] & 0xf8) || q[4] || q[5] != 1)
		return true;
	while (i < len && q[i] && q[i] <= 63)
		i += 1 + (size_t)q[i];
	if (i >= len || q[i])
		return false;	/* a pointer, a bad label or past the end: libldns decides */
	return !recognise(c, domain, q + DNS_HDR_LEN, i + 1 - DNS_HDR_LEN, &a);
}

int dns_answer(const struct catalogue *c, const char *domain, const uint8_t *q, size_t len,
	       bool tcp, uint8_t **out, size_t *out_len)
{
	ldns_pkt *query = NULL, *r = NULL;
	const ldns_rr *question;
	struct ask a;
	size_t limit = DNS_TCP_MAX;
	int rc = DNS_FORWARD;

	if (surely_not_owned(c, domain, q, len))
		return DNS_FORWARD;
	if (ldns_wire2pkt(&query, q, len) != LDNS_STATUS_OK)
		return DNS_FORWARD;
	/* One standard query in class IN; anything else is the upstream's. */
	if (ldns_pkt_qr(query) || ldns_pkt_get_opcode(query) != LDNS_PACKET_QUERY ||
	    ldns_pkt_qdcount(query) != 1 || ldns_rr_list_rr_count(ldns_pkt_question(query)) != 1)
		goto out_free;
	question = ldns_rr_list_rr(ldns_pkt_question(query), 0);
	if (ldns_rr_get_class(question) != LDNS_RR_CLASS_IN ||
	    !recognise(c, domain, ldns_rdf_data(ldns_rr_owner(question)),
		       ldns_rdf_size(ldns_rr_owner(question)), &a))
		goto out_free;
	r = response_to(query, question);
	if (!r) {
		rc = -ENOMEM;
		goto out_free;
	}
	rc = fill(r, c, domain, ldns_rr_owner(question), &a, ldns_rr_get_type(question));
	if (!tcp) {
		limit = 512;
		if (ldns_pkt_edns(query) && ldns_pkt_edns_udp_size(query) > limit)
			limit = ldns_pkt_edns_udp_size(query) < DNS_UDP_MAX
					? ldns_pkt_edns_udp_size(query)
					: DNS_UDP_MAX;
	}
	if (!rc)
		rc = to_wire(r, limit, out, out_len);
	if (!rc)
		rc = DNS_ANSWER;
out_free:
	ldns_pkt_free(r);
	ldns_pkt_free(query);
	return rc;
}
