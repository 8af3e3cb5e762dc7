// SPDX-License-Identifier: GPL-2.0-only
/* The EndpointSlices of this node that the self-registering backends (etcd,
 * ZooKeeper) carry: comparing, copying and freeing them. Below every
 * backend, so the registrars share it without calling back into the table.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"

bool reg_local_slices_equal(const struct reg_local_slice *a, size_t na,
			    const struct reg_local_slice *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		if (strcmp(a[i].ns, b[i].ns) || strcmp(a[i].name, b[i].name) ||
		    strcmp(a[i].manifest, b[i].manifest))
			return false;
	}
	return true;
}

int reg_local_slices_dup(const struct reg_local_slice *s, size_t n, struct reg_local_slice **out)
{
	struct reg_local_slice *copy;

	*out = NULL;
	if (!n)
		return 0;
	copy = calloc(n, sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		copy[i] = s[i];
		copy[i].manifest = strdup(s[i].manifest);
		if (!copy[i].manifest) {
			reg_local_slices_free(copy, i);
			return -ENOMEM;
		}
	}
	*out = copy;
	return 0;
}

void reg_local_slices_free(struct reg_local_slice *s, size_t n)
{
	if (!s)
		return;
	for (size_t i = 0; i < n; i++)
		free(s[i].manifest);
	free(s);
}
