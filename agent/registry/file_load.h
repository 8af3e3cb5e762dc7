/* SPDX-License-Identifier: GPL-2.0-only */
/* One load of the file registry's file: read it, parse it, decode its
 * objects and send the sink only what differs from what the loads before
 * left in force (objects added, changed, gone). A YAML file is cut into its
 * documents on the raw bytes first, and a document whose bytes are those of
 * one of the load in force is not parsed again: what it produced then
 * stands. registry/file.c runs it on the registry's own thread, so none
 * of it (a few hundred ms of CPU for a new 10,000-Service file, a fifth of
 * that for a change to a tenth of it) holds up the agent's loop, which
 * applies only the changes.
 */
#ifndef WEFT_REG_FILE_LOAD_H
#define WEFT_REG_FILE_LOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/objects.h"
#include "registry/decode.h"
#include "registry/registry.h"

/* "document N, item M": where in the file an object is. */
#define FILE_WHERE_MAX 64

/* Room for "WHERE: message" of a rejected object. */
#define FILE_REJECT_MSG_MAX (FILE_WHERE_MAX + REG_DECODE_ERR_MAX + 2)

/* An object in force: its key and a fingerprint of the manifest it was
 * decoded from (the manifest's parsed tree, 64-bit FNV-1a), so an
 * unchanged manifest is recognised without decoding it again.
 */
struct file_entry {
	struct obj_key key;
	uint64_t fp;
};

/* What a document of the load in force produced, kept so that the same
 * bytes are not parsed again: its objects accepted and rejected, each with
 * its place in the document (@doc from 0; @item from 1 in a List or an
 * array, 0 for a document that is the object).
 */
struct file_doc_item {
	struct obj_key key;
	uint64_t fp;
	uint32_t doc, item;
};

struct file_doc_rejection {
	char msg[REG_DECODE_ERR_MAX];
	struct obj_key key;
	bool has_key;
	uint32_t doc, item;
};

/* A YAML document of the file in force (docs/registry-format.md, "How a
 * reload runs"): the bytes from a `---` line to the next, known by their
 * FNV-1a and length, and where in file_doc_cache what they produced is.
 * @n_docs is what the parser made of them (0 for comments only).
 */
struct file_doc {
	uint64_t hash;
	size_t len;
	size_t n_docs;
	size_t item0, n_items;
	size_t rej0, n_rej;
};

struct file_doc_cache {
	struct file_doc *docs;	/* sorted by hash, len */
	size_t n;
	struct file_doc_item *items;
	size_t n_items;
	struct file_doc_rejection *rej;
	size_t n_rej;
};

/* What the loads so far left in the model; the caller's between loads.
 * Zero-initialised before the first load, file_applied_done() after the
 * last.
 */
struct file_applied {
	struct file_entry *in_force;	/* sorted by key: applied, or kept after a rejection */
	size_t n;
	/* The model holds exactly @in_force. False before the first load and
	 * after a send that failed half-way: the next load then sends every
	 * object as one full listing (reg_sink_resync_begin()), which puts
	 * the model back in step whatever was lost.
	 */
	bool in_sync;
	uint64_t content_hash;		/* FNV-1a of the file last applied, when in_sync */
	size_t content_len;
	/* The documents of the load in force, when it was split (a YAML file
	 * without directives); empty otherwise.
	 */
	struct file_doc_cache cache;
};

/* What one load did (file_load() returned 1). */
struct file_load_report {
	size_t n_objs;		/* in force afterwards */
	size_t n_changes;	/* objects sent, and deletes unless sent as a full listing */
	size_t n_rejected;	/* objects rejected, each logged with the file and where */
	size_t n_docs_parsed;	/* YAML documents parsed (all of them when not split) */
	size_t n_docs_reused;	/* documents whose bytes were those of one in force: not parsed */
	char first_rejection[FILE_REJECT_MSG_MAX];	/* "WHERE: message", "" if none */
};

/* Load @path and send @sink, as source @source, what differs from @a, then
 * make @a what is in force. Rejected objects are logged (naming @path) and
 * counted; one whose previous version is in force keeps it. Returns 1 when
 * the file was applied (@rep filled; it may have changed nothing), 0 when
 * its content is what was applied last (nothing read further), or -errno
 * with the reason in @err: the file as a whole is rejected (unreadable,
 * too big, does not parse: nothing was sent, @a unchanged), the sink
 * refused an event (-ENOMEM, -ENOBUFS: part may have been sent, @a is no
 * longer in sync), or *@stop was set meanwhile (-ECANCELED). Blocks on the
 * file's I/O and takes the CPU of the whole decode; call it off the loop.
 */
int file_load(struct file_applied *a, const char *path, const char *source, struct reg_sink *sink,
	      const atomic_bool *stop, struct file_load_report *rep, char *err, size_t errlen);

/* Free what @c holds and zero it. */
void file_doc_cache_free(struct file_doc_cache *c);

/* Free what @a holds and zero it. */
void file_applied_done(struct file_applied *a);

#endif /* WEFT_REG_FILE_LOAD_H */
