// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/netns.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "netns.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* The agent's own netns, as the calling thread sees it. */
static int own_netns(struct stat *out)
{
	return stat("/proc/thread-self/ns/net", out) == -1 ? -errno : 0;
}

int netns_open_id(const char *path, struct netns_id *id, char *why, size_t len)
{
	char proc[64];
	struct stat st, st2, self;
	struct statfs sfs;
	int pfd, fd = -1, type, err;

	/* O_PATH resolves the path (a runtime's /proc/PID/ns/net is a magic
	 * link) without opening what it names: a FIFO or a device is never
	 * opened, so nothing blocks and no driver sees an open().
	 */
	pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd == -1) {
		err = -errno;
		snprintf(why, len, "cannot open netns '%s': %s", path, strerror(-err));
		return err;
	}
	if (fstatfs(pfd, &sfs) == -1 || fstat(pfd, &st) == -1) {
		err = -errno;
		snprintf(why, len, "cannot stat netns '%s': %s", path, strerror(-err));
		goto out;
	}
	if ((unsigned long)sfs.f_type != NSFS_MAGIC) {
		snprintf(why, len, "netns '%s' is not a network namespace (%s, not an nsfs file)",
			 path, S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISDIR(st.st_mode) ? "a directory"
			 : S_ISREG(st.st_mode) ? "a regular file" : "a special file");
		err = -EINVAL;
		goto out;
	}
	/* Now open it for real: an nsfs file, so this cannot block either. */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	fd = open(proc, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		err = -errno;
		snprintf(why, len, "cannot open netns '%s': %s", path, strerror(-err));
		goto out;
	}
	if (fstat(fd, &st2) == -1 || fstatfs(fd, &sfs) == -1) {
		err = -errno;
		snprintf(why, len, "cannot stat netns '%s': %s", path, strerror(-err));
		goto out;
	}
	if ((unsigned long)sfs.f_type != NSFS_MAGIC || st2.st_dev != st.st_dev ||
	    st2.st_ino != st.st_ino) {
		snprintf(why, len, "netns '%s' changed while it was opened", path);
		err = -EINVAL;
		goto out;
	}
	type = ioctl(fd, NS_GET_NSTYPE);
	if (type != CLONE_NEWNET) {
		snprintf(why, len, "netns '%s' is a namespace but not a network namespace", path);
		err = -EINVAL;
		goto out;
	}
	err = own_netns(&self);
	if (err) {
		snprintf(why, len, "cannot stat the agent's own netns: %s", strerror(-err));
		goto out;
	}
	if (self.st_dev == st2.st_dev && self.st_ino == st2.st_ino) {
		/* Capturing the node's own network would capture the agent. */
		snprintf(why, len, "netns '%s' is the agent's own (the node's) network namespace",
			 path);
		err = -EINVAL;
		goto out;
	}
	close(pfd);
	if (id) {
		id->dev = (uint64_t)st2.st_dev;
		id->ino = (uint64_t)st2.st_ino;
	}
	return fd;
out:
	if (fd != -1)
		close(fd);
	close(pfd);
	return err;
}

int netns_open(const char *path)
{
	char why[PATH_MAX + 128];

	return netns_open_id(path, NULL, why, sizeof(why));
}

int netns_sockets(int ns_fd, int home_fd, int family, int type, int *fds, int n)
{
	int i, err = 0;

	if (setns(ns_fd, CLONE_NEWNET) == -1)
		return -errno;
	for (i = 0; i < n; i++) {
		fds[i] = socket(family, type | SOCK_CLOEXEC, 0);
		if (fds[i] == -1) {
			err = -errno;
			break;
		}
	}
	if (setns(home_fd, CLONE_NEWNET) == -1) {
		/* Every later socket of this thread would land in the pod. */
		log_err("cannot return to the agent's netns: %m");
		abort();
	}
	return i ? i : err;
}

int netns_socket(int ns_fd, int home_fd, int family, int type)
{
	int fd, n;

	n = netns_sockets(ns_fd, home_fd, family, type, &fd, 1);
	return n < 0 ? n : fd;
}

int netns_run(int ns_fd, int (*fn)(void *ctx), void *ctx)
{
	int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), err;

	if (home == -1)
		return -errno;
	if (ns_fd >= 0 ? setns(ns_fd, CLONE_NEWNET) : unshare(CLONE_NEWNET)) {
		err = -errno;
		close(home);
		return err;
	}
	err = fn(ctx);
	if (setns(home, CLONE_NEWNET) == -1) {
		log_err("cannot return to the agent's netns: %m");
		abort();
	}
	close(home);
	return err;
}

int netns_cookie_of(int sock_fd, uint64_t *out)
{
	socklen_t len = sizeof(*out);

	if (getsockopt(sock_fd, SOL_SOCKET, SO_NETNS_COOKIE, out, &len) == -1)
		return -errno;
	return 0;
}

int netns_cookie(int ns_fd, uint64_t *out)
{
	int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), fd, err;

	if (home == -1)
		return -errno;
	fd = netns_socket(ns_fd, home, AF_INET, SOCK_DGRAM);
	close(home);
	if (fd < 0)
		return fd;
	err = netns_cookie_of(fd, out);
	close(fd);
	return err;
}
