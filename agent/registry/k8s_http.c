// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of registry/k8s_http.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "registry/k8s_http.h"

#define CONNECT_TIMEOUT_MS 10000L
#define KEEPALIVE_IDLE_S 30L	/* a dead API server is noticed within ~1 min */
#define KEEPALIVE_INTVL_S 10L

/* Percent-encode @s for a query value (RFC 3986 unreserved kept). */
static char *escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s), o = 0;
	char *out = malloc(n * 3 + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

/* "server + path ? fixed [&fieldSelector=fs] [&key=value]" */
static char *build(const struct k8s_conn_cfg *c, const struct k8s_kind *k, const char *fixed,
		   const char *field_selector, const char *key, const char *value)
{
	char *fs = NULL, *v = NULL, *url = NULL;
	int n;

	fs = field_selector ? escape(field_selector) : NULL;
	v = value ? escape(value) : NULL;
	if ((field_selector && !fs) || (value && !v))
		goto out;
	n = asprintf(&url, "%s%s?%s%s%s%s%s%s%s", c->server, k->path, fixed,
		     fs ? "&fieldSelector=" : "", fs ? fs : "", v ? "&" : "", v ? key : "",
		     v ? "=" : "", v ? v : "");
	if (n < 0)
		url = NULL;
out:
	free(fs);
	free(v);
	if (!url)
		errno = ENOMEM;
	return url;
}

char *k8s_url_list(const struct k8s_conn_cfg *c, const struct k8s_kind *k,
		   const char *field_selector, const char *cont)
{
	char fixed[32];

	/* No resourceVersion: a consistent (quorum) read, so the listing is
	 * at least as new as anything a previous watch delivered.
	 */
	snprintf(fixed, sizeof(fixed), "limit=%d", K8S_PAGE_LIMIT);
	return build(c, k, fixed, field_selector, "continue", cont);
}

char *k8s_url_watch(const struct k8s_conn_cfg *c, const struct k8s_kind *k,
		    const char *field_selector, const char *rv, unsigned int timeout_s)
{
	char fixed[96];

	snprintf(fixed, sizeof(fixed), "watch=1&allowWatchBookmarks=true&timeoutSeconds=%u",
		 timeout_s);
	return build(c, k, fixed, field_selector, "resourceVersion", rv);
}

char *k8s_url_eviction(const struct k8s_conn_cfg *c, const char *ns, const char *name)
{
	char *e_ns = escape(ns), *e_name = escape(name), *url = NULL;

	if (e_ns && e_name &&
	    asprintf(&url, "%s/api/v1/namespaces/%s/pods/%s/eviction", c->server, e_ns, e_name) < 0)
		url = NULL;
	free(e_ns);
	free(e_name);
	if (!url)
		errno = ENOMEM;
	return url;
}

char *k8s_eviction_body(const char *ns, const char *name, const char *uid)
{
	json_object *o = json_object_new_object(), *meta = json_object_new_object();
	char *body = NULL;

	if (!o || !meta)
		goto out;
	json_object_object_add(o, "apiVersion", json_object_new_string("policy/v1"));
	json_object_object_add(o, "kind", json_object_new_string("Eviction"));
	json_object_object_add(meta, "name", json_object_new_string(name));
	json_object_object_add(meta, "namespace", json_object_new_string(ns));
	json_object_object_add(o, "metadata", meta);
	meta = NULL;
	if (uid[0]) {
		json_object *del = json_object_new_object(), *pre = json_object_new_object();

		json_object_object_add(pre, "uid", json_object_new_string(uid));
		json_object_object_add(del, "preconditions", pre);
		json_object_object_add(o, "deleteOptions", del);
	}
	body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
out:
	json_object_put(meta);
	json_object_put(o);
	if (!body)
		errno = ENOMEM;
	return body;
}

static int set_blob(CURL *easy, CURLoption opt, const struct k8s_blob *b)
{
	struct curl_blob blob = { .data = b->data, .len = b->len, .flags = CURL_BLOB_NOCOPY };

	return curl_easy_setopt(easy, opt, &blob) == CURLE_OK ? 0 : -EINVAL;
}

static int setup_tls(CURL *easy, const struct k8s_conn_cfg *c)
{
	int err = 0;

	if (c->insecure) {
		curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (c->ca_pem.data) {
		err = set_blob(easy, CURLOPT_CAINFO_BLOB, &c->ca_pem);
	} else if (c->ca_file) {
		curl_easy_setopt(easy, CURLOPT_CAINFO, c->ca_file);
	}
	if (!err && c->cert_pem.data)
		err = set_blob(easy, CURLOPT_SSLCERT_BLOB, &c->cert_pem);
	else if (!err && c->cert_file)
		curl_easy_setopt(easy, CURLOPT_SSLCERT, c->cert_file);
	if (!err && c->key_pem.data)
		err = set_blob(easy, CURLOPT_SSLKEY_BLOB, &c->key_pem);
	else if (!err && c->key_file)
		curl_easy_setopt(easy, CURLOPT_SSLKEY, c->key_file);
	curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
	return err;
}

int k8s_http_setup(CURL *easy, const struct k8s_conn_cfg *c, const char *url, const char *token,
		   long timeout_ms, struct curl_slist **headers)
{
	struct curl_slist *h = NULL, *t;
	char *auth = NULL;
	int err;

	*headers = NULL;
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "https,http");
	/* The agent's threads must never get SIGALRM/SIGPIPE from libcurl. */
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, KEEPALIVE_IDLE_S);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, KEEPALIVE_INTVL_S);
	/* Over HTTP/2 the watches share one connection: wait for it rather
	 * than open one connection per watch.
	 */
	curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
	/* Big listings compress well; the API server gzips bodies over 128 KiB. */
	curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
	err = setup_tls(easy, c);
	if (err)
		return err;
	t = curl_slist_append(h, "Accept: application/json");
	if (!t)
		goto out_nomem;
	h = t;
	if (token) {
		if (asprintf(&auth, "Authorization: Bearer %s", token) < 0)
			goto out_nomem;
		t = curl_slist_append(h, auth);
		free(auth);
		if (!t)
			goto out_nomem;
		h = t;
	}
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h);
	*headers = h;
	return 0;
out_nomem:
	curl_slist_free_all(h);
	return -ENOMEM;
}
