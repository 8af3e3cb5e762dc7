// SPDX-License-Identifier: GPL-2.0-only
/* One load of the file registry (file_load.h): the file read whole, cut
 * into its YAML documents, those not already in force parsed by
 * registry/yaml.c, their objects decoded by registry/decode.c, then what
 * differs from the loads before sent to the sink. Runs on the file
 * registry's thread (registry/file.c); a bad object is skipped and its
 * previous version kept, a file that cannot be read or parsed changes
 * nothing. See docs/registry-format.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "fnv.h"
#include "fs.h"
#include "log.h"
#include "registry/file_load.h"
#include "registry/yaml.h"

/* Far above any real registry, low enough that a wrong path (a disk image, a
 * log) cannot make the agent allocate without bound.
 */
#define REG_FILE_SIZE_MAX (64u << 20)

/* How many objects are decoded or sent between two looks at the stop flag:
 * a stop waits for at most that many, not for a whole 10,000-object file.
 */
#define STOP_CHECK_EVERY 256

static const enum obj_kind all_kinds[] = { OBJ_NAMESPACE, OBJ_SERVICE, OBJ_ENDPOINTSLICE,
					   OBJ_POD };

/* An object of the load in progress that is accepted: decoded, or known
 * unchanged since it was last applied (then not decoded again).
 */
struct item {
	struct obj_key key;
	uint64_t fp;
	struct obj *obj;	/* owned; NULL: unchanged, the model has it already */
	size_t doc, idx;	/* document from 1; item from 1, 0: the document itself */
	char where[FILE_WHERE_MAX];
};

/* A rejected object of the load in progress. */
struct rejection {
	size_t doc, idx;
	char where[FILE_WHERE_MAX];
	char msg[REG_DECODE_ERR_MAX];
	struct obj_key key;
	bool has_key;		/* the key could be told: a previous version may exist */
	bool kept_previous;
	uint64_t kept_fp;	/* the fingerprint of the version kept */
};

/* The decoding state of one load. */
struct load {
	const struct file_applied *a;
	bool full;		/* decode and send everything (a full listing) */
	const atomic_bool *stop;
	struct item *items;
	size_t n_items, cap_items;
	struct rejection *rej;
	size_t n_rej, cap_rej;
	size_t n_docs_parsed, n_docs_reused;
};

/* Fold @o's parsed tree into @h: every value with its type, every length
 * before the bytes it counts, so two different trees never feed the same
 * byte sequence. Members in file order: reordering a manifest's fields
 * counts as a change (an upsert of the same object, harmless). The depth
 * is bounded by the parsers (REG_DOC_DEPTH_MAX, json-c's 32).
 */
static uint64_t fp_value(uint64_t h, json_object *o)
{
	enum json_type t = json_object_get_type(o);	/* json_type_null for NULL */
	unsigned char tag = (unsigned char)t;
	size_t n;

	h = fnv1a64(h, &tag, 1);
	switch (t) {
	case json_type_null:
		break;
	case json_type_boolean:
		tag = (unsigned char)json_object_get_boolean(o);
		h = fnv1a64(h, &tag, 1);
		break;
	case json_type_int: {
		/* Both readings: each saturates where the other does not. */
		int64_t i = json_object_get_int64(o);
		uint64_t u = json_object_get_uint64(o);

		h = fnv1a64(h, &i, sizeof(i));
		h = fnv1a64(h, &u, sizeof(u));
		break;
	}
	case json_type_double: {
		double d = json_object_get_double(o);

		h = fnv1a64(h, &d, sizeof(d));
		break;
	}
	case json_type_string:
		n = (size_t)json_object_get_string_len(o);
		h = fnv1a64(h, &n, sizeof(n));
		h = fnv1a64(h, json_object_get_string(o), n);
		break;
	case json_type_array:
		n = json_object_array_length(o);
		h = fnv1a64(h, &n, sizeof(n));
		for (size_t i = 0; i < n; i++)
			h = fp_value(h, json_object_array_get_idx(o, i));
		break;
	case json_type_object:
		n = (size_t)json_object_object_length(o);
		h = fnv1a64(h, &n, sizeof(n));
		json_object_object_foreach(o, k, v) {
			size_t kl = strlen(k);

			h = fnv1a64(h, &kl, sizeof(kl));
			h = fnv1a64(h, k, kl);
			h = fp_value(h, v);
		}
		break;
	}
	return h;
}

