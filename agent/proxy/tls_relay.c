// SPDX-License-Identifier: GPL-2.0-only
/* Mutual TLS between meshed pods (docs/mtls.md): one struct tls_link per
 * connection, on the worker's loop, holding the SSL of a TCP socket that
 * carries TLS 1.3. The relays (tcp.c, http.c) read and write that socket
 * themselves through tls_recv(), tls_send() and tls_shut() (conn.h's
 * sock_*()): no second socket and no extra hop per message.
 *
 *   client side: upstream.c connects the pod's socket to the endpoint's mTLS
 *     port and calls tls_dial(); the upstream keeps the socket and the link.
 *     Once connected, tls_service() and the relay's calls run the
 *     handshake, which presents the pod's SVID and checks the server's is
 *     the endpoint pod's identity; the preamble then names the port the
 *     application dialled, ahead of any byte of the relay's. A failure is
 *     a reset for the relay on its next read or write.
 *   server side: inbound.c hands a connection captured to the mTLS port to
 *     tls_accept(); the link owns the socket while the handshake requires a
 *     client certificate from the trust bundle, the preamble gives the port
 *     and allow-from is checked with the client's identity; then the socket
 *     and the link are delivered to the application's side (an inbound
 *     connection, c->tls), from the client's own address, as every inbound
 *     connection is.
 *
 * Keys never leave memory; no privileged system call is made here (the TCP
 * socket comes from upstream.c or an accept).
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

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "proxy/conn.h"
#include "proxy/mtls.h"
#include "proxy/tls_bio.h"

/* Connect, handshake and preamble must be done by then. */
#define TLS_HANDSHAKE_MS 10000
/* The SSL's read buffer once the peer sends full records (a bulk
 * transfer): one read() takes up to four of them. Until then the default,
 * one record: many idle connections that only ever carried requests keep
 * their heap small.
 */
#define TLS_READ_BUF (4 * TLS_IO_RECORD)

/* One caller identity refused by allow-from, and how often. */
struct mtls_denial {
	char id[SPIFFE_ID_MAX];
	uint64_t n;
};

struct tls_link {
	struct proxy *px;
	struct px_pod *pod;
	struct tls_link *prev, *next;	/* in pod->tls_links while @owned */
	int tfd;			/* TCP, TLS on it */
	struct loop_watch tw;		/* while @owned */
	SSL *ssl;
	struct tls_io io;		/* @ssl's BIO's state (tls_bio.h) */
	bool server;
	bool owned;			/* server: the link holds @tfd until delivery */
	bool open;			/* handshake, identity and preamble done */
	bool failed;			/* the relay sees a reset from now on */
	bool abandoned;			/* closed with a reset: no close_notify */
	bool t_shut;			/* close_notify sent */
	bool want_tin, want_tout;	/* what the last TLS calls wait for */
	bool wrong_peer;		/* client: the server's certificate named another identity */
	bool t_data;			/* application bytes came out of TLS */
	bool rd_starved;		/* the last read needs more bytes from the socket */
	bool rd_dry_used;		/* a read took "empty" from an earlier one (tls_recv()) */
	bool rd_bulk;			/* full records came: a read buffer of TLS_READ_BUF */
	bool bulk;			/* full records passed: buffers kept within an event */
	bool resumed;			/* the handshake resumed a session (resume.c) */
	uint16_t port;			/* the application's port */
	size_t pre_len, pre_off;	/* preamble: server, bytes read; client, to write */
	uint8_t pre[MTLS_PREAMBLE_LEN];
	struct spiffe_id peer;		/* client: expected, then verified; server: the client */
	/* Client: the destination's key in the SVID's session cache, the
	 * endpoint's address and the identity it must present.
	 */
	char sess_key[SVID_SESSION_KEY_MAX];
	struct addr dst, from;		/* server: for delivery */
	tls_deliver_fn deliver;
	struct loop_timer t_hs;
	/* The relay's watch of @tfd, for a wake-up when bytes wait inside
	 * the SSL where epoll cannot see them, or when the handshake timed out.
	 */
	struct loop_timer t_kick;
	/* Records gathered and not sent yet: sent from the loop at the latest,
	 * should no tls_watch_ev() come first.
	 */
	struct loop_timer t_flush;
	uint32_t kick_ev;
	loop_fd_fn kick_fn;
	void *kick_ctx;
};

