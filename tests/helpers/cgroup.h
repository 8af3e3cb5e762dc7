/* SPDX-License-Identifier: GPL-2.0-only */
/* Test cgroups: find the cgroup v2 mount, create a uniquely named child of its
 * root, move processes in, and remove it again with all it holds. BPF tests attach only to these,
 * never to the machine's root cgroup. Used by tests/bpf and tests/integration.
 */
#ifndef WEFT_TESTS_CGROUP_H
#define WEFT_TESTS_CGROUP_H

#include <stddef.h>
#include <sys/types.h>

/* Copy the mount point of the cgroup v2 hierarchy (from /proc/mounts) into
 * @buf. 0, -ENOENT when there is none, or -errno.
 */
int tcg_mount_point(char *buf, size_t len);

/* Create "<mount>/weft-test-<pid>-<n>" and copy its path into @buf. The path
 * is never the mount root itself. The first call in a process also starts
 * its guard, which removes the cgroups made here that are still there when
 * the process is gone (one killed before its tear-down). 0 or -errno.
 */
int tcg_create(char *buf, size_t len);

/* Move process @pid (0 = the caller) into the cgroup at @path. 0 or -errno. */
int tcg_join(const char *path, pid_t pid);

/* Remove @path and every cgroup below it, deepest first. The caller moves
 * to @path's parent if it is inside; every other process left in the tree
 * is the test's own and is killed (cgroup.kill), and the removal waits up
 * to 10 s for the tree to be empty (cgroup.events), retrying rmdir on
 * EBUSY. Only a cgroup of this process' (below "weft-test-<pid>-") is
 * touched: anything else is -EPERM. A missing cgroup is not an error.
 * 0 or -errno; a failure is also reported on stderr as "tcg: cannot remove
 * cgroup <path>: ..." with what is still inside, which scripts/run-tests.sh
 * fails the run on.
 */
int tcg_remove(const char *path);

#endif /* WEFT_TESTS_CGROUP_H */
