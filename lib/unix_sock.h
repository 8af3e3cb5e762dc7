/* SPDX-License-Identifier: GPL-2.0-only */
/* Unix stream socket helpers for the agent's two sockets and their clients. */
#ifndef WEFT_UNIX_SOCK_H
#define WEFT_UNIX_SOCK_H

#include <sys/types.h>

/* Bind and listen on @path with file mode @mode, replacing a stale socket file
 * (but refusing to replace anything that is not a socket). Non-blocking,
 * close-on-exec. Returns the fd or -errno.
 */
int unix_listen(const char *path, mode_t mode, int backlog);

#endif /* WEFT_UNIX_SOCK_H */
