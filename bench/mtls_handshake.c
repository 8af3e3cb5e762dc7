// SPDX-License-Identifier: GPL-2.0-only
/* What one mTLS connection costs OpenSSL, without the proxy around it
 * (docs/mtls.md, "Costs"): SVIDs for a client and a server from the CA
 * given, then client+server handshake pairs over socketpairs in this
 * process, made as tls_relay.c makes them (the SVIDs' contexts, the same
 * modes, the server's identity checked during verification, both peers'
 * identities read afterwards), each followed by one byte from the server
 * to the client (which carries the session ticket to the client). Prints
 * CPU per pair with full handshakes (every client a new destination, so
 * nothing is resumed) and with resumed ones (one destination: the session
 * of the pair before is offered and taken, as between two agents, resume.c),
 * and the heap an idle SSL keeps after one 450-byte exchange each way.
 *
 *   weft-bench-mtls-handshake CA_CERT CA_KEY [PAIRS]
 *
 * Steady under callgrind (--toggle-collect=run_pairs), which counts
 * instructions where CPU time on a busy machine is noisy.
 */
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "identity/identity.h"

#define TD "cluster.local"
#define MODES (SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | \
	       SSL_MODE_RELEASE_BUFFERS)

static struct spiffe_id expected;

static int verify_server(int ok, X509_STORE_CTX *x)
{
	struct spiffe_id got;

	if (!ok || X509_STORE_CTX_get_error_depth(x) != 0)
		return ok;
	return !svid_cert_id(X509_STORE_CTX_get_current_cert(x), TD, &got) &&
	       !strcmp(got.ns, expected.ns) && !strcmp(got.sa, expected.sa);
}

/* Both ends of one connection, handshaken, the client going to destination
 * @key (its cached session offered, if any); 0, or -1.
 */
static int connect_pair(const struct svid *c, const struct svid *s, const char *key, SSL **cli,
			SSL **srv, int fds[2])
{
	struct spiffe_id a, b;
	int cdone = 0, sdone = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds))
		return -1;
	*cli = SSL_new(c->ctx);
	*srv = SSL_new(s->ctx);
	if (!*cli || !*srv)
		return -1;
	SSL_set_fd(*cli, fds[0]);
	SSL_set_fd(*srv, fds[1]);
	SSL_set_mode(*cli, MODES);
	SSL_set_mode(*srv, MODES);
	SSL_set_connect_state(*cli);
	SSL_set_accept_state(*srv);
	SSL_set_verify(*cli, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_server);
	(void)svid_session_offer(*cli, key);
	for (int i = 0; i < 100 && !(cdone && sdone); i++) {
		int r;

		if (!cdone) {
			r = SSL_do_handshake(*cli);
			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(*cli, r) != SSL_ERROR_WANT_READ)
				return -1;
		}
		if (!sdone) {
			r = SSL_do_handshake(*srv);
			if (r == 1)
				sdone = 1;
			else if (SSL_get_error(*srv, r) != SSL_ERROR_WANT_READ)
				return -1;
		}
	}
	return cdone && sdone && !svid_peer(*cli, TD, &a) && !svid_peer(*srv, TD, &b) ? 0 : -1;
}

static void close_pair(SSL *cli, SSL *srv, const int fds[2])
{
	SSL_free(cli);
	SSL_free(srv);
	close(fds[0]);
	close(fds[1]);
}

static double cpu_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* @n pairs; @resume: all to one destination (each resumes the session of
 * the one before), else each to a new one. The number resumed, or -1.
 */
__attribute__((noinline)) static int run_pairs(const struct svid *c, const struct svid *s, int n,
					       bool resume)
{
	int resumed = 0;

	for (int i = 0; i < n; i++) {
		SSL *cli = NULL, *srv = NULL;
		char key[32], b;
		int fds[2];

		snprintf(key, sizeof(key), "dest-%d", resume ? 0 : i);
		if (connect_pair(c, s, key, &cli, &srv, fds) || SSL_write(srv, "y", 1) != 1 ||
		    SSL_read(cli, &b, 1) != 1) {
			fprintf(stderr, "mtls-handshake: handshake %d failed\n", i + 1);
			ERR_print_errors_fp(stderr);
			return -1;
		}
		resumed += SSL_session_reused(cli);
		close_pair(cli, srv, fds);
	}
	return resumed;
}

/* Heap per idle SSL after one 450-byte exchange each way, in KiB. */
static double idle_kib(const struct svid *c, const struct svid *s, int n)
{
	SSL **ssl = calloc((size_t)n * 2, sizeof(*ssl));
	int (*fds)[2] = calloc((size_t)n, sizeof(*fds));
	size_t before = mallinfo2().uordblks, after;
	char buf[450];
	int held = 0;

	memset(buf, 'x', sizeof(buf));
	for (; ssl && fds && held < n; held++) {
		SSL **p = ssl + 2 * held;

		if (connect_pair(c, s, "idle", &p[0], &p[1], fds[held]) ||
		    SSL_write(p[0], buf, sizeof(buf)) != sizeof(buf) ||
		    SSL_read(p[1], buf, sizeof(buf)) != sizeof(buf) ||
		    SSL_write(p[1], buf, sizeof(buf)) != sizeof(buf) ||
		    SSL_read(p[0], buf, sizeof(buf)) != sizeof(buf))
			break;
	}
	after = mallinfo2().uordblks;
	for (int i = 0; i < held; i++)
		close_pair(ssl[2 * i], ssl[2 * i + 1], fds[i]);
	free(ssl);
	free(fds);
	return held == n ? (double)(after - before) / 1024.0 / (2.0 * n) : -1;
}

int main(int argc, char **argv)
{
	char err[IDENTITY_ERR_MAX] = "";
	struct ca *ca = NULL;
	struct trust *t = NULL;
	struct svid *c = NULL, *s = NULL;
	int n = argc > 3 ? atoi(argv[3]) : 300, ret = 1;
	double t0, full;
	int resumed;

	if (argc < 3 || n <= 0) {
		fprintf(stderr, "usage: %s CA_CERT CA_KEY [PAIRS]\n", argv[0]);
		return 2;
	}
	if (ca_load(argv[1], argv[2], &ca, err) || trust_load(TD, argv[1], NULL, &t, err) ||
	    svid_issue(ca, t, "bench", "client", 3600, &c, err) ||
	    svid_issue(ca, t, "bench", "server", 3600, &s, err)) {
		fprintf(stderr, "mtls-handshake: %s\n", err);
		goto out;
	}
	expected = s->id;
	t0 = cpu_s();
	if (run_pairs(c, s, n, false) < 0)
		goto out;
	full = (cpu_s() - t0) * 1e6 / n;
	(void)run_pairs(c, s, 1, true);	/* the session the next pairs resume */
	t0 = cpu_s();
	resumed = run_pairs(c, s, n, true);
	if (resumed < 0)
		goto out;
	printf("client+server handshake pairs: %d, CPU per pair: %.0f us (full), %.0f us "
	       "(resumed; %d of %d resumed)\n", n, full, (cpu_s() - t0) * 1e6 / n, resumed, n);
	printf("heap per idle SSL after one 450-byte exchange each way: %.1f KiB\n",
	       idle_kib(c, s, n < 200 ? n : 200));
	ret = 0;
out:
	svid_unref(c);
	svid_unref(s);
	trust_unref(t);
	if (ca)
		ca_free(ca);
	return ret;
}
