// SPDX-License-Identifier: GPL-2.0-only
/* The BIO under an mTLS link's SSL (tls_bio.h): reads that stop once the
 * socket was found empty, writes that gather full records.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/tls_bio.h"

int tls_io_flush(struct tls_io *io)
{
	while (io->len) {
		ssize_t n = send(io->fd, io->buf + io->off, io->len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -EAGAIN : -errno;
		}
		io->off += (size_t)n;
		io->len -= (size_t)n;
	}
	free(io->buf);
	io->buf = NULL;
	io->off = 0;
	return 0;
}

void tls_io_done(struct tls_io *io)
{
	free(io->buf);
	io->buf = NULL;
	io->off = io->len = 0;
}

static int io_read(BIO *b, char *buf, int n)
{
	struct tls_io *io = BIO_get_data(b);
	ssize_t got;

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	if (io->dry) {
		/* Empty a moment ago, in this same operation: epoll says when not. */
		BIO_set_retry_read(b);
		return -1;
	}
	do
		got = read(io->fd, buf, (size_t)n);
	while (got < 0 && errno == EINTR);
	/* Short: what the socket held is all here (or nothing was). */
	if (got < n)
		io->dry = true;
	if (got > 0)
		return (int)got;
	if (!got) {
		io->eof = true;
		return 0;
	}
	if (errno == EAGAIN)
		BIO_set_retry_read(b);
	return -1;
}

/* One send() of @data: what it took, or -1 (a retry when the socket is full). */
static int send_now(BIO *b, struct tls_io *io, const char *data, int n)
{
	ssize_t sent;

	do
		sent = send(io->fd, data, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (sent < 0 && errno == EINTR);
	if (sent < 0 && errno == EAGAIN)
		BIO_set_retry_write(b);
	return sent < 0 ? -1 : (int)sent;
}

static int io_write(BIO *b, const char *data, int n)
{
	struct tls_io *io = BIO_get_data(b);
	int err;

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	if (!io->len && n < SSL3_RT_MAX_PLAIN_LENGTH)
		/* A request, an answer, a handshake flight: no gathering. */
		return send_now(b, io, data, n);
	if (io->off + io->len + (size_t)n > TLS_IO_GATHER) {
		err = tls_io_flush(io);
		if (err && err != -EAGAIN) {
			errno = -err;
			return -1;
		}
		if (io->len && io->off) {
			/* Make room: what is left moves to the front. */
			memmove(io->buf, io->buf + io->off, io->len);
			io->off = 0;
		}
		if (io->len + (size_t)n > TLS_IO_GATHER) {
			/* More than the buffer holds (several records in one
			 * write) goes as it is once nothing is gathered before
			 * it: a "retry" with nothing pending would never end.
			 */
			if (!io->len)
				return send_now(b, io, data, n);
			BIO_set_retry_write(b);
			return -1;
		}
	}
	if (!io->buf) {
		io->buf = malloc(TLS_IO_GATHER);
		if (!io->buf) {
			errno = ENOMEM;
			return -1;
		}
	}
	memcpy(io->buf + io->off + io->len, data, (size_t)n);
	io->len += (size_t)n;
	return n;
}

static long io_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_io *io = BIO_get_data(b);
	int err;

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		/* The handshake's flights, alerts: they go out now. */
		BIO_clear_retry_flags(b);
		err = tls_io_flush(io);
		if (!err)
			return 1;
		if (err == -EAGAIN)
			BIO_set_retry_write(b);
		else
			errno = -err;
		return -1;
	case BIO_CTRL_WPENDING:
		return (long)io->len;
	case BIO_CTRL_EOF:
		/* As the socket BIO: a FIN read tells a truncation from an error. */
		return io->eof;
	default:
		return 0;
	}
}

static BIO_METHOD *io_method;

static void io_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weft tls io");

	if (m && (!BIO_meth_set_read(m, io_read) || !BIO_meth_set_write(m, io_write) ||
		  !BIO_meth_set_ctrl(m, io_ctrl))) {
		BIO_meth_free(m);
		m = NULL;
	}
	io_method = m;
}

BIO *tls_io_bio(struct tls_io *io)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	BIO *b;

	/* Made once for the process: OpenSSL keeps no state in it. */
	(void)pthread_once(&once, io_method_init);
	if (!io_method)
		return NULL;
	b = BIO_new(io_method);
	if (!b)
		return NULL;
	BIO_set_data(b, io);
	BIO_set_init(b, 1);
	return b;
}
