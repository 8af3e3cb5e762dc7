// SPDX-License-Identifier: GPL-2.0-only
/* The file registry: read a manifest file, parse it (registry/yaml.c), decode
 * every object (registry/decode.c) and send it to the sink as one full
 * listing of this source; registry/file_watch.c says when to do it again. A
 * file that cannot be read or parsed changes nothing; a bad object is skipped
 * and its previous version kept. Runs on the agent's loop. See
 * docs/registry-format.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "fs.h"
#include "log.h"
#include "loop.h"
#include "registry/decode.h"
#include "registry/file.h"
#include "registry/file_watch.h"
#include "registry/registry.h"
#include "registry/yaml.h"

/* Far above any real registry, low enough that a wrong path (a disk image, a
 * log) cannot make the agent allocate without bound.
 */
#define REG_FILE_SIZE_MAX (64u << 20)

#define WHERE_MAX 64	/* "document N, item M" */

static const enum obj_kind all_kinds[] = { OBJ_NAMESPACE, OBJ_SERVICE, OBJ_ENDPOINTSLICE,
					   OBJ_POD };

struct reg_file {
	char *path;
	char *source;		/* the sink's source name ("file:" + path) */
	struct reg_sink *sink;	/* borrowed */
	struct loop *loop;	/* borrowed, once attached */
	struct file_watch *watch;
	struct obj_key *keys;	/* sorted: the objects in force (applied or kept) */
	size_t n_keys;
	bool applied;		/* content_hash describes what was last sent */
	uint64_t content_hash;	/* FNV-1a of the file last applied */
	size_t content_len;
	char applied_error[sizeof(((struct reg_file_stats *)0)->last_error)];
	struct reg_file_stats stats;
};

/* A rejected object of the load in progress. */
struct rejection {
	char where[WHERE_MAX];
	char msg[REG_DECODE_ERR_MAX];
	struct obj_key key;
	bool has_key;		/* the key could be told: a previous version may exist */
	bool kept_previous;
};

/* The decoding state of one load. */
struct load {
	struct obj_list objs;	/* accepted objects */
	char (*wheres)[WHERE_MAX];	/* where objs.items[i] came from */
	size_t cap_wheres;
	struct rejection *rej;
	size_t n_rej, cap_rej;
};

static uint64_t fnv1a64(const char *buf, size_t len)
{
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)buf[i]) * 1099511628211ull;
	return h;
}

/* Read all of @path (following symlinks) into a new NUL-terminated buffer,
 * saying why not in @err.
 */
