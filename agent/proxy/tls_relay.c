// SPDX-License-Identifier: GPL-2.0-only
/* Mutual TLS between meshed pods (docs/mtls.md): one struct tls_link per
 * connection, on the worker's loop, pumping bytes between a TCP socket that
 * carries TLS 1.3 and one end of a socketpair whose other end a relay
 * (tcp.c, http.c) holds as if it were a plaintext socket.
 *
 *   client side: upstream.c connects the pod's socket to the endpoint's mTLS
 *     port and calls tls_dial(); the handshake presents the pod's SVID and
 *     checks the server's is the endpoint pod's identity; the preamble then
 *     names the port the application dialled.
 *   server side: inbound.c hands a connection captured to the mTLS port to
 *     tls_accept(); the handshake requires a client certificate from the
 *     trust bundle; the preamble gives the port; allow-from is checked with
 *     the client's identity; the connection is delivered to the application
 *     from the client's own address, as every inbound connection is.
 *
 * Keys never leave memory; no privileged system call is made here (the TCP
 * socket comes from upstream.c or an accept, the socketpair needs none).
 * The kernel's TLS offload (kTLS) would let the relay splice: OpenSSL 3.0
 * offloads only the sending side of TLS 1.3, so both directions are copied
 * through SSL_read/SSL_write here (docs/mtls.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "log.h"
#include "proxy/conn.h"
#include "proxy/mtls.h"

/* Bytes buffered per direction: one TLS record's worth. Allocated when a
 * direction has bytes to move and freed once they moved, so that an idle
 * connection holds no buffer (nor does its SSL: SSL_MODE_RELEASE_BUFFERS).
 */
#define TLS_BUF 16384
/* Connect, handshake and preamble must be done by then. */
#define TLS_HANDSHAKE_MS 10000

/* One caller identity refused by allow-from, and how often. */
struct mtls_denial {
	char id[SPIFFE_ID_MAX];
	uint64_t n;
};

struct tls_link {
	struct proxy *px;
	struct px_pod *pod;
	struct tls_link *prev, *next;	/* in pod->tls_links */
	int tfd;			/* TCP, TLS on it */
	int pfd;			/* our socketpair end; -1 until delivered (server) */
	int relay_fd;			/* the other end, the relay's: for the admin API */
	struct loop_watch tw, pw;
	SSL *ssl;
	bool server;
	bool connecting;		/* client: TCP connect in progress */
	bool open;			/* handshake, identity and preamble done */
	bool p_eof, t_shut;		/* plaintext side sent FIN; close_notify sent */
	bool t_eof, p_shut;		/* close_notify (or FIN) read; FIN passed on */
	bool want_tin, want_tout;	/* what the last TLS calls wait for */
	bool want_pin, want_pout;
	bool wrong_peer;		/* client: the server's certificate named another identity */
	bool t_data;			/* application bytes came out of TLS */
	uint16_t port;			/* the application's port */
	struct spiffe_id peer;		/* client: expected, then verified; server: the client */
	struct addr dst, from;		/* server: for delivery */
	tls_deliver_fn deliver;
	struct loop_timer t_hs;
	size_t p2t_len, p2t_off, t2p_len, t2p_off;
	uint8_t *p2t;			/* plaintext → TLS; NULL while empty */
	uint8_t *t2p;			/* TLS → plaintext; NULL while empty */
};

/* The buffer *@buf, allocated if it is not. False when out of memory. */
static bool buf_get(uint8_t **buf)
{
	if (!*buf)
		*buf = malloc(TLS_BUF);
	return *buf != NULL;
}

/* Free the buffers whose bytes all moved on: @l is about to wait. */
static void link_trim(struct tls_link *l)
{
	if (l->p2t && l->p2t_off == l->p2t_len) {
		free(l->p2t);
		l->p2t = NULL;
		l->p2t_off = l->p2t_len = 0;
	}
	if (l->t2p && l->t2p_off == l->t2p_len) {
		free(l->t2p);
		l->t2p = NULL;
		l->t2p_off = l->t2p_len = 0;
	}
}

/* Close @fd so the peer gets a RST (conn.c has the same for the relays;
 * calling it from here would make conn.c → upstream.c → here → conn.c a
 * circle).
 */
