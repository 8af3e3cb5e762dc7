// SPDX-License-Identifier: GPL-2.0-only
/* The mTLS link's BIO (agent/proxy/tls_bio.c) on a socket pair: what it
 * sends at once, what it gathers, and a write bigger than its gathering
 * buffer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "proxy/tls_bio.h"

struct pair {
	int fd[2];
	struct tls_io io;
	BIO *b;
};

static void pair_open(struct pair *p)
{
	int sz = 4 * TLS_IO_GATHER;

	memset(p, 0, sizeof(*p));
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
	/* Room for every byte written here: no write finds the socket full. */
	cr_assert_eq(setsockopt(p->fd[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
	cr_assert_eq(setsockopt(p->fd[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)), 0);
	p->io.fd = p->fd[0];
	p->b = tls_io_bio(&p->io);
	cr_assert_not_null(p->b);
}

static void pair_close(struct pair *p)
{
	BIO_free(p->b);
	tls_io_done(&p->io);
	close(p->fd[0]);
	close(p->fd[1]);
}

/* Read what the peer got, up to @cap bytes. */
static size_t drain_peer(struct pair *p, char *out, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap && (n = read(p->fd[1], out + got, cap - got)) > 0)
		got += (size_t)n;
	return got;
}

Test(tls_bio, a_short_write_goes_out_at_once)
{
	struct pair p;
	char out[16];

	pair_open(&p);
	cr_assert_eq(BIO_write(p.b, "hello", 5), 5);
	cr_assert_eq(p.io.len, 0);
	cr_assert_eq(drain_peer(&p, out, sizeof(out)), 5);
	cr_assert_eq(memcmp(out, "hello", 5), 0);
	pair_close(&p);
}

Test(tls_bio, full_records_are_gathered_until_flushed)
{
	struct pair p;
	size_t n = TLS_IO_RECORD;
	char *rec = malloc(n), *out = malloc(2 * n + 1);

	cr_assert(rec && out);
	pair_open(&p);
	memset(rec, 'r', n);
	cr_assert_eq(BIO_write(p.b, rec, (int)n), (int)n);
	cr_assert_eq(BIO_write(p.b, rec, (int)n), (int)n);
	cr_assert_eq(p.io.len, 2 * n, "two full records gathered");
	cr_assert_eq(drain_peer(&p, out, 2 * n + 1), 0);
	cr_assert_eq(BIO_flush(p.b), 1);
	cr_assert_eq(drain_peer(&p, out, 2 * n + 1), 2 * n);
	pair_close(&p);
	free(rec);
	free(out);
}

/* One record per write is what OpenSSL hands a TLS 1.3 link's BIO, but a
 * write bigger than the gathering buffer (several records at once, as
 * TLS 1.2's multi-block ciphers write) must still go: asked again and
 * again, a "retry" with nothing pending would spin for ever.
 */
Test(tls_bio, a_write_bigger_than_the_gathering_buffer_goes)
{
	struct pair p;
	size_t n = TLS_IO_GATHER + 100, sent = 0;
	char *big = malloc(n), *out = malloc(n + 1);
	int r;

	cr_assert(big && out);
	pair_open(&p);
	memset(big, 'b', n);
	for (int tries = 0; tries < 8 && sent < n; tries++) {
		r = BIO_write(p.b, big + sent, (int)(n - sent));
		if (r > 0)
			sent += (size_t)r;
		else
			cr_assert(BIO_should_retry(p.b), "the write failed");
	}
	cr_assert_eq(sent, n, "%zu of %zu bytes taken after 8 tries", sent, n);
	cr_assert_eq(BIO_flush(p.b), 1);
	cr_assert_eq(drain_peer(&p, out, n + 1), n);
	pair_close(&p);
	free(big);
	free(out);
}
