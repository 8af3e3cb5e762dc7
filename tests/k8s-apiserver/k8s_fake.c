// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/k8s-apiserver/k8s_fake.h. */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "curl_body.h"
#include "k8s_fake.h"
#include "proc.h"

#define SCRIPT "tests/k8s-apiserver/apiserver.py"
#define START_WAIT_MS 10000

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return rc == 0 ? 0 : -1;
}

/* CA, server certificate for IP 127.0.0.1, client certificate; EC keys are
 * quick to make.
 */
static int make_certs(const char *dir)
{
	return sh("cd '%s' && ( "
		  "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		  "-keyout ca.key -out ca.crt -subj /CN=weft-test-ca -days 2 && "
		  "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		  "-keyout server.key -out server.csr -subj /CN=127.0.0.1 && "
		  "printf 'subjectAltName=IP:127.0.0.1\\n' > server.ext && "
		  "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		  "-out server.crt -days 2 -extfile server.ext && "
		  "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		  "-keyout client.key -out client.csr -subj /O=weft/CN=weft-agent && "
		  "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		  "-out client.crt -days 2 ) >/dev/null 2>&1",
		  dir);
}

static int write_kubeconfig(struct kfake *f)
{
	const char *user;

	if (f->opts.auth == KFAKE_AUTH_CLIENT_CERT) {
		/* Everything inline, the shape cloud providers hand out. */
		return sh("cd '%s' && { printf 'apiVersion: v1\\nkind: Config\\n"
			  "current-context: test\\ncontexts:\\n- name: test\\n  context:\\n"
			  "    cluster: fake\\n    user: agent\\nclusters:\\n- name: fake\\n"
			  "  cluster:\\n    server: %s/\\n    certificate-authority-data: ' && "
			  "base64 -w0 ca.crt && printf '\\nusers:\\n- name: agent\\n  user:\\n"
			  "    client-certificate-data: ' && base64 -w0 client.crt && "
			  "printf '\\n    client-key-data: ' && base64 -w0 client.key && echo; "
			  "} > kubeconfig",
			  f->dir, f->url);
	}
	/* Relative paths: kubectl resolves them against the kubeconfig's folder. */
	user = "users:\\n- name: agent\\n  user:\\n    tokenFile: token\\n";
	return sh("cd '%s' && printf 'apiVersion: v1\\nkind: Config\\ncurrent-context: test\\n"
		  "contexts:\\n- name: other\\n  context: {cluster: nowhere, user: agent}\\n"
		  "- name: test\\n  context:\\n    cluster: fake\\n    user: agent\\n"
		  "clusters:\\n- name: fake\\n  cluster:\\n    server: %s\\n"
		  "    certificate-authority: ca.crt\\n%s' > kubeconfig",
		  f->dir, f->url, user);
}

static int spawn(struct kfake *f)
{
	char port_file[PATH_MAX + 16], cert[PATH_MAX + 16], key[PATH_MAX + 16];
	char history[32], bookmarks[32];
	char *argv[] = {
		TPROC_PYTHON, SCRIPT, "--port-file", port_file, "--cert", cert, "--key", key,
		"--client-ca", f->ca, "--token", KFAKE_TOKEN, "--history", history,
		"--bookmarks", bookmarks, "--gone", (char *)(f->opts.gone ? f->opts.gone : "event"),
		NULL,
	};
	struct tproc_port_file pf = { .path = port_file };
	int err;

	snprintf(port_file, sizeof(port_file), "%s/port", f->dir);
	snprintf(cert, sizeof(cert), "%s/server.crt", f->dir);
	snprintf(key, sizeof(key), "%s/server.key", f->dir);
	snprintf(history, sizeof(history), "%d", f->opts.history > 0 ? f->opts.history : 10000);
	snprintf(bookmarks, sizeof(bookmarks), "%g", f->opts.bookmarks > 0 ? f->opts.bookmarks : 1.0);
	(void)unlink(port_file);
	if (access(SCRIPT, R_OK)) {
		fprintf(stderr, "k8s_fake: %s not found: run the tests from the top of the tree\n",
			SCRIPT);
		return -1;
	}
	/* The server must not outlive a test that died. */
	f->pid = tproc_spawn(argv, NULL, SIGKILL);
	if (f->pid == -1) {
		f->pid = 0;
		return -1;
	}
	err = tproc_wait_ready(&f->pid, START_WAIT_MS, 20, tproc_port_written, &pf);
	if (!err)
		f->port = pf.port;
	if (err == -ECHILD)
		fprintf(stderr, "k8s_fake: the fake API server exited at start\n");
	else if (err)
		fprintf(stderr, "k8s_fake: the fake API server did not start in time\n");
	return err ? -1 : 0;
}