static int read_file(const char *path, char **out, size_t *out_len, char *err, size_t errlen)
{
	int ret = fs_read_file(path, REG_FILE_SIZE_MAX, out, out_len, NULL);

	if (ret == -EINVAL || ret == -EISDIR)
		snprintf(err, errlen, "not a regular file");
	else if (ret == -EFBIG)
		snprintf(err, errlen, "larger than %u MiB", REG_FILE_SIZE_MAX >> 20);
	else if (ret == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	else if (ret)
		snprintf(err, errlen, "cannot read: %s", strerror(-ret));
	return ret;
}

static int add_accepted(struct load *l, struct obj *o, const char *where)
{
	int err;

	if (array_reserve(&l->wheres, &l->cap_wheres, l->objs.n, sizeof(*l->wheres), 16))
		return -ENOMEM;
	err = obj_list_add(&l->objs, o);
	if (err)
		return err;
	snprintf(l->wheres[l->objs.n - 1], WHERE_MAX, "%s", where);
	return 0;
}

static struct rejection *add_rejection(struct load *l, const char *where)
{
	struct rejection *r;

	if (array_reserve(&l->rej, &l->cap_rej, l->n_rej, sizeof(*l->rej), 8))
		return NULL;
	r = &l->rej[l->n_rej++];
	*r = (struct rejection){ 0 };
	snprintf(r->where, sizeof(r->where), "%s", where);
	return r;
}

/* Decode one object (@list non-NULL for an item of a List) and file it as
 * accepted or rejected. Only -ENOMEM is returned: bad objects are data.
 */
static int decode_one(struct load *l, json_object *list, json_object *o, const char *where)
{
	char msg[REG_DECODE_ERR_MAX];
	struct rejection *r;
	struct obj *obj;
	int err;

	if (list)
		err = reg_decode_list_item(list, o, &obj, msg, sizeof(msg));
	else
		err = reg_decode(o, &obj, msg, sizeof(msg));
	if (!err) {
		err = add_accepted(l, obj, where);
		if (err)
			obj_free(obj);
		return err;
	}
	if (err != -EINVAL)
		return err;
	r = add_rejection(l, where);
	if (!r)
		return -ENOMEM;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
	r->has_key = !reg_decode_key(list, o, &r->key);
	return 0;
}

/* Decode every object of every document: a document is one object, a List
 * (its items), or an array of objects; empty documents are skipped.
 */
static int decode_docs(struct load *l, json_object *docs)
{
	size_t n_docs = json_object_array_length(docs);
	char where[WHERE_MAX];
	int err = 0;

	for (size_t d = 0; d < n_docs && !err; d++) {
		json_object *doc = json_object_array_get_idx(docs, d);
		json_object *items = NULL, *list = NULL;
		char msg[REG_DECODE_ERR_MAX];
		int is_list;

		snprintf(where, sizeof(where), "document %zu", d + 1);
		if (!doc)
			continue;
		if (json_object_is_type(doc, json_type_array)) {
			items = doc;
		} else {
			is_list = reg_list_items(doc, &items, msg, sizeof(msg));
			if (is_list < 0) {
				struct rejection *r = add_rejection(l, where);

				if (!r)
					return -ENOMEM;
				snprintf(r->msg, sizeof(r->msg), "%s", msg);
				continue;
			}
			if (!is_list) {
				err = decode_one(l, NULL, doc, where);
				continue;
			}
			list = doc;
		}
		for (size_t i = 0; items && i < json_object_array_length(items) && !err; i++) {
			snprintf(where, sizeof(where), "document %zu, item %zu", d + 1, i + 1);
			err = decode_one(l, list, json_object_array_get_idx(items, i), where);
		}
	}
	return err;
}

static int key_cmp_idx(const void *a, const void *b, void *arg)
{
	struct obj *const *items = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = obj_key_cmp(&items[x]->key, &items[y]->key);

	return c ? c : (x > y) - (x < y);
}

/* One file defining an object twice is a mistake: the first definition
 * stays, the later ones are rejected. Returns 0 or -ENOMEM.
 */
static int reject_duplicates(struct load *l)
{
	struct obj **items = l->objs.items;
	size_t n = l->objs.n, w = 0;
	size_t *idx, *first_of;
	int err = 0;

	if (n < 2)
		return 0;
	idx = calloc(n, sizeof(*idx));
	first_of = calloc(n, sizeof(*first_of));
	if (!idx || !first_of) {
		err = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < n; i++)
		idx[i] = first_of[i] = i;
	/* Sorted by key then position, so each run starts with its first definition. */
	qsort_r(idx, n, sizeof(*idx), key_cmp_idx, items);
	for (size_t i = 1; i < n; i++)
		if (!obj_key_cmp(&items[idx[i - 1]]->key, &items[idx[i]]->key))
			first_of[idx[i]] = first_of[idx[i - 1]];
	for (size_t i = 0; i < n; i++) {
		char who[OBJ_NS_MAX + OBJ_NAME_MAX + 32];
		struct rejection *r;

		if (first_of[i] == i)
			continue;
		r = add_rejection(l, l->wheres[i]);
		if (!r) {
			err = -ENOMEM;	/* the list is still whole: load_done() frees it */
			goto out_free;
		}
		/* Not has_key: the first definition is in force, nothing to keep. */
		snprintf(r->msg, sizeof(r->msg), "%s: already defined in %s",
			 obj_key_fmt(&items[i]->key, who, sizeof(who)), l->wheres[first_of[i]]);
	}
	for (size_t i = 0; i < n; i++) {
		if (first_of[i] != i) {
			obj_free(items[i]);
			continue;
		}
		items[w] = items[i];
		memmove(l->wheres[w++], l->wheres[i], WHERE_MAX);
	}
	l->objs.n = w;
out_free:
	free(idx);
	free(first_of);
	return err;
}

static bool accepted_has_key(const struct load *l, const struct obj_key *k)
{
	for (size_t i = 0; i < l->objs.n; i++)
		if (!obj_key_cmp(&l->objs.items[i]->key, k))
			return true;
	return false;
}

static int key_cmp(const void *a, const void *b)
{
	return obj_key_cmp(a, b);
}

static bool in_force(const struct reg_file *r, const struct obj_key *k)
{
	return r->n_keys && bsearch(k, r->keys, r->n_keys, sizeof(*r->keys), key_cmp);
}

/* A rejected object whose previous version is in force keeps that version:
 * a typo in one Service must not take it away. Returns how many are kept.
 */
static size_t keep_previous(struct reg_file *r, struct load *l)
{
	size_t kept = 0;

	for (size_t i = 0; i < l->n_rej; i++) {
		struct rejection *rj = &l->rej[i];

		if (!rj->has_key || accepted_has_key(l, &rj->key) || !in_force(r, &rj->key))
			continue;
		rj->kept_previous = true;
		kept++;
	}
	return kept;
}

/* The keys in force once @l is applied: accepted and kept, sorted. */
static int next_keys(const struct load *l, struct obj_key **out, size_t *n_out)
{
	size_t n = 0, cap = l->objs.n + l->n_rej;
	struct obj_key *keys = cap ? calloc(cap, sizeof(*keys)) : NULL;

	if (cap && !keys)
		return -ENOMEM;
	for (size_t i = 0; i < l->objs.n; i++)
		keys[n++] = l->objs.items[i]->key;
	for (size_t i = 0; i < l->n_rej; i++)
		if (l->rej[i].kept_previous)
			keys[n++] = l->rej[i].key;
	if (n)
		qsort(keys, n, sizeof(*keys), key_cmp);
	*out = keys;
	*n_out = n;
	return 0;
}

/* Send @l to the sink as one full listing: what it does not list (and does
 * not keep) goes at its end. The sink takes the objects. 0 or -errno.
 */
static int send_listing(struct reg_file *r, struct load *l)
{
	int err = reg_sink_resync_begin(r->sink, r->source, all_kinds,
					sizeof(all_kinds) / sizeof(all_kinds[0]));

	for (size_t i = 0; i < l->objs.n && !err; i++) {
		err = reg_sink_upsert(r->sink, r->source, l->objs.items[i]);
		l->objs.items[i] = NULL;
	}
	for (size_t i = 0; i < l->n_rej && !err; i++) {
		const struct rejection *rj = &l->rej[i];

		if (rj->kept_previous)
			err = reg_sink_keep(r->sink, r->source, rj->key.kind, rj->key.ns,
					    rj->key.name);
	}
	if (!err)
		err = reg_sink_resync_end(r->sink, r->source);
	for (size_t i = 0; i < l->n_rej && !err; i++)
		err = reg_sink_rejected(r->sink, r->source);
	return err;
}

__attribute__((format(printf, 2, 3))) static void set_last_error(struct reg_file *r,
								const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->stats.last_error, sizeof(r->stats.last_error), fmt, ap);
	va_end(ap);
}

