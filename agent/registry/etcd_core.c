// SPDX-License-Identifier: GPL-2.0-only
/* What the etcd backend's threads share (registry/etcd_core.h): waiting on
 * stop or new work, and the keys under the prefix.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "registry/etcd_core.h"

bool etcd_stopping(struct etcd *e)
{
	bool stopping;

	pthread_mutex_lock(&e->lock);
	stopping = e->stopping;
	pthread_mutex_unlock(&e->lock);
	return stopping;
}

bool etcd_wait(struct etcd *e, uint32_t ms, const uint64_t *gen)
{
	struct timespec until;
	bool stopping;

	mono_deadline(&until, ms);
	pthread_mutex_lock(&e->lock);
	while (!e->stopping && (!gen || *gen == e->want.gen)) {
		if (pthread_cond_timedwait(&e->cond, &e->lock, &until) == ETIMEDOUT)
			break;
	}
	stopping = e->stopping;
	pthread_mutex_unlock(&e->lock);
	return stopping;
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
