// SPDX-License-Identifier: GPL-2.0-only
/* The ZooKeeper mirror: the tree under ROOT (registry/etcd_zk_layout.h) into
 * the sink. Every directory is listed with a child watch and every object
 * read with a data watch; a watch fires once, so each event re-lists or
 * re-reads, which arms it again. A missing directory gets an exists watch,
 * so its creation is seen. The children each directory had when last listed
 * tell which ones are new.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "registry/decode.h"
#include "registry/zk_register.h"
#include "registry/zk_session.h"
#include "registry/zk_tree.h"

#define FETCH_BATCH 256		/* reads in flight at once */

static const enum obj_kind all_kinds[] = { OBJ_NAMESPACE, OBJ_SERVICE, OBJ_ENDPOINTSLICE,
					   OBJ_POD };

enum node { NODE_NONE, NODE_KIND_DIR, NODE_NS_DIR, NODE_LEAF };

/* What the relative path @rel is in the layout. */
static enum node classify(const char *rel, struct obj_key *key)
{
	const char *slash = strchr(rel, '/');
	size_t n = slash ? (size_t)(slash - rel) : strlen(rel);

	for (size_t k = 0; k < OBJ_KIND_COUNT; k++) {
		const char *plural = reg_kv_plural((enum obj_kind)k);

		if (strlen(plural) != n || memcmp(rel, plural, n))
			continue;
		if (!slash)
			return NODE_KIND_DIR;
		if (!reg_kv_parse_path(rel, strlen(rel), key))
			return NODE_LEAF;
		if (k != OBJ_NAMESPACE && slash[1] && !strchr(slash + 1, '/') &&
		    strlen(slash + 1) < OBJ_NS_MAX)
			return NODE_NS_DIR;
		return NODE_NONE;
	}
	return NODE_NONE;
}

static struct zk_dir *dir_find(struct zk *z, const char *rel, struct zk_dir ***link)
{
	struct zk_dir **l = &z->dirs;

