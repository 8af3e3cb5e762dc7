// SPDX-License-Identifier: GPL-2.0-only
/* weft-ca, the production issuer (docs/mtls.md), between two simulated
 * nodes (tests/integration/nodes.h, nodes_up_weftca()): weft-ca runs as a
 * process (weft-agent --mode-ca) against the fake API server, which knows
 * the pods of both nodes and a token per agent; the agents have no CA file
 * of any kind, only their token, the bundle weft-ca published and its URL.
 *
 * Checked: each agent gets the certificates of its own pods' identities
 * from weft-ca and traffic flows over mTLS between the nodes; an identity
 * with no pod on the caller's node is refused (403, counted, no
 * certificate), whether a test client or an agent asks; unknown tokens,
 * tokens of another ServiceAccount or audience, tokens naming no node are
 * refused; a token naming no node takes its bound pod's, and dies with it;
 * a CSR naming another identity than the request is refused; without the
 * API server nothing is signed (503); a CA
 * rotation with overlap (next CA trusted, then signing, then the old one
 * dropped) loses no request; meshctl shows the issuer and weft-ca's status.
 * Runs in the eBPF capture mode only: the capture is mtls_nodes' concern.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "clock.h"
#include "nodes.h"
#include "sock.h"

#define ID_FRONTEND "spiffe://cluster.local/ns/mesh/sa/frontend"
#define ID_BATCH "spiffe://cluster.local/ns/mesh/sa/batch"
#define ID_BACKEND "spiffe://cluster.local/ns/mesh/sa/backend"

TestSuite(mtls_ca, .init = nodes_up_weftca, .fini = nodes_down, .timeout = 120);

/* One HTTP GET from pod netns @ns to the Service; 0 when the server answered. */
static int get(const char *ns)
{
	char resp[2048];
	ssize_t n;
	int fd = tsock_connect(ns, NODES_VIP, 3000);

	if (fd < 0)
		return fd;
	n = tsock_request(fd, "GET / HTTP/1.1\r\nHost: secure\r\nConnection: close\r\n\r\n", resp,
			  sizeof(resp), 3000);
	close(fd);
	if (n <= 0)
		return n ? (int)n : -ECONNRESET;
	return strncmp(resp, "HTTP/1.1 200 ", 13) || !strstr(resp, NODES_SERVER_NAME) ? -EPROTO
										     : 0;
}

static int get_until(const char *ns, uint64_t ms)
{
	uint64_t end = mono_ms() + ms;
	int err;

	do {
		err = get(ns);
		if (!err)
			return 0;
		usleep(100000);
	} while (mono_ms() < end);
	return err;
}

/* Member @key of the identity @id in @node's /v1/identities into @buf ("" when none). */
static const char *id_field(struct tenv *node, const char *id, const char *key, char *buf,
			    size_t len)
{
	json_object *all = tenv_admin_get(node, "/v1/identities"), *arr, *v;

	buf[0] = '\0';
	if (all && json_object_object_get_ex(all, "identities", &arr)) {
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *e = json_object_array_get_idx(arr, i);

			if (json_object_object_get_ex(e, "id", &v) &&
			    !strcmp(json_object_get_string(v), id) &&
			    json_object_object_get_ex(e, key, &v))
				snprintf(buf, len, "%s", json_object_get_string(v));
		}
	}
	json_object_put(all);
	return buf;
}

/* Wait up to @ms for @node's certificate of @id to be issued by @issuer. */
static bool issued_by_within(struct tenv *node, const char *id, const char *issuer, uint64_t ms)
{
	uint64_t end = mono_ms() + ms;
	char buf[256];

	do {
		if (strstr(id_field(node, id, "issuer", buf, sizeof(buf)), issuer))
			return true;
		usleep(100000);
	} while (mono_ms() < end);
	return false;
}

/* The agent's count of requests weft-ca refused. */
static long long agent_refused(struct tenv *node)
{
	json_object *all = tenv_admin_get(node, "/v1/identities"), *ca, *v;
	long long n = -1;

	if (all && json_object_object_get_ex(all, "weft_ca", &ca) &&
	    json_object_object_get_ex(ca, "refused", &v))
		n = json_object_get_int64(v);
	json_object_put(all);
	return n;
}

