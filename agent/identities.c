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

#include "agent.h"
#include "config.h"
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

/* Load the issuer and the bundle from the files. 0 or -errno (logged). */
static int load(const struct agent_config *cfg, struct ca **ca, struct trust **t)
{
	char err[IDENTITY_ERR_MAX] = "";
	int rc;

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

static void on_tick(struct loop_timer *t, uint64_t now_ms);

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
	idset_set_issuer(a->ids, ca, t);
	ca_free(a->ca);
	a->ca = ca;
	trust_unref(t);
	log_info("identity: CA or trust bundle files changed: %zu certificate(s) reissued",
		 idset_count(a->ids));
}

static void on_tick(struct loop_timer *timer, uint64_t now_ms)
{
	struct agent *a = agent_of(timer);

	(void)now_ms;
	reload_if_changed(a);
	arm(a, idset_renew(a->ids, time(NULL)));
	/* New connections take the renewed certificates. */
	publish_mtls(a);
}

int agent_identity_start(struct agent *a)
{
	struct trust *t;
	int err;

	if (!a->cfg->ca_cert[0])
		return 0;
	files_mtime(a->cfg, a->identity_mtime);
	err = load(a->cfg, &a->ca, &t);
	if (err)
		return err;
	a->ids = idset_new(a->ca, t, a->cfg->svid_ttl_s);
	trust_unref(t);
	if (!a->ids)
		return log_errno(-ENOMEM, "identity");
	log_info("identity: standalone CA from '%s' (its key is on this node: a development "
		 "setup), trust domain %s, certificates for %us",
		 a->cfg->ca_cert, a->cfg->trust_domain, a->cfg->svid_ttl_s);
	agent_identity_sync(a);
	return 0;
}

void agent_identity_stop(struct agent *a)
{
	if (a->loop)
		loop_timer_del(a->loop, &a->identity_timer);
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
