// SPDX-License-Identifier: GPL-2.0-only
/* weft-ca's requests: one detached thread per connection (at most
 * --max-conns at once), blocking TLS 1.3 with socket timeouts, HTTP/1.1
 * with one request per connection. POST /v1/sign authenticates the caller
 * (TokenReview), authorizes the identity (a running pod of it on the
 * caller's node), checks the CSR and signs with ca_sign(); GET /v1/status
 * and GET /metrics say what it has done. Every refusal is counted by reason.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/ca.h"
#include "clock.h"
#include "json_help.h"
#include "log.h"
#include "opt.h"
#include "spiffe.h"

#define REQ_HEAD_MAX 8192
#define REQ_BODY_MAX (64u << 10)	/* a CSR and an ID, with room */
#define IO_TIMEOUT_S 10
/* The whole request must arrive within this: a client trickling bytes
 * cannot hold one of the --max-conns threads for long.
 */
#define REQ_DEADLINE_MS 15000

const char *const ca_refusal_names[CA_REFUSED_N] = {
	[CA_REFUSED_BAD_REQUEST] = "bad_request",
	[CA_REFUSED_UNAUTHENTICATED] = "unauthenticated",
	[CA_REFUSED_WRONG_ACCOUNT] = "wrong_account",
	[CA_REFUSED_NO_NODE] = "no_node",
	[CA_REFUSED_NOT_ON_NODE] = "not_on_node",
	[CA_REFUSED_BAD_CSR] = "bad_csr",
	[CA_REFUSED_ID_MISMATCH] = "id_mismatch",
	[CA_REFUSED_API_ERROR] = "api_error",
};

static const int refusal_status[CA_REFUSED_N] = {
	[CA_REFUSED_BAD_REQUEST] = 400, [CA_REFUSED_UNAUTHENTICATED] = 401,
	[CA_REFUSED_WRONG_ACCOUNT] = 403, [CA_REFUSED_NO_NODE] = 403,
	[CA_REFUSED_NOT_ON_NODE] = 403, [CA_REFUSED_BAD_CSR] = 400,
	[CA_REFUSED_ID_MISMATCH] = 400, [CA_REFUSED_API_ERROR] = 503,
};

struct conn {
	struct ca_server *srv;
	int fd;
	SSL *ssl;
	char head[REQ_HEAD_MAX + 1];
	char method[8], path[256];
	char token[8192];
	size_t body_len;
	char *body;
	uint64_t deadline_ms;	/* monotonic: the request must be in by then */
};

struct reply {
	int status;
	const char *type;
	char *body;	/* owned */
};

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	default: return "Service Unavailable";
	}
}

