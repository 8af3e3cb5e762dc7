// SPDX-License-Identifier: GPL-2.0-only
/* The pool of handed-over listening sockets (proxy/adopt.h). A plain array:
 * a node has at most a few thousand listeners and the pool lives only for
 * the seconds of a hand-over.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "proxy/adopt.h"

#ifndef SIOCGSKNS
#define SIOCGSKNS 0x894C	/* <linux/sockios.h>, 4.9+ */
#endif

static struct px_adopted *pool;
static size_t n_pool, cap_pool;

int px_adopt_offer(const struct px_adopted *a)
{
	if (n_pool == cap_pool) {
		size_t cap = cap_pool ? 2 * cap_pool : 64;
		struct px_adopted *v = realloc(pool, cap * sizeof(*v));

		if (!v) {
			close(a->fd);
			return -ENOMEM;
		}
		pool = v;
		cap_pool = cap;
	}
	pool[n_pool++] = *a;
	return 0;
}

int px_adopt_take(int netns_fd, int family, uint16_t port)
{
	struct stat st;

	if (!n_pool || fstat(netns_fd, &st) == -1)
		return -1;
	for (size_t i = 0; i < n_pool; i++) {
		struct px_adopted *a = &pool[i];
		int fd = a->fd;

		if (a->ns.dev != (uint64_t)st.st_dev || a->ns.ino != (uint64_t)st.st_ino ||
		    a->family != family || a->port != port)
			continue;
		pool[i] = pool[--n_pool];
		if (!n_pool) {
			free(pool);
			pool = NULL;
			cap_pool = 0;
		}
		return fd;
	}
	return -1;
}

static int migrate_on(void *ctx)
{
	int fd = open("/proc/sys/net/ipv4/tcp_migrate_req", O_WRONLY | O_CLOEXEC);
	ssize_t n;

	(void)ctx;
	if (fd == -1)
		return -errno;
	n = write(fd, "1", 1);
	close(fd);
	return n == 1 ? 0 : -EIO;
}

size_t px_adopt_close_rest(void)
{
	size_t n = n_pool;

	for (size_t i = 0; i < n_pool; i++) {
		/* The socket's own netns: no need to know the pod. */
		int ns_fd = ioctl(pool[i].fd, SIOCGSKNS);
		int err = ns_fd < 0 ? -errno : netns_run(ns_fd, migrate_on, NULL);

		if (err)
			log_warn("handover: cannot set tcp_migrate_req for a listener left over (port %u): %s; connections waiting in its queue are reset",
				 pool[i].port, strerror(-err));
		if (ns_fd >= 0)
			close(ns_fd);
		close(pool[i].fd);
	}
	free(pool);
	pool = NULL;
	n_pool = cap_pool = 0;
	return n;
}

size_t px_adopt_pending(void)
{
	return n_pool;
}
