// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/curl_body.h. */
#include <stdlib.h>
#include <string.h>

#include "curl_body.h"

size_t tcurl_body_write(char *data, size_t size, size_t n, void *body)
{
	struct tcurl_body *b = body;
	char *nb = realloc(b->buf, b->len + size * n + 1);

	if (!nb)
		return 0;
	memcpy(nb + b->len, data, size * n);
	b->buf = nb;
	b->len += size * n;
	b->buf[b->len] = '\0';
	return size * n;
}