/* A new operation on @l (a relay's call, a handshake step): nothing
 * waited for yet, and the socket may be read again.
 */
static void op_begin(struct tls_link *l)
{
	l->want_tin = l->want_tout = false;
	tls_io_begin(&l->io);
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

static void link_unlist(struct tls_link *l)
{
	if (!l->owned)
		return;
	if (l->prev)
		l->prev->next = l->next;
	else
		l->pod->tls_links = l->next;
	if (l->next)
		l->next->prev = l->prev;
	l->prev = l->next = NULL;
	l->owned = false;
}

/* Free @l; with @close_fd (a link still holding its socket) close that too. */
static void link_free(struct tls_link *l, bool reset, bool close_fd)
{
	struct proxy *px = l->px;

	px_timer_del(px, &l->t_hs);
	px_timer_del(px, &l->t_kick);
	px_timer_del(px, &l->t_flush);
	if (l->ssl && !reset && !l->failed && !l->abandoned && l->open && !l->t_shut)
		/* Best effort: tell the peer this is a close, not a truncation. */
		(void)SSL_shutdown(l->ssl);
	/* Best effort too: what the relay wrote last (a 503, say). */
	if (l->io.len && !reset && !l->abandoned)
		(void)tls_io_flush(&l->io);
	SSL_free(l->ssl);
	ERR_clear_error();
	tls_io_done(&l->io);
	if (close_fd && l->tfd >= 0) {
		if (l->tw.on)
			loop_forget_fd(px->loop, l->tfd);
		if (reset)
			reset_close(l->tfd);
		else
			close(l->tfd);
	}
	if (l->open)
		ctr_dec(&px->stats.mtls_active);
	link_unlist(l);
	free(l);
}

static void link_close(struct tls_link *l, bool reset)
{
	link_free(l, reset, l->owned);
}

static void on_tfd(struct loop *loop, int fd, uint32_t events, void *ctx);

/* Wake the relay watching @l's socket with @ev, from the loop. */
static void kick(struct tls_link *l, uint32_t ev);

static void on_handshake_timeout(struct loop_timer *t, uint64_t now)
{
	struct tls_link *l = (struct tls_link *)((char *)t - offsetof(struct tls_link, t_hs));

	(void)now;
	ctr_inc(&l->px->stats.mtls_fail_handshake);
	log_debug("proxy: mTLS pod=%u: handshake not done in %d ms", l->pod->id,
		  TLS_HANDSHAKE_MS);
	if (l->owned) {
		link_close(l, true);
		return;
	}
	/* The relay holds the socket: it resets the connection on its next look. */
	l->failed = true;
	kick(l, EPOLLIN | EPOLLERR);
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

bool tls_pod_has_svid(struct px_pod *pod)
{
	const struct mtls_pod *mp = mtls_table_pod(pod->px->mtls, pod->id);

	if (mp && mp->svid)
		return true;
	ctr_inc(&pod->px->stats.mtls_no_svid);
	log_debug("proxy: mTLS pod=%u: no certificate for this pod (yet)", pod->id);
	return false;
}

static struct tls_link *link_new(struct px_pod *pod, int tfd, bool server)
{
	const struct mtls_pod *mp = mtls_table_pod(pod->px->mtls, pod->id);
	struct tls_link *l;

	if (!tls_pod_has_svid(pod))
		return NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->px = pod->px;
	l->pod = pod;
	l->tfd = tfd;
	l->server = server;
	/* The SSL takes a reference on the SVID's context: a renewal that
	 * drops the SVID leaves this connection its certificate.
	 */
	l->ssl = SSL_new(mp->svid->ctx);
	l->io.fd = tfd;
	{
		BIO *b = l->ssl ? tls_io_bio(&l->io) : NULL;

		if (!b) {
			SSL_free(l->ssl);
			ERR_clear_error();
			free(l);
			return NULL;
		}
		SSL_set_bio(l->ssl, b, b);	/* one BIO both ways; the SSL owns it */
	}
	/* Read-ahead: one read() takes what the socket holds, up to the
	 * read buffer's size, where without it OpenSSL reads each record with
	 * two (its header, then its body); tls_recv() then takes every record
	 * it holds. What read-ahead takes beyond what the relay asked for
	 * waits inside the SSL, where epoll cannot see it: tls_watch_ev()
	 * wakes the relay for it. RELEASE_BUFFERS: the SSL's record buffers
	 * (two of about 17 KiB) are freed whenever they are empty, so an idle
	 * connection holds none, and they are freed early enough in the
	 * handshake for its later allocations to reuse them (held to the end
	 * of an event instead, many connections opened at once leave about
	 * 20 KiB more of heap each). Once full records pass, freeing them
	 * around every record costs more than it saves: mark_bulk() turns it
	 * off and tls_watch_ev() frees them at the end of an event instead.
	 */
	SSL_set_mode(l->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				     SSL_MODE_RELEASE_BUFFERS);
	SSL_set_read_ahead(l->ssl, 1);
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
	if (server) {
		l->owned = true;
		l->next = pod->tls_links;
		if (pod->tls_links)
			pod->tls_links->prev = l;
		pod->tls_links = l;
	}
	return l;
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

/* Server: the preamble is in; check it and who may connect, then hand the
 * socket and @l to the application's side. False if @l closed.
 */
static bool server_deliver(struct tls_link *l)
{
	const struct mtls_pod *mp = mtls_table_pod(l->px->mtls, l->pod->id);
	char id[SPIFFE_ID_MAX];

	if (mtls_preamble_get(l->pre, &l->port)) {
		ctr_inc(&l->px->stats.mtls_bad_preamble);
		link_close(l, true);
		return false;
	}
	(void)spiffe_id_fmt(id, sizeof(id), l->px->mtls->td, l->peer.ns, l->peer.sa);
	if (!mp || !mtls_allowed(mp, l->port, &l->peer)) {
		ctr_inc(&l->px->stats.mtls_denied);
		count_denial(l->px, id);
		log_info("proxy: mTLS pod=%u: %s may not connect to port %u (weft.io/allow-from), "
			 "refused", l->pod->id, id, l->port);
		link_close(l, true);
		return false;
	}
	/* The relay watches the socket from now on, with its own watch. */
	if (l->tw.on)
		(void)loop_watch(l->px->loop, &l->tw, l->tfd, 0, on_tfd, l);
	link_unlist(l);
	l->dst.port = l->port;
	l->open = true;
	ctr_inc(&l->px->stats.mtls_in);
	ctr_inc(&l->px->stats.mtls_active);
	px_timer_del(l->px, &l->t_hs);
	l->deliver(l->px, l->pod, l->tfd, l, &l->dst, &l->from);
	return true;
}

/* The handshake is done: check the peer. False if it is not the one. */
static bool handshake_done(struct tls_link *l)
{
	struct spiffe_id got;

	/* A resumed session carries the peer's certificate as verified in
	 * its full handshake (resume.c): the identity comes from it alike,
	 * and goes through the same checks.
	 */
	if (svid_peer(l->ssl, l->px->mtls->td, &got)) {
		ctr_inc(&l->px->stats.mtls_fail_handshake);
		return false;
	}
	l->resumed = SSL_session_reused(l->ssl);
	if (l->resumed) {
		if (l->server)
			ctr_inc(&l->px->stats.mtls_resumed_in);
		else
			ctr_inc(&l->px->stats.mtls_resumed_out);
	}
	if (l->server) {
		l->peer = got;
		return true;	/* the preamble, then allow-from, come next */
	}
	/* verify_server() refused any other identity in a full handshake (a
	 * resumption runs no verification); checked here in every case so
	 * that no path opens a link to the wrong pod.
	 */
	if (strcmp(got.ns, l->peer.ns) || strcmp(got.sa, l->peer.sa)) {
		ctr_inc(&l->px->stats.mtls_fail_identity);
		return false;
	}
	mtls_preamble_put(l->pre, l->port);
	l->pre_len = MTLS_PREAMBLE_LEN;
	l->pre_off = 0;
	l->open = true;
	ctr_inc(&l->px->stats.mtls_out);
	ctr_inc(&l->px->stats.mtls_active);
	px_timer_del(l->px, &l->t_hs);
	return true;
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

/* A failed handshake: when this side refused the peer's certificate,
 * count why (the peer's own refusal of ours arrives as an alert and is
 * the peer's to count).
 */
static void count_cert_failure(struct tls_link *l)
{
	long v = SSL_get_verify_result(l->ssl);
	enum mtls_cert_fail why;

	switch (v) {
	case X509_V_OK:
	case X509_V_ERR_APPLICATION_VERIFICATION:	/* the identity: fail_identity */
		return;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		why = MTLS_CERT_EXPIRED;
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		why = MTLS_CERT_NOT_YET_VALID;
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		why = MTLS_CERT_UNTRUSTED;
		break;
	default:
		why = MTLS_CERT_OTHER;
		break;
	}
	ctr_inc(&l->px->stats.mtls_fail_cert[why]);
	log_debug("proxy: mTLS pod=%u: the %s's certificate is refused: %s", l->pod->id,
		 l->server ? "client" : "server", X509_verify_cert_error_string(v));
}

/* Handshake step: 1 done, 0 waiting (want_* set), -1 failed (counted). */
static int handshake_step(struct tls_link *l)
{
	int r;

	if (SSL_is_init_finished(l->ssl))
		return 1;
	r = SSL_do_handshake(l->ssl);
	if (r == 1)
		return handshake_done(l) ? 1 : -1;
	if (!ssl_wait(l, r))
		return 0;
	if (l->wrong_peer) {
		ctr_inc(&l->px->stats.mtls_fail_identity);
	} else {
		ctr_inc(&l->px->stats.mtls_fail_handshake);
		count_cert_failure(l);
	}
	log_debug("proxy: mTLS pod=%u: handshake failed: %s", l->pod->id,
		  ERR_reason_error_string(ERR_peek_error()) ?: "closed");
	return -1;
}

/* Server, before delivery: handshake, identity, preamble, authorization. */
static void server_run(struct tls_link *l)
{
	int r;

	op_begin(l);
	r = handshake_step(l);
	if (r < 0) {
		link_close(l, true);
		return;
	}
	/* The preamble: the first bytes inside TLS, maybe over records. */
	while (r > 0 && l->pre_len < MTLS_PREAMBLE_LEN) {
		int n = SSL_read(l->ssl, l->pre + l->pre_len, MTLS_PREAMBLE_LEN - (int)l->pre_len);

		if (n <= 0) {
			if (ssl_wait(l, n)) {
				ctr_inc(&l->px->stats.mtls_bad_preamble);
				link_close(l, true);
				return;
			}
			r = 0;
			break;
		}
		l->pre_len += (size_t)n;
	}
	if (r > 0) {
		(void)server_deliver(l);
		return;
	}
	if (loop_watch(l->px->loop, &l->tw, l->tfd,
		       (l->want_tin ? EPOLLIN : 0) | (l->want_tout ? EPOLLOUT : 0), on_tfd, l))
		link_close(l, true);
}

static void on_tfd(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	(void)loop;
	(void)fd;
	(void)events;
	server_run(ctx);
}

/* Client: drive the handshake and send the preamble. 0 when the link is open
 * and the preamble gone, -EAGAIN while not, -ECONNRESET once failed.
 */
static int client_service(struct tls_link *l)
{
	int r;

	if (l->failed)
		return -ECONNRESET;
	if (!l->open) {
		r = handshake_step(l);
		if (r < 0) {
			l->failed = true;
			return -ECONNRESET;
		}
		if (!r)
			return -EAGAIN;
	}
	while (l->pre_off < l->pre_len) {
		r = SSL_write(l->ssl, l->pre + l->pre_off, (int)(l->pre_len - l->pre_off));
		if (r <= 0) {
			if (ssl_wait(l, r)) {
				l->failed = true;
				return -ECONNRESET;
			}
			return -EAGAIN;
		}
		l->pre_off += (size_t)r;
	}
	return 0;
}

/* ------------------------------------------------------------ the relay's side */

static void on_kick(struct loop_timer *t, uint64_t now)
{
	struct tls_link *l = (struct tls_link *)((char *)t - offsetof(struct tls_link, t_kick));

	(void)now;
	if (l->kick_fn)
		l->kick_fn(l->px->loop, l->tfd, l->kick_ev, l->kick_ctx);
}

static void kick(struct tls_link *l, uint32_t ev)
{
	l->kick_ev = ev;
	if (l->kick_fn && px_timer_set(l->px, &l->t_kick, 0, on_kick))
		l->failed = true;
}

static void on_flush(struct loop_timer *t, uint64_t now)
{
	struct tls_link *l = (struct tls_link *)((char *)t - offsetof(struct tls_link, t_flush));
	int err = l->io.len ? tls_io_flush(&l->io) : 0;

	(void)now;
	if (err == -EAGAIN) {
		/* The relay's next look watches for room (tls_watch_ev()). */
		kick(l, EPOLLOUT);
	} else if (err) {
		l->failed = true;
		kick(l, EPOLLIN | EPOLLERR);
	}
}

void tls_service(struct tls_link *l)
{
	op_begin(l);
	if (!l->server)
		(void)client_service(l);
}

uint32_t tls_watch_ev(struct tls_link *l, uint32_t ev, loop_fd_fn fn, void *ctx)
{
	bool unsent = false;
	int err;

	l->kick_fn = fn;
	l->kick_ctx = ctx;
	/* The end of the relay's event: the next one reads the socket again
	 * (tls_recv()), and the records it gathered go out.
	 */
	tls_io_begin(&l->io);
	l->rd_dry_used = false;
	err = l->io.len ? tls_io_flush(&l->io) : 0;
	if (!err)
		px_timer_del(l->px, &l->t_flush);
	if (err == -EAGAIN) {
		unsent = true;
	} else if (err) {
		l->failed = true;
		kick(l, EPOLLIN | EPOLLERR);
	}
	if (!ev)
		return 0;
	/* Bytes already inside the SSL, which epoll will not report: a
	 * record decrypted but not read, or records read ahead — unless the
	 * last read found only part of a record, which needs the socket.
	 */
	if ((ev & EPOLLIN) && l->open &&
	    (SSL_pending(l->ssl) > 0 || (SSL_has_pending(l->ssl) && !l->rd_starved)))
		kick(l, EPOLLIN);
	else if (l->open && !unsent && !l->want_tout && !SSL_has_pending(l->ssl))
		/* Nothing in flight: an idle connection keeps no record buffer. */
		(void)SSL_free_buffers(l->ssl);
	return ev | (l->want_tin ? EPOLLIN : 0) | (l->want_tout || unsent ? EPOLLOUT : 0);
}

/* Full records pass through @l: keep the record buffers for the whole
 * event (tls_watch_ev() frees them).
 */
static void mark_bulk(struct tls_link *l)
{
	if (l->bulk)
		return;
	SSL_clear_mode(l->ssl, SSL_MODE_RELEASE_BUFFERS);
	l->bulk = true;
}

/* A read or write of @l failed for good: counted when it was the server
 * refusing our certificate, then a reset for the relay. Returns -1.
 */
static ssize_t link_failed(struct tls_link *l)
{
	if (refused_by_server(l)) {
		ctr_inc(&l->px->stats.mtls_fail_handshake);
		log_debug("proxy: mTLS pod=%u: the server refused the handshake: %s", l->pod->id,
			  ERR_reason_error_string(ERR_peek_error()) ?: "?");
	}
	ERR_clear_error();
	l->failed = true;
	errno = ECONNRESET;
	return -1;
}

/* @r bytes of plaintext came out of @l. A full record's worth means a bulk
 * transfer: a larger read buffer from then on.
 */
static void note_read(struct tls_link *l, int r)
{
	l->t_data = true;
	if (r == SSL3_RT_MAX_PLAIN_LENGTH && !l->rd_bulk) {
		/* Taken when the buffer is next allocated, once freed. */
		SSL_set_default_read_buffer_len(l->ssl, TLS_READ_BUF);
		l->rd_bulk = true;
		mark_bulk(l);
	}
}

ssize_t tls_recv(struct tls_link *l, void *buf, size_t len)
{
	size_t got = 0;
	int r;

	l->want_tin = l->want_tout = false;
	/* The socket the relay's last read found empty, in this same event
	 * (tls_watch_ev() ends one), is still empty as far as it can tell:
	 * the relay's next read, which would be a system call failing with
	 * EAGAIN, makes none; level-triggered epoll reports what comes
	 * later. Once only: a path that read without ending its event in
	 * tls_watch_ev() costs a pass of the loop at most, never a stall.
	 */
	if (!l->io.dry || l->rd_dry_used) {
		tls_io_begin(&l->io);
		l->rd_dry_used = false;
	} else {
		l->rd_dry_used = true;
	}
	if (!l->server) {
		r = client_service(l);
		if (r) {
			errno = -r;
			return -1;
		}
	}
	if (l->failed) {
		errno = ECONNRESET;
		return -1;
	}
	if (len > INT32_MAX)
		len = INT32_MAX;
	if (l->rd_dry_used && l->open && !SSL_has_pending(l->ssl) &&
	    !(SSL_get_shutdown(l->ssl) & SSL_RECEIVED_SHUTDOWN)) {
		/* Nothing inside the SSL either: what SSL_read() would say,
		 * without its call and SSL_get_error()'s.
		 */
		l->want_tin = l->rd_starved = true;
		errno = EAGAIN;
		return -1;
	}
	/* SSL_read() gives one record at a time: take every record the SSL
	 * holds already, up to @len, so that a request and its successor
	 * read ahead together leave nothing behind that only a timer would
	 * find. Stop when only the socket could give more and it was found
	 * empty in this call (tls_bio.h: the next read would be a system
	 * call failing with EAGAIN).
	 */
	for (;;) {
		r = SSL_read(l->ssl, (char *)buf + got, (int)(len - got));
		if (r <= 0)
			break;
		got += (size_t)r;
		note_read(l, r);
		if (got == len || (l->io.dry && !SSL_has_pending(l->ssl))) {
			l->rd_starved = false;
			return (ssize_t)got;
		}
	}
	switch (SSL_get_error(l->ssl, r)) {
	case SSL_ERROR_ZERO_RETURN:
		/* close_notify: EOF, after the bytes before it (it stays so). */
		return (ssize_t)got;
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		(void)ssl_wait(l, r);
		l->rd_starved = l->want_tin;
		if (got)
			return (ssize_t)got;
		errno = EAGAIN;
		return -1;
	default:
		break;
	}
	if (got) {
		/* The bytes before a failure are the relay's; the reset comes
		 * on its next call. The error queue is the thread's: cleared,
		 * or another link's next call would read this one's error.
		 */
		ERR_clear_error();
		l->failed = true;
		return (ssize_t)got;
	}
	/* A TCP FIN without close_notify is a truncation: a reset for the relay. */
	return link_failed(l);
}

ssize_t tls_send(struct tls_link *l, const void *buf, size_t len)
{
	int r;

	op_begin(l);
	if (!l->server) {
		r = client_service(l);
		if (r) {
			errno = -r;
			return -1;
		}
	}
	if (l->failed || l->t_shut) {
		errno = l->failed ? ECONNRESET : EPIPE;
		return -1;
	}
	if (len > INT32_MAX)
		len = INT32_MAX;
	r = SSL_write(l->ssl, buf, (int)len);
	if (r > 0) {
		/* Less than a full record: likely all the relay has for now, so
		 * it goes out at once; full records are gathered until the
		 * buffer is full or the relay's event ends (tls_watch_ev()).
		 */
		if ((size_t)r < SSL3_RT_MAX_PLAIN_LENGTH) {
			int err = tls_io_flush(&l->io);

			if (err == -EAGAIN) {
				l->want_tout = true;
			} else if (err) {
				errno = -err;
				return link_failed(l);
			}
		} else {
			mark_bulk(l);
			if (l->io.len && !loop_timer_armed(&l->t_flush) &&
			    px_timer_set(l->px, &l->t_flush, 0, on_flush)) {
				l->failed = true;
				errno = ECONNRESET;
				return -1;
			}
		}
		return r;
	}
	if (!ssl_wait(l, r)) {
		errno = EAGAIN;
		return -1;
	}
	return link_failed(l);
}

int tls_shut(struct tls_link *l)
{
	int r;

	op_begin(l);
	if (!l->server) {
		r = client_service(l);
		if (r)
			return r;
	}
	if (l->failed)
		return -ECONNRESET;
	if (!l->t_shut) {
		/* close_notify, then FIN: TLS 1.3 lets the other direction go on. */
		r = SSL_shutdown(l->ssl);
		if (r < 0 && !ssl_wait(l, r))
			return -EAGAIN;
		ERR_clear_error();
		l->t_shut = true;
	}
	/* Every record, close_notify last, before the FIN. */
	r = tls_io_flush(&l->io);
	if (r == -EAGAIN) {
		l->want_tout = true;
		return r;
	}
	if (r)
		return r;
	if (shutdown(l->tfd, SHUT_WR) == -1 && errno != ENOTCONN)
		return -errno;
	return 0;
}

void tls_connect_failed(struct tls_link *l)
{
	ctr_inc(&l->px->stats.mtls_fail_connect);
}

void tls_abandon(struct tls_link *l)
{
	char b;

	l->abandoned = true;
	/* A relay resets on an error event without reading: a server's
	 * refusal of our certificate, an alert followed at once by its reset,
	 * may still be queued unread. Read it, to count it as link_failed()
	 * would have.
	 */
	if (l->server || !l->open || l->t_data || l->failed)
		return;
	ERR_clear_error();
	tls_io_begin(&l->io);
	if (SSL_read(l->ssl, &b, 1) <= 0 && refused_by_server(l)) {
		ctr_inc(&l->px->stats.mtls_fail_handshake);
		log_debug("proxy: mTLS pod=%u: the server refused the handshake: %s", l->pod->id,
			  ERR_reason_error_string(ERR_peek_error()) ?: "?");
	}
	ERR_clear_error();
}

void tls_free(struct tls_link *l)
{
	if (l)
		link_free(l, false, false);
}

int tls_dial(struct px_pod *pod, int tcp_fd, const struct addr *ep, const struct spiffe_id *expect,
	     uint16_t dst_port, struct tls_link **link)
{
	struct tls_link *l = link_new(pod, tcp_fd, false);
	char ip[ADDR_STRLEN];

	if (!l) {
		close(tcp_fd);
		return -EKEYREJECTED;
	}
	l->peer = *expect;
	l->port = dst_port;
	/* The same endpoint with the same identity: its agent's tickets. */
	if (snprintf(l->sess_key, sizeof(l->sess_key), "%s ns/%.*s/sa/%.*s",
		     addr_fmt_ip(ep, ip, sizeof(ip)), (int)sizeof(expect->ns), expect->ns,
		     (int)sizeof(expect->sa), expect->sa) < (int)sizeof(l->sess_key))
		(void)svid_session_offer(l->ssl, l->sess_key);
	*link = l;
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
	server_run(l);
}

void tls_links_close(struct px_pod *pod)
{
	while (pod->tls_links)
		link_close(pod->tls_links, true);
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

bool tls_link_resumed(const struct tls_link *l)
{
	return l->open && l->resumed;
}