/* The fingerprint of what decoding @o (an item of @list, or NULL) depends
 * on: the object, and the kind and version a typed list lends its items.
 */
static uint64_t fingerprint(json_object *list, json_object *o)
{
	uint64_t h = FNV1A64_OFFSET;
	unsigned char in_list = list != NULL;

	h = fnv1a64(h, &in_list, 1);
	if (list) {
		json_object *kind = NULL, *version = NULL;

		(void)json_object_object_get_ex(list, "kind", &kind);
		(void)json_object_object_get_ex(list, "apiVersion", &version);
		h = fp_value(h, kind);
		h = fp_value(h, version);
	}
	return fp_value(h, o);
}

static bool stopping(const struct load *l, size_t i)
{
	return i % STOP_CHECK_EVERY == 0 && atomic_load(l->stop);
}

static int entry_cmp(const void *a, const void *b)
{
	return obj_key_cmp(&((const struct file_entry *)a)->key,
			   &((const struct file_entry *)b)->key);
}

/* bsearch() of a bare key among entries. */
static int key_entry_cmp(const void *key, const void *e)
{
	return obj_key_cmp(key, &((const struct file_entry *)e)->key);
}

static const struct file_entry *find_in_force(const struct file_applied *a,
					      const struct obj_key *k)
{
	return a->n ? bsearch(k, a->in_force, a->n, sizeof(*a->in_force), key_entry_cmp) : NULL;
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

static void fmt_where(char *where, size_t doc, size_t idx)
{
	if (idx)
		snprintf(where, FILE_WHERE_MAX, "document %zu, item %zu", doc, idx);
	else
		snprintf(where, FILE_WHERE_MAX, "document %zu", doc);
}

static int add_item(struct load *l, const struct obj_key *key, uint64_t fp, struct obj *o,
		    size_t doc, size_t idx)
{
	struct item *it;

	if (array_reserve(&l->items, &l->cap_items, l->n_items, sizeof(*l->items), 64))
		return -ENOMEM;
	it = &l->items[l->n_items++];
	it->key = *key;
	it->fp = fp;
	it->obj = o;
	it->doc = doc;
	it->idx = idx;
	fmt_where(it->where, doc, idx);
	return 0;
}

static struct rejection *add_rejection(struct load *l, size_t doc, size_t idx)
{
	struct rejection *r;

	if (array_reserve(&l->rej, &l->cap_rej, l->n_rej, sizeof(*l->rej), 8))
		return NULL;
	r = &l->rej[l->n_rej++];
	*r = (struct rejection){ .doc = doc, .idx = idx };
	fmt_where(r->where, doc, idx);
	return r;
}

/* Decode one object (@list non-NULL for an item of a List) and file it as
 * accepted or rejected; an object whose manifest is the one of the version
 * in force is accepted as it is, without decoding. Only -ENOMEM is
 * returned: bad objects are data.
 */
static int decode_one(struct load *l, json_object *list, json_object *o, size_t doc, size_t idx)
{
	uint64_t fp = fingerprint(list, o);
	char msg[REG_DECODE_ERR_MAX];
	const struct file_entry *prev;
	struct rejection *r;
	struct obj_key key;
	struct obj *obj;
	int err;

	/* Same manifest, same object: decoding is a function of the manifest. */
	if (!l->full && !reg_decode_key(list, o, &key) && (prev = find_in_force(l->a, &key)) &&
	    prev->fp == fp)
		return add_item(l, &prev->key, fp, NULL, doc, idx);
	if (list)
		err = reg_decode_list_item(list, o, &obj, msg, sizeof(msg));
	else
		err = reg_decode(o, &obj, msg, sizeof(msg));
	if (!err) {
		err = add_item(l, &obj->key, fp, obj, doc, idx);
		if (err)
			obj_free(obj);
		return err;
	}
	if (err != -EINVAL)
		return err;
	r = add_rejection(l, doc, idx);
	if (!r)
		return -ENOMEM;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
	r->has_key = !reg_decode_key(list, o, &r->key);
	return 0;
}

/* Decode every object of every document, numbered from @base + 1: a
 * document is one object, a List (its items), or an array of objects;
 * empty documents are skipped.
 */
static int decode_docs(struct load *l, json_object *docs, size_t base)
{
	size_t n_docs = json_object_array_length(docs), seen = 0;
	int err = 0;

	for (size_t d = 0; d < n_docs && !err; d++) {
		json_object *doc = json_object_array_get_idx(docs, d);
		json_object *items = NULL, *list = NULL;
		char msg[REG_DECODE_ERR_MAX];
		int is_list;

		if (!doc)
			continue;
		if (stopping(l, ++seen))
			return -ECANCELED;
		if (json_object_is_type(doc, json_type_array)) {
			items = doc;
		} else {
			is_list = reg_list_items(doc, &items, msg, sizeof(msg));
			if (is_list < 0) {
				struct rejection *r = add_rejection(l, base + d + 1, 0);

				if (!r)
					return -ENOMEM;
				snprintf(r->msg, sizeof(r->msg), "%s", msg);
				continue;
			}
			if (!is_list) {
				err = decode_one(l, NULL, doc, base + d + 1, 0);
				continue;
			}
			list = doc;
		}
		for (size_t i = 0; items && i < json_object_array_length(items) && !err; i++) {
			if (stopping(l, ++seen))
				return -ECANCELED;
			err = decode_one(l, list, json_object_array_get_idx(items, i), base + d + 1,
					 i + 1);
		}
	}
	return err;
}

/* ---- documents split on the raw bytes ---- */

/* Whether a document starts at @off, the start of a line: `---` alone on
 * it or followed by white space. YAML forbids that line inside a scalar or
 * a flow collection (c-forbidden), so libyaml either starts a document
 * there or rejects the stream, and it does so the same parsing the bytes
 * from there on alone.
 */
static bool doc_start_at(const char *buf, size_t off, size_t len)
{
	if (len - off < 3 || memcmp(buf + off, "---", 3))
		return false;
	off += 3;
	return off == len || buf[off] == ' ' || buf[off] == '\t' || buf[off] == '\r' ||
	       buf[off] == '\n';
}

/* Where the document starting at @off ends: where the next one starts. */
static size_t doc_end(const char *buf, size_t off, size_t len)
{
	const char *nl;

	while ((nl = memchr(buf + off, '\n', len - off))) {
		off = (size_t)(nl - buf) + 1;
		if (doc_start_at(buf, off, len))
			return off;
	}
	return len;
}

/* Whether the documents of @buf may be parsed one by one: YAML, and no
 * line that may be a directive (`%YAML`, `%TAG`: they belong to the
 * document after them; such a rare file is parsed whole, as JSON is).
 */
static bool splittable(const char *buf, size_t len)
{
	size_t off = len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3) ? 3 : 0;
	const char *nl;

	if (reg_docs_is_json(buf, len))
		return false;
	for (;;) {
		if (off < len && buf[off] == '%')
			return false;
		nl = off < len ? memchr(buf + off, '\n', len - off) : NULL;
		if (!nl)
			return true;
		off = (size_t)(nl - buf) + 1;
	}
}

