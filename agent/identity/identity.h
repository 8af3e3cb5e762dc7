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
 * them. struct ca and struct idset are the main thread's; weft-ca's
 * request threads share a struct ca under its lock (agent/ca/).
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
 * the CA's own notAfter, signed by @ca. The standalone path calls it for
 * its own keys, weft-ca for a checked CSR's key (csr_check()) once the
 * caller is authorized (docs/mtls.md). 0 or -errno, reason in @err.
 */
int ca_sign(struct ca *ca, EVP_PKEY *pub, const char *uri, uint32_t ttl_s, X509 **out,
	    char *err);
/* A TLS server certificate for @pub (weft-ca's own): a leaf, serverAuth,
 * subjectAltNames @names (comma-separated DNS names and IP addresses),
 * otherwise as ca_sign(). 0 or -errno, reason in @err.
 */
int ca_sign_serving(struct ca *ca, EVP_PKEY *pub, const char *names, uint32_t ttl_s, X509 **out,
		    char *err);
/* The CA's certificate (borrowed). */
X509 *ca_cert(const struct ca *ca);

/* ---- csr.c */

/* A PEM certificate signing request for @key whose only requested
 * extension is the URI SAN @uri, signed by @key (proof of possession).
 * 0 and a new string in *@pem_out (caller frees), or -errno, reason in @err.
 */
int csr_make(EVP_PKEY *key, const char *uri, char **pem_out, char *err);

/* Check PEM request @pem (@len bytes) for weft-ca: its signature verifies
 * with its own key, the key is P-256 or Ed25519, and its one subject
 * alternative name is the URI @want_uri. 0 and the public key in *@pub_out
 * (caller frees: the only thing taken from the request), -EACCES when it
 * names another identity, -EBADMSG otherwise; the reason in @err.
 */
int csr_check(const char *pem, size_t len, const char *want_uri, EVP_PKEY **pub_out,
	      char *err);

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
/* A fresh ECDSA P-256 workload key (caller frees), or NULL with errno set. */
EVP_PKEY *svid_key_new(void);

/* The SVID of @ns/@sa made of @key (ownership taken, freed on failure) and
 * the certificate an issuer returned, PEM @cert_pem: it must be for @key,
 * chain to @t and name exactly @ns/@sa of @t's trust domain. 0 or -errno
 * (-EBADMSG, -EKEYREJECTED) with the reason in @err.
 */
int svid_from_pem(EVP_PKEY *key, const struct trust *t, const char *ns, const char *sa,
		  const char *cert_pem, struct svid **out, char *err);
struct svid *svid_ref(struct svid *s);
/* Accepts NULL. */
void svid_unref(struct svid *s);

/* The peer identity of finished handshake @ssl: its certificate chained to
 * the bundle of @ssl's context (OpenSSL checked that during the handshake)
 * and its one URI SAN of @td read into @out. 0 or -EKEYREJECTED.
 */
int svid_peer(SSL *ssl, const char *td, struct spiffe_id *out);

/* ---- resume.c: TLS 1.3 session resumption between agents */

/* Sessions are resumed for at most this long after their full handshake. */
#define SVID_SESSION_TTL 3600
#define SVID_SESSION_KEY_MAX 384	/* a destination: address and expected identity */

/* Turn resumption on in SVID context @ctx (svid.c): one ticket per full
 * handshake for a client whose certificate was verified, a client-side
 * cache of one session per destination, both living as long as @ctx, and
 * @sid_ctx (the SVID's URI) as the session id context. 0 or -ENOMEM.
 */
int svid_resumption_setup(SSL_CTX *ctx, const char *sid_ctx);

/* Client SSL @ssl (of a context set up as above) goes to destination @key
 * (borrowed: it must outlive @ssl's handshake and first reads, where a
 * ticket arrives): offer the session cached for @key, if any is still
 * usable (its server certificate valid, younger than SVID_SESSION_TTL),
 * and keep the ticket the server sends. Whether a session was offered;
 * the handshake tells whether it was taken (SSL_session_reused()).
 */
bool svid_session_offer(SSL *ssl, const char *key);

/* ---- idset.c */

/* The SVIDs of the identities that have a meshed pod on this node, kept
 * current: issued when the first pod of an identity arrives, renewed at
 * half-life, dropped when its last pod leaves. Held connections keep the
 * SVID (and SSL_CTX) they started with by reference, so a renewal drops
 * nothing.
 */
struct idset;

/* Who signs: the standalone CA (at once) or weft-ca (over the network). */
struct idset_issuer {
	/* Issue @ns/@sa trusting @t: 0 with the SVID in *@out, -EINPROGRESS
	 * when the answer comes later through idset_put() or idset_failed(),
	 * or -errno with the reason in @err.
	 */
	int (*issue)(void *ctx, struct trust *t, const char *ns, const char *sa, uint32_t ttl_s,
		     struct svid **out, char *err);
	void *ctx;
	const char *kind;	/* "standalone" or "weft-ca", for meshctl */
};

/* The standalone issuer's idset_issuer.issue: @ctx is the address of the
 * current struct ca pointer (so a CA rotation swaps it in place); signs at
 * once with svid_issue().
 */
int idset_issue_standalone(void *ctx, struct trust *t, const char *ns, const char *sa,
			   uint32_t ttl_s, struct svid **out, char *err);

/* A set issuing through @iss (copied; its ctx borrowed for the set's life)
 * with bundle @t (a reference taken), @ttl_s per SVID. NULL with errno set.
 */
struct idset *idset_new(const struct idset_issuer *iss, struct trust *t, uint32_t ttl_s);
/* Accepts NULL. */
void idset_free(struct idset *set);

/* Make the set exactly @n identities @ids (duplicates allowed): issue the
 * missing ones, drop the others. The number of issuance failures (each
 * logged once); the set keeps what it had for those. Identities whose
 * issuance is under way count as neither.
 */
int idset_sync(struct idset *set, const struct spiffe_id *ids, size_t n);

/* Renew every SVID at or past its half-life at @now, and try again the
 * wanted identities that have none. Returns the earliest renew_at left
 * (0: none; @now + 5 when an identity is still missing), for the caller's
 * timer.
 */
time_t idset_renew(struct idset *set, time_t now);

/* An issuance that answered -EINPROGRESS is over: @s (a reference taken)
 * replaces or becomes the SVID of its identity, unless the identity was
 * dropped in the meantime. True when @s was taken.
 */
bool idset_put(struct idset *set, struct svid *s);
/* ... or failed (logged by the caller): retried at the next idset_renew(). */
void idset_failed(struct idset *set, const char *ns, const char *sa);

/* Replace the bundle (a CA rotation, or a new overlap bundle): every SVID
 * is reissued through the issuer with a context trusting @t (a reference
 * taken). Returns the issuance failures (those keep their old SVID).
 */
int idset_set_trust(struct idset *set, struct trust *t);

/* Issuances under way. */
size_t idset_pending(const struct idset *set);
/* The issuer's kind. */
const char *idset_issuer_kind(const struct idset *set);

/* The SVID of @ns/@sa, a new reference, or NULL. */
struct svid *idset_get(struct idset *set, const char *ns, const char *sa);

/* The number of identities and the i-th (borrowed, in ns/sa order). */
size_t idset_count(const struct idset *set);
const struct svid *idset_at(const struct idset *set, size_t i);

/* The bundle in use (borrowed). */
const struct trust *idset_trust(const struct idset *set);

#endif /* WEFT_IDENTITY_H */
