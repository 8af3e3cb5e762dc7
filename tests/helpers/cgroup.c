// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/cgroup.h: plain file operations on the
 * cgroup v2 filesystem (cgroup.procs, mkdir, rmdir).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"

int tcg_mount_point(char *buf, size_t len)
{
	char dev[256], dir[PATH_MAX], type[64];
	int err = -ENOENT;
	FILE *f;

	f = fopen("/proc/mounts", "re");
	if (!f)
		return -errno;
	while (fscanf(f, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3) {
		if (strcmp(type, "cgroup2"))
			continue;
		err = snprintf(buf, len, "%s", dir) >= (int)len ? -ENAMETOOLONG : 0;
		break;
	}
	fclose(f);
	return err;
}

int tcg_create(char *buf, size_t len)
{
	static unsigned int seq;
	char mnt[PATH_MAX];
	int err, n;

	err = tcg_mount_point(mnt, sizeof(mnt));
	if (err)
		return err;
	for (int tries = 0; tries < 100; tries++) {
		n = snprintf(buf, len, "%s/weft-test-%d-%u", mnt, (int)getpid(), seq++);
		if (n < 0 || (size_t)n >= len)
			return -ENAMETOOLONG;
		if (mkdir(buf, 0755) == 0)
			return 0;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static int write_pid(const char *cgroup, pid_t pid)
{
	char path[PATH_MAX], line[32];
	int fd, n, err = 0;

	if (snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	n = snprintf(line, sizeof(line), "%d\n", (int)pid);
	if (write(fd, line, (size_t)n) != n)
		err = -errno;
	close(fd);
	return err;
}

int tcg_join(const char *path, pid_t pid)
{
	return write_pid(path, pid);
}

/* Move everyone in @path to @parent; returns how many were seen, or -errno. */
static int evacuate(const char *path, const char *parent)
{
	char procs[PATH_MAX];
	int pid, n = 0, err;
	FILE *f;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
	f = fopen(procs, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fscanf(f, "%d", &pid) == 1) {
		err = write_pid(parent, pid);
		/* ESRCH: it exited between the read and the write. */
		if (err && err != -ESRCH) {
			fclose(f);
			return err;
		}
		n++;
	}
	fclose(f);
	return n;
}

int tcg_remove(const char *path)
{
	struct timespec nap = { .tv_nsec = 10 * 1000 * 1000 };
	char parent[PATH_MAX];
	char *slash;
	int err;

	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return -EINVAL;
	*slash = '\0';
	/* A process that is exiting still counts for rmdir for a moment after
	 * it has been reaped; retry for up to a second.
	 */
	for (int tries = 0; tries < 100; tries++) {
		err = evacuate(path, parent);
		if (err < 0)
			return err;
		if (rmdir(path) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		nanosleep(&nap, NULL);
	}
	return -EBUSY;
}
