// SPDX-License-Identifier: GPL-2.0-only
/* agent/identity/: SVIDs issued by a standalone CA that the openssl tool
 * makes here (a P-256 CA, a second unrelated CA, an Ed25519 CA), checked
 * against trust bundles; wrong CA, expired and wrong-domain certificates
 * refused; a TLS 1.3 handshake between two SVIDs over a socketpair with each
 * side reading the other's identity, and resumed sessions (resume.c) that
 * keep it, go with the SVID's context and end with the peer's certificate;
 * the node's identity set issuing,
 * renewing at half-life (held SVIDs still usable) and dropping.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "identity/identity.h"

static char dir[] = "/tmp/weft-identity-XXXXXX";
static char path_buf[8][256];

/* dir/@name, in one of a few rotating buffers. */
static const char *at(const char *name)
{
	static int next;
	char *p = path_buf[next++ % 8];

	snprintf(p, 256, "%s/%s", dir, name);
	return p;
}

static void sh(const char *cmd)
{
	char full[2048];

	snprintf(full, sizeof(full), "cd %s && (%s) >/dev/null 2>&1", dir, cmd);
	cr_assert_eq(system(full), 0, "%s", cmd);
}

static void make_cas(void)
{
	cr_assert_not_null(mkdtemp(dir));
	sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
	   "-subj /O=test/CN=ca1 -keyout ca1.key -out ca1.pem "
	   "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign");
	sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
	   "-subj /O=test/CN=ca2 -keyout ca2.key -out ca2.pem "
	   "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign");
	sh("openssl req -x509 -newkey ed25519 -nodes -days 30 -subj /O=test/CN=ca3 "
	   "-keyout ca3.key -out ca3.pem -addext basicConstraints=critical,CA:TRUE");
	sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
	   "-subj /CN=leaf -keyout leaf.key -out leaf.pem -addext basicConstraints=CA:FALSE");
}