Test(mtls_ca, agents_get_their_pods_certificates_from_weft_ca_and_traffic_flows)
{
	char buf[256], out[16384], cmd[PATH_MAX * 4 + 64], *metrics;
	json_object *ids;
	uint64_t end;
	int rc;

	cr_assert_eq(get_until("ca", 15000), 0, "client-a on node A never reached server-b on B");
	/* Each agent holds its own pods' identities, from weft-ca. */
	cr_expect(issued_by_within(&nodes.a, ID_FRONTEND, NODES_CA, 5000));
	cr_expect(issued_by_within(&nodes.a, ID_BATCH, NODES_CA, 5000));
	cr_expect(issued_by_within(&nodes.b, ID_BACKEND, NODES_CA, 5000));
	cr_expect_str_eq(id_field(&nodes.a, ID_FRONTEND, "issued_by", buf, sizeof(buf)),
			 "weft-ca");
	cr_expect_str_eq(id_field(&nodes.a, ID_BACKEND, "issuer", buf, sizeof(buf)), "");
	cr_expect_str_eq(id_field(&nodes.b, ID_FRONTEND, "issuer", buf, sizeof(buf)), "");
	cr_expect_geq(nodes_weftca_count("signed"), 3);
	/* No CA key on the agents' side: not in their options, their files,
	 * nor anything they show.
	 */
	cr_expect_null(strstr(nodes.a.extra_args, "--ca-key"));
	cr_expect_null(strstr(nodes.a.extra_args, "--ca-cert"));
	ids = tenv_admin_get(&nodes.a, "/v1/identities");
	cr_assert_not_null(ids);
	cr_expect_null(strstr(json_object_to_json_string(ids), "PRIVATE KEY"));
	json_object_put(ids);
	snprintf(cmd, sizeof(cmd), "grep -rl 'PRIVATE KEY' %s %s %s %s 2>/dev/null", nodes.a.tmp,
		 nodes.a.run_dir, nodes.b.tmp, nodes.b.run_dir);
	tenv_capture(out, sizeof(out), "%s", cmd);
	cr_expect_str_eq(out, "", "key files on the agents' side: %s", out);
	/* The agent's count of its requests, on its metrics listener. */
	ids = tenv_admin_get(&nodes.a, "/v1/status");
	cr_assert_not_null(ids);
	snprintf(buf, sizeof(buf), "%s",
		 json_object_get_string(json_object_object_get(ids, "metrics")));
	json_object_put(ids);
	rc = tenv_capture(out, sizeof(out),
			  "curl -s --noproxy '*' --max-time 5 http://%s/metrics | "
			  "grep -E '^weft_(ca_requests_total|identities_pending)'", buf);
	cr_expect(strstr(out, "weft_ca_requests_total{result=\"ok\"}") != NULL, "%.2000s", out);
	cr_expect(strstr(out, "weft_identities_pending 0") != NULL, "%.2000s", out);
	/* weft-ca's metrics. */
	metrics = nodes_weftca_text("/metrics");
	cr_assert_not_null(metrics);
	cr_expect(strstr(metrics, "\nweft_ca_signed_total ") != NULL, "%s", metrics);
	cr_expect(strstr(metrics, "weft_ca_refused_total{reason=\"not_on_node\"} 0") != NULL,
		  "%s", metrics);
	free(metrics);
	/* meshctl: the issuer of each identity, and weft-ca's status, which
	 * the agent asks for when it starts and at each renewal pass.
	 */
	end = mono_ms() + 10000;
	do {
		rc = tenv_capture(out, sizeof(out),
				  "%s/san/meshctl --socket %s/admin.sock identities 2>&1",
				  nodes.a.build, nodes.a.run_dir);
		if (strstr(out, ": reachable"))
			break;
		usleep(200000);
	} while (mono_ms() < end);
	cr_expect_eq(rc, 0, "meshctl identities: %s", out);
	cr_log_info("meshctl identities on node A:\n%s", out);
	cr_expect(strstr(out, "issuer weft-ca") != NULL, "%s", out);
	cr_expect(strstr(out, "weft-ca https://127.0.0.1:") != NULL, "%s", out);
	cr_expect(strstr(out, ": reachable") != NULL, "%s", out);
	cr_expect(strstr(out, "signer /O=weft-test/CN=ca") != NULL, "%s", out);
	cr_expect(strstr(out, ID_FRONTEND) != NULL, "%s", out);
}

