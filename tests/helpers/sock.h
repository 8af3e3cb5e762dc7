/* SPDX-License-Identifier: GPL-2.0-only */
/* Client sockets for tests, made inside a test netns (after the kernel
 * selftests' network_helpers.h).
 */
#ifndef WEFT_TEST_SOCK_H
#define WEFT_TEST_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Connect from netns @ns to "IP:PORT" / "[IPv6]:PORT" with a timeout. Returns
 * the connected fd or -errno (-ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH...).
 * The socket's family follows the address; "::ffff:a.b.c.d" gives an AF_INET6
 * socket to an IPv4-mapped address.
 */
int tsock_connect(const char *ns, const char *dst, int timeout_ms);

/* tsock_connect() from source "IP:PORT" @src (bound with SO_REUSEADDR; NULL:
 * the kernel's choice).
 */
int tsock_connect_from(const char *ns, const char *src, const char *dst, int timeout_ms);

/* Send @cmd (if not empty), read until EOF (at most @len - 1 bytes) into @out. Returns the
 * byte count or -errno.
 */
ssize_t tsock_request(int fd, const char *cmd, char *out, size_t len, int timeout_ms);

/* Stream @total bytes of a fixed pattern into @fd, a connection to an
 * ECHO server, reading the echo back at the same time (so neither
 * direction's buffers fill up and stall the other) and checking every
 * byte; the write side is shut after the last byte. 0, or -1 with @why
 * saying where it went wrong (a stall, an early end, a byte that differs).
 */
int tsock_echo_stream(int fd, size_t total, char *why, size_t why_len);

/* One IDENT request from @ns to @dst: writes "<name> <peer-ip>" (no newline)
 * into @out. 0 or -errno.
 */
int tsock_ident(const char *ns, const char *dst, char *out, size_t len);

#endif /* WEFT_TEST_SOCK_H */