static void reply_json(struct reply *r, int status, json_object *o)
{
	r->status = status;
	r->type = "application/json";
	r->body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

/* Count and answer refusal @why with @msg. */
static void refuse(struct conn *c, struct reply *r, enum ca_refusal why, const char *who,
		   const char *msg)
{
	json_object *o = json_object_new_object();

	atomic_fetch_add(&c->srv->refused[why], 1);
	log_info("weft-ca: refused %s: %s: %s", who[0] ? who : "a caller", ca_refusal_names[why],
		 msg);
	if (o) {
		(void)(json_add_str(o, "reason", ca_refusal_names[why]) |
		       json_add_str(o, "message", msg));
	}
	reply_json(r, refusal_status[why], o);
}

/* PEM of @x, a new string or NULL. */
static char *cert_pem(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	BUF_MEM *mem;
	char *s = NULL;

	if (bio && PEM_write_bio_X509(bio, x)) {
		BIO_get_mem_ptr(bio, &mem);
		s = strndup(mem->data, mem->length);
	}
	BIO_free(bio);
	return s;
}

/* Who is calling: the TokenReview, the ServiceAccount, the node. */
static bool authenticate(struct conn *c, struct reply *r, struct ca_caller *who)
{
	const struct ca_config *cfg = c->srv->cfg;
	char err[512] = "", want[320];
	int rc;

	if (!c->token[0]) {
		refuse(c, r, CA_REFUSED_UNAUTHENTICATED, "", "no bearer token");
		return false;
	}
	rc = ca_kube_review(&c->srv->kube, c->token, cfg->audience, who, err, sizeof(err));
	if (rc == -EACCES) {
		refuse(c, r, CA_REFUSED_UNAUTHENTICATED, "", err);
		return false;
	}
	if (rc) {
		refuse(c, r, CA_REFUSED_API_ERROR, "", err[0] ? err : "TokenReview failed");
		return false;
	}
	snprintf(want, sizeof(want), "system:serviceaccount:%s", cfg->agent_sa);
	if (strcmp(who->user, want)) {
		snprintf(err, sizeof(err), "'%s' is not the agents' ServiceAccount", who->user);
		refuse(c, r, CA_REFUSED_WRONG_ACCOUNT, who->user, err);
		return false;
	}
	/* Older clusters put no node in the token: the bound pod's. */
	if (!who->node[0] && who->pod_name[0]) {
		const char *ns = cfg->agent_sa;
		size_t n = strcspn(ns, ":");

		snprintf(who->pod_ns, sizeof(who->pod_ns), "%.*s", (int)n, ns);
		rc = ca_kube_pod_node(&c->srv->kube, who->pod_ns, who->pod_name, who->node,
				      sizeof(who->node));
		if (rc == -EIO) {
			refuse(c, r, CA_REFUSED_API_ERROR, who->user, "reading the caller's pod");
			return false;
		}
	}
	if (!who->node[0]) {
		refuse(c, r, CA_REFUSED_NO_NODE, who->user,
		       "the token is not bound to a pod on a node");
		return false;
	}
	return true;
}

static void handle_sign(struct conn *c, struct reply *r)
{
	const struct ca_config *cfg = c->srv->cfg;
	json_object *req = NULL, *o;
	struct ca_caller who;
	struct spiffe_id id;
	char err[IDENTITY_ERR_MAX] = "", who_s[600];
	const char *uri, *csr;
	EVP_PKEY *pub = NULL;
	X509 *cert = NULL;
	char *pem = NULL;
	int rc;

	if (!authenticate(c, r, &who))
		return;
	snprintf(who_s, sizeof(who_s), "node %s", who.node);
	req = c->body ? json_tokener_parse(c->body) : NULL;
	uri = json_member_str(req, "spiffe_id");
	csr = json_member_str(req, "csr");
	if (!uri || !csr) {
		refuse(c, r, CA_REFUSED_BAD_REQUEST, who_s, "the body must be JSON with spiffe_id and csr");
		goto out;
	}
	if (spiffe_id_parse(uri, &id) || strcmp(id.td, cfg->trust_domain)) {
		snprintf(err, sizeof(err), "'%.300s' is not a workload identity of trust domain %s",
			 uri, cfg->trust_domain);
		refuse(c, r, CA_REFUSED_BAD_REQUEST, who_s, err);
		goto out;
	}
	rc = ca_kube_pod_on_node(&c->srv->kube, who.node, id.ns, id.sa);
	if (rc < 0) {
		refuse(c, r, CA_REFUSED_API_ERROR, who_s, "listing the node's pods");
		goto out;
	}
	if (!rc) {
		snprintf(err, sizeof(err), "no running pod of %s/sa/%s on node %s", id.ns, id.sa,
			 who.node);
		refuse(c, r, CA_REFUSED_NOT_ON_NODE, who_s, err);
		goto out;
	}
	/* From the CSR, the public key and nothing else: the identity signed
	 * is the one authorized above, which the CSR must name too.
	 */
	rc = csr_check(csr, strlen(csr), uri, &pub, err);
	if (rc) {
		refuse(c, r, rc == -EACCES ? CA_REFUSED_ID_MISMATCH : CA_REFUSED_BAD_CSR, who_s, err);
		goto out;
	}
	pthread_rwlock_rdlock(&c->srv->store.lock);
	rc = ca_sign(c->srv->store.signer, pub, uri, cfg->svid_ttl_s, &cert, err);
	o = json_object_new_object();
	pem = rc ? NULL : cert_pem(cert);
	if (o && pem)
		(void)(json_add_str(o, "certificate", pem) |
		       json_add_str(o, "bundle", c->srv->store.bundle_pem) |
		       json_add_str(o, "issuer", c->srv->store.signer_name));
	pthread_rwlock_unlock(&c->srv->store.lock);
	if (rc || !pem || !o) {
		json_object_put(o);
		log_warn("weft-ca: signing %s for %s failed: %s, ignoring", uri, who_s, err);
		r->status = 503;
		goto out;
	}
	atomic_fetch_add(&c->srv->signed_total, 1);
	log_info("weft-ca: signed %s for %s", uri, who_s);
	reply_json(r, 200, o);
out:
	free(pem);
	X509_free(cert);
	EVP_PKEY_free(pub);
	json_object_put(req);
}

static void handle_status(struct conn *c, struct reply *r)
{
	struct ca_server *srv = c->srv;
	json_object *o = json_object_new_object(), *ref = json_object_new_object();

	if (!o || !ref) {
		json_object_put(o);
		json_object_put(ref);
		r->status = 503;
		return;
	}
	for (int i = 0; i < CA_REFUSED_N; i++)
		json_object_object_add(ref, ca_refusal_names[i],
				       json_object_new_uint64(atomic_load(&srv->refused[i])));
	pthread_rwlock_rdlock(&srv->store.lock);
	json_object_object_add(o, "signer", json_object_new_string(srv->store.signer_name));
	json_object_object_add(o, "signer_not_after",
			       json_object_new_int64(srv->store.signer_not_after));
	json_object_object_add(o, "bundle_cas", json_object_new_uint64(srv->store.n_bundle));
	pthread_rwlock_unlock(&srv->store.lock);
	json_object_object_add(o, "version", json_object_new_string(WEFT_VERSION));
	json_object_object_add(o, "trust_domain", json_object_new_string(srv->cfg->trust_domain));
	json_object_object_add(o, "svid_ttl_s", json_object_new_uint64(srv->cfg->svid_ttl_s));
	json_object_object_add(o, "uptime_s", json_object_new_int64(time(NULL) - srv->started));
	json_object_object_add(o, "signed", json_object_new_uint64(atomic_load(&srv->signed_total)));
	json_object_object_add(o, "refused", ref);
	json_object_object_add(o, "bundle_published",
			       json_object_new_int64(atomic_load(&srv->bundle_published)));
	reply_json(r, 200, o);
}

static void handle_metrics(struct conn *c, struct reply *r)
{
	struct ca_server *srv = c->srv;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		r->status = 503;
		return;
	}
	fprintf(f, "# HELP weft_ca_signed_total Workload certificates signed.\n"
		   "# TYPE weft_ca_signed_total counter\nweft_ca_signed_total %llu\n",
		(unsigned long long)atomic_load(&srv->signed_total));
	fprintf(f, "# HELP weft_ca_refused_total Signing requests refused, by reason.\n"
		   "# TYPE weft_ca_refused_total counter\n");
	for (int i = 0; i < CA_REFUSED_N; i++)
		fprintf(f, "weft_ca_refused_total{reason=\"%s\"} %llu\n", ca_refusal_names[i],
			(unsigned long long)atomic_load(&srv->refused[i]));
	fprintf(f, "# HELP weft_ca_connections_dropped_total Connections closed at once: --max-conns were being served.\n"
		   "# TYPE weft_ca_connections_dropped_total counter\n"
		   "weft_ca_connections_dropped_total %llu\n",
		(unsigned long long)atomic_load(&srv->conns_dropped));
	pthread_rwlock_rdlock(&srv->store.lock);
	fprintf(f, "# HELP weft_ca_signer_expiry_timestamp_seconds When the signing CA expires.\n"
		   "# TYPE weft_ca_signer_expiry_timestamp_seconds gauge\n"
		   "weft_ca_signer_expiry_timestamp_seconds %lld\n"
		   "# HELP weft_ca_bundle_certificates CA certificates in the published bundle.\n"
		   "# TYPE weft_ca_bundle_certificates gauge\nweft_ca_bundle_certificates %zu\n",
		(long long)srv->store.signer_not_after, srv->store.n_bundle);
	pthread_rwlock_unlock(&srv->store.lock);
	if (fclose(f)) {
		free(text);
		r->status = 503;
		return;
	}
	r->status = 200;
	r->type = "text/plain; version=0.0.4";
	r->body = text;
}

