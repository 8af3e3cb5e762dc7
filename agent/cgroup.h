/* SPDX-License-Identifier: GPL-2.0-only */
/* Which cgroup v2 folder the datapath attaches to, and whether this process
 * lives inside it.
 */
#ifndef WEFT_CGROUP_H
#define WEFT_CGROUP_H

#include <stddef.h>

/* Resolve --cgroup: "" means the cgroup v2 mount's root (from /proc/mounts);
 * otherwise the folder must exist on a cgroup v2 filesystem. Writes the
 * canonical path to @out. Returns 0, -ENOENT (no cgroup v2 mount / no such
 * folder) or -ENOTDIR (not cgroup v2).
 */
int cgroup_resolve(const char *want, char *out, size_t len);

/* 0 if this process' cgroup v2 is @path or below it, -EPERM if not, -errno. */
int cgroup_check_member(const char *path);

#endif /* WEFT_CGROUP_H */
