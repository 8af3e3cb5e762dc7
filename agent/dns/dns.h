/* SPDX-License-Identifier: GPL-2.0-only */
/* The agent's DNS answers for meshed pods (docs/dns.md): which queries name a
 * service of the catalogue, and the response for those. Everything else is
 * the caller's to forward, unchanged, to the resolver the pod asked. Message
 * parsing and writing is libldns's; this file owns only the naming rules.
 * Pure: no I/O, no state, safe from any thread with its own catalogue ref.
 */
#ifndef WEFT_DNS_H
#define WEFT_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/catalogue.h"

#define DNS_DOMAIN_MAX 254	/* a cluster domain: a DNS name, no trailing dot */
#define DNS_TTL_S 5		/* of every answer: what CoreDNS gives Services */
#define DNS_UDP_MAX 1232	/* the largest UDP answer (the DNS flag day's EDNS size) */
#define DNS_TCP_MAX 65535

enum dns_verdict {
	DNS_FORWARD = 0,	/* not a name the agent owns, or not a query it answers */
	DNS_ANSWER = 1,		/* *out holds the response */
};

/* The response to @q (@len bytes of a DNS message) when it asks about a
 * service of @c under @domain (e.g. "cluster.local"): A and AAAA of
 * <svc>.<ns>.svc.<domain> are the service's VIPs, SRV of
 * _<port>._tcp.<svc>.<ns>.svc.<domain> its named TCP ports (SRV of the
 * service name: all of them), any other type of a name owned an empty
 * NOERROR. A service without VIPs (headless, or none allocated) is not owned.
 * Over UDP (@tcp false) a response larger than 512 bytes, or than the
 * query's EDNS size (at most DNS_UDP_MAX), goes out as the header and
 * question with TC set, so the client asks again over TCP.
 *
 * Returns DNS_ANSWER with the response in *@out (malloc'd, *@out_len bytes;
 * the caller frees it), DNS_FORWARD (also for anything malformed or not a
 * standard query: the upstream decides), or -ENOMEM.
 */
int dns_answer(const struct catalogue *c, const char *domain, const uint8_t *q, size_t len,
	       bool tcp, uint8_t **out, size_t *out_len);

/* Whether @domain is usable as a cluster domain: 1 to 127 labels of letters,
 * digits and '-', dot-separated, no trailing dot, at most DNS_DOMAIN_MAX - 1.
 */
bool dns_domain_valid(const char *domain);

/* The query a stub resolver would send for @name (presentation form, e.g.
 * "web.shop.svc.cluster.local.") and @type (a mnemonic: "A", "AAAA", "SRV"),
 * in *@out (malloc'd, *@len bytes). 0, -EINVAL (not a name or a type) or
 * -ENOMEM.
 */
int dns_query_new(const char *name, const char *type, uint8_t **out, size_t *len);

typedef void (*dns_record_fn)(const char *line, void *ctx);

/* Call @fn with each record of the response @msg (@len bytes) after the
 * question, as one zone-file line ("NAME TTL IN TYPE DATA"). Returns how
 * many, -EBADMSG when @msg is not a DNS message, or -ENOMEM.
 */
int dns_records(const uint8_t *msg, size_t len, dns_record_fn fn, void *ctx);

#endif /* WEFT_DNS_H */
