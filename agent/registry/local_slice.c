// SPDX-License-Identifier: GPL-2.0-only
/* The EndpointSlices of this node that the self-registering backends (etcd,
 * ZooKeeper) carry: comparing, copying and freeing them, and handing them
 * to a registering thread. Below every
 * backend, so the registrars share it without calling back into the table.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
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

/* Make *@dst (*@n_dst) a deep copy of @src (@n). 0, or -ENOMEM, @dst unchanged. */
static int slices_set(struct reg_local_slice **dst, size_t *n_dst,
		      const struct reg_local_slice *src, size_t n)
{
	struct reg_local_slice *copy;
	int err = reg_local_slices_dup(src, n, &copy);

	if (err)
		return err;
	reg_local_slices_free(*dst, *n_dst);
	*dst = copy;
	*n_dst = n;
	return 0;
}

bool reg_local_registers(const char *source, const char *node)
{
	if (!node || !node[0])
		return false;
	if (strlen(node) > REG_LOCAL_NODE_MAX) {
		log_warn("registry: %s: --node-name is longer than %d characters: this node's "
			 "endpoints are not registered, ignoring",
			 source, REG_LOCAL_NODE_MAX);
		return false;
	}
	return true;
}

void reg_local_want_post(struct reg_local_want *w, pthread_mutex_t *lock, pthread_cond_t *cond,
			 const char *source, const struct reg_local_slice *slices, size_t n,
			 bool complete)
{
	int err = 0;

	pthread_mutex_lock(lock);
	if (w->complete != complete || !reg_local_slices_equal(w->slices, w->n, slices, n)) {
		err = slices_set(&w->slices, &w->n, slices, n);
		if (!err) {
			w->complete = complete;
			w->gen++;
			pthread_cond_broadcast(cond);
		}
	}
	pthread_mutex_unlock(lock);
	if (err)
		log_warn("registry: %s: cannot keep this node's endpoints: %s, ignoring", source,
			 strerror(-err));
}

int reg_local_want_take(struct reg_local_want *copy, const struct reg_local_want *w,
			pthread_mutex_t *lock)
{
	int err = 0;

	pthread_mutex_lock(lock);
	if (copy->gen != w->gen) {
		err = slices_set(&copy->slices, &copy->n, w->slices, w->n);
		if (!err) {
			copy->gen = w->gen;
			copy->complete = w->complete;
		}
	}
	pthread_mutex_unlock(lock);
	return err;
}

void reg_local_want_free(struct reg_local_want *w)
{
	reg_local_slices_free(w->slices, w->n);
	w->slices = NULL;
	w->n = 0;
}
