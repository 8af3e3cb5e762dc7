// SPDX-License-Identifier: GPL-2.0-only
/* X.509-SVIDs: a fresh ECDSA P-256 key per issuance, its certificate from
 * ca_sign(), and the TLS 1.3 context both ends of an mTLS connection make
 * their SSL from. Immutable once made and reference counted, so a renewal
 * replaces the set's pointer while every held connection keeps its own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "identity/identity.h"

/* The TLS context of @s: TLS 1.3 only, its certificate and key, peers must
 * present a certificate that chains to @t. Sessions resume within this
 * context only (resume.c): its ticket keys and its client cache go with
 * it, so a renewed SVID or a new bundle starts with full handshakes.
 */
static SSL_CTX *make_ctx(const struct svid *s, const struct trust *t)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	if (!ctx)
		return NULL;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_use_certificate(ctx, s->cert) || !SSL_CTX_use_PrivateKey(ctx, s->key) ||
	    !SSL_CTX_check_private_key(ctx)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* AES-128-GCM first: with AES-NI it is the fastest of the three on
	 * the machines we measured (`openssl speed -evp`: about 8 % ahead of
	 * AES-256-GCM and of ChaCha20-Poly1305, docs/mtls.md "Costs"); both
	 * ends are weft, so the client's order decides.
	 */
	if (!SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
					   "TLS_CHACHA20_POLY1305_SHA256")) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set1_cert_store(ctx, t->store);
	/* The chain sent with the certificate, built once here: left to
	 * OpenSSL it is rebuilt, with a verification of our own certificate,
	 * in every handshake. Without the self-signed root, which the peer
	 * holds in its own bundle or does not trust anyway: parsing a
	 * certificate's key costs OpenSSL 3.0 more than checking a signature
	 * (docs/mtls.md, "Costs"). IGNORE_ERROR: an SVID whose chain does not
	 * check out still goes out with what was found, as before; the peer
	 * refuses it.
	 */
	if (!SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_NO_ROOT |
					      SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR |
					      SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	if (svid_resumption_setup(ctx, s->uri)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static time_t asn1_time(const ASN1_TIME *a)
{
	struct tm tm;

	return ASN1_TIME_to_tm(a, &tm) ? timegm(&tm) : 0;
}

/* The fields meshctl shows, rendered once. */
static int describe(struct svid *s)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(s->cert), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	BN_free(bn);
	if (!hex)
		return -ENOMEM;
	snprintf(s->serial, sizeof(s->serial), "%s", hex);
	OPENSSL_free(hex);
	X509_NAME_oneline(X509_get_subject_name(s->cert), s->subject, sizeof(s->subject));
	X509_NAME_oneline(X509_get_issuer_name(s->cert), s->issuer_name, sizeof(s->issuer_name));
	s->not_before = asn1_time(X509_get0_notBefore(s->cert));
	s->not_after = asn1_time(X509_get0_notAfter(s->cert));
	/* Half-life from issuance (not from the skew-adjusted notBefore). */
	s->renew_at = time(NULL) + (s->not_after - time(NULL)) / 2;
	return 0;
}

/* Fill @s from its key and certificate (already set): the issuer shown,
 * the fields meshctl shows and the TLS context trusting @t. 0 or -errno.
 */
static int finish(struct svid *s, X509 *issuer, const struct trust *t, char *err)
{
	s->issuer = issuer ? X509_dup(issuer) : NULL;
	if ((issuer && !s->issuer) || describe(s))
		return -ENOMEM;
	s->ctx = make_ctx(s, t);
	if (!s->ctx) {
		ERR_clear_error();
		snprintf(err, IDENTITY_ERR_MAX, "%s: no TLS context", s->uri);
		return -ENOMEM;
	}
	return 0;
}

static struct svid *svid_alloc(const struct trust *t, const char *ns, const char *sa, char *err)
{
	struct svid *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	atomic_init(&s->refs, 1);
	if (spiffe_id_fmt(s->uri, sizeof(s->uri), t->td, ns, sa)) {
		snprintf(err, IDENTITY_ERR_MAX, "%s/%s: no SPIFFE ID in %s", ns, sa, t->td);
		free(s);
		errno = EINVAL;
		return NULL;
	}
	spiffe_id_parse(s->uri, &s->id);
	return s;
}

int svid_issue(struct ca *ca, struct trust *t, const char *ns, const char *sa, uint32_t ttl_s,
	       struct svid **out, char *err)
{
	struct svid *s = svid_alloc(t, ns, sa, err);
	int ret;

	if (!s)
		return -errno;
	s->key = EVP_EC_gen("P-256");
	if (!s->key) {
		ERR_clear_error();
		snprintf(err, IDENTITY_ERR_MAX, "%s: no P-256 key", s->uri);
		ret = -ENOMEM;
		goto fail;
	}
	ret = ca_sign(ca, s->key, s->uri, ttl_s, &s->cert, err);
	if (ret)
		goto fail;
	ret = finish(s, ca_cert(ca), t, err);
	if (ret)
		goto fail;
	*out = s;
	return 0;
fail:
	svid_unref(s);
	return ret;
}

EVP_PKEY *svid_key_new(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");

	if (!key) {
		ERR_clear_error();
		errno = ENOMEM;
	}
	return key;
}

int svid_from_pem(EVP_PKEY *key, const struct trust *t, const char *ns, const char *sa,
		  const char *cert_pem, struct svid **out, char *err)
{
	struct svid *s = svid_alloc(t, ns, sa, err);
	struct spiffe_id got;
	BIO *bio;
	int ret = -EBADMSG;

	if (!s) {
		EVP_PKEY_free(key);
		return -errno;
	}
	s->key = key;
	bio = BIO_new_mem_buf(cert_pem, -1);
	s->cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (!s->cert) {
		ERR_clear_error();
		snprintf(err, IDENTITY_ERR_MAX, "%s: the answer holds no PEM certificate", s->uri);
		goto fail;
	}
	/* The issuer's word is not taken: the certificate must be for our key,
	 * chain to the bundle, and name exactly the identity asked for.
	 */
	if (X509_check_private_key(s->cert, s->key) != 1) {
		ERR_clear_error();
		snprintf(err, IDENTITY_ERR_MAX, "%s: the certificate is not for our key", s->uri);
		goto fail;
	}
	ret = trust_verify(t, s->cert, NULL, &got, err);
	if (ret)
		goto fail;
	if (strcmp(got.ns, s->id.ns) || strcmp(got.sa, s->id.sa)) {
		snprintf(err, IDENTITY_ERR_MAX, "%s: the certificate names %s/%s", s->uri, got.ns,
			 got.sa);
		ret = -EKEYREJECTED;
		goto fail;
	}
	ret = finish(s, NULL, t, err);
	if (ret)
		goto fail;
	*out = s;
	return 0;
fail:
	svid_unref(s);
	return ret;
}

struct svid *svid_ref(struct svid *s)
{
	if (s)
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void svid_unref(struct svid *s)
{
	if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	SSL_CTX_free(s->ctx);
	X509_free(s->cert);
	X509_free(s->issuer);
	/* EVP_PKEY_free clears the key's memory before releasing it. */
	EVP_PKEY_free(s->key);
	free(s);
}

int svid_peer(SSL *ssl, const char *td, struct spiffe_id *out)
{
	X509 *peer = SSL_get0_peer_certificate(ssl);

	if (!peer || SSL_get_verify_result(ssl) != X509_V_OK)
		return -EKEYREJECTED;
	return svid_cert_id(peer, td, out) ? -EKEYREJECTED : 0;
}