static void reset_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void link_close(struct tls_link *l, bool reset)
{
	struct proxy *px = l->px;

	px_timer_del(px, &l->t_hs);
	if (l->ssl && !reset && l->open && !l->t_shut)
		/* Best effort: tell the peer this is a close, not a truncation. */
		(void)SSL_shutdown(l->ssl);
	SSL_free(l->ssl);
	ERR_clear_error();
	if (l->tfd >= 0) {
		loop_forget_fd(px->loop, l->tfd);
		if (reset)
			reset_close(l->tfd);
		else
			close(l->tfd);
	}
	if (l->pfd >= 0) {
		loop_forget_fd(px->loop, l->pfd);
		if (reset)
			reset_close(l->pfd);
		else
			close(l->pfd);
	}
	if (l->open)
		px->stats.mtls_active--;
	if (l->prev)
		l->prev->next = l->next;
	else
		l->pod->tls_links = l->next;
	if (l->next)
		l->next->prev = l->prev;
	free(l->p2t);
	free(l->t2p);
	free(l);
}

static void on_tfd(struct loop *loop, int fd, uint32_t events, void *ctx);
static void on_pfd(struct loop *loop, int fd, uint32_t events, void *ctx);

static void on_handshake_timeout(struct loop_timer *t, uint64_t now)
{
	struct tls_link *l = (struct tls_link *)((char *)t - offsetof(struct tls_link, t_hs));

	(void)now;
	if (l->connecting)
		l->px->stats.mtls_fail_connect++;
	else
		l->px->stats.mtls_fail_handshake++;
	log_debug("proxy: mTLS pod=%u: %s not done in %d ms", l->pod->id,
		  l->connecting ? "connect" : "handshake", TLS_HANDSHAKE_MS);
	link_close(l, true);
}

/* Client side, in the handshake: once the chain of the server's certificate
 * checked out (@ok at depth 0, the leaf), the certificate must name exactly
 * the endpoint pod's identity. Refusing it here rather than after the
 * handshake, as Envoy's SAN matching and ztunnel's verifier do, means the
 * client never presents its own certificate to the wrong server, and that
 * server sees a failed handshake (our alert), not a client that goes
 * silent after it.
 */
