/* SPDX-License-Identifier: GPL-2.0-only */
/* Tells registry/file.c when the file behind a path may have changed: inotify
 * on the directories of the path's final component and of every symlink met
 * while resolving it, filtered by name. So in-place writes, editors' atomic
 * renames, delete + recreate, and Kubernetes ConfigMap volumes (a file
 * symlinked through "..data", itself a symlink swapped by rename) are seen.
 * Not seen: renames of plain (non-symlink) parent directories, and subPath
 * ConfigMap mounts, which kubelet never updates.
 */
#ifndef WEFT_REG_FILE_WATCH_H
#define WEFT_REG_FILE_WATCH_H

/* Directory entries watched at most: the final file plus symlinks met. */
#define FILE_WATCH_MAX 16

struct file_watch;

/* Start watching @path (which need not exist yet). NULL with errno set if
 * inotify cannot be set up. Copies @path.
 */
struct file_watch *file_watch_new(const char *path);

/* Free and close the inotify fd; accepts NULL. */
void file_watch_free(struct file_watch *w);

/* The inotify fd (non-blocking, close-on-exec) to poll for input. */
int file_watch_fd(const struct file_watch *w);

/* Read every pending event. Returns 1 when the file may have changed (the
 * caller re-reads it), 0 when not, or -errno if reading inotify failed.
 * Follows a changed symlink chain by moving the watches. Does not block.
 */
int file_watch_drain(struct file_watch *w);

#endif /* WEFT_REG_FILE_WATCH_H */
