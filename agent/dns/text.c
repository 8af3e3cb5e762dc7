// SPDX-License-Identifier: GPL-2.0-only
/* Presentation-form helpers of the dns module (dns.h), for the admin API's
 * "resolve a name as a pod would": the query a stub resolver would send, and
 * the records of a response as zone-file lines. libldns does both.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dns/dns.h"

int dns_query_new(const char *name, const char *type, uint8_t **out, size_t *len)
{
	ldns_rr_type t = ldns_get_rr_type_by_name(type);
	ldns_rdf *qname;
	ldns_pkt *q;
	int err = 0;

	if (!t || !name[0] || strlen(name) >= DNS_DOMAIN_MAX)
		return -EINVAL;
	if (ldns_str2rdf_dname(&qname, name) != LDNS_STATUS_OK)
		return -EINVAL;
	/* ldns_pkt_query_new() takes the name; it fails only for memory. */
	q = ldns_pkt_query_new(qname, t, LDNS_RR_CLASS_IN, LDNS_RD);
	if (!q)
		return -ENOMEM;
	ldns_pkt_set_random_id(q);
	if (ldns_pkt2wire(out, q, len) != LDNS_STATUS_OK)
		err = -ENOMEM;
	ldns_pkt_free(q);
	return err;
}

int dns_records(const uint8_t *msg, size_t len, dns_record_fn fn, void *ctx)
{
	ldns_pkt *p = NULL;
	ldns_rr_list *l;
	int n = 0;

	if (ldns_wire2pkt(&p, msg, len) != LDNS_STATUS_OK)
		return -EBADMSG;
	l = ldns_pkt_get_section_clone(p, LDNS_SECTION_ANY_NOQUESTION);
	for (size_t i = 0; l && i < ldns_rr_list_rr_count(l); i++) {
		char *s = ldns_rr2str(ldns_rr_list_rr(l, i));

		if (!s) {
			n = -ENOMEM;
			break;
		}
		/* One line, fields separated by single spaces. */
		for (char *c = s; *c; c++)
			if (*c == '\t' || *c == '\n')
				*c = *c == '\n' ? '\0' : ' ';
		fn(s, ctx);
		free(s);
		n++;
	}
	ldns_rr_list_deep_free(l);
	ldns_pkt_free(p);
	return n;
}
