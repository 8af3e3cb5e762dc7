// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of lib/growbuf.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "growbuf.h"

int growbuf_add(struct growbuf *b, const void *p, size_t n)
{
	char *grown;

	if (n > b->max || b->len > b->max - n)
		return -EFBIG;
	grown = realloc(b->data, b->len + n + 1);
	if (!grown)
		return -ENOMEM;
	memcpy(grown + b->len, p, n);
	b->data = grown;
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

void growbuf_free(struct growbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}
