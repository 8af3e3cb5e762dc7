// SPDX-License-Identifier: GPL-2.0-only
/* The node's workload identities (agent.h), part of the wiring: with
 * --ca-cert/--ca-key, one SVID per (namespace, service account) that has a
 * meshed pod on this node, kept by agent/identity/idset.c. Synced after each
 * publish and each CNI ADD/DEL; a timer renews at half-life and reloads the
 * CA and bundle files when they change (a CA rotation: docs/mtls.md).
 *
 * A pod's service account is its Pod object's (Kubernetes, or a Pod entry of
 * a file/etcd/ZooKeeper registry); a pod the registry has no Pod for runs as
 * "default", as the API server would have made it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "agent.h"
#include "ca_client.h"
#include "config.h"
#include "json_help.h"
#include "identity/identity.h"
#include "log.h"
#include "model/catalogue.h"
#include "pods.h"
#include "proxy/mtls.h"
#include "proxy/workers.h"

/* Renewal and file checks at least this often. */
#define IDENTITY_TICK_MS 30000

static struct agent *agent_of(struct loop_timer *t)
{
	return (struct agent *)((char *)t - offsetof(struct agent, identity_timer));
}

/* The modification times of the CA and bundle files, to notice a rotation. */
static void files_mtime(const struct agent_config *cfg, struct timespec out[3])
{
	const char *paths[3] = { cfg->ca_cert, cfg->ca_key, cfg->trust_bundle };
	struct stat st;

	for (int i = 0; i < 3; i++)
		out[i] = paths[i][0] && !stat(paths[i], &st) ? st.st_mtim : (struct timespec){ 0 };
}

/* Load the issuer and the bundle from the files. 0 or -errno (logged). With
 * weft-ca there is no CA here: the bundle is the file of the weft-ca-bundle
 * ConfigMap.
 */
static int load(const struct agent_config *cfg, struct ca **ca, struct trust **t)
{
	char err[IDENTITY_ERR_MAX] = "";
	int rc;

	*ca = NULL;
	if (cfg->ca_url[0]) {
		rc = trust_load(cfg->trust_domain, cfg->trust_bundle, NULL, t, err);
		return rc ? log_errno(rc, "identity: --trust-bundle: %s", err) : 0;
	}
	rc = ca_load(cfg->ca_cert, cfg->ca_key, ca, err);
	if (rc)
		return log_errno(rc, "identity: --ca-cert/--ca-key: %s", err);
	/* The CA's own certificate is trusted, plus the overlap bundle. */
	rc = trust_load(cfg->trust_domain, cfg->ca_cert, cfg->trust_bundle, t, err);
	if (rc) {
		ca_free(*ca);
		return log_errno(rc, "identity: trust bundle: %s", err);
	}
	return 0;
}

static void publish_mtls(struct agent *a);
static void arm(struct agent *a, time_t next);

/* One signing request to weft-ca under way. */
struct sign_req {
	struct agent *a;
	EVP_PKEY *key;		/* never leaves this process */
	char ns[SPIFFE_NS_MAX], sa[SPIFFE_SA_MAX];
};

static void sign_req_free(struct sign_req *r)
{
	EVP_PKEY_free(r->key);
	free(r);
}

/* weft-ca answered (or not) a signing request. */
static void on_signed(void *ctx, int status, const char *body, const char *cerr)
{
	struct sign_req *r = ctx;
	struct agent *a = r->a;
	char err[IDENTITY_ERR_MAX] = "";
	json_object *o = NULL;
	struct svid *s = NULL;
	const char *pem;
	int rc;

	if (status == -ECANCELED)
		goto out;
	if (status != 200) {
		o = json_tokener_parse(body);
		if (status < 0)
			log_warn("identity: %s/%s: no answer from weft-ca: %s; retried in a few "
				 "seconds", r->ns, r->sa, cerr[0] ? cerr : strerror(-status));
		else
			log_warn("identity: %s/%s: weft-ca answered %d (%s): %.300s; retried in a few "
				 "seconds", r->ns, r->sa, status,
				 o && json_member_str(o, "reason") ? json_member_str(o, "reason") : "-",
				 o && json_member_str(o, "message") ? json_member_str(o, "message")
								    : body);
		idset_failed(a->ids, r->ns, r->sa);
		goto out;
	}
	o = json_tokener_parse(body);
	pem = o ? json_member_str(o, "certificate") : NULL;
	if (!pem) {
		log_warn("identity: %s/%s: weft-ca's answer has no certificate", r->ns, r->sa);
		idset_failed(a->ids, r->ns, r->sa);
		goto out;
	}
	/* The bundle in force now, not the one of the request: a bundle that
	 * changed while the request was under way (a CA rotation) must be the
	 * one this certificate's connections trust.
	 */
	rc = svid_from_pem(r->key, idset_trust(a->ids), r->ns, r->sa, pem, &s, err);
	r->key = NULL;	/* taken */
	if (rc) {
		log_warn("identity: %s/%s: weft-ca's certificate refused: %s", r->ns, r->sa, err);
		idset_failed(a->ids, r->ns, r->sa);
		goto out;
	}
	if (idset_put(a->ids, s)) {
		arm(a, idset_renew(a->ids, time(NULL)));
		publish_mtls(a);
	}
	svid_unref(s);
out:
	json_object_put(o);
	sign_req_free(r);
}

