/* SPDX-License-Identifier: GPL-2.0-only */
/* The model: the mutable, single-threaded set of registry objects, per source,
 * from which immutable catalogue snapshots are built. Plain data, no I/O.
 * Registries write it; nothing else does.
 */
#ifndef WEFT_MODEL_H
#define WEFT_MODEL_H

#include "model/catalogue.h"
#include "model/objects.h"

struct model;

/* NULL with errno set on failure. */
struct model *model_new(void);
void model_free(struct model *m);

/* The ranges VIPs are allocated from for Services without a cluster IP
 * (catalogue_build.h), at most one per family; @n 0: none are allocated.
 * Copied. 0, or -EINVAL for more than two or two of one family.
 */
int model_set_vip_ranges(struct model *m, const struct cidr *ranges, size_t n);

/* Declare @source (empty). Sources rank in the order they were first
 * declared or written: when two define the same kind/ns/name, the higher
 * ranked wins. The agent declares them in --registry order. 0 or -errno.
 */
int model_declare_source(struct model *m, const char *source);

/* Insert or replace one object of @source (kind, ns, name are the key). Takes
 * ownership of @obj. 0 or -errno.
 */
int model_upsert(struct model *m, const char *source, struct obj *obj);

/* Remove one object; missing is not an error. 0 or -errno. */
int model_remove(struct model *m, const char *source, enum obj_kind kind, const char *ns,
		 const char *name);

/* The object @kind/@ns/@name of @source ("" ns for Namespaces), or NULL.
 * Borrowed: valid until the next change to @source.
 */
const struct obj *model_find(const struct model *m, const char *source, enum obj_kind kind,
				 const char *ns, const char *name);

typedef bool (*model_keep_fn)(const struct obj *obj, void *ctx);

/* Remove the objects of @source and @kind for which @keep returns false (the
 * end of a relist: what was not listed is gone), at most @max of them, the
 * first in key order: the rest are not asked about. Returns the number
 * removed.
 */
int model_retain(struct model *m, const char *source, enum obj_kind kind, model_keep_fn keep,
		 void *ctx, size_t max);

/* Build a fresh catalogue snapshot (refcount 1) from the current objects, with
 * generation = previous + 1. NULL with errno set on allocation failure.
 */
struct catalogue *model_build(struct model *m);

#endif /* WEFT_MODEL_H */
