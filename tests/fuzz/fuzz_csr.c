// SPDX-License-Identifier: GPL-2.0-only
/* Fuzz target: the certificate signing requests weft-ca reads from any
 * caller that got past its TokenReview (agent/identity/csr.c). Whatever the
 * bytes, csr_check() either refuses them or hands back a public key of an
 * accepted type, and it never accepts a request that names another
 * identity than the one asked for.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "fuzz.h"
#include "identity/identity.h"

#define WANT "spiffe://cluster.local/ns/shop/sa/web"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[IDENTITY_ERR_MAX];
	EVP_PKEY *pub = NULL;
	char *text = fuzz_str(data, size);
	int rc = csr_check(text, strlen(text), WANT, &pub, err);

	if (rc == 0) {
		if (!pub || (!EVP_PKEY_is_a(pub, "EC") && !EVP_PKEY_is_a(pub, "ED25519")))
			abort();
		/* What was accepted names the identity asked for and no other. */
		if (csr_check(text, strlen(text), "spiffe://cluster.local/ns/shop/sa/other",
			      &(EVP_PKEY *){ NULL }, err) != -EACCES)
			abort();
	} else if (pub || (rc != -EBADMSG && rc != -EACCES)) {
		abort();
	}
	EVP_PKEY_free(pub);
	ERR_clear_error();
	free(text);
	return 0;
}
