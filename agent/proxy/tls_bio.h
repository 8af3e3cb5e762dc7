/* SPDX-License-Identifier: GPL-2.0-only */
/* The BIO under an mTLS link's SSL (tls_relay.c): the link's TCP socket,
 * read and written with one system call each time and no layer between,
 * plus two things OpenSSL's socket BIO does not do:
 *
 *   - reads: once a read() of the current operation has come back short
 *     (the socket is empty), the next read in the same operation is a
 *     "would block" without a system call. The relay's read then takes
 *     every record read ahead into the SSL and stops there, where it
 *     would otherwise end on a read() that can only fail with EAGAIN.
 *     Level-triggered epoll still reports bytes that come later; each
 *     operation (tls_io_begin()) may read the socket again.
 *   - writes: full records are gathered, up to TLS_IO_GATHER bytes, and
 *     go out in one send() (a bulk transfer makes a quarter of the
 *     system calls); anything shorter than a full record, with nothing
 *     gathered before it (a request, an answer, a handshake flight, an
 *     alert), goes out at once, as does a write bigger than the buffer.
 *     The gathering buffer exists only while bytes are in it.
 */
#ifndef WEFT_PROXY_TLS_BIO_H
#define WEFT_PROXY_TLS_BIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

/* A full TLS record on the wire, at most. */
#define TLS_IO_RECORD (SSL3_RT_MAX_PLAIN_LENGTH + SSL3_RT_MAX_ENCRYPTED_OVERHEAD + \
		       SSL3_RT_HEADER_LENGTH)
/* Records written are gathered up to this many bytes (four full records). */
#define TLS_IO_GATHER (4 * TLS_IO_RECORD)

struct tls_io {
	int fd;
	bool dry;	/* a read() of this operation found the socket empty */
	bool eof;	/* a read() returned 0 */
	uint8_t *buf;	/* gathered records not sent yet: buf[off, off + len) */
	size_t off, len;
};

/* A BIO reading and writing @io's socket (the caller keeps @io alive for
 * as long as the BIO; freeing the BIO leaves @io alone). NULL on failure.
 */
BIO *tls_io_bio(struct tls_io *io);

/* A new operation on the link (a relay's read, write or shutdown, a
 * handshake step): it may read the socket again.
 */
static inline void tls_io_begin(struct tls_io *io)
{
	io->dry = false;
}

/* Send what @io has gathered: 0 when all went (the buffer is freed),
 * -EAGAIN when the socket is full, -errno when it failed.
 */
int tls_io_flush(struct tls_io *io);

/* Free what @io holds (records gathered and not sent are dropped). */
void tls_io_done(struct tls_io *io);

#endif /* WEFT_PROXY_TLS_BIO_H */