static int doc_cmp(const void *a, const void *b)
{
	const struct file_doc *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return (x->len > y->len) - (x->len < y->len);
}

static const struct file_doc *find_doc(const struct file_doc_cache *c, uint64_t hash,
				       size_t len)
{
	struct file_doc k = { .hash = hash, .len = len };

	return c->n ? bsearch(&k, c->docs, c->n, sizeof(*c->docs), doc_cmp) : NULL;
}

/* Whether what @d produced can stand without parsing it: every object it
 * defined is in force as it defined it (not one rejected then as a
 * duplicate that now has to be decoded and sent).
 */
static bool reusable(const struct load *l, const struct file_doc *d)
{
	const struct file_doc_cache *c = &l->a->cache;

	for (size_t i = d->item0; i < d->item0 + d->n_items; i++) {
		const struct file_entry *prev = find_in_force(l->a, &c->items[i].key);

		if (!prev || prev->fp != c->items[i].fp)
			return false;
	}
	return true;
}

/* File what @d produced again, its documents numbered from @base + 1. */
static int reuse_doc(struct load *l, const struct file_doc *d, size_t base)
{
	const struct file_doc_cache *c = &l->a->cache;

	for (size_t i = d->item0; i < d->item0 + d->n_items; i++) {
		const struct file_doc_item *it = &c->items[i];

		if (add_item(l, &it->key, it->fp, NULL, base + it->doc + 1, it->item))
			return -ENOMEM;
	}
	for (size_t i = d->rej0; i < d->rej0 + d->n_rej; i++) {
		const struct file_doc_rejection *cr = &c->rej[i];
		struct rejection *r = add_rejection(l, base + cr->doc + 1, cr->item);

		if (!r)
			return -ENOMEM;
		memcpy(r->msg, cr->msg, sizeof(r->msg));
		r->key = cr->key;
		r->has_key = cr->has_key;
	}
	l->n_docs_reused += d->n_docs;
	return 0;
}