int kfake_start(struct kfake *f, const struct kfake_opts *opts)
{
	memset(f, 0, sizeof(*f));
	if (opts)
		f->opts = *opts;
	if (tproc_mkdtemp(f->dir, sizeof(f->dir), "k8s"))
		return -1;
	snprintf(f->kubeconfig, sizeof(f->kubeconfig), "%s/kubeconfig", f->dir);
	snprintf(f->token_file, sizeof(f->token_file), "%s/token", f->dir);
	snprintf(f->ca, sizeof(f->ca), "%s/ca.crt", f->dir);
	if (make_certs(f->dir)) {
		fprintf(stderr, "k8s_fake: openssl could not make the test certificates\n");
		return -1;
	}
	if (kfake_write_token(f, KFAKE_TOKEN) || spawn(f))
		return -1;
	snprintf(f->url, sizeof(f->url), "https://127.0.0.1:%u", f->port);
	return write_kubeconfig(f);
}

void kfake_kill(struct kfake *f)
{
	tproc_kill(f->pid);
	f->pid = 0;
}

void kfake_stop(struct kfake *f)
{
	kfake_kill(f);
	tproc_rmtree(f->dir);
}

int kfake_write_token(struct kfake *f, const char *token)
{
	char tmp[PATH_MAX + 32];
	FILE *o;

	snprintf(tmp, sizeof(tmp), "%s.new", f->token_file);
	o = fopen(tmp, "w");
	if (!o)
		return -1;
	fprintf(o, "%s\n", token);
	if (fclose(o))
		return -1;
	return rename(tmp, f->token_file) ? -1 : 0;
}

/* One control request; the parsed answer (caller puts it) or NULL. */
static json_object *call(struct kfake *f, const char *what, const char *json)
{
	char url[256];
	struct tcurl_body b = { 0 };
	json_object *o = NULL;
	CURL *c = curl_easy_init();
	long code = 0;

	if (!c)
		return NULL;
	snprintf(url, sizeof(url), "%s/_control/%s", f->url, what);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, f->ca);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tcurl_body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (json)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	if (curl_easy_perform(c) == CURLE_OK &&
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200 && b.buf)
		o = json_tokener_parse(b.buf);
	else
		fprintf(stderr, "k8s_fake: control call %s failed (HTTP %ld)\n", what, code);
	curl_easy_cleanup(c);
	free(b.buf);
	return o;
}

int kfake_control(struct kfake *f, const char *what, const char *json)
{
	json_object *o = call(f, what, json ? json : "{}");

	json_object_put(o);
	return o ? 0 : -1;
}

int kfake_apply_rv(struct kfake *f, const char *json, long long *rv)
{
	size_t n = strlen(json) + 32;
	char *body = malloc(n);
	json_object *o, *v = NULL;

	if (!body)
		return -1;
	snprintf(body, n, "{\"objects\":%s}", json);
	o = call(f, "apply", body);
	free(body);
	if (o && rv) {
		*rv = json_object_object_get_ex(o, "resourceVersion", &v)
			      ? strtoll(json_object_get_string(v), NULL, 10)
			      : -1;
	}
	json_object_put(o);
	return o ? 0 : -1;
}

