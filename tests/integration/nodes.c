// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/integration/nodes.h. */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>

#include "../helpers/cgroup.h"
#include "curl_body.h"
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
		     POD("batch-a", "mesh", "%s", "node-a", NODES_BATCH_IP)
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
		     r->batch_sa ? r->batch_sa : "batch",
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
	int n;

	if (nodes.ca.on) {
		/* No CA file of any kind: the token and the bundle kubelet
		 * would mount, and weft-ca's URL.
		 */
		n = snprintf(buf, len, "--ca-url %s --ca-token-file %s/ca-token "
			     "--trust-bundle %s/ca-bundle.pem --metrics-addr 127.0.0.1:0 "
			     "--node-name %s", nodes.ca.url,
			     node->tmp, node->tmp, node == &nodes.a ? "node-a" : "node-b");
		cr_assert(n > 0 && (size_t)n < len, "agent options too long");
		return;
	}
	n = snprintf(buf, len, "--ca-cert %s/%s.pem --ca-key %s/%s.key --node-name %s", d, ca,
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
	tenv_exiting();
	nodes_down();
}

static void weftca_start(void);
static void weftca_stop(void);

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
	if (nodes.ca.on)
		weftca_start();
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
	weftca_stop();
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

/* ---- weft-ca as a process */

#define WEFTCA_AGENT_SA "system:serviceaccount:weft-system:weft-agent"

/* The Pod objects weft-ca authorizes with: the same pods as the registries. */
#define KPOD(name, ns, sa, node, ip)                                                    \
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name "\","    \
	"\"namespace\":\"" ns "\"},\"spec\":{\"serviceAccountName\":\"" sa "\","          \
	"\"nodeName\":\"" node "\"},\"status\":{\"phase\":\"Running\",\"podIP\":\"" ip "\"}}"

static int write_file(const char *path, const char *text)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fputs(text, f);
	if (fclose(f))
		return -1;
	return rename(tmp, path) ? -1 : 0;
}

/* The text of @path (caller frees), or NULL. */
static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

void nodes_weftca_files(const char *signer, const char *extra)
{
	cr_assert_eq(tns_sh("cp %s/%s.pem %s/ca.crt.new && cp %s/%s.key %s/ca.key.new && "
			    "mv %s/ca.key.new %s/ca.key && mv %s/ca.crt.new %s/ca.crt",
			    nodes.ca_dir, signer, nodes.ca.dir, nodes.ca_dir, signer, nodes.ca.dir,
			    nodes.ca.dir, nodes.ca.dir, nodes.ca.dir, nodes.ca.dir),
		     0, "weft-ca's files");
	if (extra)
		cr_assert_eq(tns_sh("cp %s/%s.pem %s/trust.pem.new && mv %s/trust.pem.new %s/trust.pem",
				    nodes.ca_dir, extra, nodes.ca.dir, nodes.ca.dir, nodes.ca.dir),
			     0, "weft-ca's trust.pem");
	else
		cr_assert_eq(tns_sh("rm -f %s/trust.pem", nodes.ca.dir), 0);
}

void nodes_weftca_bundle(const char *first, const char *second, uint64_t ms)
{
	char path[PATH_MAX + 32], *want, *a, *b = NULL, *got = NULL;
	uint64_t end = tproc_now_ms() + ms;

	snprintf(path, sizeof(path), "%s/%s", nodes.ca_dir, first);
	a = read_text(path);
	if (second) {
		snprintf(path, sizeof(path), "%s/%s", nodes.ca_dir, second);
		b = read_text(path);
	}
	cr_assert(a && (!second || b), "read the CA certificates");
	cr_assert_gt(asprintf(&want, "%s%s", a, b ? b : ""), 0);
	free(a);
	free(b);
	do {
		json_object *cm = kfake_get(&nodes.ca.kube,
					    "/api/v1/namespaces/weft-system/configmaps/weft-ca-bundle");
		json_object *data = NULL, *pem = NULL;

		free(got);
		got = NULL;
		if (cm && json_object_object_get_ex(cm, "data", &data) &&
		    json_object_object_get_ex(data, "bundle.pem", &pem))
			got = strdup(json_object_get_string(pem));
		json_object_put(cm);
		if (got && !strcmp(got, want))
			break;
		usleep(50000);
	} while (tproc_now_ms() < end);
	cr_assert(got && !strcmp(got, want),
		  "weft-ca's ConfigMap never held the bundle %s%s%s (it holds %s)", first,
		  second ? " + " : "", second ? second : "", got ? got : "nothing");
	/* kubelet's part: the ConfigMap volume of each agent. */
	snprintf(path, sizeof(path), "%s/ca-bundle.pem", nodes.a.tmp);
	cr_assert_eq(write_file(path, got), 0, "write %s", path);
	snprintf(path, sizeof(path), "%s/ca-bundle.pem", nodes.b.tmp);
	cr_assert_eq(write_file(path, got), 0, "write %s", path);
	free(got);
	free(want);
}

