// SPDX-License-Identifier: GPL-2.0-only
/* TLS 1.3 session resumption between agents (docs/mtls.md, "Session
 * resumption"): the server side of an SVID's context issues one ticket per
 * full handshake, under ticket keys OpenSSL makes at random for that
 * context; the client side keeps the last ticket per destination (the
 * endpoint and the identity it must present) in a small cache that hangs
 * off the same context. So both go with the SVID: a renewed SVID, or a
 * new trust bundle (every SVID is then reissued), is a new context, whose
 * server cannot read the old tickets and whose client has none.
 *
 * A resumed session keeps mutual authentication's meaning: the peer's
 * certificate, checked in the full handshake, is in the session, so each
 * side takes the peer's identity from it as after a full handshake (the
 * client checks it is the one expected, the server passes it to
 * allow-from), and neither side accepts a session whose peer certificate
 * has expired or that is older than SVID_SESSION_TTL. The key exchange
 * is fresh in every resumption (psk_dhe_ke, OpenSSL's default), so
 * forward secrecy stays; no early data.
 *
 * Threads: the cache is shared by every worker using the context, under
 * its own lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "identity/identity.h"

/* Destinations a context remembers a ticket for; the oldest goes first. */
#define SVID_SESSIONS 256

struct sess_slot {
	char key[SVID_SESSION_KEY_MAX];
	SSL_SESSION *sess;
	uint64_t used;		/* the cache's clock at the last put or take */
};

struct sess_cache {
	pthread_mutex_t lock;
	uint64_t clock;
	struct sess_slot slot[SVID_SESSIONS];
};

static int ctx_idx = -1, ssl_idx = -1;

static void cache_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
		       void *argp)
{
	struct sess_cache *c = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (!c)
		return;
	for (size_t i = 0; i < SVID_SESSIONS; i++)
		SSL_SESSION_free(c->slot[i].sess);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void idx_init(void)
{
	ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, cache_free);
	ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static bool idx_ready(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	(void)pthread_once(&once, idx_init);
	return ctx_idx >= 0 && ssl_idx >= 0;
}

/* Whether the certificate of the peer in @sess is valid now. */
static bool peer_valid(const SSL_SESSION *sess)
{
	X509 *peer = SSL_SESSION_get0_peer((SSL_SESSION *)sess);

	return peer && X509_cmp_current_time(X509_get0_notBefore(peer)) < 0 &&
	       X509_cmp_current_time(X509_get0_notAfter(peer)) > 0;
}

/* Whether client session @sess may be offered now. */
static bool usable(const SSL_SESSION *sess)
{
	time_t now = time(NULL);

	return SSL_SESSION_is_resumable(sess) && peer_valid(sess) &&
	       now < SSL_SESSION_get_time(sess) + SSL_SESSION_get_timeout(sess) &&
	       now < SSL_SESSION_get_time(sess) + SVID_SESSION_TTL;
}

/* Client: a ticket arrived for @ssl's destination; keep a copy (the last
 * one wins). A copy, both here and when offering one: OpenSSL marks the
 * session an SSL uses as not resumable when that SSL is freed without a
 * close_notify (a reset), which would spoil the cache's.
 */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct sess_cache *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_idx);
	const char *key = SSL_get_ex_data(ssl, ssl_idx);
	struct sess_slot *s = NULL, *oldest;
	SSL_SESSION *copy;

	if (!c || !key || SSL_is_server(ssl) || !peer_valid(sess))
		return 0;
	copy = SSL_SESSION_dup(sess);
	if (!copy) {
		ERR_clear_error();
		return 0;
	}
	pthread_mutex_lock(&c->lock);
	oldest = &c->slot[0];
	for (size_t i = 0; i < SVID_SESSIONS && !s; i++) {
		struct sess_slot *t = &c->slot[i];

		if (t->sess && !strcmp(t->key, key))
			s = t;
		else if (oldest->sess && (!t->sess || t->used < oldest->used))
			oldest = t;
	}
	if (!s)
		s = oldest;
	SSL_SESSION_free(s->sess);
	snprintf(s->key, sizeof(s->key), "%s", key);
	s->sess = copy;
	s->used = ++c->clock;
	pthread_mutex_unlock(&c->lock);
	return 0;	/* OpenSSL keeps its own reference */
}

/* Server: a ticket a client offered decrypted (@status). Resume only while
 * the client's certificate in it is valid; otherwise a full handshake, in
 * which the client shows a certificate again.
 */
static SSL_TICKET_RETURN on_ticket(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
				   size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
	(void)keyname;
	(void)keyname_len;
	(void)arg;
	switch (status) {
	case SSL_TICKET_SUCCESS:
	case SSL_TICKET_SUCCESS_RENEW:
		if (!peer_valid(sess) || time(NULL) >= SSL_SESSION_get_time(sess) + SVID_SESSION_TTL)
			return SSL_TICKET_RETURN_IGNORE_RENEW;
		/* No new ticket for a resumed session: the client keeps the
		 * one it has (reusable until SVID_SESSION_TTL after the full
		 * handshake), which saves sealing one per connection here and
		 * copying it there.
		 */
		(void)SSL_set_num_tickets(ssl, 0);
		return SSL_TICKET_RETURN_USE;
	default:
		/* No ticket, one of another context's keys, a damaged one. */
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	}
}

int svid_resumption_setup(SSL_CTX *ctx, const char *sid_ctx)
{
	struct sess_cache *c;
	unsigned char sid[SSL_MAX_SID_CTX_LENGTH];
	size_t n = strlen(sid_ctx);

	if (!idx_ready())
		return -ENOMEM;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	if (!SSL_CTX_set_ex_data(ctx, ctx_idx, c)) {
		cache_free(NULL, c, NULL, 0, 0, NULL);
		return -ENOMEM;
	}
	/* Resuming with client certificates requires a session id context;
	 * the tail of the SVID's URI (at most 32 bytes) names the context.
	 */
	if (n > sizeof(sid)) {
		sid_ctx += n - sizeof(sid);
		n = sizeof(sid);
	}
	memcpy(sid, sid_ctx, n);
	if (!SSL_CTX_set_session_id_context(ctx, sid, (unsigned)n) ||
	    !SSL_CTX_set_num_tickets(ctx, 1) ||
	    !SSL_CTX_set_session_ticket_cb(ctx, NULL, on_ticket, NULL))
		return -ENOMEM;
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_timeout(ctx, SVID_SESSION_TTL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_BOTH | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(ctx, on_new_session);
	return 0;
}

bool svid_session_offer(SSL *ssl, const char *key)
{
	struct sess_cache *c;
	SSL_SESSION *sess = NULL;

	if (!idx_ready() || !SSL_set_ex_data(ssl, ssl_idx, (void *)key))
		return false;
	c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_idx);
	if (!c)
		return false;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < SVID_SESSIONS; i++) {
		struct sess_slot *s = &c->slot[i];

		if (!s->sess || strcmp(s->key, key))
			continue;
		if (usable(s->sess)) {
			sess = SSL_SESSION_dup(s->sess);
			s->used = ++c->clock;
		} else {
			SSL_SESSION_free(s->sess);
			s->sess = NULL;
		}
		break;
	}
	pthread_mutex_unlock(&c->lock);
	if (!sess) {
		ERR_clear_error();
		return false;
	}
	if (!SSL_set_session(ssl, sess)) {
		ERR_clear_error();
		SSL_SESSION_free(sess);
		return false;
	}
	SSL_SESSION_free(sess);	/* the SSL holds its own reference */
	return true;
}
