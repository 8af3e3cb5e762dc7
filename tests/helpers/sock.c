// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/sock.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "tns.h"
#include "sock.h"

int tsock_connect(const char *ns, const char *dst, int timeout_ms)
{
	return tsock_connect_from(ns, NULL, dst, timeout_ms);
}

int tsock_connect_from(const char *ns, const char *src, const char *dst, int timeout_ms)
{
	struct sockaddr_storage ss;
	struct pollfd pfd;
	struct addr a;
	socklen_t len;
	int fd, err = 0, so_err = 0;
	socklen_t so_len = sizeof(so_err);

	if (addr_parse_ip_port(dst, &a))
		return -EINVAL;
	len = addr_to_sockaddr(&a, &ss);
	if (ns && (err = tns_enter(ns)))
		return err;
	fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		err = -errno;
	if (ns)
		tns_enter(NULL);
	if (err)
		return err;
	if (src) {
		struct sockaddr_storage sss;
		struct addr sa;
		socklen_t slen;
		int one = 1;

		if (addr_parse_ip_port(src, &sa)) {
			err = -EINVAL;
			goto out_close;
		}
		slen = addr_to_sockaddr(&sa, &sss);
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
		    bind(fd, (struct sockaddr *)&sss, slen) == -1) {
			err = -errno;
			goto out_close;
		}
	}
	if (connect(fd, (struct sockaddr *)&ss, len) == -1 && errno != EINPROGRESS) {
		err = -errno;
		goto out_close;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (poll(&pfd, 1, timeout_ms) != 1) {
		err = -ETIMEDOUT;
		goto out_close;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &so_len);
	if (so_err) {
		err = -so_err;
		goto out_close;
	}
	fcntl(fd, F_SETFL, 0);
	return fd;
out_close:
	close(fd);
	return err;
}

ssize_t tsock_request(int fd, const char *cmd, char *out, size_t len, int timeout_ms)
{
	size_t have = 0, clen = strlen(cmd);

	/* An empty @cmd only reads: the socket may already be shut for writing. */
	if (clen && send(fd, cmd, clen, MSG_NOSIGNAL) != (ssize_t)clen)
		return -errno;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, timeout_ms) != 1)
			return -ETIMEDOUT;
		n = recv(fd, out + have, len - 1 - have, 0);
		if (n < 0)
			return -errno;
		if (n == 0 || (have += (size_t)n) == len - 1)
			break;
	}
	out[have] = '\0';
	return (ssize_t)have;
}

int tsock_ident(const char *ns, const char *dst, char *out, size_t len)
{
	int fd = tsock_connect(ns, dst, 3000);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = tsock_request(fd, "IDENT\n", out, len, 3000);
	close(fd);
	if (n < 0)
		return (int)n;
	if (n == 0)
		return -ECONNRESET;
	out[strcspn(out, "\n")] = '\0';
	return 0;
}

/* Byte @i of tsock_echo_stream()'s stream: no short period, so a byte
 * repeated, lost or moved shows.
 */
static char stream_byte(size_t i)
{
	uint32_t x = (uint32_t)i * 2654435761u;

	return (char)((x >> 24) ^ (uint32_t)(i >> 13));
}

/* Whether @n bytes at @p differ from the stream's bytes at @at. */
static int memcmp_stream(const char *p, size_t n, size_t at)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != stream_byte(at + i))
			return 1;
	return 0;
}

int tsock_echo_stream(int fd, size_t total, char *why, size_t why_len)
{
	static char wbuf[65536], rbuf[65536];
	size_t sent = 0, got = 0;
	ssize_t n;

	while (got < total) {
		struct pollfd p = { .fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0) };

		if (poll(&p, 1, 5000) != 1) {
			snprintf(why, why_len, "stalled at sent=%zu got=%zu", sent, got);
			return -1;
		}
		if ((p.revents & POLLOUT) && sent < total) {
			size_t chunk = total - sent < sizeof(wbuf) ? total - sent : sizeof(wbuf);

			for (size_t i = 0; i < chunk; i++)
				wbuf[i] = stream_byte(sent + i);
			n = send(fd, wbuf, chunk, MSG_DONTWAIT);
			if (n > 0)
				sent += (size_t)n;
			if (sent == total)
				shutdown(fd, SHUT_WR);
		}
		if (p.revents & POLLIN) {
			n = recv(fd, rbuf, total - got < sizeof(rbuf) ? total - got : sizeof(rbuf),
				 MSG_DONTWAIT);
			if (n <= 0) {
				snprintf(why, why_len, "connection ended early at %zu bytes (sent %zu): %s", got,
					 sent, n == 0 ? "EOF" : strerror(errno));
				return -1;
			}
			for (ssize_t i = 0; i < n; i++) {
				if (rbuf[i] != stream_byte(got + (size_t)i)) {
					size_t at = got + (size_t)i;
					size_t shift = (size_t)(n - i) >= 16 ? 0 : 4u << 20;

					/* Where the bytes received there come from: a
					 * lost or repeated run shows as a shift (16 bytes
					 * or more needed to tell).
					 */
					while (shift < (4u << 20) &&
					       memcmp_stream(rbuf + i, 16, at + shift) &&
					       (shift > at || memcmp_stream(rbuf + i, 16, at - shift)))
						shift++;
					snprintf(why, why_len,
						 "byte %zu differs (want %02x got %02x, sent %zu, "
						 "read of %zd at %zu): %s %zu",
						 at, (unsigned char)stream_byte(at), (unsigned char)rbuf[i],
						 sent, n, got,
						 shift >= (4u << 20) ? "not found in the stream within"
						 : !memcmp_stream(rbuf + i, 16, at + shift) ? "bytes lost:"
						 : "bytes repeated:", shift);
					return -1;
				}
			}
			got += (size_t)n;
		}
	}
	return 0;
}
