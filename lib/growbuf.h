/* SPDX-License-Identifier: GPL-2.0-only */
/* A growable, bounded, NUL-terminated byte buffer: what an HTTP client's
 * write callback collects a body into.
 */
#ifndef WEFT_GROWBUF_H
#define WEFT_GROWBUF_H

#include <stddef.h>

struct growbuf {
	char *data;	/* NUL-terminated once anything was added; NULL before */
	size_t len;
	size_t max;	/* the most bytes it may hold */
};

/* Append @n bytes at @p to @b, keeping it NUL-terminated. Returns 0, -EFBIG
 * when @b would hold more than b->max bytes, or -ENOMEM; on an error @b is
 * unchanged.
 */
int growbuf_add(struct growbuf *b, const void *p, size_t n);

/* Free what @b holds and empty it (its max stays). */
void growbuf_free(struct growbuf *b);

#endif /* WEFT_GROWBUF_H */