	for (; *l; l = &(*l)->next) {
		if (!strcmp((*l)->rel, rel)) {
			if (link)
				*link = l;
			return *l;
		}
	}
	return NULL;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether @name is one of @names (sorted, as listings are). */
static bool has_name(char **names, size_t n, const char *name)
{
	return n && bsearch(&name, names, n, sizeof(*names), name_cmp);
}

static int child_rel(const char *dir, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Forget directory @rel and everything known below it; unless @quiet
 * (a listing is in progress and replaces it all), delete its objects.
 */
static int dir_drop(struct zk *z, const char *rel, bool quiet)
{
	struct zk_dir **link, *d = dir_find(z, rel, &link);
	char crel[REG_KV_PATH_MAX];
	struct obj_key key;
	int err = 0;

	if (!d)
		return 0;
	*link = d->next;
	for (size_t i = 0; i < d->n_names && !err; i++) {
		if (child_rel(rel, d->names[i], crel, sizeof(crel)))
			continue;
		switch (classify(crel, &key)) {
		case NODE_LEAF:
			if (!quiet)
				err = reg_sink_delete(z->sink, z->source, key.kind, key.ns, key.name);
			break;
		case NODE_NS_DIR:
			err = dir_drop(z, crel, quiet);
			break;
		default:
			break;
		}
	}
	free_names(d->names, d->n_names);
	free(d);
	return err;
}

void zk_tree_forget(struct zk *z)
{
	while (z->dirs) {
		struct zk_dir *d = z->dirs;

		z->dirs = d->next;
		free_names(d->names, d->n_names);
		free(d);
	}
}

/* Apply the read of object @rel: upsert it, or reject its value. */
static int apply_leaf(struct zk *z, const char *rel, struct zk_req *r, bool listing)
{
	char err[REG_DECODE_ERR_MAX + 64], abs[ZK_PATH_MAX];
	struct obj *obj = NULL;
	struct obj_key key;
	int ret;

	if (classify(rel, &key) != NODE_LEAF)
		return 0;
	if (r->rc == ZNONODE)	/* gone between the listing and the read */
		return listing ? 0 : reg_sink_delete(z->sink, z->source, key.kind, key.ns, key.name);
	if (r->rc != ZOK)
		return zk_errno(r->rc);
	/* This session's own: this node's registration, perhaps from before a
	 * hand-over (a resumed session).
	 */
	if (key.kind == OBJ_ENDPOINTSLICE && z->session_id &&
	    r->stat.ephemeralOwner == z->session_id) {
		ret = zk_register_found(z, rel);
		if (ret)
			return ret;
	}
	ret = reg_kv_decode(&key, r->data, (size_t)r->len, &obj, err, sizeof(err));
	if (ret == -EINVAL) {
		(void)zk_abs(z, rel, abs, sizeof(abs));
		log_warn("registry: %s: znode '%s': %s (its previous version stays in force), "
			 "ignoring",
			 z->source, abs, err);
		(void)reg_sink_rejected(z->sink, z->source);
		return listing ? reg_sink_keep(z->sink, z->source, key.kind, key.ns, key.name) : 0;
	}
	if (ret)
		return ret;
	return reg_sink_upsert(z->sink, z->source, obj);
}

/* Read (and watch) the objects @names of directory @dir, FETCH_BATCH at a
 * time, and apply them.
 */
static int fetch(struct zk *z, const char *dir, char **names, size_t n, bool listing, size_t *count)
{
	struct zk_req reqs[FETCH_BATCH];
	char rel[REG_KV_PATH_MAX], abs[ZK_PATH_MAX];
	int err = 0;

	for (size_t at = 0; at < n && !err; at += FETCH_BATCH) {
		size_t m = n - at < FETCH_BATCH ? n - at : FETCH_BATCH;

		memset(reqs, 0, sizeof(reqs));
		for (size_t i = 0; i < m; i++) {
			reqs[i].z = z;
			if (child_rel(dir, names[at + i], rel, sizeof(rel)) ||
			    zk_abs(z, rel, abs, sizeof(abs))) {
				reqs[i].done = true;
				reqs[i].rc = ZBADARGUMENTS;
				continue;
			}
			zk_req_issued(&reqs[i], zoo_awget(z->zh, abs, zk_on_watch, z, zk_data_done,
							  &reqs[i]));
		}
		err = zk_wait(z, reqs, m);
		for (size_t i = 0; i < m && !err; i++) {
			if (reqs[i].rc == ZBADARGUMENTS)
				continue;	/* a name too long to be an object's */
			if (!child_rel(dir, names[at + i], rel, sizeof(rel)))
				err = apply_leaf(z, rel, &reqs[i], listing);
			*count += reqs[i].rc == ZOK;
		}
		for (size_t i = 0; i < m; i++)
			zk_req_clear(&reqs[i]);
	}
	return err;
}

/* List directory @rel with a child watch; read the children that are new
 * (all of them when @listing) and list the new subdirectories. A missing
 * directory gets an exists watch instead.
 */
static int list_dir(struct zk *z, const char *rel, bool listing, size_t *count)
{
	struct zk_req r = { .z = z };
	struct zk_dir *d;
	char abs[ZK_PATH_MAX], crel[REG_KV_PATH_MAX], **leaves = NULL, **old = NULL;
	struct obj_key key;
	size_t n_leaves = 0, n_old = 0;
	int err;

	err = zk_abs(z, rel, abs, sizeof(abs));
	if (err)
		return 0;
	/* A missing directory gets an exists watch; if it appeared between the
	 * two calls, that watch would not tell (it fires on changes to come),
	 * so list again. Bounded: a directory flapping this fast is relisted
	 * by the events it causes anyway.
	 */
	for (int attempt = 0; attempt < 3; attempt++) {
		struct zk_req e = { .z = z };

		zk_req_clear(&r);
		r = (struct zk_req){ .z = z };
		zk_req_issued(&r, zoo_awget_children(z->zh, abs, zk_on_watch, z, zk_strings_done,
						     &r));
		err = zk_wait(z, &r, 1);
		if (err || r.rc != ZNONODE)
			break;
		zk_req_issued(&e, zoo_awexists(z->zh, abs, zk_on_watch, z, zk_stat_done, &e));
		err = zk_wait(z, &e, 1);
		if (err || e.rc != ZOK)
			break;
	}
	if (err)
		goto out;
	if (r.rc == ZNONODE) {
		err = dir_drop(z, rel, listing);
		goto out;
	}
	if (r.rc != ZOK) {
		err = zk_errno(r.rc);
		goto out;
	}
	d = dir_find(z, rel, NULL);
	if (!d) {
		d = calloc(1, sizeof(*d));
		if (!d) {
			err = -ENOMEM;
			goto out;
		}
		snprintf(d->rel, sizeof(d->rel), "%s", rel);
		d->next = z->dirs;
		z->dirs = d;
	}
	/* The directory now knows the new children: @old is what it knew. */
	old = d->names;
	n_old = d->n_names;
	d->names = r.names;
	d->n_names = r.n_names;
	r.names = NULL;
	r.n_names = 0;
	for (size_t i = 0; i < n_old && !err; i++) {
		if (has_name(d->names, d->n_names, old[i]) ||
		    child_rel(rel, old[i], crel, sizeof(crel)))
			continue;
		if (classify(crel, &key) == NODE_LEAF && !listing)
			err = reg_sink_delete(z->sink, z->source, key.kind, key.ns, key.name);
		else if (classify(crel, &key) == NODE_NS_DIR)
			err = dir_drop(z, crel, listing);
	}
	leaves = calloc(d->n_names ? d->n_names : 1, sizeof(*leaves));
	if (!leaves)
		err = -ENOMEM;
	for (size_t i = 0; i < d->n_names && !err; i++) {
		if ((!listing && has_name(old, n_old, d->names[i])) ||
		    child_rel(rel, d->names[i], crel, sizeof(crel)))
			continue;
		if (classify(crel, &key) == NODE_LEAF)
			leaves[n_leaves++] = d->names[i];
	}
	if (!err)
		err = fetch(z, rel, leaves, n_leaves, listing, count);
	/* Subdirectories last: listing them may add directories to z->dirs. */
	for (size_t i = 0; d && i < d->n_names && !err; i++) {
		if ((!listing && has_name(old, n_old, d->names[i])) ||
		    child_rel(rel, d->names[i], crel, sizeof(crel)) ||
		    classify(crel, &key) != NODE_NS_DIR)
			continue;
		err = list_dir(z, crel, listing, count);
		d = dir_find(z, rel, NULL);
	}
out:
	free(leaves);
	free_names(old, n_old);
	zk_req_clear(&r);
	return err;
}

/* Take the deleted @rel out of its parent's known children: when it is
 * created again, the parent's listing must see it as new and read it (its
 * own watch went with the deletion).
 */
static void forget_child(struct zk *z, const char *rel)
{
	const char *slash = strrchr(rel, '/');
	char parent[REG_KV_PATH_MAX];
	struct zk_dir *d;

	if (!slash)
		return;
	snprintf(parent, sizeof(parent), "%.*s", (int)(slash - rel), rel);
	d = dir_find(z, parent, NULL);
	for (size_t i = 0; d && i < d->n_names; i++) {
		if (!strcmp(d->names[i], slash + 1)) {
			free(d->names[i]);
			memmove(&d->names[i], &d->names[i + 1],
				(d->n_names - i - 1) * sizeof(*d->names));
			d->n_names--;
			return;
		}
	}
}

int zk_tree_resync(struct zk *z)
{
	size_t count = 0;
	int err;

	zk_tree_forget(z);
	err = reg_sink_resync_begin(z->sink, z->source, all_kinds,
				    sizeof(all_kinds) / sizeof(all_kinds[0]));
	for (size_t k = 0; k < sizeof(all_kinds) / sizeof(all_kinds[0]) && !err; k++)
		err = list_dir(z, reg_kv_plural(all_kinds[k]), true, &count);
	if (!err)
		err = reg_sink_resync_end(z->sink, z->source);
	if (!err)
		log_info("registry: %s: listed %zu znode(s)", z->source, count);
	return err;
}

int zk_tree_event(struct zk *z, int type, const char *path)
{
	size_t rlen = strlen(z->root), count = 0;
	struct zk_req r = { .z = z };
	struct obj_key key;
	const char *rel;
	enum node node;
	int err;

	if (strncmp(path, z->root, rlen) || path[rlen] != '/')
		return 0;
	rel = path + rlen + 1;
	node = classify(rel, &key);
	if (node == NODE_NONE)
		return 0;
	if (node != NODE_LEAF) {
		if (type == ZOO_DELETED_EVENT && node == NODE_NS_DIR) {
			forget_child(z, rel);
			return dir_drop(z, rel, false);
		}
		/* Children changed, the directory appeared or went: list it
		 * (a kind directory that went gets its exists watch back).
		 */
		return list_dir(z, rel, false, &count);
	}
	if (type == ZOO_DELETED_EVENT) {
		forget_child(z, rel);
		return reg_sink_delete(z->sink, z->source, key.kind, key.ns, key.name);
	}
	/* Changed (or created): read it again, which re-arms the watch. */
	zk_req_issued(&r, zoo_awget(z->zh, path, zk_on_watch, z, zk_data_done, &r));
	err = zk_wait(z, &r, 1);
	if (!err)
		err = apply_leaf(z, rel, &r, false);
	zk_req_clear(&r);
	return err;
}
