/* SPDX-License-Identifier: GPL-2.0-only */
/* Two simulated nodes on one machine, for the mTLS suite mtls_nodes: two
 * agents, each with its own cgroup, bpffs, run dir, admin socket and
 * registry file (tenv_node_setup()), the pods of both on one bridge
 * (fabric.h), each agent enrolling only its own node's pods through the
 * real weft-cni. Both agents sign with the same standalone CA, "ca", and
 * trust "next-ca" too (the first step of a CA rotation, docs/mtls.md);
 * "rogue-ca" is trusted by no one.
 *
 *   cgroup T (tcg_create)               test process: joins T/node-a
 *     T/node-a        node A's pods ─── agent A in T/node-a/agent
 *     T/node-b        node B's pods ─── agent B in T/node-b/agent
 *
 *   netns f, bridge br0 (198.18.20.0/24)
 *     ├─ ca  .2   mesh/client-a   sa frontend   node A, meshed
 *     ├─ cb  .3   mesh/batch-a    sa batch      node A, meshed
 *     ├─ cc  .4   plain/client-c                node A, not meshed
 *     └─ sv  .11  mesh/server-b   sa backend    node B, meshed: a tsrv_start() server on :8080
 *
 *   Service mesh/secure 198.19.0.30:80 → 198.18.20.11:8080
 *
 * Both registries list every pod with its nodeName, service account and
 * address, and the Service with its endpoint (agent A must know that the
 * endpoint is a meshed pod and its identity, agent B that the connection
 * to it is meshed).
 */
#ifndef WEFT_TEST_NODES_H
#define WEFT_TEST_NODES_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "env.h"
#include "../k8s-apiserver/k8s_fake.h"

#define NODES_CLIENT_IP "198.18.20.2"
#define NODES_BATCH_IP "198.18.20.3"
#define NODES_PLAIN_IP "198.18.20.4"
#define NODES_SERVER_IP "198.18.20.11"
#define NODES_SERVER "198.18.20.11:8080"
#define NODES_VIP "198.19.0.30:80"
/* The server's name, which it puts in every answer: the response's marker. */
#define NODES_SERVER_NAME "resp-marker-6f0d83b5a1"
/* The subjects of the CAs' certificates: as an SVID's issuer. */
#define NODES_CA "CN=ca"
#define NODES_NEXT_CA "CN=next-ca"
#define NODES_ROGUE_CA "CN=rogue-ca"

/* weft-ca as a process (nodes_up_weftca()): the agents have no CA at all. */
struct tnodes_weftca {
	bool on;
	struct kfake kube;	/* the API server weft-ca asks */
	char dir[PATH_MAX];	/* its --ca-dir: ca.crt, ca.key, trust.pem */
	char log[PATH_MAX + 16];
	char url[64];		/* https://127.0.0.1:PORT */
	pid_t pid;
};

struct tnodes {
	char cgroup[PATH_MAX];	/* T: the parent of both nodes' cgroups */
	char ca_dir[PATH_MAX];	/* <name>.pem and <name>.key of each CA */
	struct tenv a;		/* node A: the clients */
	struct tenv b;		/* node B: the server */
	pid_t server;
	struct tnodes_weftca ca;
};

extern struct tnodes nodes;

/* .init of the suite: everything above, both agents running (signing
 * with "ca", trusting "next-ca" too, --svid-ttl default), every pod
 * enrolled, the server listening; the test process in T/node-a. Asserts on
 * failure (and is undone at exit).
 */
void nodes_up(void);
/* The same, but no agent has a CA: weft-ca runs as a process (signing
 * with "ca", --svid-ttl 10) against a fake API server that knows the pods
 * of both nodes and one token per agent ("token-node-a", "token-node-b":
 * the weft-agent ServiceAccount's, bound to a pod on that node, audience
 * weft-ca); each agent has its token file and the bundle weft-ca
 * published, as kubelet would mount them, and --ca-url.
 */
void nodes_up_weftca(void);

/* Wait up to @ms for weft-ca's ConfigMap to hold exactly the PEM text of
 * files @first then @second (NULL: none) of the CA folder ("ca.pem"...),
 * then write it to both agents' bundle files, as kubelet does with a
 * ConfigMap volume. Asserts.
 */
void nodes_weftca_bundle(const char *first, const char *second, uint64_t ms);

/* Make weft-ca sign with CA @signer and trust @extra too (NULL: nothing
 * more): its Secret's files replaced (rename, as kubelet swaps a Secret
 * volume). Asserts.
 */
void nodes_weftca_files(const char *signer, const char *extra);

/* POST /v1/sign to weft-ca with bearer @token (NULL: none) asking for
 * @spiffe_id with a new CSR naming @csr_id (a P-256 key made by openssl;
 * NULL: @spiffe_id). The HTTP status, the answer's "reason" in @reason and
 * its certificate (or "") in @cert. Asserts the call was made.
 */
long nodes_weftca_sign(const char *token, const char *spiffe_id, const char *csr_id,
		       char *reason, size_t reason_len, char *cert, size_t cert_len);

/* The body of weft-ca's GET @path ("/metrics"; caller frees), or NULL. */
char *nodes_weftca_text(const char *path);

/* weft-ca's GET /v1/status (caller puts), or NULL. */
json_object *nodes_weftca_status(void);

/* One counter of it: "signed", or "refused.<reason>"; -1 when unreachable. */
long long nodes_weftca_count(const char *what);

/* .fini: stop both agents (a sanitizer report is printed), remove it all. */
void nodes_down(void);

/* What a registry file says besides the pods and the Service. */
struct nodes_registry {
	const char *ns_annotations;	/* of Namespace mesh, flow style; NULL: none */
	const char *svc_annotations;	/* of Service secure; NULL: none */
	const char *server_sa;		/* server-b's service account; NULL: backend */
	const char *batch_sa;		/* batch-a's; NULL: batch */
};

/* Write @r as @node's registry file (the agent reloads it). Asserts. */
void nodes_write_registry(struct tenv *node, const struct nodes_registry *r);

/* Stop @node's agent, which must exit cleanly, and start it again signing
 * with CA @ca ("ca", "next-ca" or "rogue-ca") and trusting @bundle too
 * (NULL: its own CA only); it enrolls its pods again from their saved
 * state. Asserts.
 */
void nodes_agent_restart(struct tenv *node, const char *ca, const char *bundle);

/* The issuer of @node's certificate for mesh/sa/@sa into @buf ("" when
 * the node holds none). Returns @buf.
 */
const char *nodes_issuer(struct tenv *node, const char *sa, char *buf, size_t len);

/* How many connections of identity @id @node's allow-from refused (0 when
 * none).
 */
long long nodes_denied(struct tenv *node, const char *id);

#endif /* WEFT_TEST_NODES_H */
