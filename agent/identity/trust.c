// SPDX-License-Identifier: GPL-2.0-only
/* The trust bundle: the CA certificates a peer's SVID must chain to, loaded
 * from PEM files (the CA's own, plus the old or next one while a CA rotates),
 * and reading a workload identity out of a certificate the way SPIFFE's
 * X.509-SVID specification says: exactly one URI SAN, a leaf, not a CA.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "identity/identity.h"

/* Add every certificate of PEM file @path to @store; the count, or -errno. */
static int add_pem_file(X509_STORE *store, const char *path, char *err)
{
	FILE *f = fopen(path, "re");
	X509 *x;
	int n = 0;

	if (!f) {
		int e = errno;

		snprintf(err, IDENTITY_ERR_MAX, "%s: %s", path, strerror(e));
		return -e;
	}
	while ((x = PEM_read_X509(f, NULL, NULL, NULL))) {
		int ok = X509_STORE_add_cert(store, x);

		X509_free(x);
		if (!ok) {
			fclose(f);
			snprintf(err, IDENTITY_ERR_MAX, "%s: certificate %d not added", path, n + 1);
			return -EINVAL;
		}
		n++;
	}
	/* The loop ends on end of file too, which OpenSSL reports as an error. */
	ERR_clear_error();
	fclose(f);
	if (!n) {
		snprintf(err, IDENTITY_ERR_MAX, "%s: no PEM certificate", path);
		return -EINVAL;
	}
	return n;
}

int trust_load(const char *td, const char *ca_path, const char *extra_path, struct trust **out,
	       char *err)
{
	struct trust *t;
	int n;

	if (!spiffe_td_valid(td)) {
		snprintf(err, IDENTITY_ERR_MAX, "'%s' is not a trust domain", td);
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	atomic_init(&t->refs, 1);
	snprintf(t->td, sizeof(t->td), "%s", td);
	t->store = X509_STORE_new();
	if (!t->store) {
		free(t);
		return -ENOMEM;
	}
	n = add_pem_file(t->store, ca_path, err);
	if (n > 0) {
		t->n_cas = (size_t)n;
		if (extra_path && extra_path[0]) {
			n = add_pem_file(t->store, extra_path, err);
			if (n > 0)
				t->n_cas += (size_t)n;
		}
	}
	if (n < 0) {
		trust_unref(t);
		return n;
	}
	*out = t;
	return 0;
}

struct trust *trust_ref(struct trust *t)
{
	if (t)
		atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	return t;
}

void trust_unref(struct trust *t)
{
	if (!t || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	X509_STORE_free(t->store);
	free(t);
}

int svid_cert_id(X509 *leaf, const char *td, struct spiffe_id *out)
{
	GENERAL_NAMES *names;
	int n_uri = 0, ret = -EINVAL;
	char uri[SPIFFE_ID_MAX];

	if (X509_check_ca(leaf))
		return -EPERM;
	names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	if (!names)
		return -EINVAL;
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		const ASN1_IA5STRING *s;
		int len;

		if (g->type != GEN_URI)
			continue;
		n_uri++;
		s = g->d.uniformResourceIdentifier;
		len = ASN1_STRING_length(s);
		/* A NUL inside would cut the comparison short. */
		if (len <= 0 || (size_t)len >= sizeof(uri) ||
		    memchr(ASN1_STRING_get0_data(s), '\0', (size_t)len))
			continue;
		memcpy(uri, ASN1_STRING_get0_data(s), (size_t)len);
		uri[len] = '\0';
		if (!spiffe_id_parse(uri, out) && !strcmp(out->td, td))
			ret = 0;
	}
	GENERAL_NAMES_free(names);
	/* SPIFFE: an X.509-SVID has exactly one URI SAN. */
	return n_uri == 1 ? ret : -EINVAL;
}

int trust_verify(const struct trust *t, X509 *leaf, STACK_OF(X509) *chain,
		 struct spiffe_id *out, char *err)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	if (!ctx)
		return -ENOMEM;
	if (!X509_STORE_CTX_init(ctx, t->store, leaf, chain)) {
		X509_STORE_CTX_free(ctx);
		return -ENOMEM;
	}
	ok = X509_verify_cert(ctx);
	if (ok != 1)
		snprintf(err, IDENTITY_ERR_MAX, "%s",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	if (ok != 1)
		return -EKEYREJECTED;
	return svid_cert_id(leaf, t->td, out);
}
