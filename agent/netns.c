// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/netns.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "netns.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

int netns_open(const char *path)
{
	int fd, type, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	type = ioctl(fd, NS_GET_NSTYPE);
	if (type == -1) {
		err = -errno;
		goto out_close;
	}
	if (type != CLONE_NEWNET) {
		err = -EINVAL;
		goto out_close;
	}
	return fd;
out_close:
	close(fd);
	return err;
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

int netns_cookie_of(int sock_fd, uint64_t *out)
{
	socklen_t len = sizeof(*out);

	if (getsockopt(sock_fd, SOL_SOCKET, SO_NETNS_COOKIE, out, &len) == -1)
		return -errno;
	return 0;
}