static int verify_server(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_link *l = ssl ? SSL_get_app_data(ssl) : NULL;
	struct spiffe_id got;

	if (!ok || !l || X509_STORE_CTX_get_error_depth(x) != 0)
		return ok;
	if (svid_cert_id(X509_STORE_CTX_get_current_cert(x), l->px->mtls->td, &got)) {
		X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	if (!strcmp(got.ns, l->peer.ns) && !strcmp(got.sa, l->peer.sa))
		return 1;
	l->wrong_peer = true;
	log_info("proxy: mTLS pod=%u: the server presented ns/%s/sa/%s, expected ns/%s/sa/%s: "
		 "refused", l->pod->id, got.ns, got.sa, l->peer.ns, l->peer.sa);
	X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
	return 0;
}

static struct tls_link *link_new(struct px_pod *pod, int tfd, bool server)
{
	const struct mtls_pod *mp = mtls_table_pod(pod->px->mtls, pod->id);
	struct tls_link *l;

	if (!mp || !mp->svid) {
		pod->px->stats.mtls_no_svid++;
		log_debug("proxy: mTLS pod=%u: no certificate for this pod (yet)", pod->id);
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->px = pod->px;
	l->pod = pod;
	l->tfd = tfd;
	l->pfd = l->relay_fd = -1;
	l->server = server;
	/* The SSL takes a reference on the SVID's context: a renewal that
	 * drops the SVID leaves this connection its certificate.
	 */
	l->ssl = SSL_new(mp->svid->ctx);
	if (!l->ssl || !SSL_set_fd(l->ssl, tfd)) {
		SSL_free(l->ssl);
		ERR_clear_error();
		free(l);
		return NULL;
	}
	/* RELEASE_BUFFERS: the SSL's own record buffers (two of about 17 KiB)
	 * are freed whenever they are empty, i.e. on an idle connection.
	 */
	SSL_set_mode(l->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				     SSL_MODE_RELEASE_BUFFERS);
	if (server) {
		SSL_set_accept_state(l->ssl);
	} else {
		SSL_set_connect_state(l->ssl);
		SSL_set_app_data(l->ssl, l);
		SSL_set_verify(l->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			       verify_server);
	}
	if (px_timer_set(l->px, &l->t_hs, TLS_HANDSHAKE_MS, on_handshake_timeout)) {
		SSL_free(l->ssl);
		free(l);
		return NULL;
	}
	l->next = pod->tls_links;
	if (pod->tls_links)
		pod->tls_links->prev = l;
	pod->tls_links = l;
	return l;
}

/* Watch both sockets for what the last calls wait for. False if @l closed. */
static bool link_watch(struct tls_link *l)
{
	uint32_t tev = (l->want_tin ? EPOLLIN : 0) | (l->want_tout ? EPOLLOUT : 0);
	uint32_t pev = (l->want_pin ? EPOLLIN : 0) | (l->want_pout ? EPOLLOUT : 0);

	if (l->connecting)
		tev = EPOLLOUT;
	if (loop_watch(l->px->loop, &l->tw, l->tfd, tev, on_tfd, l) ||
	    (l->pfd >= 0 && loop_watch(l->px->loop, &l->pw, l->pfd, pev, on_pfd, l))) {
		link_close(l, true);
		return false;
	}
	return true;
}

/* What SSL call result @r means: 0 to wait (want_* set), -1 on failure. */
static int ssl_wait(struct tls_link *l, int r)
{
	switch (SSL_get_error(l->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		l->want_tin = true;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		l->want_tout = true;
		return 0;
	default:
		return -1;
	}
}

/* Count a refusal of caller @id. The table is bounded: anyone with a
 * certificate of the trust domain could otherwise grow it.
 */
static void count_denial(struct proxy *px, const char *id)
{
	size_t i;

	for (i = 0; i < px->n_denials; i++)
		if (!strcmp(px->denials[i].id, id))
			break;
	if (i == px->n_denials) {
		if (!px->denials) {
			px->denials = calloc(PROXY_DENIALS_MAX + 1, sizeof(*px->denials));
			if (!px->denials)
				return;
		}
		if (px->n_denials == PROXY_DENIALS_MAX) {
			i = PROXY_DENIALS_MAX;	/* the "other" slot */
			snprintf(px->denials[i].id, sizeof(px->denials[i].id), "other");
		} else {
			snprintf(px->denials[i].id, sizeof(px->denials[i].id), "%s", id);
			px->n_denials++;
		}
	}
	px->denials[i].n++;
}

void proxy_mtls_denials(const struct proxy *px, proxy_denial_fn fn, void *ctx)
{
	for (size_t i = 0; i < px->n_denials; i++)
		fn(px->denials[i].id, px->denials[i].n, ctx);
	if (px->denials && px->denials[PROXY_DENIALS_MAX].n)
		fn("other", px->denials[PROXY_DENIALS_MAX].n, ctx);
}

/* Server: the preamble is in t2p; check it and who may connect, then hand
 * the plaintext end to the application's side. False if @l closed.
 */
static bool server_deliver(struct tls_link *l)
{
	const struct mtls_pod *mp = mtls_table_pod(l->px->mtls, l->pod->id);
	char id[SPIFFE_ID_MAX];
	int sp[2];

	if (mtls_preamble_get(l->t2p, &l->port)) {
		l->px->stats.mtls_bad_preamble++;
		link_close(l, true);
		return false;
	}
	l->t2p_off = MTLS_PREAMBLE_LEN;
	(void)spiffe_id_fmt(id, sizeof(id), l->px->mtls->td, l->peer.ns, l->peer.sa);
	if (!mp || !mtls_allowed(mp, l->port, &l->peer)) {
		l->px->stats.mtls_denied++;
		count_denial(l->px, id);
		log_info("proxy: mTLS pod=%u: %s may not connect to port %u (weft.io/allow-from), "
			 "refused", l->pod->id, id, l->port);
		link_close(l, true);
		return false;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) == -1) {
		l->pod->local_errors++;
		link_close(l, true);
		return false;
	}
	l->pfd = sp[1];
	l->relay_fd = sp[0];
	l->dst.port = l->port;
	l->open = true;
	l->px->stats.mtls_in++;
	l->px->stats.mtls_active++;
	px_timer_del(l->px, &l->t_hs);
	l->deliver(l->px, l->pod, sp[0], &l->dst, &l->from);
	return true;
}

/* The handshake is done: check the peer. False if @l closed. */
static bool handshake_done(struct tls_link *l)
{
	struct spiffe_id got;

	if (svid_peer(l->ssl, l->px->mtls->td, &got)) {
		l->px->stats.mtls_fail_handshake++;
		link_close(l, true);
		return false;
	}
	if (l->server) {
		l->peer = got;
		return true;	/* the preamble comes next, in the pump */
	}
	/* verify_server() refused any other identity in the handshake; checked
	 * again so that no path opens a link to the wrong pod.
	 */
	if (strcmp(got.ns, l->peer.ns) || strcmp(got.sa, l->peer.sa)) {
		l->px->stats.mtls_fail_identity++;
		link_close(l, true);
		return false;
	}
	if (!buf_get(&l->p2t)) {
		l->pod->local_errors++;
		link_close(l, true);
		return false;
	}
	mtls_preamble_put(l->p2t, l->port);
	l->p2t_len = MTLS_PREAMBLE_LEN;
	l->p2t_off = 0;
	l->open = true;
	l->px->stats.mtls_out++;
	l->px->stats.mtls_active++;
	px_timer_del(l->px, &l->t_hs);
	return true;
}

/* Plaintext side → TLS. Returns 1 on progress, 0 when waiting, -1 closed. */
static int pump_out(struct tls_link *l)
{
	int r;

	if (l->pfd >= 0 && l->p2t_off == l->p2t_len && !l->p_eof) {
		ssize_t n;

		if (!buf_get(&l->p2t))
			return -1;
		n = read(l->pfd, l->p2t, TLS_BUF);

		if (n > 0) {
			l->p2t_len = (size_t)n;
			l->p2t_off = 0;
			return 1;
		}
		if (n == 0) {
			l->p_eof = true;
			return 1;
		}
		if (errno == EAGAIN || errno == EINTR) {
			l->want_pin = true;
			return 0;
		}
		return -1;
	}
	if (l->p2t_off < l->p2t_len) {
		r = SSL_write(l->ssl, l->p2t + l->p2t_off, (int)(l->p2t_len - l->p2t_off));
		if (r > 0) {
			l->p2t_off += (size_t)r;
			return 1;
		}
		return ssl_wait(l, r);
	}
	if (l->p_eof && !l->t_shut) {
		/* close_notify, then FIN: TLS 1.3 lets the other direction go on. */
		r = SSL_shutdown(l->ssl);
		if (r < 0 && ssl_wait(l, r) == 0)
			return 0;
		l->t_shut = true;
		(void)shutdown(l->tfd, SHUT_WR);
		return 1;
	}
	return 0;
}

/* TLS → plaintext side. Returns 1 on progress, 0 when waiting, -1 closed. */
static int pump_in(struct tls_link *l)
{
	int r;

	if (l->t2p_off == l->t2p_len && !l->t_eof) {
		if (!buf_get(&l->t2p))
			return -1;
		r = SSL_read(l->ssl, l->t2p, TLS_BUF);
		if (r > 0) {
			l->t2p_len = (size_t)r;
			l->t2p_off = 0;
			l->t_data = true;
			return 1;
		}
		if (SSL_get_error(l->ssl, r) == SSL_ERROR_ZERO_RETURN) {
			l->t_eof = true;
			return 1;
		}
		return ssl_wait(l, r);
	}
	if (l->t2p_off < l->t2p_len && l->pfd >= 0) {
		ssize_t n = write(l->pfd, l->t2p + l->t2p_off, l->t2p_len - l->t2p_off);

		if (n > 0) {
			l->t2p_off += (size_t)n;
			return 1;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
			l->want_pout = true;
			return 0;
		}
		return -1;
	}
	if (l->t_eof && l->t2p_off == l->t2p_len && !l->p_shut && l->pfd >= 0) {
		l->p_shut = true;
		(void)shutdown(l->pfd, SHUT_WR);
		return 1;
	}
	return 0;
}

/* Client: whether the TLS call that just failed read a fatal alert before
 * the server sent any byte: the server refused our certificate. In TLS 1.3
 * the client's handshake is done once it has sent its Finished, before the
 * server has checked the client's certificate (RFC 8446 section 2), so
 * that refusal, the server's failed handshake, reaches the client only as
 * its first read.
 */
static bool refused_by_server(const struct tls_link *l)
{
	unsigned long e = ERR_peek_error();

	return !l->server && !l->t_data && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	       ERR_GET_REASON(e) > SSL_AD_REASON_OFFSET;
}

/* Move @l as far as it goes: connect, handshake, preamble, bytes. */
static void link_run(struct tls_link *l)
{
	int r;

	l->want_tin = l->want_tout = l->want_pin = l->want_pout = false;
	if (l->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(l->tfd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err) {
			l->px->stats.mtls_fail_connect++;
			log_debug("proxy: mTLS pod=%u: connect: %s", l->pod->id, strerror(err));
			link_close(l, true);
			return;
		}
		l->connecting = false;
	}
	if (!SSL_is_init_finished(l->ssl)) {
		r = SSL_do_handshake(l->ssl);
		if (r != 1) {
			if (ssl_wait(l, r)) {
				if (l->wrong_peer)
					l->px->stats.mtls_fail_identity++;
				else
					l->px->stats.mtls_fail_handshake++;
				log_debug("proxy: mTLS pod=%u: handshake failed: %s", l->pod->id,
					  ERR_reason_error_string(ERR_peek_error()) ?: "closed");
				link_close(l, true);
				return;
			}
			link_watch(l);
			return;
		}
		if (!handshake_done(l))
			return;
	}
	if (l->server && !l->open) {
		/* The preamble: the first bytes inside TLS, maybe over records. */
		if (!buf_get(&l->t2p)) {
			l->pod->local_errors++;
			link_close(l, true);
			return;
		}
		while (l->t2p_len < MTLS_PREAMBLE_LEN) {
			r = SSL_read(l->ssl, l->t2p + l->t2p_len, MTLS_PREAMBLE_LEN - (int)l->t2p_len);
			if (r <= 0) {
				if (ssl_wait(l, r)) {
					l->px->stats.mtls_bad_preamble++;
					link_close(l, true);
				} else {
					link_watch(l);
				}
				return;
			}
			l->t2p_len += (size_t)r;
		}
		if (!server_deliver(l))
			return;
	}
	for (;;) {
		int out = pump_out(l), in = out < 0 ? -1 : pump_in(l);

		if (out < 0 || in < 0) {
			if (refused_by_server(l)) {
				l->px->stats.mtls_fail_handshake++;
				log_debug("proxy: mTLS pod=%u: the server refused the handshake: %s",
					  l->pod->id, ERR_reason_error_string(ERR_peek_error()) ?: "?");
			}
			link_close(l, true);
			return;
		}
		if (!out && !in)
			break;
		l->want_tin = l->want_tout = l->want_pin = l->want_pout = false;
	}
	if (l->t_shut && l->p_shut) {
		link_close(l, false);
		return;
	}
	link_trim(l);
	link_watch(l);
}

static void on_tfd(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	(void)loop;
	(void)fd;
	(void)events;
	link_run(ctx);
}

static void on_pfd(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	(void)loop;
	(void)fd;
	(void)events;
	link_run(ctx);
}

int tls_dial(struct px_pod *pod, int tcp_fd, const struct spiffe_id *expect, uint16_t dst_port,
	     int *plain_fd)
{
	struct tls_link *l = link_new(pod, tcp_fd, false);
	int sp[2];

	if (!l) {
		close(tcp_fd);
		return -EKEYREJECTED;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) == -1) {
		int err = -errno;

		link_close(l, true);
		return err;
	}
	l->pfd = sp[1];
	l->relay_fd = sp[0];
	l->connecting = true;
	l->peer = *expect;
	l->port = dst_port;
	if (!link_watch(l)) {
		close(sp[0]);
		return -ENOMEM;
	}
	*plain_fd = sp[0];
	return 0;
}

void tls_accept(struct px_pod *pod, int cfd, const struct addr *dst, const struct addr *peer,
		tls_deliver_fn deliver)
{
	struct tls_link *l = link_new(pod, cfd, true);

	if (!l) {
		reset_close(cfd);
		return;
	}
	l->dst = *dst;
	l->from = *peer;
	l->deliver = deliver;
	link_run(l);
}

void tls_links_close(struct px_pod *pod)
{
	while (pod->tls_links)
		link_close(pod->tls_links, true);
}

const struct tls_link *tls_link_of(const struct px_pod *pod, int fd)
{
	for (const struct tls_link *l = pod->tls_links; l; l = l->next)
		if (l->relay_fd == fd)
			return l;
	return NULL;
}

const char *tls_link_peer(const struct tls_link *l, char *buf, size_t len)
{
	buf[0] = '\0';
	if (l->open && l->px->mtls)
		(void)spiffe_id_fmt(buf, len, l->px->mtls->td, l->peer.ns, l->peer.sa);
	return buf;
}

bool tls_link_server(const struct tls_link *l)
{
	return l->server;
}
