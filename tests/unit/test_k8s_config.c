// SPDX-License-Identifier: GPL-2.0-only
/* agent/registry/k8s_config.c: the kubeconfig shapes people have (tokens,
 * token files, client certificates, inline or file CAs, insecure, several
 * files merged), the in-cluster service account, and the errors that name
 * what is wrong; base64 and token files.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "registry/k8s_config.h"

static char dir[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/weft-test-k8scfg-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	(void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(k8s_config, .init = setup, .fini = teardown);

static const char *put(const char *name, const char *text)
{
	static char p[4][512];
	static int which;
	FILE *f;

	which = (which + 1) % 4;
	snprintf(p[which], sizeof(p[which]), "%s/%s", dir, name);
	f = fopen(p[which], "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return p[which];
}

#define HEAD "apiVersion: v1\nkind: Config\n"

Test(k8s_config, token_file_and_ca_file_relative_to_the_kubeconfig)
{
	struct k8s_conn_cfg c;
	char err[K8S_CFG_ERR_MAX], want[600];
	const char *kc;

	put("token", "abc\n");
	kc = put("kc.yaml", HEAD "current-context: b\ncontexts:\n"
			    "- {name: a, context: {cluster: x, user: u}}\n"
			    "- {name: b, context: {cluster: c1, user: u1}}\n"
			    "clusters:\n- name: c1\n  cluster:\n    server: https://10.0.0.1:6443/\n"
			    "    certificate-authority: pki/ca.crt\n"
			    "users:\n- name: u1\n  user: {tokenFile: token}\n");
	cr_assert_eq(k8s_conn_from_kubeconfig(kc, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.server, "https://10.0.0.1:6443", "the trailing slash is dropped");
	snprintf(want, sizeof(want), "%s/pki/ca.crt", dir);
	cr_assert_str_eq(c.ca_file, want);
	snprintf(want, sizeof(want), "%s/token", dir);
	cr_assert_str_eq(c.token_file, want);
	cr_assert_null(c.token);
	cr_assert(!c.insecure);
	cr_assert(strstr(c.origin, "context 'b'"), "%s", c.origin);
	k8s_conn_done(&c);
}

Test(k8s_config, inline_data_wins_over_files_and_token_over_token_file)
{
	struct k8s_conn_cfg c;
	char err[K8S_CFG_ERR_MAX];
	const char *kc;

	/* "-----BEGIN" and "KEY" in base64 */
	kc = put("kc.yaml", HEAD "current-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\n"
			    "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
			    "    certificate-authority: /ignored\n"
			    "    certificate-authority-data: LS0tLS1CRUdJTg==\n"
			    "users:\n- name: u\n  user:\n    token: t0k3n\n    tokenFile: /ignored\n"
			    "    client-certificate-data: LS0tLS1CRUdJTg==\n    client-key-data: S0VZ\n");
	cr_assert_eq(k8s_conn_from_kubeconfig(kc, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_null(c.ca_file);
	cr_assert_eq(c.ca_pem.len, 10);
	cr_assert_eq(memcmp(c.ca_pem.data, "-----BEGIN", 10), 0);
	cr_assert_str_eq(c.token, "t0k3n");
	cr_assert_null(c.token_file);
	cr_assert_eq(c.key_pem.len, 3);
	cr_assert_eq(memcmp(c.key_pem.data, "KEY", 3), 0);
	k8s_conn_done(&c);
}

Test(k8s_config, insecure_and_anonymous_and_json)
{
	struct k8s_conn_cfg c;
	char err[K8S_CFG_ERR_MAX];
	const char *kc;

	kc = put("kc.json", "{\"apiVersion\":\"v1\",\"kind\":\"Config\",\"current-context\":\"x\","
			    "\"contexts\":[{\"name\":\"x\",\"context\":{\"cluster\":\"c\"}}],"
			    "\"clusters\":[{\"name\":\"c\",\"cluster\":{\"server\":\"http://127.0.0.1:8080\","
			    "\"insecure-skip-tls-verify\":true}}]}");
	cr_assert_eq(k8s_conn_from_kubeconfig(kc, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert(c.insecure);
	cr_assert_null(c.token);
	cr_assert_null(c.token_file);
	cr_assert_null(c.cert_file);
	k8s_conn_done(&c);
}

Test(k8s_config, several_files_merge_first_wins)
{
	struct k8s_conn_cfg c;
	char err[K8S_CFG_ERR_MAX], paths[1200];
	const char *a, *b;

	a = put("a.yaml", HEAD "clusters:\n- {name: c, cluster: {server: 'https://first'}}\n");
	b = put("b.yaml", HEAD "current-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\n"
			   "clusters:\n- {name: c, cluster: {server: 'https://second'}}\n"
			   "users:\n- {name: u, user: {token: t}}\n");
	snprintf(paths, sizeof(paths), "%s:%s/missing.yaml:%s", a, dir, b);
	cr_assert_eq(k8s_conn_from_kubeconfig(paths, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.server, "https://first");
	cr_assert_str_eq(c.token, "t");
	k8s_conn_done(&c);
}

static void expect_error(const char *yaml, const char *needle)
{
	struct k8s_conn_cfg c;
	char err[K8S_CFG_ERR_MAX] = "";
	const char *kc = put("bad.yaml", yaml);

	cr_assert_neq(k8s_conn_from_kubeconfig(kc, &c, err, sizeof(err)), 0, "accepted: %s", yaml);
	cr_assert(strstr(err, needle), "error '%s' lacks '%s'", err, needle);
	cr_assert_null(c.server, "a failed load leaves nothing behind");
}

Test(k8s_config, errors_name_the_problem)
{
	expect_error(HEAD "contexts: []\n", "current-context is not set");
	expect_error(HEAD "current-context: x\n", "current-context 'x' is not defined");
	expect_error(HEAD "current-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\n",
		     "cluster 'c' is not defined");
	expect_error(HEAD "current-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\n"
			  "clusters:\n- {name: c, cluster: {server: 'ftp://h'}}\n",
		     "server: must be an https:// or http:// URL");
	expect_error(HEAD "current-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\n"
			  "clusters:\n- {name: c, cluster: {server: 'https://h'}}\n"
			  "users:\n- name: u\n  user:\n    exec: {command: aws}\n",
		     "users['u'].user.exec: not supported");
	expect_error(HEAD "current-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\n"
			  "clusters:\n- {name: c, cluster: {server: 'https://h'}}\n"
			  "users:\n- name: u\n  user: {client-certificate: a.crt}\n",
		     "client-certificate and client-key go together");
	expect_error(HEAD "current-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\n"
			  "clusters:\n- {name: c, cluster: {server: 'https://h', certificate-authority-data: '@@'}}\n",
		     "certificate-authority-data: not valid base64");
	expect_error(HEAD "current-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\n"
			  "clusters:\n- {name: c, cluster: {server: 'https://h', insecure-skip-tls-verify: 'yes'}}\n",
		     "insecure-skip-tls-verify: must be true or false");
	expect_error(HEAD "current-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\n"
			  "clusters:\n- {name: c, cluster: {server: 'https://h', proxy-url: 'http://p'}}\n",
		     "proxy-url: not supported");
	expect_error(HEAD "current-context: [x\n", "line ");
	expect_error("- just\n- a list\n", "not a mapping");
}

Test(k8s_config, missing_kubeconfig)
{
	struct k8s_conn_cfg c;
	char err[K8S_CFG_ERR_MAX];

	cr_assert_eq(k8s_conn_from_kubeconfig("/nonexistent/kc", &c, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "/nonexistent/kc"), "%s", err);
}

Test(k8s_config, in_cluster)
{
	struct k8s_conn_cfg c;
	char err[K8S_CFG_ERR_MAX], want[600];

	cr_assert_eq(k8s_conn_in_cluster(dir, NULL, NULL, &c, err, sizeof(err)), -ENOENT);
	cr_assert_eq(k8s_conn_in_cluster(dir, "10.96.0.1", "443", &c, err, sizeof(err)), -ENOENT,
		     "no token file");
	cr_assert(strstr(err, "token"), "%s", err);
	put("token", "  tok\n");
	cr_assert_eq(k8s_conn_in_cluster(dir, "10.96.0.1", "443", &c, err, sizeof(err)), -ENOENT,
		     "no CA");
	put("ca.crt", "-----BEGIN CERTIFICATE-----\n");
	cr_assert_eq(k8s_conn_in_cluster(dir, "10.96.0.1", "443", &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.server, "https://10.96.0.1:443");
	snprintf(want, sizeof(want), "%s/token", dir);
	cr_assert_str_eq(c.token_file, want);
	k8s_conn_done(&c);
	cr_assert_eq(k8s_conn_in_cluster(dir, "fd00::1", "6443", &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.server, "https://[fd00::1]:6443");
	k8s_conn_done(&c);
}

Test(k8s_config, token_file_is_trimmed_and_empty_is_an_error)
{
	char *t = NULL;

	cr_assert_eq(k8s_token_read(put("t1", "\n  eyJhbGciOi.x.y \r\n"), &t), 0);
	cr_assert_str_eq(t, "eyJhbGciOi.x.y");
	free(t);
	cr_assert_eq(k8s_token_read(put("t2", " \n"), &t), -ENODATA);
	cr_assert_eq(k8s_token_read("/nonexistent/token", &t), -ENOENT);
}

Test(k8s_config, base64)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
		{ "Zg==", "f" }, { "Zm8=", "fo" }, { "Zm9v", "foo" }, { "Zm9vYg", "foob" },
		{ "Zm9v\nYmFy\n", "foobar" }, { " Zm9vYmE= ", "fooba" },
	};
	static const char *const bad[] = { "", "Z", "Zm9v!", "Zg==Zg==", "Zm9vY" };
	struct k8s_blob b;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(k8s_base64_decode(ok[i].in, &b), 0, "'%s'", ok[i].in);
		cr_assert_eq(b.len, strlen(ok[i].out), "'%s'", ok[i].in);
		cr_assert_eq(memcmp(b.data, ok[i].out, b.len), 0, "'%s'", ok[i].in);
		free(b.data);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(k8s_base64_decode(bad[i], &b), -EINVAL, "'%s' accepted", bad[i]);
}