/* Read the request head and body. 0, or the HTTP status to answer with. */
static int read_request(struct conn *c)
{
	size_t got = 0, want;
	char *end = NULL, *p, *line;
	int n;

	while (!end) {
		if (got == REQ_HEAD_MAX)
			return 413;
		if (mono_ms() > c->deadline_ms)
			return -1;
		n = SSL_read(c->ssl, c->head + got, (int)(REQ_HEAD_MAX - got));
		if (n <= 0)
			return -1;
		got += (size_t)n;
		c->head[got] = '\0';
		end = strstr(c->head, "\r\n\r\n");
	}
	if (sscanf(c->head, "%7s %255s HTTP/1.", c->method, c->path) != 2)
		return 400;
	want = 0;
	*end = '\0';
	for (line = strstr(c->head, "\r\n"); line; line = strstr(line, "\r\n")) {
		line += 2;
		if (!strncasecmp(line, "Content-Length:", 15)) {
			char num[16];
			uint32_t v;

			p = line + 15 + strspn(line + 15, " \t");
			n = (int)strcspn(p, "\r\n \t");
			if (n <= 0 || (size_t)n >= sizeof(num))
				return 400;
			memcpy(num, p, (size_t)n);
			num[n] = '\0';
			if (opt_parse_u32(num, 0, UINT32_MAX, &v))
				return 400;
			if (v > REQ_BODY_MAX)
				return 413;
			want = v;
		} else if (!strncasecmp(line, "Authorization: Bearer ", 22)) {
			n = (int)strcspn(line + 22, "\r\n");
			if ((size_t)n >= sizeof(c->token))
				return 400;
			memcpy(c->token, line + 22, (size_t)n);
			c->token[n] = '\0';
		}
	}
	c->body = calloc(1, want + 1);
	if (!c->body)
		return 503;
	got -= (size_t)(end + 4 - c->head);
	if (got > want)
		return 400;
	memcpy(c->body, end + 4, got);
	while (got < want) {
		if (mono_ms() > c->deadline_ms)
			return -1;
		n = SSL_read(c->ssl, c->body + got, (int)(want - got));
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	c->body_len = want;
	return 0;
}

static void send_reply(struct conn *c, const struct reply *r)
{
	char head[256];
	size_t blen = r->body ? strlen(r->body) : 0;
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 r->status, status_text(r->status), r->type ? r->type : "text/plain", blen);

	if (SSL_write(c->ssl, head, n) > 0 && blen)
		(void)SSL_write(c->ssl, r->body, (int)blen);
	(void)SSL_shutdown(c->ssl);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct ca_server *srv = c->srv;
	struct reply r = { .status = 404 };
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	int rc;

	c->deadline_ms = mono_ms() + REQ_DEADLINE_MS;
	(void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	pthread_rwlock_rdlock(&c->srv->store.lock);
	c->ssl = SSL_new(c->srv->store.serving);
	pthread_rwlock_unlock(&c->srv->store.lock);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || SSL_accept(c->ssl) != 1)
		goto out;
	rc = read_request(c);
	if (rc < 0)
		goto out;
	if (rc) {
		r.status = rc;
	} else if (!strcmp(c->path, "/v1/sign")) {
		if (strcmp(c->method, "POST"))
			r.status = 405;
		else
			handle_sign(c, &r);
	} else if (!strcmp(c->path, "/v1/status") && !strcmp(c->method, "GET")) {
		handle_status(c, &r);
	} else if (!strcmp(c->path, "/metrics") && !strcmp(c->method, "GET")) {
		handle_metrics(c, &r);
	}
	send_reply(c, &r);
out:
	ERR_clear_error();
	free(r.body);
	SSL_free(c->ssl);
	close(c->fd);
	free(c->body);
	/* The token is a credential: not left behind in freed memory. */
	OPENSSL_cleanse(c->token, sizeof(c->token));
	free(c);
	/* OpenSSL's per-thread state, freed before the thread ends. */
	OPENSSL_thread_stop();
	/* Last: a stopping weft-ca waits for this count before freeing. */
	atomic_fetch_sub(&srv->conns, 1);
	return NULL;
}

void ca_serve_conn(struct ca_server *srv, int fd)
{
	struct conn *c;
	pthread_attr_t attr;
	pthread_t t;

	if (atomic_fetch_add(&srv->conns, 1) >= srv->cfg->max_conns) {
		atomic_fetch_sub(&srv->conns, 1);
		atomic_fetch_add(&srv->conns_dropped, 1);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || pthread_attr_init(&attr)) {
		free(c);
		goto fail;
	}
	c->srv = srv;
	c->fd = fd;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, conn_main, c)) {
		pthread_attr_destroy(&attr);
		free(c);
		goto fail;
	}
	pthread_attr_destroy(&attr);
	return;
fail:
	atomic_fetch_sub(&srv->conns, 1);
	close(fd);
}
