/* SPDX-License-Identifier: GPL-2.0-only */
/* weft-ca, the production certificate issuer (weft-agent --mode-ca,
 * docs/mtls.md): a small HTTPS service that signs node agents' requests
 * for workload certificates after asking the API server who is calling
 * (TokenReview) and whether the identity has a pod on the caller's node.
 *
 *   main.c    options, the loop: accept, reload the CA files, publish the bundle
 *   store.c   the signer (CA key), the bundle and the serving certificate
 *   kube.c    the API server: TokenReview, pods of a node, the bundle ConfigMap
 *   serve.c   one thread per connection: TLS, HTTP, /v1/sign, /v1/status, /metrics
 */
#ifndef WEFT_CA_H
#define WEFT_CA_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#include "identity/identity.h"
#include "registry/k8s_config.h"

struct ca_config {
	const char *listen;		/* IP:PORT */
	const char *ca_dir;		/* ca.crt, ca.key, trust.pem (optional) */
	const char *trust_domain;
	uint32_t svid_ttl_s;
	const char *audience;		/* the tokens' */
	const char *agent_sa;		/* NAMESPACE:NAME of the agents' ServiceAccount */
	const char *serving_names;	/* SANs of the serving certificate, comma-separated */
	const char *bundle_configmap;	/* NAMESPACE/NAME; "" = not published */
	const char *kubeconfig;		/* "" = in-cluster */
	const char *log_level;
	uint32_t max_conns;
	uint32_t reload_ms;		/* how often the CA files are looked at */
	bool version;
};

/* Why a request was refused: the label of weft_ca_refused_total. */
enum ca_refusal {
	CA_REFUSED_BAD_REQUEST,		/* not JSON, no spiffe_id/csr, another trust domain */
	CA_REFUSED_UNAUTHENTICATED,	/* no token, or the TokenReview says no */
	CA_REFUSED_WRONG_ACCOUNT,	/* a valid token of another ServiceAccount */
	CA_REFUSED_NO_NODE,		/* the token names no node, nor a pod on one */
	CA_REFUSED_NOT_ON_NODE,		/* no running pod of the identity on that node */
	CA_REFUSED_BAD_CSR,		/* unreadable, bad signature, wrong key type */
	CA_REFUSED_ID_MISMATCH,		/* the CSR names another identity */
	CA_REFUSED_API_ERROR,		/* the API server did not answer (503) */
	CA_REFUSED_N,
};

extern const char *const ca_refusal_names[CA_REFUSED_N];

/* ---- store.c: what the files say, swapped whole on a change. */

struct ca_store {
	pthread_rwlock_t lock;	/* readers sign and serve; the main thread swaps */
	struct ca *signer;	/* ca.crt + ca.key */
	char *bundle_pem;	/* ca.crt then trust.pem: what agents trust */
	size_t n_bundle;	/* certificates in it */
	SSL_CTX *serving;	/* TLS 1.3, a certificate from the signer */
	time_t serving_renew_at;
	char signer_name[IDENTITY_NAME_MAX];
	time_t signer_not_after;
	struct timespec mtime[3];
};

int ca_store_init(struct ca_store *s);
void ca_store_done(struct ca_store *s);
/* Load the files of @cfg if they changed since the last call (or @force),
 * and renew the serving certificate when due. 1 when the signer or the
 * bundle changed, 0 when nothing did, -errno (logged; the old state serves
 * on). Main thread only.
 */
int ca_store_reload(struct ca_store *s, const struct ca_config *cfg, bool force);

/* ---- kube.c: the API server, blocking calls (request threads, main). */

/* Who a token is. */
struct ca_caller {
	char user[320];		/* system:serviceaccount:NS:NAME */
	char node[256];		/* "" when unknown */
	char pod_ns[64], pod_name[256];	/* the pod the token is bound to, "" when none */
};

/* TokenReview of @token for @audience. 0 (authenticated, @out filled),
 * -EACCES (not authenticated: the reason in @err), -EIO (no answer).
 */
int ca_kube_review(const struct k8s_conn_cfg *k, const char *token, const char *audience,
		   struct ca_caller *out, char *err, size_t errlen);
/* The node of pod @ns/@name (spec.nodeName) into @node. 0, -ENOENT, -EIO. */
int ca_kube_pod_node(const struct k8s_conn_cfg *k, const char *ns, const char *name,
		     char *node, size_t len);
/* Whether a running pod on @node has namespace @ns and service account
 * @sa. 1 yes, 0 no, -EIO (no answer).
 */
int ca_kube_pod_on_node(const struct k8s_conn_cfg *k, const char *node, const char *ns,
			const char *sa);
/* Create or replace ConfigMap @ns_name (NAMESPACE/NAME) with key
 * bundle.pem = @pem. 0 or -errno (logged by the caller).
 */
int ca_kube_publish_bundle(const struct k8s_conn_cfg *k, const char *ns_name, const char *pem,
			   char *err, size_t errlen);

/* ---- serve.c */

struct ca_server {
	const struct ca_config *cfg;
	struct k8s_conn_cfg kube;
	struct ca_store store;
	atomic_uint conns;		/* connections being served */
	atomic_uint_fast64_t signed_total;
	atomic_uint_fast64_t refused[CA_REFUSED_N];
	atomic_uint_fast64_t conns_dropped;	/* over --max-conns */
	time_t started;
	atomic_int_fast64_t bundle_published;	/* epoch s of the last ConfigMap write, 0: none */
};

/* Serve connection @fd (accepted) on a new detached thread, or close it
 * when --max-conns are being served. Never blocks.
 */
void ca_serve_conn(struct ca_server *srv, int fd);

/* weft-agent --mode-ca: argv without the mode flag. The process's exit code. */
int ca_main(int argc, char **argv);

#endif /* WEFT_CA_H */