/* Parse and decode the @n bytes at @p, documents numbered from @base + 1.
 * Returns 0 (@n_docs set), 1 when they do not parse (the whole file is
 * then parsed for the error message, which names its line), or -errno.
 */
static int parse_doc(struct load *l, const char *p, size_t n, size_t base, size_t *n_docs)
{
	char err[REG_PARSE_ERR_MAX];
	json_object *docs;
	int ret = reg_yaml_parse(p, n, &docs, err, sizeof(err));

	if (ret == -EINVAL)
		return 1;
	if (ret)
		return ret;
	*n_docs = json_object_array_length(docs);
	l->n_docs_parsed += *n_docs;
	ret = decode_docs(l, docs, base);
	json_object_put(docs);
	return ret;
}

void file_doc_cache_free(struct file_doc_cache *c)
{
	free(c->docs);
	free(c->items);
	free(c->rej);
	*c = (struct file_doc_cache){ 0 };
}

/* What the documents @recs of @l produced, for the next load. The items
 * and rejections are those decoded, in file order, before duplicates are
 * told apart (that depends on the whole file and is done again).
 */
static int make_cache(const struct load *l, const struct file_doc *recs, size_t n,
		      struct file_doc_cache *c)
{
	size_t base = 0;

	c->docs = n ? calloc(n, sizeof(*c->docs)) : NULL;
	c->items = l->n_items ? calloc(l->n_items, sizeof(*c->items)) : NULL;
	c->rej = l->n_rej ? calloc(l->n_rej, sizeof(*c->rej)) : NULL;
	if ((n && !c->docs) || (l->n_items && !c->items) || (l->n_rej && !c->rej)) {
		file_doc_cache_free(c);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct file_doc *d = &recs[i];

		c->docs[i] = *d;
		for (size_t j = d->item0; j < d->item0 + d->n_items; j++)
			c->items[j] = (struct file_doc_item){
				.key = l->items[j].key, .fp = l->items[j].fp,
				.doc = (uint32_t)(l->items[j].doc - 1 - base),
				.item = (uint32_t)l->items[j].idx };
		for (size_t j = d->rej0; j < d->rej0 + d->n_rej; j++) {
			const struct rejection *r = &l->rej[j];
			struct file_doc_rejection *cr = &c->rej[j];

			memcpy(cr->msg, r->msg, sizeof(cr->msg));
			cr->key = r->key;
			cr->has_key = r->has_key;
			cr->doc = (uint32_t)(r->doc - 1 - base);
			cr->item = (uint32_t)r->idx;
		}
		base += d->n_docs;
	}
	c->n = n;
	c->n_items = l->n_items;
	c->n_rej = l->n_rej;
	if (n)
		qsort(c->docs, n, sizeof(*c->docs), doc_cmp);
	return 0;
}

