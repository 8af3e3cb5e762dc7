// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/cgroup.h: plain file operations on the
 * cgroup v2 filesystem (cgroup.procs, cgroup.kill, cgroup.events, mkdir,
 * rmdir).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"

/* How long tcg_remove() waits for the processes it ended to be gone: an
 * agent built with the sanitizers takes a while to unmap on a loaded host.
 */
#define TCG_REMOVE_MS 10000

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

/* The guard: a shell of its own that outlives the test process and removes
 * the test cgroups it was told of, if they are still there when that
 * process is gone. Criterion ends a test whose .init fails an assertion
 * without its .fini or exit()'s handlers ("crashed during its setup"), and
 * ends one that times out; nothing in the process runs then. The guard
 * reads "<inode> <path>" lines until the test process (the last holder of
 * the socket's other end) is gone, then takes only folders that still
 * carry the inode it was told (a later process that got the same pid and
 * made the same name is not touched). It leaves the test's cgroup and
 * session first, so neither the test's removal nor a kill of its process
 * group ends it. An exec'd shell, not a forked copy of this process: the
 * test process may have threads, and it is a sanitizer build.
 */
static const char guard_script[] =
	"echo $$ > \"$1/cgroup.procs\" || exit 1\n"
	"held=''\n"
	"while read -r ino path; do held=\"$held $ino:$path\"; done\n"
	"for h in $held; do\n"
	"	ino=${h%%:*} path=${h#*:}\n"
	"	case $path in \"$1/weft-test-$2-\"*) ;; *) continue ;; esac\n"
	"	[ \"$(stat -c %i \"$path\" 2>/dev/null)\" = \"$ino\" ] || continue\n"
	"	echo 1 > \"$path/cgroup.kill\"\n"
	"	for i in $(seq 100); do\n"
	"		grep -q '^populated 1' \"$path/cgroup.events\" 2>/dev/null || break\n"
	"		sleep 0.1\n"
	"	done\n"
	"	for i in $(seq 20); do\n"
	"		find \"$path\" -depth -type d -exec rmdir {} + 2>/dev/null\n"
	"		[ -d \"$path\" ] || break\n"
	"		sleep 0.1\n"
	"	done\n"
	"	why=\"test process $2 ended without its tear-down\"\n"
	"	if [ -d \"$path\" ]; then\n"
	"		echo \"tcg: cannot remove cgroup $path: $why\" >&2\n"
	"	else\n"
	"		echo \"tcg: removed cgroup $path: $why\" >&2\n"
	"	fi\n"
	"done\n";

static int guard_fd = -1;
static pid_t guard_owner;