static void on_ca_status(void *ctx, int status, const char *body, const char *err);

/* Ask weft-ca for its status, unless a request is under way. */
static void ask_ca_status(struct agent *a)
{
	if (a->ca_client && !a->ca_status_pending &&
	    !ca_client_request(a->ca_client, "/v1/status", NULL, on_ca_status, a))
		a->ca_status_pending = true;
}

/* idset_issuer.issue for weft-ca: a fresh key, its CSR, one request. */
static int issue_remote(void *ctx, struct trust *t, const char *ns, const char *sa,
			uint32_t ttl_s, struct svid **out, char *err)
{
	struct agent *a = ctx;
	struct sign_req *r = calloc(1, sizeof(*r));
	json_object *o = NULL;
	char uri[SPIFFE_ID_MAX], *csr = NULL;
	int rc;

	(void)ttl_s;	/* weft-ca's --svid-ttl decides */
	(void)out;
	if (!r)
		return -ENOMEM;
	r->a = a;
	snprintf(r->ns, sizeof(r->ns), "%s", ns);
	snprintf(r->sa, sizeof(r->sa), "%s", sa);
	rc = spiffe_id_fmt(uri, sizeof(uri), t->td, ns, sa);
	if (rc) {
		snprintf(err, IDENTITY_ERR_MAX, "%s/%s: no SPIFFE ID", ns, sa);
		goto fail;
	}
	r->key = svid_key_new();
	if (!r->key) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = csr_make(r->key, uri, &csr, err);
	if (rc)
		goto fail;
	o = json_object_new_object();
	rc = -ENOMEM;
	if (!o || json_add_str(o, "spiffe_id", uri) || json_add_str(o, "csr", csr))
		goto fail;
	rc = ca_client_request(a->ca_client, "/v1/sign",
			       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), on_signed,
			       r);
	if (rc) {
		snprintf(err, IDENTITY_ERR_MAX, "request to weft-ca: %s", strerror(-rc));
		goto fail;
	}
	json_object_put(o);
	free(csr);
	return -EINPROGRESS;
fail:
	json_object_put(o);
	free(csr);
	sign_req_free(r);
	return rc;
}

/* weft-ca's GET /v1/status, kept for meshctl. */
static void on_ca_status(void *ctx, int status, const char *body, const char *err)
{
	struct agent *a = ctx;

	(void)err;
	if (status == -ECANCELED)
		return;
	a->ca_status_pending = false;
	json_object_put(a->ca_status);
	a->ca_status = status == 200 ? json_tokener_parse(body) : NULL;
	a->ca_status_at = time(NULL);
}

static void on_tick(struct loop_timer *t, uint64_t now_ms);
static int identity_begin(struct agent *a);

static int pod_id_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct mtls_pod *)a)->pod_id, y = ((const struct mtls_pod *)b)->pod_id;

	return (x > y) - (x < y);
}

/* Parse allow-from @text (checked at decode) into a rule for @port. */
static void add_rule(struct mtls_pod *mp, uint16_t port, const char *text)
{
	struct mtls_rule *r;
	char bad[8];
	int n;

	for (size_t i = 0; i < mp->n_rules; i++)
		if (mp->rules[i].port == port)
			return;	/* two Services on one port: the first listed rules */
	if (mp->n_rules == MTLS_RULES_MAX) {
		log_warn("identity: pod %u: more than %d allow-from rules, port %u uses its "
			 "namespace's", mp->pod_id, MTLS_RULES_MAX, port);
		return;
	}
	r = &mp->rules[mp->n_rules];
	n = spiffe_allow_parse(text, r->allow, SPIFFE_ALLOW_MAX, bad, sizeof(bad));
	if (n <= 0)
		return;
	r->port = port;
	r->n = (size_t)n;
	mp->n_rules++;
}

/* @p's authorization: the allow-from of every Service port it backs (by its
 * target port), then its namespace's for every other port.
 */
