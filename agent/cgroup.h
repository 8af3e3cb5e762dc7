/* SPDX-License-Identifier: GPL-2.0-only */
/* Which cgroup v2 folder the datapath attaches to, where this process lives,
 * and whether it lives inside that folder.
 */
#ifndef WEFT_CGROUP_H
#define WEFT_CGROUP_H

#include <stddef.h>
#include <stdint.h>

/* The cgroup v2 mount point (from /proc/mounts) into @out. 0, -ENOENT (no
 * cgroup v2 mount) or -errno.
 */
int cgroup_mount(char *out, size_t len);

/* The absolute path of this process' cgroup v2 folder (its mount point and
 * the "0::" line of /proc/self/cgroup) into @out. 0, -ENOENT (not in a
 * cgroup v2), -ENAMETOOLONG or -errno.
 */
int cgroup_self(char *out, size_t len);

/* Resolve --cgroup: "" means the cgroup v2 mount's root (from /proc/mounts);
 * otherwise the folder must exist on a cgroup v2 filesystem. Writes the
 * canonical path to @out. Returns 0, -ENOENT (no cgroup v2 mount / no such
 * folder) or -ENOTDIR (not cgroup v2).
 */
int cgroup_resolve(const char *want, char *out, size_t len);

/* 0 if this process' cgroup v2 is @path or below it, -EPERM if not, -errno. */
int cgroup_check_member(const char *path);

/* The id of the cgroup v2 folder @path (the inode of the folder: what
 * bpf_get_current_ancestor_cgroup_id() and nft's `socket cgroupv2` report)
 * and its depth below the root of the hierarchy. Both capture modes
 * recognise the agent's sockets by them. 0, -EINVAL (@path is not below the
 * cgroup v2 mount) or -errno.
 */
int cgroup_id_of(const char *path, uint64_t *id, uint32_t *level);

/* The same for this process' own cgroup v2. */
int cgroup_self_id(uint64_t *id, uint32_t *level);

#endif /* WEFT_CGROUP_H */
