// SPDX-License-Identifier: GPL-2.0-only
/* What the etcd backend's threads share (registry/etcd_core.h): waiting on
 * stop or new work, and the keys under the prefix.
 */
#include <stdlib.h>
#include <string.h>

#include "registry/etcd_core.h"
#include "sync.h"

bool etcd_stopping(struct etcd *e)
{
	return sync_flag(&e->lock, &e->stopping);
}

bool etcd_wait(struct etcd *e, uint32_t ms, const uint64_t *gen)
{
	return sync_wait(&e->lock, &e->cond, &e->stopping, &e->want.gen, gen, ms);
}

json_object *etcd_key_b64(const struct etcd *e, const char *rel)
{
	size_t n = strlen(rel);
	char *key = malloc(e->prefix_len + n);
	json_object *s;

	if (!key)
		return NULL;
	memcpy(key, e->prefix, e->prefix_len);
	memcpy(key + e->prefix_len, rel, n);
	s = etcd_b64_string(key, e->prefix_len + n);
	free(key);
	return s;
}
