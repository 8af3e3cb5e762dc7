// SPDX-License-Identifier: GPL-2.0-only
/* The standalone CA: a CA certificate and its private key given by file
 * (--ca-cert, --ca-key), which signs this node's workload certificates.
 * It puts the CA key on every node, so it is the standalone and development
 * path only; docs/mtls.md describes the weft-ca issuing path that keeps the
 * key off nodes. ca_sign() is the part both paths share.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "identity/identity.h"

struct ca {
	X509 *cert;
	EVP_PKEY *key;
};

/* The first OpenSSL error queued, or @fallback, into @err; clears the queue. */
static void ssl_err(char *err, const char *what, const char *fallback)
{
	unsigned long e = ERR_peek_error();
	char buf[160];

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, IDENTITY_ERR_MAX, "%s: %s", what, e ? buf : fallback);
	ERR_clear_error();
}

int ca_load(const char *cert_path, const char *key_path, struct ca **out, char *err)
{
	struct ca *ca = calloc(1, sizeof(*ca));
	FILE *f;

	if (!ca)
		return -ENOMEM;
	f = fopen(cert_path, "re");
	if (!f) {
		int e = errno;

		snprintf(err, IDENTITY_ERR_MAX, "%s: %s", cert_path, strerror(e));
		free(ca);
		return -e;
	}
	ca->cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!ca->cert) {
		ssl_err(err, cert_path, "no PEM certificate");
		goto fail;
	}
	if (X509_check_ca(ca->cert) != 1) {
		snprintf(err, IDENTITY_ERR_MAX, "%s: not a CA certificate", cert_path);
		goto fail;
	}
	f = fopen(key_path, "re");
	if (!f) {
		int e = errno;

		snprintf(err, IDENTITY_ERR_MAX, "%s: %s", key_path, strerror(e));
		ca_free(ca);
		return -e;
	}
	ca->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!ca->key) {
		ssl_err(err, key_path, "no PEM private key");
		goto fail;
	}
	if (X509_check_private_key(ca->cert, ca->key) != 1) {
		ERR_clear_error();
		snprintf(err, IDENTITY_ERR_MAX, "%s: not the key of %s", key_path, cert_path);
		goto fail;
	}
	*out = ca;
	return 0;
fail:
	ca_free(ca);
	return -EINVAL;
}

void ca_free(struct ca *ca)
{
	if (!ca)
		return;
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	free(ca);
}

X509 *ca_cert(const struct ca *ca)
{
	return ca->cert;
}

/* Add extension @nid = @value (OpenSSL's config syntax) to @x. */
static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (!ext)
		return -EINVAL;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -ENOMEM;
}

/* A random positive 128-bit serial, as RFC 5280 asks (at most 20 octets). */
static int set_serial(X509 *x)
{
	BIGNUM *bn = BN_new();
	int ok;

	if (!bn)
		return -ENOMEM;
	ok = BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	return ok ? 0 : -ENOMEM;
}

/* A leaf for @pub with subjectAltName @san (OpenSSL's config syntax) and
 * extendedKeyUsage @eku, @ttl_s from now but never past the CA's expiry,
 * signed by @ca. @what names it in @err.
 */
static int sign(struct ca *ca, EVP_PKEY *pub, const char *san, const char *eku, uint32_t ttl_s,
		const char *what, X509 **out, char *err)
{
	X509 *x = X509_new();
	X509_NAME *subj = NULL;
	X509V3_CTX v3;
	const EVP_MD *md;
	int ret = -EINVAL;

	if (!x)
		return -ENOMEM;
	subj = X509_NAME_new();
	if (!subj || !X509_set_version(x, X509_VERSION_3) || set_serial(x) ||
	    !X509_NAME_add_entry_by_txt(subj, "O", MBSTRING_ASC, (const unsigned char *)"weft",
					-1, -1, 0) ||
	    !X509_set_subject_name(x, subj) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) ||
	    !X509_set_pubkey(x, pub) || !X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), ttl_s)) {
		ssl_err(err, what, "building the certificate");
		ret = -ENOMEM;
		goto out;
	}
	/* A leaf outliving its CA would only fail verification later. */
	if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca->cert)) > 0 &&
	    !X509_set1_notAfter(x, X509_get0_notAfter(ca->cert))) {
		ret = -ENOMEM;
		goto out;
	}
	X509V3_set_ctx(&v3, ca->cert, x, NULL, NULL, 0);
	if (add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(x, &v3, NID_key_usage, "critical,digitalSignature") ||
	    add_ext(x, &v3, NID_ext_key_usage, eku) ||
	    add_ext(x, &v3, NID_subject_key_identifier, "hash") ||
	    add_ext(x, &v3, NID_authority_key_identifier, "keyid:always") ||
	    /* The subject says nothing: the SAN is the identity (SPIFFE). */
	    add_ext(x, &v3, NID_subject_alt_name, san)) {
		ssl_err(err, what, "adding the extensions");
		goto out;
	}
	/* Ed25519 and Ed448 CA keys sign without a separate digest. */
	md = EVP_PKEY_get_id(ca->key) == EVP_PKEY_ED25519 ||
			     EVP_PKEY_get_id(ca->key) == EVP_PKEY_ED448
		     ? NULL
		     : EVP_sha256();
	if (!X509_sign(x, ca->key, md)) {
		ssl_err(err, what, "signing");
		goto out;
	}
	*out = x;
	x = NULL;
	ret = 0;
out:
	X509_NAME_free(subj);
	X509_free(x);
	return ret;
}

int ca_sign(struct ca *ca, EVP_PKEY *pub, const char *uri, uint32_t ttl_s, X509 **out,
	    char *err)
{
	char san[SPIFFE_ID_MAX + 8];

	/* The config syntax would read a ',' as the next name. */
	if (strchr(uri, ',') || (size_t)snprintf(san, sizeof(san), "URI:%s", uri) >= sizeof(san)) {
		snprintf(err, IDENTITY_ERR_MAX, "%s: not a URI SAN", uri);
		return -EINVAL;
	}
	return sign(ca, pub, san, "serverAuth,clientAuth", ttl_s, uri, out, err);
}

int ca_sign_serving(struct ca *ca, EVP_PKEY *pub, const char *names, uint32_t ttl_s, X509 **out,
		    char *err)
{
	char san[1024] = "", name[256];
	const char *p = names;
	size_t used = 0;

	while (*p) {
		size_t n = strcspn(p, ","), k;
		unsigned char ip[16];

		if (n == 0 || n >= sizeof(name)) {
			snprintf(err, IDENTITY_ERR_MAX, "'%s': an empty or too long name", names);
			return -EINVAL;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		for (k = 0; k < n; k++)
			if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789.-:", name[k])) {
				snprintf(err, IDENTITY_ERR_MAX, "'%s' is not a DNS name or an IP",
					 name);
				return -EINVAL;
			}
		k = (size_t)snprintf(san + used, sizeof(san) - used, "%s%s:%s", used ? "," : "",
				     inet_pton(AF_INET, name, ip) == 1 ||
						     inet_pton(AF_INET6, name, ip) == 1
					     ? "IP"
					     : "DNS",
				     name);
		if (k >= sizeof(san) - used) {
			snprintf(err, IDENTITY_ERR_MAX, "'%s': too many names", names);
			return -EINVAL;
		}
		used += k;
		p += n + (p[n] == ',');
	}
	if (!used) {
		snprintf(err, IDENTITY_ERR_MAX, "no name for the serving certificate");
		return -EINVAL;
	}
	return sign(ca, pub, san, "serverAuth", ttl_s, "serving certificate", out, err);
}
