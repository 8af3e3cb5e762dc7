// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/integration/nodes.h. */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helpers/cgroup.h"
#include "fabric.h"
#include "nodes.h"
#include "proc.h"
#include "servers.h"
#include "tns.h"

struct tnodes nodes;

/* One Pod object, in the registry's flow style. */
#define POD(name, ns, sa, node, ip)                                                    \
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: " name ", namespace: " ns "}\n" \
	"spec: {serviceAccountName: " sa ", nodeName: " node "}\n"                       \
	"status: {podIP: " ip ", phase: Running}\n"

void nodes_write_registry(struct tenv *node, const struct nodes_registry *r)
{
	char yaml[8192];
	int n;

	n = snprintf(yaml, sizeof(yaml),
		     "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: mesh\n"
		     "  labels: {weft.io/mesh: enabled}\n  annotations: {%s}\n"
		     "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: plain}\n"
		     POD("client-a", "mesh", "frontend", "node-a", NODES_CLIENT_IP)
		     POD("batch-a", "mesh", "batch", "node-a", NODES_BATCH_IP)
		     POD("client-c", "plain", "default", "node-a", NODES_PLAIN_IP)
		     POD("server-b", "mesh", "%s", "node-b", NODES_SERVER_IP)
		     "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: secure\n"
		     "  namespace: mesh\n  annotations: {%s}\n"
		     "spec:\n  clusterIP: 198.19.0.30\n"
		     "  ports:\n  - {name: tcp, port: 80, targetPort: 8080}\n"
		     "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
		     "  name: secure-1\n  namespace: mesh\n"
		     "  labels: {kubernetes.io/service-name: secure}\n"
		     "addressType: IPv4\nendpoints:\n"
		     "- {addresses: [" NODES_SERVER_IP "], nodeName: node-b}\n"
		     "ports:\n- {name: tcp, port: 8080}\n",
		     r->ns_annotations ? r->ns_annotations : "",
		     r->server_sa ? r->server_sa : "backend",
		     r->svc_annotations ? r->svc_annotations : "");
	cr_assert(n > 0 && (size_t)n < sizeof(yaml), "registry too long");
	cr_assert_eq(tenv_write_registry(node, yaml), 0, "write %s", node->registry);
}

/* The options of an agent signing with CA @ca that also trusts @bundle
 * (NULL: its own CA only), under this node's name.
 */
static void agent_args(struct tenv *node, const char *ca, const char *bundle, char *buf,
		       size_t len)
{
	const char *d = nodes.ca_dir;
	int n = snprintf(buf, len, "--ca-cert %s/%s.pem --ca-key %s/%s.key --node-name %s", d, ca,
			 d, ca, node == &nodes.a ? "node-a" : "node-b");

	if (n > 0 && (size_t)n < len && bundle)
		n += snprintf(buf + n, len - (size_t)n, " --trust-bundle %s/%s.pem", d, bundle);
	cr_assert(n > 0 && (size_t)n < len, "agent options too long");
}

static void make_ca(const char *name)
{
	cr_assert_eq(tns_sh("cd %s && openssl req -x509 -newkey ec -pkeyopt "
			    "ec_paramgen_curve:P-256 -nodes -days 2 -subj /O=weft-test/CN=%s "
			    "-keyout %s.key -out %s.pem -addext basicConstraints=critical,CA:TRUE "
			    "-addext keyUsage=critical,keyCertSign >/dev/null 2>&1",
			    nodes.ca_dir, name, name, name),
		     0, "openssl: no CA %s", name);
}

/* A pod for enroll(): its test netns, namespace, name and address. */
struct pod_ref {
	const char *netns, *ns, *name, *ip;
};

/* Enroll @n pods of @node through weft-cni, all at once as a runtime
 * starting them together would. Asserts each was enrolled.
 */
static void enroll(struct tenv *node, const struct pod_ref *pods, size_t n)
{
	pid_t pid[8];

	cr_assert_leq(n, sizeof(pid) / sizeof(pid[0]));
	for (size_t i = 0; i < n; i++) {
		pid[i] = fork();
		cr_assert_neq(pid[i], -1, "fork: %s", strerror(errno));
		if (pid[i] == 0) {
			char out[4096];
			int rc = tenv_cni(node, "ADD", pods[i].netns, pods[i].ns, pods[i].name,
					  pods[i].ip, out, sizeof(out));

			if (rc)
				fprintf(stderr, "weft-cni ADD %s/%s exited %d: %s\n", pods[i].ns,
					pods[i].name, rc, out);
			_exit(rc ? 1 : 0);
		}
	}
	for (size_t i = 0; i < n; i++) {
		int status = 0;

		cr_assert_eq(waitpid(pid[i], &status, 0), pid[i]);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "weft-cni ADD %s/%s on %s failed (its output is above)", pods[i].ns,
			  pods[i].name, node->cgroup);
	}
}

static void agent_spawn(struct tenv *node, const char *ca, const char *bundle)
{
	agent_args(node, ca, bundle, node->extra_args, sizeof(node->extra_args));
	cr_assert_eq(tenv_agent_spawn(node), 0, "weft-agent of %s did not start", node->cgroup);
}

