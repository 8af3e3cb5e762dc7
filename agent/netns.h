/* SPDX-License-Identifier: GPL-2.0-only */
/* Network namespace plumbing: open a pod's netns and make sockets inside it
 * while the agent itself stays in its own (the ztunnel in-pod model: a socket
 * keeps the netns it was created in for its whole life).
 */
#ifndef WEFT_NETNS_H
#define WEFT_NETNS_H

#include <stdint.h>

/* Open @path (e.g. /proc/123/ns/net, /run/netns/x) and check it is a network
 * namespace. Returns an O_CLOEXEC fd or -errno (-EINVAL: not a netns).
 */
int netns_open(const char *path);

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

/* The netns cookie of the namespace @sock_fd lives in (SO_NETNS_COOKIE, 5.14+). */
int netns_cookie_of(int sock_fd, uint64_t *out);

#endif /* WEFT_NETNS_H */
