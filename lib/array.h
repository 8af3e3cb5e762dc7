/* SPDX-License-Identifier: GPL-2.0-only */
/* Growing arrays: the one doubling rule every append-only array uses. */
#ifndef WEFT_ARRAY_H
#define WEFT_ARRAY_H

#include <stddef.h>

/* Make room for one more element of @size bytes in an array holding @n of
 * *@cap: when full, double *@cap (starting at @first) and reallocate. @arr is
 * the address of the caller's array pointer (&s->items). 0, or -ENOMEM with
 * the array and *@cap unchanged.
 */
int array_reserve(void *arr, size_t *cap, size_t n, size_t size, size_t first);

#endif /* WEFT_ARRAY_H */