static void load_done(struct load *l)
{
	obj_list_done(&l->objs);
	free(l->wheres);
	free(l->rej);
}

/* Re-read the file and send it. Returns 1 when it was sent, 0 when
 * the content is what was applied last, or -errno when the file as a whole is
 * rejected (message in @err; nothing is sent).
 */
static int load(struct reg_file *r, char *err, size_t errlen)
{
	char perr[REG_PARSE_ERR_MAX];
	struct load l = { 0 };
	json_object *docs = NULL;
	size_t len = 0, n_objs = 0, n_keys = 0;
	struct obj_key *keys = NULL;
	char *buf = NULL;
	uint64_t hash;
	int ret;

	ret = read_file(r->path, &buf, &len, perr, sizeof(perr));
	if (ret)
		goto out_msg;
	hash = fnv1a64(buf, len);
	if (r->applied && hash == r->content_hash && len == r->content_len) {
		free(buf);
		memcpy(r->stats.last_error, r->applied_error, sizeof(r->applied_error));
		return 0;
	}
	ret = reg_docs_parse(buf, len, &docs, perr, sizeof(perr));
	free(buf);
	if (ret)
		goto out_msg;
	obj_list_init(&l.objs);
	ret = decode_docs(&l, docs);
	json_object_put(docs);
	if (!ret)
		ret = reject_duplicates(&l);
	if (!ret) {
		n_objs = l.objs.n + keep_previous(r, &l);
		ret = next_keys(&l, &keys, &n_keys);
	}
	if (!ret)
		ret = send_listing(r, &l);
	if (ret) {
		snprintf(perr, sizeof(perr), "%s", strerror(-ret));
		free(keys);
		/* Part of it may have been sent: apply the file again next time. */
		r->applied = false;
		load_done(&l);
		goto out_msg;
	}
	free(r->keys);
	r->keys = keys;
	r->n_keys = n_keys;
	r->stats.last_error[0] = '\0';
	for (size_t i = 0; i < l.n_rej; i++) {
		const struct rejection *rj = &l.rej[i];

		log_warn("registry: '%s': %s: %s%s, ignoring", r->path, rj->where, rj->msg,
			 rj->kept_previous ? " (its previous version stays in force)" : "");
		if (i == 0)
			set_last_error(r, "%s: %s", rj->where, rj->msg);
	}
	log_info("registry: loaded '%s': %zu objects, %zu rejected", r->path, n_objs,
		 l.n_rej);
	r->stats.loads++;
	r->stats.objects_rejected += l.n_rej;
	r->applied = true;
	r->content_hash = hash;
	r->content_len = len;
	memcpy(r->applied_error, r->stats.last_error, sizeof(r->applied_error));
	load_done(&l);
	return 1;
out_msg:
	snprintf(err, errlen, "'%s': %s", r->path, perr);
	r->stats.load_errors++;
	set_last_error(r, "%s", err);
	return ret;
}

