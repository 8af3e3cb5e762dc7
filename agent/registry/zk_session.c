// SPDX-License-Identifier: GPL-2.0-only
/* The bottom of the ZooKeeper backend (registry/zk_session.h): the
 * completions and the watcher that the client library's threads run, and
 * the calls the worker thread makes through them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/zk_session.h"

/* ---- completions and watcher: the library's threads ---- */

static void complete(struct zk_req *r, int rc)
{
	r->rc = rc;
	r->done = true;
	pthread_cond_broadcast(&r->z->cond);
	pthread_mutex_unlock(&r->z->lock);
}

void zk_data_done(int rc, const char *value, int len, const struct Stat *stat, const void *data)
{
	struct zk_req *r = (struct zk_req *)data;

	pthread_mutex_lock(&r->z->lock);
	if (rc == ZOK && stat)
		r->stat = *stat;
	if (rc == ZOK) {
		r->len = len > 0 ? len : 0;
		r->data = malloc((size_t)r->len + 1);
		if (!r->data)
			rc = ZSYSTEMERROR;
		else {
			if (r->len)
				memcpy(r->data, value, (size_t)r->len);
			r->data[r->len] = '\0';
		}
	}
	complete(r, rc);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void zk_strings_done(int rc, const struct String_vector *names, const void *data)
{
	struct zk_req *r = (struct zk_req *)data;
	size_t n = rc == ZOK && names && names->count > 0 ? (size_t)names->count : 0;

	pthread_mutex_lock(&r->z->lock);
	if (n && !(r->names = calloc(n, sizeof(*r->names))))
		rc = ZSYSTEMERROR;
	for (size_t i = 0; i < n && rc == ZOK; i++) {
		r->names[i] = strdup(names->data[i]);
		if (!r->names[i])
			rc = ZSYSTEMERROR;
		r->n_names = i + 1;
	}
	if (rc == ZOK && n)
		qsort(r->names, n, sizeof(*r->names), name_cmp);
	complete(r, rc);
}

void zk_void_done(int rc, const void *data)
{
	struct zk_req *r = (struct zk_req *)data;

	pthread_mutex_lock(&r->z->lock);
	complete(r, rc);
}

void zk_stat_done(int rc, const struct Stat *stat, const void *data)
{
	struct zk_req *r = (struct zk_req *)data;

	pthread_mutex_lock(&r->z->lock);
	if (rc == ZOK && stat)
		r->stat = *stat;
	complete(r, rc);
}

void zk_string_done(int rc, const char *value, const void *data)
{
	(void)value;
	zk_void_done(rc, data);
}

void zk_on_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zk *z = ctx;
	struct zk_event *ev = NULL;

	(void)zh;
	if (type != ZOO_SESSION_EVENT && path) {
		size_t n = strlen(path);

		ev = malloc(sizeof(*ev) + n + 1);
		if (ev) {
			ev->next = NULL;
			ev->type = type;
			memcpy(ev->path, path, n + 1);
		}
	}
	pthread_mutex_lock(&z->lock);
	if (type == ZOO_SESSION_EVENT) {
		z->session_state = state;
		z->session_changed = true;
	} else if (!ev || z->n_events == ZK_EVENTS_MAX) {
		/* An event lost is a change missed: list everything again. */
		z->events_lost = true;
		free(ev);
	} else if (type != ZOO_NOTWATCHING_EVENT) {
		*z->events_tail = ev;
		z->events_tail = &ev->next;
		z->n_events++;
	} else {
		free(ev);
	}
	pthread_cond_broadcast(&z->cond);
	pthread_mutex_unlock(&z->lock);
}

/* ---- helpers for the worker ---- */

void zk_req_issued(struct zk_req *r, int rc)
{
	if (rc == ZOK)
		return;
	r->rc = rc;
	r->done = true;
}

void zk_req_clear(struct zk_req *r)
{
	free(r->data);
	r->data = NULL;
	r->len = 0;
	for (size_t i = 0; i < r->n_names; i++)
		free(r->names[i]);
	free(r->names);
	r->names = NULL;
	r->n_names = 0;
}

int zk_wait(struct zk *z, struct zk_req *reqs, size_t n)
{
	bool all = false, stopping;

	pthread_mutex_lock(&z->lock);
	for (;;) {
		all = true;
		for (size_t i = 0; i < n && all; i++)
			all = reqs[i].done;
		stopping = z->stopping;
		if (all || stopping)
			break;
		pthread_cond_wait(&z->cond, &z->lock);
	}
	pthread_mutex_unlock(&z->lock);
	if (all)
		return 0;
	/* Closing ends the calls still pending: after it returns, no callback
	 * touches @reqs any more.
	 */
	if (z->zh)
		zookeeper_close(z->zh);
	z->zh = NULL;
	return -ECANCELED;
}

int zk_abs(const struct zk *z, const char *rel, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", z->root, rel);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int zk_errno(int rc)
{
	switch (rc) {
	case ZOK:
		return 0;
	case ZNONODE:
		return -ENOENT;
	case ZNODEEXISTS:
		return -EEXIST;
	case ZNOTEMPTY:
		return -ENOTEMPTY;
	case ZCLOSING:
		return -ECANCELED;
	case ZSESSIONEXPIRED:
		return -ESTALE;
	case ZNOAUTH:
	case ZAUTHFAILED:
		return -EACCES;
	case ZSYSTEMERROR:
		return -ENOMEM;
	default:
		return -ECONNRESET;	/* connection loss, timeouts: the session will say */
	}
}