int kfake_apply(struct kfake *f, const char *json)
{
	return kfake_apply_rv(f, json, NULL);
}

json_object *kfake_event_times(struct kfake *f, long long since)
{
	char what[64];

	snprintf(what, sizeof(what), "event_times?since=%lld", since);
	return call(f, what, NULL);
}

int kfake_delete(struct kfake *f, const char *kind, const char *ns, const char *name)
{
	char body[512];

	snprintf(body, sizeof(body), "{\"kind\":\"%s\",\"namespace\":\"%s\",\"name\":\"%s\"}", kind,
		 ns, name);
	return kfake_control(f, "delete", body);
}

json_object *kfake_stats(struct kfake *f)
{
	return call(f, "stats", NULL);
}

long long kfake_stat(struct kfake *f, const char *group, const char *key)
{
	json_object *s = kfake_stats(f), *g = NULL, *v = NULL;
	long long n = -1;

	if (s && json_object_object_get_ex(s, group, &g) &&
	    (!key ? (v = g) != NULL : json_object_object_get_ex(g, key, &v)))
		n = json_object_get_int64(v);
	json_object_put(s);
	return n;
}

int kfake_last_watch_rv(struct kfake *f, const char *plural, char *buf, size_t len)
{
	json_object *s = kfake_stats(f), *g = NULL, *a = NULL;
	size_t n;
	int rc = -1;

	buf[0] = '\0';
	if (s && json_object_object_get_ex(s, "watch_rvs", &g) &&
	    json_object_object_get_ex(g, plural, &a)) {
		n = json_object_array_length(a);
		if (n)
			snprintf(buf, len, "%s",
				 json_object_get_string(json_object_array_get_idx(a, n - 1)));
		rc = 0;
	}
	json_object_put(s);
	return rc;
}

json_object *kfake_get(struct kfake *f, const char *path)
{
	char url[1024];
	struct tcurl_body b = { 0 };
	struct curl_slist *h;
	json_object *o = NULL;
	CURL *c = curl_easy_init();
	long code = 0;

	if (!c)
		return NULL;
	h = curl_slist_append(NULL, "Authorization: Bearer " KFAKE_TOKEN);
	snprintf(url, sizeof(url), "%s%s", f->url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, f->ca);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tcurl_body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(c) == CURLE_OK &&
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200 && b.buf)
		o = json_tokener_parse(b.buf);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	free(b.buf);
	return o;
}

int kfake_add_token(struct kfake *f, const char *token, const char *username, const char *node,
		    const char *pod, const char *audience)
{
	json_object *o = json_object_new_object(), *user = json_object_new_object();
	json_object *extra = json_object_new_object(), *auds = json_object_new_array();
	json_object *groups = json_object_new_array();
	int rc;

	json_object_array_add(groups, json_object_new_string("system:serviceaccounts"));
	json_object_array_add(groups, json_object_new_string("system:authenticated"));
	if (node) {
		json_object *v = json_object_new_array();

		json_object_array_add(v, json_object_new_string(node));
		json_object_object_add(extra, "authentication.kubernetes.io/node-name", v);
	}
	if (pod) {
		json_object *v = json_object_new_array();

		json_object_array_add(v, json_object_new_string(pod));
		json_object_object_add(extra, "authentication.kubernetes.io/pod-name", v);
	}
	json_object_object_add(user, "username", json_object_new_string(username));
	json_object_object_add(user, "uid", json_object_new_string(token));
	json_object_object_add(user, "groups", groups);
	json_object_object_add(user, "extra", extra);
	json_object_array_add(auds, json_object_new_string(audience));
	json_object_object_add(o, "token", json_object_new_string(token));
	json_object_object_add(o, "user", user);
	json_object_object_add(o, "audiences", auds);
	rc = kfake_control(f, "tokens", json_object_to_json_string(o));
	json_object_put(o);
	return rc;
}