/* Decode @buf document by document, parsing only those whose bytes are not
 * those of a document of the load in force (the rest produce what they did
 * then), and fill @c with this load's documents. Returns 1 when done, 0
 * when @buf is to be parsed whole instead (not splittable, or a document
 * that does not parse; @l then holds part of it), or -errno.
 */
static int decode_split(struct load *l, const char *buf, size_t len, struct file_doc_cache *c)
{
	struct file_doc *recs = NULL;
	size_t n_recs = 0, cap = 0, base = 0, end;
	int ret = 0;

	if (!splittable(buf, len))
		return 0;
	for (size_t off = 0; off < len && !ret; off = end) {
		const struct file_doc *prev;
		struct file_doc *d;

		end = doc_end(buf, off, len);
		if (stopping(l, n_recs + 1)) {
			ret = -ECANCELED;
			break;
		}
		if (array_reserve(&recs, &cap, n_recs, sizeof(*recs), 64)) {
			ret = -ENOMEM;
			break;
		}
		d = &recs[n_recs++];
		*d = (struct file_doc){ .hash = fnv1a64(FNV1A64_OFFSET, buf + off, end - off),
					.len = end - off, .item0 = l->n_items, .rej0 = l->n_rej };
		prev = l->full ? NULL : find_doc(&l->a->cache, d->hash, d->len);
		if (prev && reusable(l, prev)) {
			d->n_docs = prev->n_docs;
			ret = reuse_doc(l, prev, base);
		} else {
			ret = parse_doc(l, buf + off, end - off, base, &d->n_docs);
		}
		d->n_items = l->n_items - d->item0;
		d->n_rej = l->n_rej - d->rej0;
		base += d->n_docs;
	}
	if (!ret)
		ret = make_cache(l, recs, n_recs, c);
	free(recs);
	if (ret == 1)
		return 0;
	return ret ? ret : 1;
}

static int key_cmp_idx(const void *a, const void *b, void *arg)
{
	const struct item *items = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = obj_key_cmp(&items[x].key, &items[y].key);

	return c ? c : (x > y) - (x < y);
}

/* One file defining an object twice is a mistake: the first definition
 * stays, the later ones are rejected. Returns 0 or -ENOMEM.
 */
static int reject_duplicates(struct load *l)
{
	struct item *items = l->items;
	size_t n = l->n_items, w = 0;
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
		if (!obj_key_cmp(&items[idx[i - 1]].key, &items[idx[i]].key))
			first_of[idx[i]] = first_of[idx[i - 1]];
	for (size_t i = 0; i < n; i++) {
		char who[OBJ_NS_MAX + OBJ_NAME_MAX + 32];
		struct rejection *r;

		if (first_of[i] == i)
			continue;
		r = add_rejection(l, items[i].doc, items[i].idx);
		if (!r) {
			/* The items are still whole: load_done() frees them. */
			err = -ENOMEM;
			goto out_free;
		}
		/* Not has_key: the first definition is in force, nothing to keep. */
		snprintf(r->msg, sizeof(r->msg), "%s: already defined in %s",
			 obj_key_fmt(&items[i].key, who, sizeof(who)), items[first_of[i]].where);
	}
	for (size_t i = 0; i < n; i++) {
		if (first_of[i] != i) {
			obj_free(items[i].obj);
			continue;
		}
		memmove(&items[w++], &items[i], sizeof(*items));
	}
	l->n_items = w;
out_free:
	free(idx);
	free(first_of);
	return err;
}

static int item_cmp(const void *a, const void *b)
{
	return obj_key_cmp(&((const struct item *)a)->key, &((const struct item *)b)->key);
}

/* bsearch() of a bare key among items. */
static int key_item_cmp(const void *key, const void *it)
{
	return obj_key_cmp(key, &((const struct item *)it)->key);
}

static bool accepted(const struct load *l, const struct obj_key *k)
{
	return l->n_items && bsearch(k, l->items, l->n_items, sizeof(*l->items), key_item_cmp);
}

