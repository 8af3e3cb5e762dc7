/* SPDX-License-Identifier: GPL-2.0-only */
/* The pods' saved state: one file per enrolled container under
 * RUN_DIR/pods/<container id>.json, in the CNI protocol's encoding (with the
 * state-only fields: meshed hint, netns identity), written whole or not at all,
 * read back by a restarted agent and by weft-agent --cleanup. Internal to the
 * pods module (pods.c).
 */
#ifndef WEFT_PODS_STATE_H
#define WEFT_PODS_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "cni_proto.h"

#define PODS_STATE_DIR "pods"

/* Whether @id can name a state file: [A-Za-z0-9_.-]+, not starting with '.'. */
bool pods_state_valid_id(const char *id);

/* The state file of @container_id under @run_dir. 0 or -ENAMETOOLONG. */
int pods_state_path(const char *run_dir, const char *container_id, char *buf, size_t len);

/* Write @saved as its container's state file, atomically (a temporary file
 * renamed over it). 0 or -errno.
 */
int pods_state_write(const char *run_dir, const struct cni_proto_pod *saved);

/* Call @fn with every pod saved under @run_dir (and its file's path);
 * unreadable or malformed files are logged and skipped. 0 or -errno (the
 * folder: -ENOENT when there is none).
 */
int pods_state_for_each(const char *run_dir,
			void (*fn)(const struct cni_proto_pod *spec, const char *path, void *ctx),
			void *ctx);

#endif /* WEFT_PODS_STATE_H */
