// SPDX-License-Identifier: GPL-2.0-only
/* weft-ca's questions to the API server, each one blocking HTTPS call on
 * the calling thread (a request thread, or the main thread for the bundle):
 * a TokenReview (authentication.k8s.io/v1), the pods of a node (a field
 * selector, so the answer is the node's pods only) and the bundle
 * ConfigMap. The connection settings are the registry's (k8s_config.c,
 * k8s_http.c): in-cluster or a kubeconfig.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "ca/ca.h"
#include "growbuf.h"
#include "json_help.h"
#include "registry/k8s_http.h"

#define KUBE_TIMEOUT_MS 5000
#define KUBE_BODY_MAX (32u << 20)	/* a node's pods, a few MiB at most */
/* The extra a pod-bound ServiceAccount token carries (Kubernetes 1.30+). */
#define EXTRA_NODE "authentication.kubernetes.io/node-name"

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	return growbuf_add(ud, p, size * n) ? 0 : size * n;
}

/* One call: @method @path with JSON @body (NULL: none). The HTTP status
 * and the parsed answer in *@out (NULL when not JSON; caller puts), or
 * -EIO when there was no answer.
 */
static int call(const struct k8s_conn_cfg *k, const char *method, const char *path,
		const char *body, json_object **out)
{
	struct growbuf resp = { .max = KUBE_BODY_MAX };
	struct curl_slist *headers = NULL, *h;
	char url[2048], *token = NULL;
	CURL *easy = curl_easy_init();
	long code = 0;
	int rc;

	*out = NULL;
	if (!easy)
		return -ENOMEM;
	if ((size_t)snprintf(url, sizeof(url), "%s%s", k->server, path) >= sizeof(url)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	/* Read again each time: kubelet rotates the projected token. */
	if (k->token_file && k8s_token_read(k->token_file, &token))
		token = NULL;
	rc = k8s_http_setup(easy, k, url, token ? token : k->token, KUBE_TIMEOUT_MS, &headers);
	if (rc)
		goto out;
	if (body) {
		h = curl_slist_append(headers, "Content-Type: application/json");
		if (!h) {
			rc = -ENOMEM;
			goto out;
		}
		headers = h;
		curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
	}
	curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, &resp);
	if (curl_easy_perform(easy) != CURLE_OK) {
		rc = -EIO;
		goto out;
	}
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
	*out = resp.data ? json_tokener_parse(resp.data) : NULL;
	rc = (int)code;
out:
	free(token);
	curl_slist_free_all(headers);
	curl_easy_cleanup(easy);
	growbuf_free(&resp);
	return rc;
}

int ca_kube_review(const struct k8s_conn_cfg *k, const char *token, const char *audience,
		   struct ca_caller *out, char *err, size_t errlen)
{
	json_object *req = json_object_new_object(), *spec = json_object_new_object();
	json_object *auds = json_object_new_array(), *resp = NULL, *st, *user, *v;
	int code, rc = -ENOMEM;

	memset(out, 0, sizeof(*out));
	/* Each builder takes its value, so the errors are OR-ed. */
	if (!req || !spec || !auds) {
		json_object_put(spec);
		json_object_put(auds);
		goto out;
	}
	if (json_append(auds, json_object_new_string(audience)) |
			    json_add_str(spec, "token", token) | json_add(spec, "audiences", auds) |
			    json_add_str(req, "apiVersion", "authentication.k8s.io/v1") |
			    json_add_str(req, "kind", "TokenReview") | json_add(req, "spec", spec)) {
		goto out;
	}
	code = call(k, "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
		    json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN), &resp);
	if (code != 201 && code != 200) {
		snprintf(err, errlen, "TokenReview: %s %d", code < 0 ? "no answer" : "HTTP", code);
		rc = -EIO;
		goto out;
	}
	st = json_member(resp, "status");
	v = json_member(st, "authenticated");
	if (!v || !json_object_get_boolean(v)) {
		snprintf(err, errlen, "the token is not valid: %s",
			 json_member_str(st, "error") ? json_member_str(st, "error") : "not authenticated");
		rc = -EACCES;
		goto out;
	}
	/* The review was asked for our audience only: an answer that does
	 * not list it means the token was not made for weft-ca.
	 */
	v = json_member(st, "audiences");
	if (v) {
		bool ours = false;

		for (size_t i = 0; i < json_object_array_length(v); i++)
			ours |= !strcmp(json_object_get_string(json_object_array_get_idx(v, i)),
					audience);
		if (!ours) {
			snprintf(err, errlen, "the token is not for audience '%s'", audience);
			rc = -EACCES;
			goto out;
		}
	}
	user = json_member(st, "user");
	json_copy_str(user, "username", out->user, sizeof(out->user));
	v = json_member(json_member(user, "extra"), EXTRA_NODE);
	if (v && json_object_get_type(v) == json_type_array && json_object_array_length(v) == 1)
		snprintf(out->node, sizeof(out->node), "%s",
			 json_object_get_string(json_object_array_get_idx(v, 0)));
	v = json_member(json_member(user, "extra"), "authentication.kubernetes.io/pod-name");
	if (v && json_object_get_type(v) == json_type_array && json_object_array_length(v) == 1)
		snprintf(out->pod_name, sizeof(out->pod_name), "%s",
			 json_object_get_string(json_object_array_get_idx(v, 0)));
	rc = 0;