static bool kept_before(const struct load *l, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (l->rej[j].kept_previous && !obj_key_cmp(&l->rej[j].key, &l->rej[i].key))
			return true;
	return false;
}

/* A rejected object whose previous version is in force keeps that version:
 * a typo in one Service must not take it away. Needs the items sorted.
 */
static void keep_previous(struct load *l)
{
	for (size_t i = 0; i < l->n_rej; i++) {
		struct rejection *rj = &l->rej[i];
		const struct file_entry *prev;

		if (!rj->has_key || accepted(l, &rj->key))
			continue;
		prev = find_in_force(l->a, &rj->key);
		/* Kept once, even if the file has it wrong twice. */
		if (!prev || kept_before(l, i))
			continue;
		rj->kept_previous = true;
		rj->kept_fp = prev->fp;
	}
}

/* What is in force once @l is applied: accepted and kept, sorted. */
static int next_in_force(const struct load *l, struct file_entry **out, size_t *n_out)
{
	size_t n = 0, cap = l->n_items + l->n_rej;
	struct file_entry *e = cap ? calloc(cap, sizeof(*e)) : NULL;

	if (cap && !e)
		return -ENOMEM;
	for (size_t i = 0; i < l->n_items; i++)
		e[n++] = (struct file_entry){ .key = l->items[i].key, .fp = l->items[i].fp };
	for (size_t i = 0; i < l->n_rej; i++) {
		const struct rejection *rj = &l->rej[i];

		if (rj->kept_previous)
			e[n++] = (struct file_entry){ .key = rj->key, .fp = rj->kept_fp };
	}
	if (n)
		qsort(e, n, sizeof(*e), entry_cmp);
	*out = e;
	*n_out = n;
	return 0;
}

/* The order a listing's objects go to the sink in: Namespaces first, then
 * per namespace each Service followed by its EndpointSlices (by their
 * kubernetes.io/service-name), then the rest by key. The items stay sorted
 * by key for the diff; sent in that order, a new file's Services would all
 * come before any slice, and the sink's parts of at most 512 changes would
 * publish (and build) each Service twice: once without its endpoints, once
 * with them.
 */
static const char *send_group(const struct item *it)
{
	if (it->obj && it->key.kind == OBJ_ENDPOINTSLICE)
		return it->obj->slice.service;
	return it->key.name;
}

static int send_rank(enum obj_kind kind)
{
	switch (kind) {
	case OBJ_NAMESPACE:
		return 0;
	case OBJ_SERVICE:
	case OBJ_ENDPOINTSLICE:
		return 1;
	default:
		return 2;
	}
}

static int send_cmp(const void *a, const void *b, void *arg)
{
	const struct item *items = arg;
	const struct item *x = &items[*(const size_t *)a], *y = &items[*(const size_t *)b];
	int c = send_rank(x->key.kind) - send_rank(y->key.kind);

	if (!c)
		c = strcmp(x->key.ns, y->key.ns);
	if (!c && send_rank(x->key.kind) == 1)
		c = strcmp(send_group(x), send_group(y));
	return c ? c : obj_key_cmp(&x->key, &y->key);
}

/* Indices of @l's items in send order (send_cmp()), or NULL with errno set. */
static size_t *send_order(const struct load *l)
{
	size_t *idx = malloc((l->n_items ? l->n_items : 1) * sizeof(*idx));

	if (!idx)
		return NULL;
	for (size_t i = 0; i < l->n_items; i++)
		idx[i] = i;
	qsort_r(idx, l->n_items, sizeof(*idx), send_cmp, l->items);
	return idx;
}

/* Send @l as one full listing: the objects decoded, and every other object
 * in force (unchanged, or kept after a rejection) counted as listed without
 * being sent again; what it does not list goes at its end. The sink takes
 * the objects. 0 or -errno.
 */
