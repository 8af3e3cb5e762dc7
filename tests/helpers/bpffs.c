// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/bpffs.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include "bpffs.h"

int tbpffs_mount(char *dir, size_t len)
{
	int err;

	/* The pid in the name lets scripts/sweep-test-leftovers.sh tell a dead
	 * run's mount from a live one.
	 */
	if (snprintf(dir, len, "/tmp/weft-bpffs-%d-XXXXXX", (int)getpid()) >= (int)len)
		return -ENAMETOOLONG;
	if (!mkdtemp(dir))
		return -errno;
	if (mount("bpf", dir, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") == -1) {
		err = -errno;
		(void)rmdir(dir);
		return err;
	}
	return 0;
}

int tbpffs_umount(const char *dir)
{
	/* Lazily if busy: a child still holding a pinned fd must not keep
	 * the mount alive past the test.
	 */
	if (umount2(dir, 0) == -1 && umount2(dir, MNT_DETACH) == -1 && errno != EINVAL)
		return -errno;
	if (rmdir(dir) == -1 && errno != ENOENT)
		return -errno;
	return 0;
}
