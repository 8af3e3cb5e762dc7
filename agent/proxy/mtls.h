/* SPDX-License-Identifier: GPL-2.0-only */
/* What the proxy needs for mutual TLS between meshed pods (docs/mtls.md):
 * an immutable, reference-counted table the main thread builds after every
 * identity or catalogue change and publishes to every worker under
 * isolation (workers_set_mtls()), like a catalogue. Per pod the agent
 * serves: its SVID (client and server certificate), whether plaintext
 * inbound is refused (strict), and who may connect (weft.io/allow-from of
 * the Services it backs, by port, and of its namespace).
 */
#ifndef WEFT_PROXY_MTLS_H
#define WEFT_PROXY_MTLS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity/identity.h"
#include "spiffe.h"

/* The port of the mTLS side in each meshed pod: Istio ambient's HBONE port,
 * though the wire format is not HBONE (docs/mtls.md).
 */
#define MTLS_PORT 15008

/* The preamble a client sends first inside TLS: magic, version, flags, the
 * destination port the application dialled (network order). 8 bytes.
 */
#define MTLS_MAGIC "WEFT"
#define MTLS_VERSION 1
#define MTLS_PREAMBLE_LEN 8

/* One authorization rule of a pod: identities allowed to reach @port (0:
 * every port without a rule of its own, the namespace's rule).
 */
struct mtls_rule {
	uint16_t port;
	size_t n;
	struct spiffe_allow allow[SPIFFE_ALLOW_MAX];
};

#define MTLS_RULES_MAX 16	/* per pod; further Service ports fall back to the namespace's */

struct mtls_pod {
	uint32_t pod_id;	/* the agent's pod id (struct px_pod.id) */
	struct svid *svid;	/* a reference; NULL: no certificate (yet) */
	bool strict;		/* plaintext inbound refused */
	size_t n_rules;
	struct mtls_rule rules[MTLS_RULES_MAX];
};

struct mtls_table {
	atomic_uint refs;
	char td[SPIFFE_TD_MAX];
	size_t n;
	struct mtls_pod pods[];	/* sorted by pod_id */
};

/* A table for @n pods (zeroed, refcount 1) of trust domain @td; the caller
 * fills pods[] in pod_id order. NULL with errno set.
 */
struct mtls_table *mtls_table_new(const char *td, size_t n);
struct mtls_table *mtls_table_ref(struct mtls_table *t);
/* Drops the SVID references with the last one. Accepts NULL. */
void mtls_table_unref(struct mtls_table *t);

/* @pod_id's entry, or NULL. O(log n). */
const struct mtls_pod *mtls_table_pod(const struct mtls_table *t, uint32_t pod_id);

/* Whether identity @id may connect to @port of pod @p: the rule of @port,
 * else the port-0 rule, else (no rule) yes.
 */
bool mtls_allowed(const struct mtls_pod *p, uint16_t port, const struct spiffe_id *id);

/* The preamble for @port into @out; parse one back (0, or -EPROTO). */
void mtls_preamble_put(uint8_t out[MTLS_PREAMBLE_LEN], uint16_t port);
int mtls_preamble_get(const uint8_t in[MTLS_PREAMBLE_LEN], uint16_t *port);

#endif /* WEFT_PROXY_MTLS_H */