static void rm_cas(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(identity, .init = make_cas, .fini = rm_cas);

static struct ca *ca_or_die(const char *n)
{
	char err[IDENTITY_ERR_MAX] = "", c[64], k[64];
	struct ca *ca;

	snprintf(c, sizeof(c), "%s.pem", n);
	snprintf(k, sizeof(k), "%s.key", n);
	cr_assert_eq(ca_load(at(c), at(k), &ca, err), 0, "%s", err);
	return ca;
}

static struct trust *trust_or_die(const char *ca, const char *extra)
{
	char err[IDENTITY_ERR_MAX] = "";
	struct trust *t;

	cr_assert_eq(trust_load("cluster.local", at(ca), extra ? at(extra) : NULL, &t, err), 0,
		     "%s", err);
	return t;
}

static struct svid *issue_or_die(struct ca *ca, struct trust *t, const char *ns, const char *sa,
				 uint32_t ttl)
{
	char err[IDENTITY_ERR_MAX] = "";
	struct svid *s;

	cr_assert_eq(svid_issue(ca, t, ns, sa, ttl, &s, err), 0, "%s", err);
	return s;
}

Test(identity, issued_svid_verifies_and_names_its_workload)
{
	struct ca *ca = ca_or_die("ca1");
	struct trust *t = trust_or_die("ca1.pem", NULL);
	struct svid *s = issue_or_die(ca, t, "shop", "frontend", 3600);
	char err[IDENTITY_ERR_MAX] = "";
	struct spiffe_id id;
	time_t now = time(NULL);

	cr_assert_str_eq(s->uri, "spiffe://cluster.local/ns/shop/sa/frontend");
	cr_assert_eq(trust_verify(t, s->cert, NULL, &id, err), 0, "%s", err);
	cr_assert_str_eq(id.ns, "shop");
	cr_assert_str_eq(id.sa, "frontend");
	cr_assert_eq(EVP_PKEY_get_id(s->key), EVP_PKEY_EC);
	cr_assert_eq(EVP_PKEY_get_bits(s->key), 256);
	cr_assert(s->not_after >= now + 3590 && s->not_after <= now + 3610, "%lld",
		  (long long)(s->not_after - now));
	cr_assert(s->not_before <= now - 50, "backdated for clock skew");
	cr_assert(s->renew_at >= now + 1790 && s->renew_at <= now + 1810, "half-life");
	cr_assert_str_eq(s->issuer_name, "/O=test/CN=ca1");
	cr_assert_gt(strlen(s->serial), 16, "a random serial: %s", s->serial);
	cr_assert_eq(X509_check_ca(s->cert), 0, "a leaf");
	svid_unref(s);
	/* Each issuance has its own key and serial. */
	s = issue_or_die(ca, t, "shop", "frontend", 3600);
	{
		struct svid *s2 = issue_or_die(ca, t, "shop", "frontend", 3600);

		cr_assert_str_neq(s->serial, s2->serial);
		cr_assert_neq(EVP_PKEY_eq(s->key, s2->key), 1);
		svid_unref(s2);
	}
	svid_unref(s);
	trust_unref(t);
	ca_free(ca);
}

Test(identity, wrong_ca_expired_and_foreign_domain_refused)
{
	struct ca *ca1 = ca_or_die("ca1"), *ca2 = ca_or_die("ca2");
	struct trust *t1 = trust_or_die("ca1.pem", NULL), *t12 = trust_or_die("ca1.pem", "ca2.pem");
	struct svid *s2 = issue_or_die(ca2, t1, "shop", "frontend", 3600);
	char err[IDENTITY_ERR_MAX] = "";
	struct trust *other;
	struct spiffe_id id;
	EVP_PKEY *ca1_key;
	X509 *expired;
	FILE *f;

	cr_assert_eq(trust_verify(t1, s2->cert, NULL, &id, err), -EKEYREJECTED);
	cr_assert_str_eq(err, "unable to get local issuer certificate");
	/* The bundle with the second CA (a rotation's overlap) accepts it. */
	cr_assert_eq(trust_verify(t12, s2->cert, NULL, &id, err), 0, "%s", err);

	/* An expired one: the same certificate, dated back and signed again. */
	f = fopen(at("ca1.key"), "r");
	cr_assert_not_null(f);
	ca1_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	expired = X509_dup(s2->cert);
	X509_gmtime_adj(X509_getm_notBefore(expired), -7200);
	X509_gmtime_adj(X509_getm_notAfter(expired), -3600);
	X509_set_issuer_name(expired, X509_get_subject_name(ca_cert(ca1)));
	X509_EXTENSION_free(
		X509_delete_ext(expired, X509_get_ext_by_NID(expired, NID_authority_key_identifier, -1)));
	cr_assert(X509_sign(expired, ca1_key, EVP_sha256()));
	cr_assert_eq(trust_verify(t1, expired, NULL, &id, err), -EKEYREJECTED);
	cr_assert_str_eq(err, "certificate has expired");
	X509_free(expired);
	EVP_PKEY_free(ca1_key);

	/* A good chain in another trust domain is not an identity here. */
	cr_assert_eq(trust_load("other.example", at("ca1.pem"), NULL, &other, err), 0);
	{
		struct svid *s1 = issue_or_die(ca1, t1, "shop", "frontend", 3600);

		cr_assert_eq(trust_verify(other, s1->cert, NULL, &id, err), -EINVAL);
		svid_unref(s1);
	}
	trust_unref(other);
	svid_unref(s2);
	trust_unref(t1);
	trust_unref(t12);
	ca_free(ca1);
	ca_free(ca2);
}

Test(identity, ca_and_bundle_files_checked)
{
	char err[IDENTITY_ERR_MAX] = "";
	struct trust *t;
	struct ca *ca;

	cr_assert_eq(ca_load(at("ca1.pem"), at("ca2.key"), &ca, err), -EINVAL);
	cr_assert(strstr(err, "not the key of"), "%s", err);
	cr_assert_eq(ca_load(at("leaf.pem"), at("leaf.key"), &ca, err), -EINVAL);
	cr_assert(strstr(err, "not a CA certificate"), "%s", err);
	cr_assert_eq(ca_load(at("nothing.pem"), at("ca1.key"), &ca, err), -ENOENT);
	cr_assert_eq(trust_load("cluster.local", at("ca1.key"), NULL, &t, err), -EINVAL);
	cr_assert(strstr(err, "no PEM certificate"), "%s", err);
	cr_assert_eq(trust_load("Cluster", at("ca1.pem"), NULL, &t, err), -EINVAL);
}

Test(identity, ed25519_ca_signs_too)
{
	struct ca *ca = ca_or_die("ca3");
	struct trust *t = trust_or_die("ca3.pem", NULL);
	struct svid *s = issue_or_die(ca, t, "ops", "default", 600);
	char err[IDENTITY_ERR_MAX] = "";
	struct spiffe_id id;

	cr_assert_eq(trust_verify(t, s->cert, NULL, &id, err), 0, "%s", err);
	svid_unref(s);
	trust_unref(t);
	ca_free(ca);
}

/* Drive both ends of a handshake over a non-blocking socketpair. 1 when
 * both finished, 0 when either failed.
 */
static int handshake(SSL *cli, SSL *srv)
{
	int cdone = 0, sdone = 0;

	for (int i = 0; i < 1000 && !(cdone && sdone); i++) {
		if (!cdone) {
			int r = SSL_do_handshake(cli);

			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(cli, r) != SSL_ERROR_WANT_READ)
				return 0;
		}
		if (!sdone) {
			int r = SSL_do_handshake(srv);

			if (r == 1)
				sdone = 1;
			else if (SSL_get_error(srv, r) != SSL_ERROR_WANT_READ)
				return 0;
		}
	}
	return cdone && sdone;
}