static bool weftca_up(void *ctx)
{
	json_object *st = nodes_weftca_status();

	(void)ctx;
	json_object_put(st);
	return st != NULL;
}

static void weftca_start(void)
{
	char path[PATH_MAX + 32], port[8], bin[PATH_MAX + 32];
	uint16_t p = tproc_free_port();
	int err;

	cr_assert_gt(p, 0, "no free port for weft-ca");
	cr_assert_eq(kfake_start(&nodes.ca.kube, NULL), 0, "the fake API server did not start");
	cr_assert_eq(kfake_apply(&nodes.ca.kube,
				 "[" KPOD("client-a", "mesh", "frontend", "node-a", NODES_CLIENT_IP) ","
				 KPOD("batch-a", "mesh", "batch", "node-a", NODES_BATCH_IP) ","
				 KPOD("client-c", "plain", "default", "node-a", NODES_PLAIN_IP) ","
				 KPOD("server-b", "mesh", "backend", "node-b", NODES_SERVER_IP) ","
				 /* The agents' own pods: their tokens are bound to them. */
				 KPOD("weft-agent-aaaaa", "weft-system", "weft-agent", "node-a",
				      "198.18.21.1") ","
				 KPOD("weft-agent-bbbbb", "weft-system", "weft-agent", "node-b",
				      "198.18.21.2") "]"),
		     0, "pods into the fake API server");
	cr_assert_eq(kfake_add_token(&nodes.ca.kube, "token-node-a", WEFTCA_AGENT_SA, "node-a",
				     "weft-agent-aaaaa", "weft-ca"), 0);
	cr_assert_eq(kfake_add_token(&nodes.ca.kube, "token-node-b", WEFTCA_AGENT_SA, "node-b",
				     "weft-agent-bbbbb", "weft-ca"), 0);
	snprintf(path, sizeof(path), "%s/ca-token", nodes.a.tmp);
	cr_assert_eq(write_file(path, "token-node-a\n"), 0);
	snprintf(path, sizeof(path), "%s/ca-token", nodes.b.tmp);
	cr_assert_eq(write_file(path, "token-node-b\n"), 0);
	cr_assert_eq(tproc_mkdtemp(nodes.ca.dir, sizeof(nodes.ca.dir), "weftca"), 0);
	nodes_weftca_files("ca", NULL);
	snprintf(nodes.ca.url, sizeof(nodes.ca.url), "https://127.0.0.1:%u", p);
	snprintf(nodes.ca.log, sizeof(nodes.ca.log), "%s/weft-ca.log", nodes.ca.dir);
	snprintf(port, sizeof(port), "%u", p);
	snprintf(path, sizeof(path), "127.0.0.1:%u", p);
	snprintf(bin, sizeof(bin), "%s/san/weft-agent", nodes.a.build);
	nodes.ca.pid = tproc_spawn(
		(char *const[]){ bin, "--mode-ca", "--listen", path, "--ca-dir", nodes.ca.dir,
				 "--kubeconfig", nodes.ca.kube.kubeconfig, "--serving-names",
				 "127.0.0.1", "--svid-ttl", "10", "--reload-period", "200", NULL },
		nodes.ca.log, SIGTERM);
	cr_assert_gt(nodes.ca.pid, 0, "weft-ca did not start");
	/* The bundle first: the agents check weft-ca's certificate with it. */
	nodes_weftca_bundle("ca.pem", NULL, 10000);
	err = tproc_wait_ready(&nodes.ca.pid, 10000, 50, weftca_up, NULL);
	cr_assert_eq(err, 0, "weft-ca does not answer: %s, see %s", strerror(-err), nodes.ca.log);
}

