// SPDX-License-Identifier: GPL-2.0-only
/* weft-ca's state from its Secret's files (--ca-dir): the signer (ca.crt,
 * ca.key), the bundle agents trust (ca.crt followed by trust.pem, the old
 * or next CA of a rotation) and its own serving certificate, signed by the
 * signer and renewed at half-life or when the signer changes. Request
 * threads read it under the lock; the main thread swaps it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/ca.h"
#include "fs.h"
#include "log.h"

/* The serving certificate's lifetime; renewed at half of it. */
#define CA_SERVING_TTL_S (24 * 3600)
#define CA_FILE_MAX (1u << 20)

int ca_store_init(struct ca_store *s)
{
	memset(s, 0, sizeof(*s));
	return -pthread_rwlock_init(&s->lock, NULL);
}

void ca_store_done(struct ca_store *s)
{
	ca_free(s->signer);
	free(s->bundle_pem);
	SSL_CTX_free(s->serving);
	pthread_rwlock_destroy(&s->lock);
	memset(s, 0, sizeof(*s));
}

static void paths(const struct ca_config *cfg, char out[3][4096])
{
	snprintf(out[0], 4096, "%s/ca.crt", cfg->ca_dir);
	snprintf(out[1], 4096, "%s/ca.key", cfg->ca_dir);
	snprintf(out[2], 4096, "%s/trust.pem", cfg->ca_dir);
}

static void files_mtime(char p[3][4096], struct timespec out[3])
{
	struct stat st;

	for (int i = 0; i < 3; i++)
		out[i] = !stat(p[i], &st) ? st.st_mtim : (struct timespec){ 0 };
}

/* A TLS 1.3 server context with a fresh key and a certificate for @names
 * from @signer. NULL (logged) on failure.
 */
static SSL_CTX *make_serving(struct ca *signer, const char *names)
{
	char err[IDENTITY_ERR_MAX] = "";
	EVP_PKEY *key = svid_key_new();
	SSL_CTX *ctx = NULL;
	X509 *cert = NULL;
	int rc;

	if (!key)
		return NULL;
	rc = ca_sign_serving(signer, key, names, CA_SERVING_TTL_S, &cert, err);
	if (rc) {
		log_errno(rc, "weft-ca: serving certificate: %s", err);
		goto out;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_use_certificate(ctx, cert) || !SSL_CTX_use_PrivateKey(ctx, key)) {
		ERR_clear_error();
		log_err("weft-ca: no TLS context for the serving certificate");
		SSL_CTX_free(ctx);
		ctx = NULL;
	}
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return ctx;
}

/* @pem's certificates, counted; -EINVAL when one does not parse. */
static int count_certs(const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x;
	int n = 0;

	if (!bio)
		return -ENOMEM;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	BIO_free(bio);
	return n;
}

int ca_store_reload(struct ca_store *s, const struct ca_config *cfg, bool force)
{
	char err[IDENTITY_ERR_MAX] = "", p[3][4096];
	char *crt = NULL, *extra = NULL, *bundle = NULL;
	size_t crt_len = 0, extra_len = 0;
	struct timespec m[3];
	struct ca *signer = NULL;
	SSL_CTX *serving;
	int rc, n_extra = 0;

	paths(cfg, p);
	files_mtime(p, m);
	if (!force && s->signer && !memcmp(m, s->mtime, sizeof(m))) {
		if (time(NULL) < s->serving_renew_at)
			return 0;
		/* Only the serving certificate is due. */
		serving = make_serving(s->signer, cfg->serving_names);
		if (!serving)
			return -ENOMEM;
		pthread_rwlock_wrlock(&s->lock);
		SSL_CTX_free(s->serving);
		s->serving = serving;
		s->serving_renew_at = time(NULL) + CA_SERVING_TTL_S / 2;
		pthread_rwlock_unlock(&s->lock);
		return 0;
	}
	rc = ca_load(p[0], p[1], &signer, err);
	if (rc)
		return log_errno(rc, "weft-ca: %s", err);
	rc = fs_read_file(p[0], CA_FILE_MAX, &crt, &crt_len, NULL);
	if (rc) {
		log_errno(rc, "weft-ca: read '%s'", p[0]);
		goto out;
	}
	rc = fs_read_file(p[2], CA_FILE_MAX, &extra, &extra_len, NULL);
	if (rc == -ENOENT) {
		rc = 0;	/* no rotation under way */
	} else if (rc) {
		log_errno(rc, "weft-ca: read '%s'", p[2]);
		goto out;
	} else {
		n_extra = count_certs(extra, extra_len);
		if (n_extra <= 0 && extra_len && strspn(extra, " \t\r\n") != extra_len) {
			rc = log_errno(-EINVAL, "weft-ca: '%s' holds no PEM certificate", p[2]);
			goto out;
		}
	}
	if (asprintf(&bundle, "%s%s%s", crt, crt_len && crt[crt_len - 1] != '\n' ? "\n" : "",
		     extra ? extra : "") < 0) {
		bundle = NULL;
		rc = -ENOMEM;
		goto out;
	}
	serving = make_serving(signer, cfg->serving_names);
	if (!serving) {
		rc = -EINVAL;
		goto out;
	}
	pthread_rwlock_wrlock(&s->lock);
	ca_free(s->signer);
	s->signer = signer;
	signer = NULL;
	free(s->bundle_pem);
	s->bundle_pem = bundle;
	bundle = NULL;
	s->n_bundle = 1 + (size_t)(n_extra > 0 ? n_extra : 0);
	SSL_CTX_free(s->serving);
	s->serving = serving;
	s->serving_renew_at = time(NULL) + CA_SERVING_TTL_S / 2;
	X509_NAME_oneline(X509_get_subject_name(ca_cert(s->signer)), s->signer_name,
			  sizeof(s->signer_name));
	{
		struct tm tm;

		s->signer_not_after = ASN1_TIME_to_tm(X509_get0_notAfter(ca_cert(s->signer)), &tm)
					      ? timegm(&tm) : 0;
	}
	memcpy(s->mtime, m, sizeof(m));
	pthread_rwlock_unlock(&s->lock);
	log_info("weft-ca: signing with %s, bundle of %zu CA certificate(s)", s->signer_name,
		 s->n_bundle);
	rc = 1;
out:
	ca_free(signer);
	free(crt);
	free(extra);
	free(bundle);
	return rc;
}
