/* SPDX-License-Identifier: GPL-2.0-only */
/* Workload identity (docs/mtls.md): the trust bundle peers' certificates are
 * checked against (trust.c), the standalone CA that signs this node's
 * workload certificates (ca.c), and the X.509-SVIDs themselves — an ECDSA
 * P-256 key, a short-lived certificate whose only URI SAN is the SPIFFE ID,
 * and a TLS 1.3 context made of both (svid.c). Everything lives in memory:
 * no private key the agent makes ever touches a file.
 *
 * Threads: a struct trust and a struct svid are immutable once made and
 * reference counted (atomic), so proxy workers may hold and use them (an
 * SSL_CTX is safe to share for SSL_new()) while the main thread replaces
 * them. struct ca and struct idset are the main thread's.
 */
#ifndef WEFT_IDENTITY_H
#define WEFT_IDENTITY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "spiffe.h"

#define IDENTITY_ERR_MAX 1024	/* room for a SPIFFE ID, a path and a reason */
#define IDENTITY_NAME_MAX 256	/* a rendered subject or issuer, truncated */

/* ---- trust.c */

/* The CA certificates peers' SVIDs must chain to, for one trust domain. */
struct trust {
	atomic_uint refs;
	char td[SPIFFE_TD_MAX];
	X509_STORE *store;
	size_t n_cas;		/* certificates in the store */
};

/* A bundle for trust domain @td from the PEM files @ca_path and @extra_path
 * ("" or NULL: none; the old or next CA during a CA rotation). 0 or -errno
 * with the reason in @err (IDENTITY_ERR_MAX); a file without one certificate
 * is an error.
 */
int trust_load(const char *td, const char *ca_path, const char *extra_path, struct trust **out,
	       char *err);
struct trust *trust_ref(struct trust *t);
/* Accepts NULL. */
void trust_unref(struct trust *t);

/* The workload identity of certificate @leaf: its one URI SAN, a SPIFFE ID of
 * trust domain @td. -EINVAL when it has none, several, or another domain's;
 * -EPERM when it is a CA. Does not check the signature (trust_verify()).
 */
int svid_cert_id(X509 *leaf, const char *td, struct spiffe_id *out);

/* Check @leaf (with intermediates @chain, may be NULL) against @t now, then
 * read its identity into @out. 0, -EKEYREJECTED (bad chain, expired, not
 * yet valid: the reason in @err), or svid_cert_id()'s errors.
 */
int trust_verify(const struct trust *t, X509 *leaf, STACK_OF(X509) *chain,
		 struct spiffe_id *out, char *err);

/* ---- ca.c */

/* A signing CA: its certificate and private key. */
struct ca;

/* Load the CA certificate and key (PEM files). The key must match the
 * certificate, which must be a CA. 0 or -errno, reason in @err.
 */
int ca_load(const char *cert_path, const char *key_path, struct ca **out, char *err);
/* Accepts NULL. */
void ca_free(struct ca *ca);

/* A certificate for public key @pub whose only URI SAN is @uri: a leaf
 * (CA:FALSE), digitalSignature, serverAuth and clientAuth, a random 128-bit
 * serial, valid from 60 s ago (clock skew) for @ttl_s seconds but never past
 * the CA's own notAfter, signed by @ca. What a weft-ca would do for a CSR's
 * key once the caller is authorized (docs/mtls.md). 0 or -errno, reason in
 * @err.
 */
int ca_sign(struct ca *ca, EVP_PKEY *pub, const char *uri, uint32_t ttl_s, X509 **out,
	    char *err);
/* The CA's certificate (borrowed). */
X509 *ca_cert(const struct ca *ca);

/* ---- svid.c */

/* One workload's X.509-SVID, issued for @ttl from now. */
struct svid {
	atomic_uint refs;
	struct spiffe_id id;
	char uri[SPIFFE_ID_MAX];
	EVP_PKEY *key;		/* ECDSA P-256, made here, never written anywhere */
	X509 *cert;
	X509 *issuer;		/* the CA certificate, sent along in the handshake */
	/* TLS 1.3 only, this certificate and key, peer certificates required
	 * and checked against the trust bundle; for SSL_new() in either role.
	 */
	SSL_CTX *ctx;
	time_t not_before, not_after;	/* seconds since the epoch */
	time_t renew_at;		/* half-life */
	char serial[41];		/* hex */
	char subject[IDENTITY_NAME_MAX];
	char issuer_name[IDENTITY_NAME_MAX];
};

/* Issue an SVID for @ns/@sa of @t's trust domain, signed by @ca, valid
 * @ttl_s seconds from now (not_before 60 s back for clock skew; never past
 * the CA's own expiry). 0 or -errno with the reason in @err.
 */
int svid_issue(struct ca *ca, struct trust *t, const char *ns, const char *sa, uint32_t ttl_s,
	       struct svid **out, char *err);
struct svid *svid_ref(struct svid *s);
/* Accepts NULL. */
void svid_unref(struct svid *s);

/* The peer identity of finished handshake @ssl: its certificate chained to
 * the bundle of @ssl's context (OpenSSL checked that during the handshake)
 * and its one URI SAN of @td read into @out. 0 or -EKEYREJECTED.
 */
int svid_peer(SSL *ssl, const char *td, struct spiffe_id *out);

/* ---- idset.c */

/* The SVIDs of the identities that have a meshed pod on this node, kept
 * current: issued when the first pod of an identity arrives, renewed at
 * half-life, dropped when its last pod leaves. Held connections keep the
 * SVID (and SSL_CTX) they started with by reference, so a renewal drops
 * nothing.
 */
struct idset;

/* A set issuing from @ca with bundle @t (references taken), @ttl_s per
 * SVID. NULL with errno set.
 */
struct idset *idset_new(struct ca *ca, struct trust *t, uint32_t ttl_s);
/* Accepts NULL. */
void idset_free(struct idset *set);

/* Make the set exactly @n identities @ids (duplicates allowed): issue the
 * missing ones, drop the others. The number of issuance failures (each
 * logged once); the set keeps what it had for those.
 */
int idset_sync(struct idset *set, const struct spiffe_id *ids, size_t n);

/* Renew every SVID at or past its half-life at @now. Returns the earliest
 * renew_at left (0: none), for the caller's timer.
 */
time_t idset_renew(struct idset *set, time_t now);

/* Replace the issuer and the bundle (a CA rotation, or a new overlap
 * bundle): every SVID is reissued by @ca with a context trusting @t. Borrows
 * @ca as idset_new() does, takes a reference on @t. Returns the issuance
 * failures (those keep their old SVID).
 */
int idset_set_issuer(struct idset *set, struct ca *ca, struct trust *t);

/* The SVID of @ns/@sa, a new reference, or NULL. */
struct svid *idset_get(struct idset *set, const char *ns, const char *sa);

/* The number of identities and the i-th (borrowed, in ns/sa order). */
size_t idset_count(const struct idset *set);
const struct svid *idset_at(const struct idset *set, size_t i);

/* The bundle in use (borrowed). */
const struct trust *idset_trust(const struct idset *set);

#endif /* WEFT_IDENTITY_H */