static void pod_rules(const struct catalogue *c, const struct pod *p, struct mtls_pod *mp)
{
	const char *ns_rule = catalogue_ns_allow_from(c, p->spec.ns);
	const struct cat_service *svc;

	for (size_t i = 0; (svc = catalogue_service_at(c, i)); i++) {
		if (!svc->allow_from[0])
			continue;
		for (size_t k = 0; k < svc->n_ports; k++) {
			const struct cat_svc_port *sp = &svc->ports[k];

			for (size_t j = 0; j < sp->n_endpoints; j++) {
				const struct cat_pod *ep = sp->endpoints[j].pod;

				if (ep && !strcmp(ep->ns, p->spec.ns) &&
				    !strcmp(ep->name, p->spec.name))
					add_rule(mp, sp->endpoints[j].addr.port, svc->allow_from);
			}
		}
	}
	if (ns_rule[0])
		add_rule(mp, 0, ns_rule);
}

/* Build the proxy's mTLS table from the pods, the SVIDs and the catalogue,
 * and publish it to the workers.
 */
static void publish_mtls(struct agent *a)
{
	bool strict_default = !strcmp(a->cfg->mtls_mode, "strict");
	size_t cap = pods_count(a->pods, true), n = 0;
	struct mtls_table *t = mtls_table_new(a->cfg->trust_domain, cap);

	if (!t) {
		log_warn("identity: out of memory; the proxy keeps its previous mTLS table");
		return;
	}
	for (const struct pod *p = pods_first(a->pods); p && n < cap; p = p->next) {
		struct mtls_pod *mp = &t->pods[n];
		enum obj_mtls_mode mode;
		struct spiffe_id id;

		if (!p->meshed || agent_pod_identity(a, p->spec.ns, p->spec.name, &id))
			continue;
		mp->pod_id = p->id;
		mp->svid = idset_get(a->ids, id.ns, id.sa);
		mode = a->cat ? catalogue_ns_mtls_mode(a->cat, p->spec.ns) : OBJ_MTLS_UNSET;
		mp->strict = mode == OBJ_MTLS_UNSET ? strict_default : mode == OBJ_MTLS_STRICT;
		if (a->cat)
			pod_rules(a->cat, p, mp);
		n++;
	}
	t->n = n;
	qsort(t->pods, n, sizeof(t->pods[0]), pod_id_cmp);
	if (a->workers)
		workers_set_mtls(a->workers, t);
	mtls_table_unref(t);
}

static void arm(struct agent *a, time_t next)
{
	time_t now = time(NULL);
	uint64_t ms = IDENTITY_TICK_MS;
	int err;

	if (next && next > now && (uint64_t)(next - now) * 1000 < ms)
		ms = (uint64_t)(next - now) * 1000;
	else if (next && next <= now)
		ms = 1000;
	err = loop_timer_set(a->loop, &a->identity_timer, ms, on_tick);
	if (err)
		log_warn("identity: re-arm: %s; certificates will not be renewed", strerror(-err));
}

/* A CA rotation: new files replace the issuer and bundle, and every SVID is
 * reissued. Connections keep the SVID they started with.
 */
static void reload_if_changed(struct agent *a)
{
	struct timespec m[3];
	struct trust *t;
	struct ca *ca;

	files_mtime(a->cfg, m);
	if (!memcmp(m, a->identity_mtime, sizeof(m)))
		return;
	if (load(a->cfg, &ca, &t))
		return;		/* logged; the old issuer serves on */
	memcpy(a->identity_mtime, m, sizeof(m));
	ca_free(a->ca);
	a->ca = ca;
	idset_set_trust(a->ids, t);
	trust_unref(t);
	log_info("identity: CA or trust bundle files changed: %zu certificate(s) reissued",
		 idset_count(a->ids));
}

static void on_tick(struct loop_timer *timer, uint64_t now_ms)
{
	struct agent *a = agent_of(timer);

	(void)now_ms;
	if (!a->ids) {
		/* --ca-url before the weft-ca-bundle ConfigMap exists. */
		if (identity_begin(a) == -ENOENT)
			arm(a, 0);
		return;
	}
	reload_if_changed(a);
	ask_ca_status(a);
	arm(a, idset_renew(a->ids, time(NULL)));
	/* New connections take the renewed certificates. */
	publish_mtls(a);
}

/* Load what the options name and issue; -ENOENT (logged) when --ca-url's
 * bundle file is not there yet.
 */