Test(mtls_ca, an_identity_without_a_pod_on_the_callers_node_is_refused)
{
	char reason[64], cert[8192], buf[256];
	long long before = nodes_weftca_count("refused.not_on_node"), refused0;
	struct nodes_registry lying = { .batch_sa = "backend" };
	uint64_t end;

	/* Node A's own token, asking for node B's identity. */
	cr_assert_eq(nodes_weftca_sign("token-node-a", ID_BACKEND, NULL, reason, sizeof(reason),
				       cert, sizeof(cert)), 403);
	cr_expect_str_eq(reason, "not_on_node");
	cr_expect_str_eq(cert, "");
	cr_expect_eq(nodes_weftca_count("refused.not_on_node"), before + 1);
	/* The same request from node B's agent is signed. */
	cr_assert_eq(nodes_weftca_sign("token-node-b", ID_BACKEND, NULL, reason, sizeof(reason),
				       cert, sizeof(cert)), 200, "%s", reason);
	cr_expect_neq(strstr(cert, "BEGIN CERTIFICATE"), NULL);

	/* An agent whose registry says its pod batch-a runs as backend (what a
	 * node taken over could claim): weft-ca goes by the API server.
	 */
	cr_assert(issued_by_within(&nodes.a, ID_BATCH, NODES_CA, 10000));
	refused0 = agent_refused(&nodes.a);
	nodes_write_registry(&nodes.a, &lying);
	end = mono_ms() + 10000;
	while (mono_ms() < end && agent_refused(&nodes.a) <= refused0)
		usleep(100000);
	cr_expect_gt(agent_refused(&nodes.a), refused0, "agent A never counted a refusal");
	cr_expect_gt(nodes_weftca_count("refused.not_on_node"), before + 1);
	cr_expect_str_eq(id_field(&nodes.a, ID_BACKEND, "issuer", buf, sizeof(buf)), "",
			 "node A obtained node B's identity");
}

Test(mtls_ca, unknown_foreign_or_nodeless_tokens_are_refused)
{
	char reason[64], cert[8192];
	long long unauth = nodes_weftca_count("refused.unauthenticated");
	long long wrong = nodes_weftca_count("refused.wrong_account");
	long long nonode = nodes_weftca_count("refused.no_node");
	long long signed0 = nodes_weftca_count("signed");

	cr_assert_eq(kfake_add_token(&nodes.ca.kube, "token-frontend",
				     "system:serviceaccount:mesh:frontend", "node-a", "client-a",
				     "weft-ca"), 0);
	cr_assert_eq(kfake_add_token(&nodes.ca.kube, "token-other-audience",
				     "system:serviceaccount:weft-system:weft-agent", "node-a",
				     "weft-agent-aaaaa", "https://kubernetes.default.svc"), 0);
	cr_assert_eq(kfake_add_token(&nodes.ca.kube, "token-no-node",
				     "system:serviceaccount:weft-system:weft-agent", NULL, NULL,
				     "weft-ca"), 0);

	cr_expect_eq(nodes_weftca_sign(NULL, ID_FRONTEND, NULL, reason, sizeof(reason), cert,
				       sizeof(cert)), 401);
	cr_expect_str_eq(reason, "unauthenticated");
	cr_expect_eq(nodes_weftca_sign("no-such-token", ID_FRONTEND, NULL, reason, sizeof(reason),
				       cert, sizeof(cert)), 401);
	cr_expect_str_eq(reason, "unauthenticated");
	cr_expect_eq(nodes_weftca_sign("token-other-audience", ID_FRONTEND, NULL, reason,
				       sizeof(reason), cert, sizeof(cert)), 401);
	cr_expect_str_eq(reason, "unauthenticated");
	/* A workload's own token: valid, on the right node, not an agent. */
	cr_expect_eq(nodes_weftca_sign("token-frontend", ID_FRONTEND, NULL, reason, sizeof(reason),
				       cert, sizeof(cert)), 403);
	cr_expect_str_eq(reason, "wrong_account");
	cr_expect_eq(nodes_weftca_sign("token-no-node", ID_FRONTEND, NULL, reason, sizeof(reason),
				       cert, sizeof(cert)), 403);
	cr_expect_str_eq(reason, "no_node");
	cr_expect_str_eq(cert, "");
	cr_expect_eq(nodes_weftca_count("refused.unauthenticated"), unauth + 3);
	cr_expect_eq(nodes_weftca_count("refused.wrong_account"), wrong + 1);
	cr_expect_eq(nodes_weftca_count("refused.no_node"), nonode + 1);
	/* Nothing was signed meanwhile but the agents' renewals. */
	cr_expect_geq(nodes_weftca_count("signed"), signed0);
}

