/* SPDX-License-Identifier: GPL-2.0-only */
/* The file registry, the embedded default (--registry file:PATH):
 * Kubernetes manifests (YAML multi-document or a JSON List) loaded into the
 * sink at start, then reloaded on a thread of its own whenever the file
 * changes (inotify on its directory, so atomic renames and ConfigMap
 * symlink swaps are seen), sending only what changed (registry/file_load.h).
 * Like the network backends, it talks to the agent only through the sink.
 */
#ifndef WEFT_REG_FILE_H
#define WEFT_REG_FILE_H

#include <stdbool.h>
#include <stdint.h>

#include "registry/registry.h"

struct reg_file;

struct reg_file_stats {
	uint64_t loads;			/* successful (re)loads */
	uint64_t load_errors;		/* whole-file failures (unreadable, syntax) */
	uint64_t objects_rejected;	/* single objects rejected, summed over loads */
	uint64_t docs_parsed;		/* YAML documents parsed, summed over loads */
	uint64_t docs_reused;		/* documents not parsed: same bytes as one in force */
	char last_error[512];		/* "" if the last load was clean */
};

/* The backend: scheme "file", argument PATH. */
extern const struct reg_backend_ops reg_file_ops;

/* Copy the load statistics of a started backend into @out when @ops is
 * reg_file_ops (for the admin API) and return true, else false. Any thread.
 */
bool reg_file_backend_stats(const struct reg_backend_ops *ops, void *state,
			    struct reg_file_stats *out);

/* Load @path and send it to @sink as one full listing of @source, then
 * report the source synced, and start the thread that watches the file and
 * reloads it. The first load happens in this call, on the caller's thread,
 * so that what the file holds is in the sink on return (the agent drains
 * the sink once before it serves anything). Fails (NULL, errno set, error
 * logged) if the file cannot be read or parsed, sending nothing; bad single
 * objects are logged, counted and skipped. Borrows @sink, which must
 * outlive the registry. The sink applies what was sent on its loop
 * (reg_sink_drain() applies it at once). Blocks for the first load.
 */
struct reg_file *reg_file_new(const char *source, const char *path, struct reg_sink *sink);

/* Stop the thread (waiting for it: at most a parse of the file, or a few
 * hundred objects' decoding, since it looks at its stop flag between them)
 * and free; accepts NULL. The model keeps what was sent.
 */
void reg_file_free(struct reg_file *r);

/* Copy the load statistics into @out; any thread. Updated by the registry's
 * thread once a reload's events are in the sink.
 */
void reg_file_stats(struct reg_file *r, struct reg_file_stats *out);

const char *reg_file_path(const struct reg_file *r);

#endif /* WEFT_REG_FILE_H */
