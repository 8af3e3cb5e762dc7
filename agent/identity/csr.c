// SPDX-License-Identifier: GPL-2.0-only
/* Certificate signing requests between an agent and weft-ca (docs/mtls.md):
 * the agent makes one per identity for a key that never leaves it; weft-ca
 * checks one before ca_sign() and takes from it nothing but the public key
 * and the one SPIFFE ID it has already compared with the request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "identity/identity.h"

int csr_make(EVP_PKEY *key, const char *uri, char **pem_out, char *err)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *san = NULL;
	char text[SPIFFE_ID_MAX + 8];
	BIO *bio = NULL;
	BUF_MEM *mem;
	int ret = -ENOMEM;

	if (!req)
		return -ENOMEM;
	if (strchr(uri, ',')) {
		snprintf(err, IDENTITY_ERR_MAX, "%s: not a URI SAN", uri);
		ret = -EINVAL;
		goto out;
	}
	snprintf(text, sizeof(text), "URI:%s", uri);
	san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, text);
	exts = sk_X509_EXTENSION_new_null();
	if (!san || !exts || !sk_X509_EXTENSION_push(exts, san))
		goto out;
	san = NULL;	/* the stack owns it */
	if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) || !X509_REQ_set_pubkey(req, key) ||
	    !X509_REQ_add_extensions(req, exts) || !X509_REQ_sign(req, key, EVP_sha256()))
		goto out;
	bio = BIO_new(BIO_s_mem());
	if (!bio || !PEM_write_bio_X509_REQ(bio, req))
		goto out;
	BIO_get_mem_ptr(bio, &mem);
	*pem_out = strndup(mem->data, mem->length);
	if (*pem_out)
		ret = 0;
out:
	if (ret)
		snprintf(err, IDENTITY_ERR_MAX, "%s: no signing request", uri);
	ERR_clear_error();
	BIO_free(bio);
	X509_EXTENSION_free(san);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	return ret;
}

/* The one URI SAN of @req's requested extensions into @uri. -EINVAL when
 * there is none, another kind of name, or more than one name.
 */
static int csr_uri(X509_REQ *req, char *uri, size_t len)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *names = NULL;
	const GENERAL_NAME *g;
	const ASN1_IA5STRING *s;
	int n, ret = -EINVAL;

	if (!exts)
		return -EINVAL;
	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);

		if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) != NID_subject_alt_name)
			continue;
		if (names)
			goto out;	/* two SAN extensions */
		names = X509V3_EXT_d2i(e);
		if (!names)
			goto out;
	}
	if (!names || sk_GENERAL_NAME_num(names) != 1)
		goto out;
	g = sk_GENERAL_NAME_value(names, 0);
	if (g->type != GEN_URI)
		goto out;
	s = g->d.uniformResourceIdentifier;
	n = ASN1_STRING_length(s);
	if (n <= 0 || (size_t)n >= len || memchr(ASN1_STRING_get0_data(s), '\0', (size_t)n))
		goto out;
	memcpy(uri, ASN1_STRING_get0_data(s), (size_t)n);
	uri[n] = '\0';
	ret = 0;
out:
	GENERAL_NAMES_free(names);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return ret;
}

int csr_check(const char *pem, size_t len, const char *want_uri, EVP_PKEY **pub_out, char *err)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
	EVP_PKEY *pub = NULL;
	char uri[SPIFFE_ID_MAX];
	int ret = -EBADMSG;

	BIO_free(bio);
	ERR_clear_error();
	if (!req) {
		snprintf(err, IDENTITY_ERR_MAX, "not a PEM certificate signing request");
		return -EBADMSG;
	}
	pub = X509_REQ_get_pubkey(req);
	if (!pub) {
		snprintf(err, IDENTITY_ERR_MAX, "the request has no public key");
		goto out;
	}
	/* Workload keys are what the agents make: P-256, or Ed25519. */
	if (!EVP_PKEY_is_a(pub, "EC") && !EVP_PKEY_is_a(pub, "ED25519")) {
		snprintf(err, IDENTITY_ERR_MAX, "the request's key is neither P-256 nor Ed25519");
		goto out;
	}
	if (EVP_PKEY_is_a(pub, "EC")) {
		char curve[32] = "";

		if (!EVP_PKEY_get_utf8_string_param(pub, "group", curve, sizeof(curve), NULL) ||
		    strcmp(curve, "prime256v1")) {
			snprintf(err, IDENTITY_ERR_MAX, "the request's key is not on P-256");
			goto out;
		}
	}
	/* Proof that the caller holds the private key. */
	if (X509_REQ_verify(req, pub) != 1) {
		snprintf(err, IDENTITY_ERR_MAX, "the request's signature does not verify");
		goto out;
	}
	if (csr_uri(req, uri, sizeof(uri))) {
		snprintf(err, IDENTITY_ERR_MAX,
			 "the request must carry exactly one subject alternative name, a URI");
		goto out;
	}
	if (strcmp(uri, want_uri)) {
		snprintf(err, IDENTITY_ERR_MAX, "the request names '%s', not '%s'", uri, want_uri);
		ret = -EACCES;
		goto out;
	}
	*pub_out = pub;
	pub = NULL;
	ret = 0;
out:
	ERR_clear_error();
	EVP_PKEY_free(pub);
	X509_REQ_free(req);
	return ret;
}