static void pair(SSL **cli, SSL **srv, const struct svid *c, const struct svid *s, int fds[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
	*cli = SSL_new(c->ctx);
	*srv = SSL_new(s->ctx);
	cr_assert(*cli && *srv);
	SSL_set_fd(*cli, fds[0]);
	SSL_set_fd(*srv, fds[1]);
	SSL_set_connect_state(*cli);
	SSL_set_accept_state(*srv);
}

Test(identity, tls13_handshake_both_sides_see_the_peer_identity)
{
	struct ca *ca1 = ca_or_die("ca1"), *ca2 = ca_or_die("ca2");
	struct trust *t = trust_or_die("ca1.pem", NULL);
	struct svid *client = issue_or_die(ca1, t, "shop", "frontend", 3600);
	struct svid *server = issue_or_die(ca1, t, "shop", "cart", 3600);
	struct svid *rogue = issue_or_die(ca2, t, "shop", "frontend", 3600);
	struct spiffe_id id;
	SSL *cli, *srv;
	char buf[8];
	int fds[2];

	pair(&cli, &srv, client, server, fds);
	cr_assert(handshake(cli, srv));
	cr_assert_eq(SSL_version(cli), TLS1_3_VERSION);
	cr_assert_eq(svid_peer(cli, "cluster.local", &id), 0);
	cr_assert_str_eq(id.sa, "cart");
	cr_assert_eq(svid_peer(srv, "cluster.local", &id), 0);
	cr_assert_str_eq(id.sa, "frontend");
	/* The chain is built once per SVID and leaves out the self-signed
	 * root: the client received the server's certificate alone.
	 */
	cr_assert_eq(sk_X509_num(SSL_get_peer_cert_chain(cli)), 1);
	cr_assert_eq(SSL_get_verify_result(cli), X509_V_OK);
	cr_assert_eq(SSL_write(cli, "hello", 5), 5);
	cr_assert_eq(SSL_read(srv, buf, sizeof(buf)), 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	SSL_free(cli);
	SSL_free(srv);
	close(fds[0]);
	close(fds[1]);

	/* A client whose certificate another CA signed is refused by the server. */
	pair(&cli, &srv, rogue, server, fds);
	cr_assert_not(handshake(cli, srv));
	cr_assert_neq(svid_peer(srv, "cluster.local", &id), 0);
	SSL_free(cli);
	SSL_free(srv);
	close(fds[0]);
	close(fds[1]);
	ERR_clear_error();
	svid_unref(client);
	svid_unref(server);
	svid_unref(rogue);
	trust_unref(t);
	ca_free(ca1);
	ca_free(ca2);
}

/* One connection from @c to @s, the client going to destination @key:
 * handshake, then a byte each way (with the server's byte the client reads
 * the ticket sent after the handshake). 1 when both sides resumed a
 * session, 0 after a full handshake, -1 when the handshake failed; whether
 * the client offered a session in *@offered, the identities each side
 * read in @cli_saw and @srv_saw.
 */
static int connect_once(const struct svid *c, const struct svid *s, const char *key,
			bool *offered, struct spiffe_id *cli_saw, struct spiffe_id *srv_saw)
{
	SSL *cli, *srv;
	char b;
	int fds[2], ret = -1;

	pair(&cli, &srv, c, s, fds);
	*offered = svid_session_offer(cli, key);
	if (handshake(cli, srv)) {
		cr_assert_eq(svid_peer(cli, "cluster.local", cli_saw), 0);
		cr_assert_eq(svid_peer(srv, "cluster.local", srv_saw), 0);
		cr_assert_eq(SSL_session_reused(cli), SSL_session_reused(srv));
		cr_assert_eq(SSL_write(cli, "x", 1), 1);
		cr_assert_eq(SSL_read(srv, &b, 1), 1);
		cr_assert_eq(SSL_write(srv, "y", 1), 1);
		cr_assert_eq(SSL_read(cli, &b, 1), 1);
		ret = SSL_session_reused(cli);
	}
	SSL_free(cli);
	SSL_free(srv);
	close(fds[0]);
	close(fds[1]);
	ERR_clear_error();
	return ret;
}

Test(identity, resumption_keeps_the_peer_identity_and_goes_with_the_context)
{
	struct ca *ca1 = ca_or_die("ca1");
	struct trust *t = trust_or_die("ca1.pem", NULL), *t2 = trust_or_die("ca2.pem", NULL);
	struct svid *client = issue_or_die(ca1, t, "shop", "frontend", 3600);
	struct svid *server = issue_or_die(ca1, t, "shop", "cart", 3600);
	struct svid *renewed = NULL, *distrusting = NULL;
	struct spiffe_id c_saw, s_saw;
	bool offered;

	/* The first connection to a destination: a full handshake, and a ticket. */
	cr_assert_eq(connect_once(client, server, "10.0.0.1 shop/cart", &offered, &c_saw, &s_saw),
		     0);
	cr_assert_not(offered);
	/* The second resumes it, and each side still reads the other's
	 * identity: from the certificate kept in the session.
	 */
	cr_assert_eq(connect_once(client, server, "10.0.0.1 shop/cart", &offered, &c_saw, &s_saw),
		     1);
	cr_assert(offered);
	cr_assert_str_eq(c_saw.sa, "cart");
	cr_assert_str_eq(s_saw.sa, "frontend");
	cr_assert_str_eq(s_saw.ns, "shop");
	/* Another destination has no session of its own yet. */
	cr_assert_eq(connect_once(client, server, "10.0.0.2 shop/cart", &offered, &c_saw, &s_saw),
		     0);
	cr_assert_not(offered);

	/* The server's SVID reissued (renewal, a new bundle): the old tickets
	 * are another context's, so the client's offer is ignored and a full
	 * handshake checks its certificate — refused once the new bundle no
	 * longer trusts the client's CA.
	 */
	distrusting = issue_or_die(ca1, t2, "shop", "cart", 3600);
	cr_assert_eq(connect_once(client, distrusting, "10.0.0.1 shop/cart", &offered, &c_saw,
				  &s_saw),
		     -1);
	cr_assert(offered, "the client had a session for that destination");
	renewed = issue_or_die(ca1, t, "shop", "cart", 3600);
	cr_assert_eq(connect_once(client, renewed, "10.0.0.1 shop/cart", &offered, &c_saw, &s_saw),
		     0);
	cr_assert(offered);
	cr_assert_eq(connect_once(client, renewed, "10.0.0.1 shop/cart", &offered, &c_saw, &s_saw),
		     1);
	/* The client's SVID renewed: its new context has no session at all. */
	svid_unref(client);
	client = issue_or_die(ca1, t, "shop", "frontend", 3600);
	cr_assert_eq(connect_once(client, renewed, "10.0.0.1 shop/cart", &offered, &c_saw, &s_saw),
		     0);
	cr_assert_not(offered);

	svid_unref(client);
	svid_unref(server);
	svid_unref(renewed);
	svid_unref(distrusting);
	trust_unref(t);
	trust_unref(t2);
	ca_free(ca1);
}

/* A session whose server certificate has expired is neither offered by the
 * client nor, had it been, accepted by the server: the next connection
 * shows certificates again.
 */
Test(identity, no_resumption_past_the_peer_certificate)
{
	struct ca *ca1 = ca_or_die("ca1");
	struct trust *t = trust_or_die("ca1.pem", NULL);
	struct svid *client = issue_or_die(ca1, t, "shop", "frontend", 3600);
	struct svid *server = issue_or_die(ca1, t, "shop", "cart", 2);
	struct spiffe_id c_saw, s_saw;
	bool offered;

	cr_assert_eq(connect_once(client, server, "k", &offered, &c_saw, &s_saw), 0);
	cr_assert_eq(connect_once(client, server, "k", &offered, &c_saw, &s_saw), 1);
	/* The server's certificate expires 2 s after issuance. */
	while (time(NULL) <= server->not_after)
		usleep(100000);
	cr_assert_eq(connect_once(client, server, "k", &offered, &c_saw, &s_saw), -1,
		     "the client accepted an expired server certificate");
	cr_assert_not(offered, "a session with an expired server certificate was offered");
	svid_unref(client);
	svid_unref(server);
	trust_unref(t);
	ca_free(ca1);
}

Test(identity, idset_issues_renews_and_drops)
{
	struct ca *ca = ca_or_die("ca1");
	struct trust *t = trust_or_die("ca1.pem", NULL);
	struct idset_issuer iss = { .issue = idset_issue_standalone, .ctx = &ca,
				    .kind = "standalone" };
	struct idset *set = idset_new(&iss, t, 3600);
	struct spiffe_id ids[3] = {
		{ .ns = "shop", .sa = "web" },
		{ .ns = "ops", .sa = "default" },
		{ .ns = "shop", .sa = "web" },
	};
	struct svid *held, *now_held;
	char old_serial[41];
	time_t next;

	cr_assert_not_null(set);
	cr_assert_eq(idset_sync(set, ids, 3), 0);
	cr_assert_eq(idset_count(set), 2, "one per identity, however many pods");
	cr_assert_str_eq(idset_at(set, 0)->id.ns, "ops");
	held = idset_get(set, "shop", "web");
	cr_assert_not_null(held);
	snprintf(old_serial, sizeof(old_serial), "%s", held->serial);
	/* Nothing due yet: the next renewal is the earlier of the two (they
	 * were issued a second apart when a second ticked in between).
	 */
	next = idset_renew(set, time(NULL));
	cr_assert_eq(next, idset_at(set, 0)->renew_at < idset_at(set, 1)->renew_at ?
				   idset_at(set, 0)->renew_at : idset_at(set, 1)->renew_at);
	cr_assert_leq(next, held->renew_at);
	/* Past half-life: renewed; the held one still works for its connection. */
	idset_renew(set, held->renew_at + 1);
	now_held = idset_get(set, "shop", "web");
	cr_assert_str_neq(now_held->serial, old_serial);
	cr_assert_geq(now_held->not_after, held->not_after);
	{
		SSL *ssl = SSL_new(held->ctx);

		cr_assert_not_null(ssl, "the renewed-away context is alive while held");
		SSL_free(ssl);
	}
	svid_unref(held);
	svid_unref(now_held);
	/* New identities around kept ones: the kept keep their SVID. */
	{
		struct spiffe_id more[4] = {
			{ .ns = "a", .sa = "x" }, { .ns = "ops", .sa = "default" },
			{ .ns = "shop", .sa = "web" }, { .ns = "zz", .sa = "z" },
		};
		const struct svid *ops = idset_at(set, 0);

		cr_assert_eq(idset_sync(set, more, 4), 0);
		cr_assert_eq(idset_count(set), 4);
		cr_assert_eq(idset_at(set, 1), ops, "kept, not reissued");
		cr_assert_str_eq(idset_at(set, 3)->id.ns, "zz");
	}
	/* The ops pod left. */
	cr_assert_eq(idset_sync(set, ids, 1), 0);
	cr_assert_eq(idset_count(set), 1);
	cr_assert_null(idset_get(set, "ops", "default"));
	idset_free(set);
	trust_unref(t);
	ca_free(ca);
}

/* PEM of @x, a new string. */
static char *pem_of(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	BUF_MEM *mem;
	char *s;

	cr_assert(bio && PEM_write_bio_X509(bio, x));
	BIO_get_mem_ptr(bio, &mem);
	s = strndup(mem->data, mem->length);
	BIO_free(bio);
	return s;
}

Test(identity, csr_round_trip_signs_only_the_checked_identity_and_key)
{
	const char *uri = "spiffe://cluster.local/ns/shop/sa/web";
	struct ca *ca = ca_or_die("ca1");
	struct trust *t = trust_or_die("ca1.pem", NULL);
	char err[IDENTITY_ERR_MAX] = "", *csr = NULL, *pem;
	EVP_PKEY *key = svid_key_new(), *pub = NULL;
	struct svid *s = NULL;
	X509 *cert = NULL;

	cr_assert_not_null(key);
	cr_assert_eq(csr_make(key, uri, &csr, err), 0, "%s", err);
	/* Another identity than the request: refused as such. */
	cr_expect_eq(csr_check(csr, strlen(csr), "spiffe://cluster.local/ns/shop/sa/admin", &pub,
			       err), -EACCES);
	cr_expect_null(pub);
	/* Garbage, and a request whose signature was tampered with. */
	cr_expect_eq(csr_check("nope", 4, uri, &pub, err), -EBADMSG);
	{
		char *bad = strdup(csr);

		/* Flip a character inside the base64 of the signature (the end). */
		bad[strlen(bad) - 40] = bad[strlen(bad) - 40] == 'A' ? 'B' : 'A';
		cr_expect_neq(csr_check(bad, strlen(bad), uri, &pub, err), 0);
		cr_expect_null(pub);
		free(bad);
	}
	cr_assert_eq(csr_check(csr, strlen(csr), uri, &pub, err), 0, "%s", err);
	cr_assert_eq(ca_sign(ca, pub, uri, 600, &cert, err), 0, "%s", err);
	pem = pem_of(cert);
	/* The agent's side: the answer must be for its key and identity. */
	cr_assert_eq(svid_from_pem(key, t, "shop", "web", pem, &s, err), 0, "%s", err);
	cr_expect_str_eq(s->uri, uri);
	cr_expect_not_null(s->ctx);
	{
		EVP_PKEY *other = svid_key_new();
		struct svid *no = NULL;

		/* Someone else's key: refused. svid_from_pem() takes @other. */
		cr_expect_neq(svid_from_pem(other, t, "shop", "web", pem, &no, err), 0);
		cr_expect_null(no);
	}
	{
		EVP_PKEY *again = EVP_PKEY_dup(s->key);
		struct svid *no = NULL;

		/* Right key, but another identity than asked: refused. */
		cr_expect_eq(svid_from_pem(again, t, "shop", "admin", pem, &no, err), -EKEYREJECTED);
		cr_expect_null(no);
	}
	{
		struct trust *t2 = trust_or_die("ca2.pem", NULL);
		struct svid *no = NULL;

		/* A certificate from a CA outside the bundle: refused. */
		cr_expect_eq(svid_from_pem(EVP_PKEY_dup(s->key), t2, "shop", "web", pem, &no, err),
			     -EKEYREJECTED);
		trust_unref(t2);
	}
	svid_unref(s);
	free(pem);
	free(csr);
	X509_free(cert);
	EVP_PKEY_free(pub);
	trust_unref(t);
	ca_free(ca);
}

Test(identity, serving_certificate_names_dns_and_ip)
{
	struct ca *ca = ca_or_die("ca1");
	char err[IDENTITY_ERR_MAX] = "";
	EVP_PKEY *key = svid_key_new();
	X509 *cert = NULL;

	cr_assert_eq(ca_sign_serving(ca, key, "weft-ca.weft-system.svc,127.0.0.1", 600, &cert, err),
		     0, "%s", err);
	cr_expect_eq(X509_check_host(cert, "weft-ca.weft-system.svc", 0, 0, NULL), 1);
	cr_expect_eq(X509_check_ip_asc(cert, "127.0.0.1", 0), 1);
	cr_expect_neq(X509_check_host(cert, "evil.example", 0, 0, NULL), 1);
	X509_free(cert);
	cr_expect_eq(ca_sign_serving(ca, key, "a,,b", 600, &cert, err), -EINVAL);
	cr_expect_eq(ca_sign_serving(ca, key, "URI:spiffe://x", 600, &cert, err), -EINVAL);
	EVP_PKEY_free(key);
	ca_free(ca);
}

/* An issuer that answers later, as weft-ca does: counts what it is asked. */
struct later {
	int asked;
	char last_ns[64], last_sa[64];
};

static int issue_later(void *ctx, struct trust *t, const char *ns, const char *sa,
		       uint32_t ttl_s, struct svid **out, char *err)
{
	struct later *l = ctx;

	(void)t, (void)ttl_s, (void)out, (void)err;
	l->asked++;
	snprintf(l->last_ns, sizeof(l->last_ns), "%s", ns);
	snprintf(l->last_sa, sizeof(l->last_sa), "%s", sa);
	return -EINPROGRESS;
}

Test(identity, idset_waits_for_an_asynchronous_issuer)
{
	struct ca *ca = ca_or_die("ca1");
	struct trust *t = trust_or_die("ca1.pem", NULL);
	struct later l = { 0 };
	struct idset_issuer iss = { .issue = issue_later, .ctx = &l, .kind = "weft-ca" };
	struct idset *set = idset_new(&iss, t, 3600);
	struct spiffe_id ids[2] = { { .ns = "shop", .sa = "web" }, { .ns = "ops", .sa = "cron" } };
	struct svid *s = issue_or_die(ca, t, "shop", "web", 3600);
	struct svid *dropped = issue_or_die(ca, t, "ops", "cron", 3600);

	cr_assert_eq(idset_sync(set, ids, 2), 0, "under way is not a failure");
	cr_expect_eq(l.asked, 2);
	cr_expect_eq(idset_count(set), 0);
	cr_expect_eq(idset_pending(set), 2);
	/* Asked once only while under way. */
	cr_assert_eq(idset_sync(set, ids, 2), 0);
	cr_expect_eq(l.asked, 2);
	cr_expect(idset_put(set, s));
	cr_expect_eq(idset_count(set), 1);
	cr_expect_eq(idset_pending(set), 1);
	/* ops/cron leaves before its answer: the answer is dropped. */
	cr_assert_eq(idset_sync(set, ids, 1), 0);
	cr_expect_eq(idset_pending(set), 0);
	cr_expect_not(idset_put(set, dropped));
	cr_expect_eq(idset_count(set), 1);
	/* A failure is retried at the next renewal pass, soon. */
	cr_assert_eq(idset_sync(set, ids, 2), 0);
	idset_failed(set, "ops", "cron");
	cr_expect_leq(idset_renew(set, time(NULL)), time(NULL) + 5);
	cr_expect_str_eq(l.last_sa, "cron");
	cr_expect_eq(idset_pending(set), 1);
	cr_expect_str_eq(idset_issuer_kind(set), "weft-ca");
	svid_unref(s);
	svid_unref(dropped);
	idset_free(set);
	trust_unref(t);
	ca_free(ca);
}
