// SPDX-License-Identifier: GPL-2.0-only
/* The agent's own cgroup v2 as both capture modes recognise its sockets by
 * it: the id of the cgroup (the inode of its folder, what
 * bpf_get_current_ancestor_cgroup_id() and nft's `socket cgroupv2` report)
 * and its depth below the root of the hierarchy. Implements dp_self_cgroup()
 * and dp_cgroup_of() of dp.h; nft.c answers nft_self_cgroup() with them.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup.h"
#include "dp.h"

/* Number of components of @rel ("a/b/c" and "/a/b/c/" are 3). */
static uint32_t path_depth(const char *rel)
{
	uint32_t n = 0;

	for (const char *s = rel; *s; s++)
		if (*s != '/' && (s == rel || s[-1] == '/'))
			n++;
	return n;
}

static int cgroup_id_level(const char *mnt, const char *rel, uint64_t *id, uint32_t *level)
{
	char path[PATH_MAX];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/%s", mnt, rel) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (stat(path, &st) == -1)
		return -errno;
	*id = st.st_ino;
	*level = path_depth(rel);
	return 0;
}

int dp_cgroup_of(const char *path, uint64_t *id, uint32_t *level)
{
	char mnt[PATH_MAX];
	size_t n;
	int err;

	err = cgroup_mount(mnt, sizeof(mnt));
	if (err)
		return err;
	n = strlen(mnt);
	if (strncmp(path, mnt, n) || (path[n] && path[n] != '/'))
		return -EINVAL;
	return cgroup_id_level(mnt, path + n, id, level);
}

int dp_self_cgroup(uint64_t *id, uint32_t *level)
{
	char self[PATH_MAX];
	int err = cgroup_self(self, sizeof(self));

	return err ?: dp_cgroup_of(self, id, level);
}