static int send_listed(struct load *l, struct reg_sink *sink, const char *source,
			size_t *n_changes)
{
	size_t *order = send_order(l);
	int err;

	if (!order)
		return -ENOMEM;
	err = reg_sink_resync_begin(sink, source, all_kinds,
				    sizeof(all_kinds) / sizeof(all_kinds[0]));
	for (size_t i = 0; i < l->n_items && !err; i++) {
		struct item *it = &l->items[order[i]];

		if (stopping(l, i + 1)) {
			free(order);
			return -ECANCELED;
		}
		if (!it->obj) {
			err = reg_sink_keep(sink, source, it->key.kind, it->key.ns, it->key.name);
			continue;
		}
		err = reg_sink_upsert(sink, source, it->obj);
		it->obj = NULL;
		(*n_changes)++;
	}
	free(order);
	for (size_t i = 0; i < l->n_rej && !err; i++) {
		const struct rejection *rj = &l->rej[i];

		if (rj->kept_previous)
			err = reg_sink_keep(sink, source, rj->key.kind, rj->key.ns, rj->key.name);
	}
	return err ? err : reg_sink_resync_end(sink, source);
}

/* A listing up to this size is taken by the loop whole (a batch), so a
 * small file rewritten is never published half applied; a bigger one goes
 * in the sink's paced parts, and the loop keeps taking other sources'
 * events meanwhile.
 */
#define LISTING_BATCH_MAX 512

static int send_listing(struct load *l, struct reg_sink *sink, const char *source,
			size_t *n_changes)
{
	bool batch = l->n_items + l->n_rej <= LISTING_BATCH_MAX;
	int err;

	if (batch)
		reg_sink_batch_begin(sink);
	err = send_listed(l, sink, source, n_changes);
	if (batch)
		reg_sink_batch_end(sink);
	return err;
}

/* How many objects in force @next lacks (both sorted). */
static size_t count_removed(const struct file_applied *a, const struct file_entry *next,
			   size_t n_next)
{
	size_t j = 0, n = 0;

	for (size_t i = 0; i < a->n; i++) {
		int c = 1;

		while (j < n_next && (c = obj_key_cmp(&next[j].key, &a->in_force[i].key)) < 0)
			j++;
		if (j >= n_next || c != 0)
			n++;
	}
	return n;
}

/* Whether to send @l as a full listing rather than as its changes: always
 * when not in sync, and when most of what is in force changes (a new file,
 * most of it removed). Changes one by one are published as they come, and
 * removing objects one by one costs the model a move of its array each;
 * a listing has its publishes paced by the sink and removes what it lacks
 * in one pass at its end, for one event per unchanged object.
 */
static bool as_listing(const struct load *l, const struct file_entry *next, size_t n_next)
{
	size_t changes = count_removed(l->a, next, n_next);

	if (l->full)
		return true;
	for (size_t i = 0; i < l->n_items; i++)
		changes += l->items[i].obj != NULL;
	return changes > 0 && 2 * changes > n_next;
}

/* Send what differs from what is in force: the objects decoded (new or
 * changed), then the objects in force that @next lacks (removed from the
 * file), so nothing is removed before what replaces it is in. A kept
 * object is in @next and stays. 0 or -errno.
 */
static int send_changes(struct load *l, struct reg_sink *sink, const char *source,
			const struct file_entry *next, size_t n_next, size_t *n_changes)
{
	const struct file_applied *a = l->a;
	size_t j = 0, *order = send_order(l);
	int err = 0;

	if (!order)
		return -ENOMEM;
	/* One write of the file is one change: the loop applies it whole. */
	reg_sink_batch_begin(sink);
	for (size_t i = 0; i < l->n_items && !err; i++) {
		struct item *it = &l->items[order[i]];

		if (!it->obj)
			continue;
		if (stopping(l, ++*n_changes)) {
			err = -ECANCELED;
			break;
		}
		err = reg_sink_upsert(sink, source, it->obj);
		it->obj = NULL;
	}
	free(order);
	/* Both sorted: one walk. */
	for (size_t i = 0; i < a->n && !err; i++) {
		const struct obj_key *k = &a->in_force[i].key;
		int c = 1;

		while (j < n_next && (c = obj_key_cmp(&next[j].key, k)) < 0)
			j++;
		if (j < n_next && c == 0)
			continue;
		if (stopping(l, ++*n_changes)) {
			err = -ECANCELED;
			break;
		}
		err = reg_sink_delete(sink, source, k->kind, k->ns, k->name);
	}
	reg_sink_batch_end(sink);
	return err;
}

