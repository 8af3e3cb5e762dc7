/* SPDX-License-Identifier: GPL-2.0-only */
/* The file registry, the embedded default (--registry file:PATH):
 * Kubernetes manifests (YAML multi-document or a JSON List) sent to the sink
 * as full listings, again whenever the file changes (inotify on its
 * directory, so atomic renames and ConfigMap symlink swaps are seen). It
 * runs on the agent's loop (reg_backend_ops.attach), not a thread.
 */
#ifndef WEFT_REG_FILE_H
#define WEFT_REG_FILE_H

#include <stdint.h>

#include "registry/registry.h"

struct reg_file;

struct reg_file_stats {
	uint64_t loads;			/* successful (re)loads */
	uint64_t load_errors;		/* whole-file failures (unreadable, syntax) */
	uint64_t objects_rejected;	/* single objects rejected, summed over loads */
	char last_error[512];		/* "" if the last load was clean */
};

/* The backend: scheme "file", argument PATH. */
extern const struct reg_backend_ops reg_file_ops;

/* The load statistics of a started backend when @ops is reg_file_ops (for
 * the admin API), else NULL.
 */
const struct reg_file_stats *reg_file_backend_stats(const struct reg_backend_ops *ops,
						    void *state);

/* Load @path and send it to @sink as one full listing of @source, then
 * report the source synced, and start watching the file. Fails (NULL, errno
 * set, error logged) if the file cannot be read or parsed, sending nothing;
 * bad single objects are logged, counted and skipped. Borrows @sink, which
 * must outlive the registry. The sink applies what was sent on its loop
 * (reg_sink_drain() applies it at once).
 */
struct reg_file *reg_file_new(const char *source, const char *path, struct reg_sink *sink);

/* Stop watching (leaving the loop if attached) and free; accepts NULL. The
 * model keeps what was sent.
 */
void reg_file_free(struct reg_file *r);

/* The inotify fd to watch for EPOLLIN. */
int reg_file_fd(const struct reg_file *r);

/* Drain the inotify fd and reload if the file changed. Returns 1 when a new
 * listing was sent to the sink, 0 when nothing was (including a rejected
 * reload: the previous content stays in force and the error is logged), or
 * -errno if inotify failed. Does not block.
 */
int reg_file_process(struct reg_file *r);

const struct reg_file_stats *reg_file_stats(const struct reg_file *r);
const char *reg_file_path(const struct reg_file *r);

#endif /* WEFT_REG_FILE_H */
