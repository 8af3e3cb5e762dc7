// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/cgroup.h. */
#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "cgroup.h"
#include "fs.h"

int cgroup_mount(char *out, size_t len)
{
	struct mntent *m;
	FILE *f = setmntent("/proc/mounts", "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while ((m = getmntent(f))) {
		if (!strcmp(m->mnt_type, "cgroup2")) {
			snprintf(out, len, "%s", m->mnt_dir);
			err = 0;
			break;
		}
	}
	endmntent(f);
	return err;
}

int cgroup_resolve(const char *want, char *out, size_t len)
{
	char real[PATH_MAX];
	struct statfs sfs;

	if (!want[0])
		return cgroup_mount(out, len);
	if (!realpath(want, real))
		return -errno;
	if (statfs(real, &sfs) == -1)
		return -errno;
	if (sfs.f_type != CGROUP2_SUPER_MAGIC)
		return -ENOTDIR;
	snprintf(out, len, "%s", real);
	return 0;
}

int cgroup_self(char *out, size_t len)
{
	char mnt[PATH_MAX], line[PATH_MAX];
	FILE *f;
	int err;

	err = cgroup_mount(mnt, sizeof(mnt));
	if (err)
		return err;
	f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -errno;
	err = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		/* The unified hierarchy's line is "0::/path". */
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		err = snprintf(out, len, "%s%s", mnt, strcmp(line + 3, "/") ? line + 3 : "") >=
				      (int)len ? -ENAMETOOLONG : 0;
		break;
	}
	fclose(f);
	return err;
}

int cgroup_check_member(const char *path)
{
	char self[2 * PATH_MAX];
	int err;
	size_t n;

	err = cgroup_self(self, sizeof(self));
	if (err)
		return err;
	n = strlen(path);
	if (strncmp(self, path, n) || (self[n] != '\0' && self[n] != '/' && path[n - 1] != '/'))
		return -EPERM;
	return 0;
}

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
	unsigned long long cg_id;
	int err;

	if (snprintf(path, sizeof(path), "%s/%s", mnt, rel) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	err = fs_cgroup_id(path, &cg_id);
	if (err)
		return err;
	*id = cg_id;
	*level = path_depth(rel);
	return 0;
}

int cgroup_id_of(const char *path, uint64_t *id, uint32_t *level)
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

int cgroup_self_id(uint64_t *id, uint32_t *level)
{
	char self[PATH_MAX];
	int err = cgroup_self(self, sizeof(self));

	return err ?: cgroup_id_of(self, id, level);
}