out:
	json_object_put(req);
	json_object_put(resp);
	return rc;
}

int ca_kube_pod_node(const struct k8s_conn_cfg *k, const char *ns, const char *name,
		     char *node, size_t len)
{
	json_object *resp = NULL;
	char path[512];
	int code;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", ns, name);
	code = call(k, "GET", path, NULL, &resp);
	node[0] = '\0';
	if (code == 200)
		json_copy_str(json_member(resp, "spec"), "nodeName", node, len);
	json_object_put(resp);
	return code == 200 ? (node[0] ? 0 : -ENOENT) : code == 404 ? -ENOENT : -EIO;
}

/* URL-encode the few characters a node name or selector may carry. */
static void encode(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in && o + 4 < len; in++) {
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~", *in))
			out[o++] = *in;
		else
			o += (size_t)snprintf(out + o, len - o, "%%%02X", (unsigned char)*in);
	}
	out[o] = '\0';
}

int ca_kube_pod_on_node(const struct k8s_conn_cfg *k, const char *node, const char *ns,
			const char *sa)
{
	json_object *resp = NULL, *items;
	char path[1024], enc[768];
	int code, found = 0;

	encode(node, enc, sizeof(enc));
	/* The node's pods only, from the API server's cache: no quorum read. */
	snprintf(path, sizeof(path),
		 "/api/v1/namespaces/%s/pods?fieldSelector=spec.nodeName%%3D%s&resourceVersion=0",
		 ns, enc);
	code = call(k, "GET", path, NULL, &resp);
	if (code != 200) {
		json_object_put(resp);
		return -EIO;
	}
	items = json_member(resp, "items");
	for (size_t i = 0; items && i < json_object_array_length(items) && !found; i++) {
		json_object *p = json_object_array_get_idx(items, i);
		json_object *spec = json_member(p, "spec"), *meta = json_member(p, "metadata");
		const char *pod_sa = json_member_str(spec, "serviceAccountName");
		const char *phase = json_member_str(json_member(p, "status"), "phase");
		const char *pod_node = json_member_str(spec, "nodeName");
		const char *pod_ns = json_member_str(meta, "namespace");

		/* Checked again: the answer is trusted for nothing. A pod that
		 * has finished holds no identity any more.
		 */
		if (!pod_sa)
			pod_sa = "default";
		found = pod_node && !strcmp(pod_node, node) && pod_ns && !strcmp(pod_ns, ns) &&
			!strcmp(pod_sa, sa) &&
			!(phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))) &&
			!json_member(meta, "deletionTimestamp");
	}
	json_object_put(resp);
	return found;
}

int ca_kube_publish_bundle(const struct k8s_conn_cfg *k, const char *ns_name, const char *pem,
			   char *err, size_t errlen)
{
	json_object *cm, *meta, *data, *labels, *resp = NULL;
	char ns[64], name[254], path[512];
	const char *slash = strchr(ns_name, '/');
	const char *body;
	int code, rc = -ENOMEM;

	if (!slash || slash == ns_name || (size_t)(slash - ns_name) >= sizeof(ns) ||
	    strlen(slash + 1) >= sizeof(name) || !slash[1]) {
		snprintf(err, errlen, "'%s' is not NAMESPACE/NAME", ns_name);
		return -EINVAL;
	}
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - ns_name), ns_name);
	snprintf(name, sizeof(name), "%s", slash + 1);
	cm = json_object_new_object();
	meta = json_object_new_object();
	data = json_object_new_object();
	labels = json_object_new_object();
	/* Each builder takes its value, so the errors are OR-ed. */
	if (!cm || !meta || !data || !labels) {
		json_object_put(meta);
		json_object_put(data);
		json_object_put(labels);
		goto out;
	}
	if (json_add_str(labels, "app.kubernetes.io/part-of", "weft") |
			   json_add_str(meta, "name", name) | json_add_str(meta, "namespace", ns) |
			   json_add(meta, "labels", labels) | json_add_str(data, "bundle.pem", pem) |
			   json_add_str(cm, "apiVersion", "v1") | json_add_str(cm, "kind", "ConfigMap") |
			   json_add(cm, "metadata", meta) | json_add(cm, "data", data)) {
		goto out;
	}
	body = json_object_to_json_string_ext(cm, JSON_C_TO_STRING_PLAIN);
	/* Replace; the first time there is nothing to replace: create. */
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/%s", ns, name);
	code = call(k, "PUT", path, body, &resp);
	if (code == 404) {
		json_object_put(resp);
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", ns);
		code = call(k, "POST", path, body, &resp);
	}
	if (code == 200 || code == 201) {
		rc = 0;
	} else {
		snprintf(err, errlen, "ConfigMap %s: %s %d %s", ns_name, code < 0 ? "no answer" : "HTTP",
			 code, json_member_str(resp, "message") ? json_member_str(resp, "message") : "");
		rc = code < 0 ? -EIO : -EACCES;
	}
out:
	json_object_put(cm);
	json_object_put(resp);
	return rc;
}