struct reg_file *reg_file_new(const char *source, const char *path, struct reg_sink *sink)
{
	char err[REG_PARSE_ERR_MAX + PATH_MAX];
	struct reg_file *r;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->sink = sink;
	r->path = strdup(path);
	r->source = strdup(source);
	if (!r->path || !r->source) {
		ret = -ENOMEM;
		goto out_free;
	}
	/* Watch before the first read, so a change during it is not missed. */
	r->watch = file_watch_new(path);
	if (!r->watch) {
		ret = log_errno(-errno, "registry: cannot watch '%s'", path);
		goto out_free;
	}
	ret = load(r, err, sizeof(err));
	if (ret < 0) {
		log_err("registry: cannot load %s", err);
		goto out_free;
	}
	/* Complete as soon as loaded: a file has nothing more to list. */
	(void)reg_sink_health(sink, source, REG_HEALTH_SYNCED, "");
	return r;
out_free:
	reg_file_free(r);
	errno = -ret;
	return NULL;
}

void reg_file_free(struct reg_file *r)
{
	if (!r)
		return;
	if (r->loop)
		(void)loop_del_fd(r->loop, file_watch_fd(r->watch));
	file_watch_free(r->watch);
	free(r->keys);
	free(r->source);
	free(r->path);
	free(r);
}

int reg_file_fd(const struct reg_file *r)
{
	return file_watch_fd(r->watch);
}

int reg_file_process(struct reg_file *r)
{
	char err[REG_PARSE_ERR_MAX + PATH_MAX];
	int ret;

	ret = file_watch_drain(r->watch);
	if (ret <= 0)
		return ret;
	ret = load(r, err, sizeof(err));
	if (ret < 0) {
		log_warn("registry: cannot reload %s; the previous content stays in force, "
			 "ignoring", err);
		return 0;
	}
	return ret;
}

const struct reg_file_stats *reg_file_stats(const struct reg_file *r)
{
	return &r->stats;
}

const char *reg_file_path(const struct reg_file *r)
{
	return r->path;
}

/* ---- the backend: --registry file:PATH ---- */

static int file_start(const char *source, const char *arg, const struct reg_opts *opts,
		      struct reg_sink *sink, void **state)
{
	struct reg_file *r;

	(void)opts;
	r = reg_file_new(source, arg, sink);
	if (!r)
		return -errno;
	*state = r;
	return 0;
}

static void on_file(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	(void)loop;
	(void)fd;
	(void)events;
	/* A change reaches the catalogue through the sink; a failure is logged. */
	(void)reg_file_process(ctx);
}

static int file_attach(void *state, struct loop *loop)
{
	struct reg_file *r = state;
	int err = loop_add_fd(loop, reg_file_fd(r), EPOLLIN, on_file, r);

	if (err)
		return log_errno(err, "registry: watch '%s'", r->path);
	r->loop = loop;
	return 0;
}

static void file_stop(void *state, bool deregister)
{
	(void)deregister;
	reg_file_free(state);
}

const struct reg_backend_ops reg_file_ops = {
	.scheme = "file",
	.start = file_start,
	.attach = file_attach,
	.stop = file_stop,
};

const struct reg_file_stats *reg_file_backend_stats(const struct reg_backend_ops *ops,
						    void *state)
{
	return ops == &reg_file_ops && state ? reg_file_stats(state) : NULL;
}
