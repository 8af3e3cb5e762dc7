/* SPDX-License-Identifier: GPL-2.0-only */
/* Network namespace plumbing: open a pod's netns and make sockets inside it
 * while the agent itself stays in its own (the ztunnel in-pod model: a socket
 * keeps the netns it was created in for its whole life).
 */
#ifndef WEFT_NETNS_H
#define WEFT_NETNS_H

#include <stddef.h>
#include <stdint.h>

/* A netns's identity while something holds it open: the nsfs inode. */
struct netns_id {
	uint64_t dev, ino;
};

/* Open @path (e.g. /proc/123/ns/net, /run/netns/x) safely and check it is a
 * network namespace other than the agent's own (docs/cni.md, "The netns
 * path"). The path is resolved first without opening its target (O_PATH),
 * so a FIFO or a device is refused without blocking; symlinks are followed
 * and judged by what they resolve to. Returns an O_RDONLY|O_NONBLOCK|
 * O_CLOEXEC fd with its identity in *@id (when not NULL), or -errno with
 * @why (@len bytes) saying what is wrong:
 *   -ENOENT (and other open errors)  the path cannot be resolved
 *   -EINVAL  not an nsfs file, not a network namespace, or the agent's own
 */
int netns_open_id(const char *path, struct netns_id *id, char *why, size_t len);
/* netns_open_id() without identity or message. */
int netns_open(const char *path);

/* The netns cookie of the namespace @ns_fd (a socket made there for the
 * call). 0 or -errno.
 */
int netns_cookie(int ns_fd, uint64_t *out);

/* Create socket(@family, @type | SOCK_CLOEXEC) inside the netns @ns_fd and
 * return to @home_fd. Returns the fd or -errno. The calling thread is in the
 * pod's netns only for the duration of the call. If switching back fails the
 * thread would be stranded in a pod's netns, so that aborts (a programmer or
 * kernel error, never input).
 */
int netns_socket(int ns_fd, int home_fd, int family, int type);

/* Like netns_socket(), @n sockets at once for one setns() pair: fills
 * @fds[0..ret) and returns how many were made (at least 1) or -errno.
 */
int netns_sockets(int ns_fd, int home_fd, int family, int type, int *fds, int n);

/* Run @fn(@ctx) with the calling thread inside the netns @ns_fd (-1: a new,
 * empty netns of its own, gone once nothing holds it) and return it to the
 * netns it was in. Whatever @fn opens there (sockets, /proc/sys/net files)
 * keeps that netns for life. Returns @fn's result, or -errno when the netns
 * cannot be entered; aborts if the thread cannot come back (it would
 * otherwise make every later socket in a pod).
 */
int netns_run(int ns_fd, int (*fn)(void *ctx), void *ctx);

/* The netns cookie of the namespace @sock_fd lives in (SO_NETNS_COOKIE, 5.14+). */
int netns_cookie_of(int sock_fd, uint64_t *out);

#endif /* WEFT_NETNS_H */