static void agent_wait(struct tenv *node)
{
	cr_assert_eq(tenv_agent_wait(node), 0, "weft-agent of %s did not start, see %s",
		     node->cgroup, node->agent_log);
}

static void down_at_exit(void *obj)
{
	(void)obj;
	nodes_down();
}

void nodes_up(void)
{
	static const struct nodes_registry plain_registry = { 0 };

	tproc_track(&nodes, down_at_exit);
	cr_assert_eq(tcg_create(nodes.cgroup, sizeof(nodes.cgroup)), 0, "create test cgroup");
	cr_assert_eq(tproc_mkdtemp(nodes.ca_dir, sizeof(nodes.ca_dir), "ca"), 0, "mkdtemp");
	make_ca("ca");
	make_ca("next-ca");
	make_ca("rogue-ca");
	tenv_node_setup(&nodes.a, nodes.cgroup, "node-a");
	tenv_node_setup(&nodes.b, nodes.cgroup, "node-b");
	cr_assert_eq(tfabric_setup(), 0, "build the fabric");
	cr_assert_eq(tfabric_attach("ca", NODES_CLIENT_IP), 0, "attach ca");
	cr_assert_eq(tfabric_attach("cb", NODES_BATCH_IP), 0, "attach cb");
	cr_assert_eq(tfabric_attach("cc", NODES_PLAIN_IP), 0, "attach cc");
	cr_assert_eq(tfabric_attach("sv", NODES_SERVER_IP), 0, "attach sv");
	nodes_write_registry(&nodes.a, &plain_registry);
	nodes_write_registry(&nodes.b, &plain_registry);
	/* Both agents start at once; node B's pod is enrolled and its server
	 * forked in B's cgroup (where the node's runtime would have put it)
	 * while A's agent is still starting.
	 */
	agent_spawn(&nodes.a, "ca", "next-ca");
	agent_spawn(&nodes.b, "ca", "next-ca");
	agent_wait(&nodes.b);
	cr_assert_eq(tcg_join(nodes.b.cgroup, 0), 0, "join %s", nodes.b.cgroup);
	enroll(&nodes.b, (const struct pod_ref[]){ { "sv", "mesh", "server-b", NODES_SERVER_IP } },
	       1);
	nodes.server = tsrv_start("sv", NODES_SERVER_IP, 8080, NODES_SERVER_NAME);
	cr_assert_gt(nodes.server, 0, "the server on node B did not start");
	/* Node A: the test's own sockets are its pods' from here on. */
	cr_assert_eq(tcg_join(nodes.a.cgroup, 0), 0, "join %s", nodes.a.cgroup);
	agent_wait(&nodes.a);
	enroll(&nodes.a,
	       (const struct pod_ref[]){ { "ca", "mesh", "client-a", NODES_CLIENT_IP },
					 { "cb", "mesh", "batch-a", NODES_BATCH_IP },
					 { "cc", "plain", "client-c", NODES_PLAIN_IP } },
	       3);
}

void nodes_down(void)
{
	tsrv_stop(nodes.server);
	nodes.server = 0;
	tenv_node_teardown(&nodes.a);
	tenv_node_teardown(&nodes.b);
	tfabric_teardown();
	if (nodes.cgroup[0])
		(void)tcg_remove(nodes.cgroup);
	tproc_rmtree(nodes.ca_dir);
	tproc_untrack(&nodes);
	memset(&nodes, 0, sizeof(nodes));
}

void nodes_agent_restart(struct tenv *node, const char *ca, const char *bundle)
{
	int rc = tenv_agent_stop(node);

	cr_assert_eq(rc, 0, "the agent of %s exited %d, see %s", node->cgroup, rc,
		     node->agent_log);
	agent_spawn(node, ca, bundle);
	agent_wait(node);
}

const char *nodes_issuer(struct tenv *node, const char *sa, char *buf, size_t len)
{
	json_object *all = tenv_admin_get(node, "/v1/identities"), *arr, *v;
	char id[256];

	snprintf(id, sizeof(id), "spiffe://cluster.local/ns/mesh/sa/%s", sa);
	buf[0] = '\0';
	if (all && json_object_object_get_ex(all, "identities", &arr)) {
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *e = json_object_array_get_idx(arr, i);

			if (json_object_object_get_ex(e, "id", &v) &&
			    !strcmp(json_object_get_string(v), id) &&
			    json_object_object_get_ex(e, "issuer", &v))
				snprintf(buf, len, "%s", json_object_get_string(v));
		}
	}
	json_object_put(all);
	return buf;
}

long long nodes_denied(struct tenv *node, const char *id)
{
	json_object *all = tenv_admin_get(node, "/v1/identities"), *arr, *v;
	long long n = 0;

	if (all && json_object_object_get_ex(all, "denied", &arr)) {
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *e = json_object_array_get_idx(arr, i);

			if (json_object_object_get_ex(e, "identity", &v) &&
			    !strcmp(json_object_get_string(v), id) &&
			    json_object_object_get_ex(e, "count", &v))
				n = json_object_get_int64(v);
		}
	}
	json_object_put(all);
	return n;
}