static void load_done(struct load *l)
{
	for (size_t i = 0; i < l->n_items; i++)
		obj_free(l->items[i].obj);
	free(l->items);
	free(l->rej);
}

static uint64_t content_hash(const char *buf, size_t len)
{
	return fnv1a64(FNV1A64_OFFSET, buf, len);
}

int file_load(struct file_applied *a, const char *path, const char *source, struct reg_sink *sink,
	      const atomic_bool *stop, struct file_load_report *rep, char *err, size_t errlen)
{
	struct load l = { .a = a, .full = !a->in_sync, .stop = stop };
	struct file_doc_cache cache = { 0 };
	struct file_entry *next = NULL;
	json_object *docs = NULL;
	size_t len = 0, n_next = 0, n_changes = 0;
	char *buf = NULL;
	uint64_t hash;
	int ret;

	ret = read_file(path, &buf, &len, err, errlen);
	if (ret)
		return ret;
	hash = content_hash(buf, len);
	if (a->in_sync && hash == a->content_hash && len == a->content_len) {
		free(buf);
		return 0;
	}
	ret = atomic_load(stop) ? -ECANCELED : decode_split(&l, buf, len, &cache);
	if (ret == 0) {
		/* Parsed whole: nothing of the split is kept. */
		load_done(&l);
		l = (struct load){ .a = a, .full = !a->in_sync, .stop = stop };
		ret = reg_docs_parse(buf, len, &docs, err, errlen);
		if (ret) {
			free(buf);
			return ret;
		}
		l.n_docs_parsed = json_object_array_length(docs);
		ret = decode_docs(&l, docs, 0);
		json_object_put(docs);
	} else if (ret == 1) {
		ret = 0;
	}
	free(buf);
	if (!ret)
		ret = reject_duplicates(&l);
	if (!ret) {
		if (l.n_items)
			qsort(l.items, l.n_items, sizeof(*l.items), item_cmp);
		keep_previous(&l);
		ret = next_in_force(&l, &next, &n_next);
	}
	if (!ret) {
		/* From here on the model may be changed: a failure leaves it
		 * out of step with @a until a full listing.
		 */
		ret = as_listing(&l, next, n_next)
			      ? send_listing(&l, sink, source, &n_changes)
			      : send_changes(&l, sink, source, next, n_next, &n_changes);
		if (ret)
			a->in_sync = false;
	}
	if (ret) {
		if (ret != -ECANCELED)
			snprintf(err, errlen, "%s", strerror(-ret));
		free(next);
		file_doc_cache_free(&cache);
		load_done(&l);
		return ret;
	}
	/* Only a counter: what was sent is in the model either way. */
	for (size_t i = 0; i < l.n_rej; i++)
		(void)reg_sink_rejected(sink, source);
	*rep = (struct file_load_report){ .n_objs = n_next, .n_changes = n_changes,
					  .n_rejected = l.n_rej, .n_docs_parsed = l.n_docs_parsed,
					  .n_docs_reused = l.n_docs_reused };
	for (size_t i = 0; i < l.n_rej; i++) {
		const struct rejection *rj = &l.rej[i];

		log_warn("registry: '%s': %s: %s%s, ignoring", path, rj->where, rj->msg,
			 rj->kept_previous ? " (its previous version stays in force)" : "");
		if (i == 0)
			snprintf(rep->first_rejection, sizeof(rep->first_rejection), "%s: %s",
				 rj->where, rj->msg);
	}
	free(a->in_force);
	a->in_force = next;
	a->n = n_next;
	a->in_sync = true;
	a->content_hash = hash;
	a->content_len = len;
	file_doc_cache_free(&a->cache);
	a->cache = cache;
	load_done(&l);
	return 1;
}

void file_applied_done(struct file_applied *a)
{
	free(a->in_force);
	file_doc_cache_free(&a->cache);
	*a = (struct file_applied){ 0 };
}
