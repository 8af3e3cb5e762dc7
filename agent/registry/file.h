/* SPDX-License-Identifier: GPL-2.0-only */
/* The file registry, the embedded default: Kubernetes manifests (YAML
 * multi-document or a JSON List) read into the model, reloaded when the file
 * changes (inotify on its directory, so atomic renames and ConfigMap symlink
 * swaps are seen).
 */
#ifndef WEFT_REG_FILE_H
#define WEFT_REG_FILE_H

#include <stdint.h>

struct model;
struct reg_file;

struct reg_file_stats {
	uint64_t loads;			/* successful (re)loads */
	uint64_t load_errors;		/* whole-file failures (unreadable, syntax) */
	uint64_t objects_rejected;	/* single objects rejected, summed over loads */
	char last_error[512];		/* "" if the last load was clean */
};

/* Load @path into @m as source "file:@path" and start watching it.
 * Fails (NULL, errno set, error logged) if the file cannot be read or parsed;
 * bad single objects are logged, counted and skipped. Borrows @m, which must
 * outlive the registry.
 */
struct reg_file *reg_file_new(const char *path, struct model *m);

/* Free; accepts NULL. The model keeps what was loaded. */
void reg_file_free(struct reg_file *r);

/* The inotify fd to watch for EPOLLIN. */
int reg_file_fd(const struct reg_file *r);

/* Drain the inotify fd and reload if the file changed. Returns 1 when the model
 * changed, 0 when nothing did (including a rejected reload: the previous
 * content stays in force and the error is logged), or -errno if inotify failed.
 * Does not block.
 */
int reg_file_process(struct reg_file *r);

const struct reg_file_stats *reg_file_stats(const struct reg_file *r);
const char *reg_file_path(const struct reg_file *r);

#endif /* WEFT_REG_FILE_H */
