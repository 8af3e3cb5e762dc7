// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of lib/array.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"

int array_reserve(void *arr, size_t *cap, size_t n, size_t size, size_t first)
{
	size_t want;
	void *old, *grown;

	if (n < *cap)
		return 0;
	want = *cap ? *cap * 2 : first;
	/* Through memcpy: @arr points to a pointer of the caller's type. */
	memcpy(&old, arr, sizeof(old));
	grown = reallocarray(old, want, size);
	if (!grown)
		return -ENOMEM;
	memcpy(arr, &grown, sizeof(grown));
	*cap = want;
	return 0;
}