Test(mtls_ca, a_csr_naming_another_identity_than_the_request_is_refused)
{
	char reason[64], cert[8192];
	long long mismatch = nodes_weftca_count("refused.id_mismatch");

	/* Both identities have a pod on node A: only the CSR is wrong. */
	cr_expect_eq(nodes_weftca_sign("token-node-a", ID_FRONTEND, ID_BATCH, reason,
				       sizeof(reason), cert, sizeof(cert)), 400);
	cr_expect_str_eq(reason, "id_mismatch");
	cr_expect_str_eq(cert, "");
	cr_expect_eq(nodes_weftca_count("refused.id_mismatch"), mismatch + 1);
	/* Another trust domain in both is refused before any CSR is read. */
	cr_expect_eq(nodes_weftca_sign("token-node-a", "spiffe://evil.example/ns/mesh/sa/frontend",
				       NULL, reason, sizeof(reason), cert, sizeof(cert)), 400);
	cr_expect_str_eq(reason, "bad_request");
	/* The matching request is signed, the certificate names it. */
	cr_assert_eq(nodes_weftca_sign("token-node-a", ID_FRONTEND, NULL, reason, sizeof(reason),
				       cert, sizeof(cert)), 200, "%s", reason);
}

/* get() from client-a until @done(), counting failures. */
static int flow_until(bool (*done)(void), uint64_t ms, int *requests)
{
	uint64_t end = mono_ms() + ms;
	int failures = 0;

	do {
		if (get("ca"))
			failures++;
		(*requests)++;
		if (done())
			return failures;
		usleep(50000);
	} while (mono_ms() < end);
	cr_assert_fail("not done within %llu ms (%d failed requests)", (unsigned long long)ms,
		       failures);
	return failures;
}

static bool both_on_next_ca(void)
{
	char a[256], b[256];

	return strstr(id_field(&nodes.a, ID_FRONTEND, "issuer", a, sizeof(a)), NODES_NEXT_CA) &&
	       strstr(id_field(&nodes.b, ID_BACKEND, "issuer", b, sizeof(b)), NODES_NEXT_CA);
}

static bool trust_one_anchor(void)
{
	json_object *a = tenv_admin_get(&nodes.a, "/v1/identities");
	json_object *b = tenv_admin_get(&nodes.b, "/v1/identities"), *v;
	bool one = a && b && json_object_object_get_ex(a, "trust_anchors", &v) &&
		   json_object_get_int64(v) == 1 &&
		   json_object_object_get_ex(b, "trust_anchors", &v) &&
		   json_object_get_int64(v) == 1;

	json_object_put(a);
	json_object_put(b);
	return one;
}

static bool trust_two_anchors(void)
{
	json_object *a = tenv_admin_get(&nodes.a, "/v1/identities");
	json_object *b = tenv_admin_get(&nodes.b, "/v1/identities"), *v;
	bool two = a && b && json_object_object_get_ex(a, "trust_anchors", &v) &&
		   json_object_get_int64(v) == 2 &&
		   json_object_object_get_ex(b, "trust_anchors", &v) &&
		   json_object_get_int64(v) == 2;

	json_object_put(a);
	json_object_put(b);
	return two;
}