/* SIGTERM, and a clean exit (the sanitizers' report would make it 1). */
static void weftca_stop(void)
{
	int status = 0;

	if (nodes.ca.pid > 0) {
		kill(nodes.ca.pid, SIGTERM);
		if (waitpid(nodes.ca.pid, &status, 0) == nodes.ca.pid &&
		    !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
			char cmd[PATH_MAX + 32];

			snprintf(cmd, sizeof(cmd), "tail -n 40 %s >&2", nodes.ca.log);
			(void)!system(cmd);
			cr_log_error("weft-ca did not exit cleanly (status 0x%x)", status);
		}
		nodes.ca.pid = 0;
	}
	if (nodes.ca.on)
		kfake_stop(&nodes.ca.kube);
	tproc_rmtree(nodes.ca.dir);
}

void nodes_up_weftca(void)
{
	nodes.ca.on = true;
	nodes_up();
}

/* One HTTPS call to weft-ca, checked against node A's bundle file. */
static long weftca_call(const char *path, const char *token, const char *body, char **resp)
{
	char url[256], cainfo[PATH_MAX + 32], auth[512];
	struct tcurl_body b = { 0 };
	struct curl_slist *h = NULL;
	CURL *c = curl_easy_init();
	long code = 0;

	*resp = NULL;
	if (!c)
		return -1;
	snprintf(url, sizeof(url), "%s%s", nodes.ca.url, path);
	snprintf(cainfo, sizeof(cainfo), "%s/ca-bundle.pem", nodes.a.tmp);
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, auth);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, cainfo);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tcurl_body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(c) != CURLE_OK ||
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
		code = -1;
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	*resp = b.buf;
	return code;
}

char *nodes_weftca_text(const char *path)
{
	char *resp;
	long code = weftca_call(path, NULL, NULL, &resp);

	if (code != 200) {
		free(resp);
		return NULL;
	}
	return resp;
}

json_object *nodes_weftca_status(void)
{
	char *resp;
	long code = weftca_call("/v1/status", NULL, NULL, &resp);
	json_object *o = code == 200 && resp ? json_tokener_parse(resp) : NULL;

	free(resp);
	return o;
}

long long nodes_weftca_count(const char *what)
{
	json_object *st = nodes_weftca_status(), *v = st, *g;
	char key[128], *dot;
	long long n = -1;

	snprintf(key, sizeof(key), "%s", what);
	dot = strchr(key, '.');
	if (dot)
		*dot = '\0';
	if (st && json_object_object_get_ex(st, key, &g)) {
		v = g;
		if (!dot || json_object_object_get_ex(g, dot + 1, &v))
			n = json_object_get_int64(v);
	}
	json_object_put(st);
	return n;
}

long nodes_weftca_sign(const char *token, const char *spiffe_id, const char *csr_id,
		       char *reason, size_t reason_len, char *cert, size_t cert_len)
{
	char dir[PATH_MAX], path[PATH_MAX + 32], *csr, *resp;
	json_object *req, *o, *v;
	long code;

	cr_assert_eq(tproc_mkdtemp(dir, sizeof(dir), "csr"), 0);
	cr_assert_eq(tns_sh("cd %s && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
			    "-nodes -subj /O=weft-test -addext subjectAltName=URI:%s -keyout k.pem "
			    "-out csr.pem >/dev/null 2>&1", dir, csr_id ? csr_id : spiffe_id),
		     0, "openssl: no CSR");
	snprintf(path, sizeof(path), "%s/csr.pem", dir);
	csr = read_text(path);
	cr_assert_not_null(csr);
	tproc_rmtree(dir);
	req = json_object_new_object();
	json_object_object_add(req, "spiffe_id", json_object_new_string(spiffe_id));
	json_object_object_add(req, "csr", json_object_new_string(csr));
	free(csr);
	code = weftca_call("/v1/sign", token, json_object_to_json_string(req), &resp);
	json_object_put(req);
	cr_assert_gt(code, 0, "no answer from weft-ca");
	reason[0] = cert[0] = '\0';
	o = resp ? json_tokener_parse(resp) : NULL;
	if (o && json_object_object_get_ex(o, "reason", &v))
		snprintf(reason, reason_len, "%s", json_object_get_string(v));
	if (o && json_object_object_get_ex(o, "certificate", &v))
		snprintf(cert, cert_len, "%s", json_object_get_string(v));
	json_object_put(o);
	free(resp);
	return code;
}