static int identity_begin(struct agent *a)
{
	const struct agent_config *cfg = a->cfg;
	struct idset_issuer iss = { .issue = idset_issue_standalone, .ctx = &a->ca,
				    .kind = "standalone" };
	struct trust *t;
	int err;

	files_mtime(cfg, a->identity_mtime);
	if (cfg->ca_url[0] && access(cfg->trust_bundle, R_OK)) {
		log_warn("identity: --trust-bundle '%s': %s; no workload certificate until the "
			 "weft-ca-bundle ConfigMap is there (looked at again every %u s)",
			 cfg->trust_bundle, strerror(errno), IDENTITY_TICK_MS / 1000);
		return -ENOENT;
	}
	err = load(cfg, &a->ca, &t);
	if (err)
		return err;
	if (cfg->ca_url[0]) {
		struct ca_client_opts o = { .url = cfg->ca_url, .token_file = cfg->ca_token_file,
					    .bundle_file = cfg->trust_bundle };

		/* Reference counted by libcurl; this is the main thread. */
		if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
			trust_unref(t);
			return log_errno(-ENOMEM, "identity: libcurl");
		}
		a->ca_client = ca_client_new(a->loop, &o);
		if (!a->ca_client) {
			curl_global_cleanup();
			trust_unref(t);
			return log_errno(-ENOMEM, "identity");
		}
		iss = (struct idset_issuer){ .issue = issue_remote, .ctx = a, .kind = "weft-ca" };
	}
	a->ids = idset_new(&iss, t, cfg->svid_ttl_s);
	trust_unref(t);
	if (!a->ids)
		return log_errno(-ENOMEM, "identity");
	if (cfg->ca_url[0])
		log_info("identity: certificates from weft-ca at '%s' (no CA key on this node), "
			 "trust domain %s, bundle '%s'", cfg->ca_url, cfg->trust_domain,
			 cfg->trust_bundle);
	else
		log_info("identity: standalone CA from '%s' (its key is on this node: a "
			 "development setup), trust domain %s, certificates for %us",
			 cfg->ca_cert, cfg->trust_domain, cfg->svid_ttl_s);
	agent_identity_sync(a);
	ask_ca_status(a);
	return 0;
}

int agent_identity_start(struct agent *a)
{
	int err;

	if (!a->cfg->ca_cert[0] && !a->cfg->ca_url[0])
		return 0;
	err = identity_begin(a);
	if (err == -ENOENT && a->cfg->ca_url[0]) {
		/* Plaintext until the bundle comes: the mesh works without mTLS. */
		arm(a, 0);
		return 0;
	}
	return err;
}

void agent_identity_stop(struct agent *a)
{
	if (a->loop)
		loop_timer_del(a->loop, &a->identity_timer);
	/* Before the set: cancelled requests tell no one. */
	if (a->ca_client) {
		ca_client_free(a->ca_client);
		a->ca_client = NULL;
		curl_global_cleanup();
	}
	json_object_put(a->ca_status);
	a->ca_status = NULL;
	idset_free(a->ids);
	a->ids = NULL;
	ca_free(a->ca);
	a->ca = NULL;
}

int agent_pod_identity(const struct agent *a, const char *ns, const char *name,
		       struct spiffe_id *out)
{
	const struct cat_pod *cp = a->cat ? catalogue_find_pod(a->cat, ns, name) : NULL;
	const char *sa = cp ? cp->service_account : "default";

	if (strlen(ns) >= sizeof(out->ns) || strlen(sa) >= sizeof(out->sa))
		return -ENAMETOOLONG;
	snprintf(out->td, sizeof(out->td), "%s", a->cfg->trust_domain);
	snprintf(out->ns, sizeof(out->ns), "%s", ns);
	snprintf(out->sa, sizeof(out->sa), "%s", sa);
	return 0;
}

void agent_identity_sync(struct agent *a)
{
	struct spiffe_id *ids;
	size_t n = 0, cap;
	int failures;

	if (!a->ids || !a->pods)
		return;
	cap = pods_count(a->pods, true);
	ids = calloc(cap ? cap : 1, sizeof(*ids));
	if (!ids) {
		log_warn("identity: out of memory; the identities stay as they were");
		return;
	}
	for (const struct pod *p = pods_first(a->pods); p && n < cap; p = p->next)
		if (p->meshed && !agent_pod_identity(a, p->spec.ns, p->spec.name, &ids[n]))
			n++;
	failures = idset_sync(a->ids, ids, n);
	free(ids);
	if (failures > 0)
		log_warn("identity: %d identit%s without a certificate; retried at the next change",
			 failures, failures == 1 ? "y" : "ies");
	arm(a, idset_renew(a->ids, time(NULL)));
	publish_mtls(a);
}