Test(mtls_ca, a_ca_rotation_with_overlap_loses_no_request)
{
	long long fail_a, fail_b;
	int failures = 0, requests = 0;
	uint64_t t0;

	cr_assert_eq(get_until("ca", 15000), 0, "no traffic before the rotation");
	/* Counted from here: what the rotation costs, not the start. */
	fail_a = tenv_status_counter(&nodes.a, "mtls.fail_handshake");
	fail_b = tenv_status_counter(&nodes.b, "mtls.fail_handshake");
	t0 = mono_ms();
	/* 1. The next CA joins the bundle; weft-ca still signs with the old. */
	nodes_weftca_files("ca", "next-ca");
	nodes_weftca_bundle("ca.pem", "next-ca.pem", 10000);
	failures += flow_until(trust_two_anchors, 20000, &requests);
	/* 2. weft-ca signs with the next CA, trusting the old one still. */
	nodes_weftca_files("next-ca", "ca");
	nodes_weftca_bundle("next-ca.pem", "ca.pem", 10000);
	failures += flow_until(both_on_next_ca, 20000, &requests);
	/* 3. Every certificate is the next CA's: the old one leaves. */
	nodes_weftca_files("next-ca", NULL);
	nodes_weftca_bundle("next-ca.pem", NULL, 10000);
	failures += flow_until(trust_one_anchor, 20000, &requests);
	cr_log_info("CA rotation: %d requests over %llu ms, %d failed", requests,
		    (unsigned long long)(mono_ms() - t0), failures);
	cr_expect_eq(failures, 0, "%d of %d requests failed during the rotation", failures,
		     requests);
	cr_expect_eq(get("ca"), 0, "no traffic after the rotation");
	cr_expect_eq(tenv_status_counter(&nodes.a, "mtls.fail_handshake"), fail_a);
	cr_expect_eq(tenv_status_counter(&nodes.b, "mtls.fail_handshake"), fail_b);
	{
		json_object *st = nodes_weftca_status(), *v;

		cr_assert_not_null(st);
		cr_expect(json_object_object_get_ex(st, "signer", &v) &&
			  strstr(json_object_get_string(v), NODES_NEXT_CA));
		json_object_put(st);
	}
}

Test(mtls_ca, a_token_naming_no_node_takes_the_node_of_its_bound_pod)
{
	char reason[64], cert[8192];

	/* Before Kubernetes 1.30 a pod-bound token carried the pod's name,
	 * not its node's: weft-ca reads the agent pod.
	 */
	cr_assert_eq(kfake_apply(&nodes.ca.kube,
				 "[{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
				 "\"weft-agent-older\",\"namespace\":\"weft-system\"},\"spec\":{"
				 "\"serviceAccountName\":\"weft-agent\",\"nodeName\":\"node-a\"},"
				 "\"status\":{\"phase\":\"Running\"}}]"), 0);
	cr_assert_eq(kfake_add_token(&nodes.ca.kube, "token-older",
				     "system:serviceaccount:weft-system:weft-agent", NULL,
				     "weft-agent-older", "weft-ca"), 0);
	cr_expect_eq(nodes_weftca_sign("token-older", ID_FRONTEND, NULL, reason, sizeof(reason),
				       cert, sizeof(cert)), 200, "%s", reason);
	cr_expect_neq(strstr(cert, "BEGIN CERTIFICATE"), NULL);
	cr_expect_eq(nodes_weftca_sign("token-older", ID_BACKEND, NULL, reason, sizeof(reason),
				       cert, sizeof(cert)), 403);
	cr_expect_str_eq(reason, "not_on_node");
	/* Its pod gone, the token is no longer valid. */
	cr_assert_eq(kfake_delete(&nodes.ca.kube, "Pod", "weft-system", "weft-agent-older"), 0);
	cr_expect_eq(nodes_weftca_sign("token-older", ID_FRONTEND, NULL, reason, sizeof(reason),
				       cert, sizeof(cert)), 401);
	cr_expect_str_eq(reason, "unauthenticated");
}

Test(mtls_ca, without_the_api_server_nothing_is_signed)
{
	char reason[64], cert[8192];
	long long api = nodes_weftca_count("refused.api_error");

	cr_assert_eq(kfake_control(&nodes.ca.kube, "down", "{\"down\": true}"), 0);
	cr_expect_eq(nodes_weftca_sign("token-node-a", ID_FRONTEND, NULL, reason, sizeof(reason),
				       cert, sizeof(cert)), 503);
	cr_expect_str_eq(reason, "api_error");
	cr_expect_str_eq(cert, "");
	/* At least ours: an agent's renewal that arrives while the API server
	 * is down is refused and counted the same way.
	 */
	cr_expect_geq(nodes_weftca_count("refused.api_error"), api + 1);
	cr_assert_eq(kfake_control(&nodes.ca.kube, "down", "{\"down\": false}"), 0);
	cr_expect_eq(nodes_weftca_sign("token-node-a", ID_FRONTEND, NULL, reason, sizeof(reason),
				       cert, sizeof(cert)), 200, "%s", reason);
}
