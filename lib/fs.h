/* SPDX-License-Identifier: GPL-2.0-only */
/* Small filesystem helpers. */
#ifndef WEFT_FS_H
#define WEFT_FS_H

#include <stddef.h>
#include <sys/types.h>

/* Remove the regular files of @dir whose names end in @suffix. Returns the
 * number removed or -errno (a missing @dir is 0).
 */
int fs_remove_suffix(const char *dir, const char *suffix);

/* Read all of regular file @path (following symlinks) into a new
 * NUL-terminated buffer *@out of *@len bytes (the caller frees it), reading to
 * its end rather than trusting its size. *@mode gets its permission bits when
 * @mode is not NULL. Returns 0, or -errno: -EISDIR for a directory, -EINVAL
 * for another non-regular file, -EFBIG when larger than @max bytes, -ENOMEM,
 * or what open/fstat/read said.
 */
int fs_read_file(const char *path, size_t max, char **out, size_t *len, mode_t *mode);

/* The id of cgroup v2 folder @path: its kernfs file handle, what
 * bpf_link_info and bpf_get_current_cgroup_id() report. 0 or -errno.
 */
int fs_cgroup_id(const char *path, unsigned long long *id);

#endif /* WEFT_FS_H */