static int guard_start(const char *mnt)
{
	char owner[16];
	char *argv[] = { "/bin/sh", "-c", (char *)guard_script, "tcg-guard", (char *)mnt,
			 owner,	    NULL };
	int sv[2];
	pid_t pid;

	snprintf(owner, sizeof(owner), "%d", (int)getpid());
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return -errno;
	pid = fork();
	if (pid == -1) {
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (pid == 0) {
		if (dup2(sv[1], STDIN_FILENO) == -1)
			_exit(127);
		close_range(STDERR_FILENO + 1, ~0U, 0);
		setsid();
		execv(argv[0], argv);
		_exit(127);
	}
	close(sv[1]);
	if (guard_fd >= 0)
		close(guard_fd);
	guard_fd = sv[0];
	guard_owner = getpid();
	return 0;
}

/* Tell the guard (started on first use in this process) of @path. */
static int guard_hold(const char *mnt, const char *path)
{
	char line[PATH_MAX + 32];
	struct stat st;
	int n, err;

	if (guard_fd < 0 || guard_owner != getpid()) {
		err = guard_start(mnt);
		if (err)
			return err;
	}
	if (stat(path, &st) == -1)
		return -errno;
	n = snprintf(line, sizeof(line), "%llu %s\n", (unsigned long long)st.st_ino, path);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -ENAMETOOLONG;
	if (send(guard_fd, line, (size_t)n, MSG_NOSIGNAL) != n)
		return errno ? -errno : -EIO;
	return 0;
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
		if (mkdir(buf, 0755) == 0) {
			err = guard_hold(mnt, buf);
			if (err)
				(void)rmdir(buf);
			return err;
		}
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

static int write_str(const char *cgroup, const char *file, const char *what)
{
	char path[PATH_MAX];
	size_t n = strlen(what);
	int fd, err = 0;

	if (snprintf(path, sizeof(path), "%s/%s", cgroup, file) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	if (write(fd, what, n) != (ssize_t)n)
		err = -errno;
	close(fd);
	return err;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* 0 if @path is a cgroup this process made (a folder under the mount
 * point whose top folder is "weft-test-<our pid>-..."), -EPERM if not: what
 * tcg_remove() ends and removes is never anything else's.
 */
static int ours(const char *path)
{
	char mnt[PATH_MAX], mine[64];
	size_t n;
	int err = tcg_mount_point(mnt, sizeof(mnt));

	if (err)
		return err;
	n = strlen(mnt);
	snprintf(mine, sizeof(mine), "weft-test-%d-", (int)getpid());
	if (strncmp(path, mnt, n) || path[n] != '/' || strncmp(path + n + 1, mine, strlen(mine)))
		return -EPERM;
	return 0;
}

/* The caller's own cgroup v2 folder (mount point + the "0::" line). */
static int self_cgroup(char *buf, size_t len)
{
	char mnt[PATH_MAX], line[PATH_MAX];
	int err = tcg_mount_point(mnt, sizeof(mnt));
	FILE *f;

	if (err)
		return err;
	f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -errno;
	err = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		err = snprintf(buf, len, "%s%s", mnt, strcmp(line + 3, "/") ? line + 3 : "") >=
				      (int)len ? -ENAMETOOLONG : 0;
		break;
	}
	fclose(f);
	return err;
}

static bool is_below(const char *path, const char *top)
{
	size_t n = strlen(top);

	return !strncmp(path, top, n) && (path[n] == '\0' || path[n] == '/');
}

/* 1 while a process lives in @path or below, 0 once none does, -ENOENT
 * once it is gone. The kernel counts a task until its very last switch,
 * after its parent may have reaped it, and cgroup.procs no longer lists a
 * task that is exiting: only cgroup.events says when the folder is free.
 */
static int populated(const char *path)
{
	char events[PATH_MAX + 16], key[32];
	int val, ret = -ENOENT;
	FILE *f;

	snprintf(events, sizeof(events), "%s/cgroup.events", path);
	f = fopen(events, "re");
	if (!f)
		return -errno;
	while (fscanf(f, "%31s %d", key, &val) == 2)
		if (!strcmp(key, "populated"))
			ret = val != 0;
	fclose(f);
	return ret;
}

/* rmdir every folder of the tree at @path, deepest first; -EBUSY stops the
 * walk at the first one that is still busy (the caller retries).
 */
static int rmdir_tree(const char *path, char *failed, size_t len)
{
	char sub[PATH_MAX];
	struct dirent *de;
	int err = 0;
	DIR *d;

	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while (!err && (de = readdir(d))) {
		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= (int)sizeof(sub))
			err = -ENAMETOOLONG;
		else
			err = rmdir_tree(sub, failed, len);
	}
	closedir(d);
	if (!err && rmdir(path) == -1 && errno != ENOENT)
		err = -errno;
	if (err && !failed[0])
		snprintf(failed, len, "%s", path);
	return err;
}

/* What is left in @path, for the report: its processes' pids and names. */
static void report(const char *path, const char *failed, int err)
{
	char procs[PATH_MAX + 16], comm_path[64], comm[32];
	int pid;
	FILE *f, *c;

	fprintf(stderr, "tcg: cannot remove cgroup %s: %s (errno %d), populated %d;", failed,
		strerror(-err), -err, populated(path));
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", failed);
	f = fopen(procs, "re");
	while (f && fscanf(f, "%d", &pid) == 1) {
		snprintf(comm_path, sizeof(comm_path), "/proc/%d/comm", pid);
		c = fopen(comm_path, "re");
		if (!c || !fgets(comm, sizeof(comm), c))
			snprintf(comm, sizeof(comm), "?");
		comm[strcspn(comm, "\n")] = '\0';
		fprintf(stderr, " %d (%s)", pid, comm);
		if (c)
			fclose(c);
	}
	if (f)
		fclose(f);
	fprintf(stderr, "\n");
}

int tcg_remove(const char *want)
{
	uint64_t until = now_ms() + TCG_REMOVE_MS;
	char path[PATH_MAX], parent[PATH_MAX], self[PATH_MAX], failed[PATH_MAX] = "";
	char *slash;
	int err;

	/* Not a cgroup of ours: the caller's mistake, nothing to report. The
	 * name as given, then its real path ("..", "//" and links resolved).
	 */
	err = ours(want);
	if (err)
		return err;
	if (!realpath(want, path))
		return errno == ENOENT ? 0 : -errno;
	err = ours(path);
	if (err)
		return err;
	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return -EINVAL;
	*slash = '\0';
	/* Out first, or cgroup.kill would end the caller too. */
	err = self_cgroup(self, sizeof(self));
	if (!err && is_below(self, path))
		err = write_pid(parent, 0);
	if (err)
		goto fail;
	err = write_str(path, "cgroup.kill", "1");
	if (err == -ENOENT && access(path, F_OK) == -1)
		return 0;
	if (err)
		goto fail;
	while (populated(path) == 1 && now_ms() < until)
		nap_ms(10);
	for (;;) {
		failed[0] = '\0';
		err = rmdir_tree(path, failed, sizeof(failed));
		if (err != -EBUSY || now_ms() >= until)
			break;
		nap_ms(10);
	}
	if (!err)
		return 0;
fail:
	if (!failed[0])
		snprintf(failed, sizeof(failed), "%s", path);
	report(path, failed, err);
	return err;
}
