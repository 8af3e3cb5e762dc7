// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of registry/k8s_config.h: the in-cluster service account
 * and kubeconfig files (YAML or JSON, parsed by registry/yaml.c) turned into
 * one struct k8s_conn_cfg for the watcher.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "json_help.h"
#include "registry/k8s_config.h"
#include "registry/yaml.h"

#define KC_FILES_MAX 16		/* files in one KUBECONFIG list */

/* ---- small helpers ---- */

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
						      ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}


static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int k8s_token_read(const char *path, char **out)
{
	size_t len, start = 0;
	char *buf;
	int err;

	err = fs_read_file(path, K8S_FILE_MAX, &buf, &len, NULL);
	if (err)
		return err;
	/* kubectl and client-go trim the token: files often end in a newline. */
	while (len && is_space(buf[len - 1]))
		buf[--len] = '\0';
	while (start < len && is_space(buf[start]))
		start++;
	if (start == len) {
		free(buf);
		return -ENODATA;
	}
	memmove(buf, buf + start, len - start + 1);
	*out = buf;
	return 0;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int k8s_base64_decode(const char *in, struct k8s_blob *out)
{
	size_t n = strlen(in), o = 0;
	unsigned int acc = 0, bits = 0;
	bool padded = false;
	unsigned char *buf;

	buf = malloc(n / 4 * 3 + 3);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int v;

		if (is_space(in[i]))
			continue;
		if (in[i] == '=') {
			padded = true;
			continue;
		}
		v = b64_value(in[i]);
		/* Nothing may follow padding, and every character must be valid. */
		if (v < 0 || padded)
			goto out_inval;
		acc = (acc << 6) | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits);
		}
	}
	/* 2 or 4 spare bits end a short last group; a lone character (6) is
	 * malformed. Like Go's base64.StdEncoding, which kubectl uses, spare
	 * bits that are not zero are tolerated.
	 */
	if (bits >= 6 || !o)
		goto out_inval;
	out->data = buf;
	out->len = o;
	return 0;
out_inval:
	free(buf);
	return -EINVAL;
}

void k8s_conn_done(struct k8s_conn_cfg *c)
{
	free(c->server);
	free(c->ca_file);
	free(c->ca_pem.data);
	free(c->cert_file);
	free(c->cert_pem.data);
	free(c->key_file);
	free(c->key_pem.data);
	free(c->token);
	free(c->token_file);
	*c = (struct k8s_conn_cfg){ 0 };
}

/* ---- in-cluster ---- */

int k8s_conn_in_cluster(const char *sa_dir, const char *host, const char *port,
			struct k8s_conn_cfg *c, char *err, size_t errlen)
{
	bool v6 = host && strchr(host, ':');
	char *token = NULL;
	int rc;

	*c = (struct k8s_conn_cfg){ 0 };
	if (!host || !host[0]) {
		snprintf(err, errlen, "KUBERNETES_SERVICE_HOST is not set (not running in a pod)");
		return -ENOENT;
	}
	if (!port || !port[0])
		return fail(err, errlen,
			    "KUBERNETES_SERVICE_HOST is set but KUBERNETES_SERVICE_PORT is not");
	snprintf(c->origin, sizeof(c->origin), "in-cluster");
	if (asprintf(&c->server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "",
		     port) < 0 ||
	    asprintf(&c->token_file, "%s/token", sa_dir) < 0 ||
	    asprintf(&c->ca_file, "%s/ca.crt", sa_dir) < 0) {
		rc = -ENOMEM;
		goto out_fail;
	}
	/* Fail at start on a pod without its service account volume
	 * (automountServiceAccountToken: false) rather than retry forever.
	 */
	rc = k8s_token_read(c->token_file, &token);
	free(token);
	if (rc) {
		snprintf(err, errlen, "service account token '%s': %s", c->token_file,
			 rc == -ENODATA ? "empty" : strerror(-rc));
		goto out_fail;
	}
	if (access(c->ca_file, R_OK) == -1) {
		rc = -errno;
		snprintf(err, errlen, "service account CA '%s': %s", c->ca_file, strerror(-rc));
		goto out_fail;
	}
	return 0;
out_fail:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	k8s_conn_done(c);
	return rc;
}

/* ---- kubeconfig ---- */

struct kc_file {
	char path[PATH_MAX];
	json_object *doc;	/* the first document; owned */
};

struct kc {
	struct kc_file files[KC_FILES_MAX];
	size_t n;
	char *err;
	size_t errlen;
};

/* String member @key of @o into *@out (NULL when absent or ""); -EINVAL with
 * a message naming @where when it is not a string.
 */
static int get_string(struct kc *k, size_t file, json_object *o, const char *where,
		      const char *key, const char **out)
{
	json_object *v = json_member(o, key);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return fail(k->err, k->errlen, "kubeconfig '%s': %s.%s: must be a string",
			    k->files[file].path, where, key);
	if (json_object_get_string_len(v))
		*out = json_object_get_string(v);
	return 0;
}

static int load_file(struct kc *k, const char *path)
{
	char msg[REG_PARSE_ERR_MAX], *buf;
	struct kc_file *f = &k->files[k->n];
	json_object *docs = NULL, *doc = NULL;
	size_t len;
	int err;

	if (snprintf(f->path, sizeof(f->path), "%s", path) >= (int)sizeof(f->path))
		return fail(k->err, k->errlen, "kubeconfig '%s': path too long", path);
	err = fs_read_file(path, K8S_FILE_MAX, &buf, &len, NULL);
	if (err) {
		snprintf(k->err, k->errlen, "kubeconfig '%s': %s", path, strerror(-err));
		return err;
	}
	err = reg_docs_parse(buf, len, &docs, msg, sizeof(msg));
	free(buf);
	if (err) {
		snprintf(k->err, k->errlen, "kubeconfig '%s': %s", path, msg);
		return err;
	}
	for (size_t i = 0; i < json_object_array_length(docs) && !doc; i++)
		doc = json_object_array_get_idx(docs, i);
	if (!doc || !json_object_is_type(doc, json_type_object)) {
		json_object_put(docs);
		return fail(k->err, k->errlen, "kubeconfig '%s': not a mapping", path);
	}
	f->doc = json_object_get(doc);
	json_object_put(docs);
	k->n++;
	return 0;
}

/* Entry @name of the named list @list ("clusters") across the files, first
 * definition wins; its member @inner ("cluster") in *@out and the file
 * index in *@file. -ENOENT when no file defines it.
 */
static int find_named(struct kc *k, const char *list, const char *name, const char *inner,
		      json_object **out, size_t *file)
{
	for (size_t f = 0; f < k->n; f++) {
		json_object *arr = json_member(k->files[f].doc, list);

		if (!arr || !json_object_is_type(arr, json_type_array))
			continue;
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			json_object *e = json_object_array_get_idx(arr, i),
				    *n = json_member(e, "name");

			if (n && json_object_is_type(n, json_type_string) &&
			    !strcmp(json_object_get_string(n), name)) {
				*out = json_member(e, inner);
				*file = f;
				return 0;
			}
		}
	}
	return -ENOENT;
}

/* @p made absolute against the folder of kubeconfig @file, as kubectl does. */
static int resolve_path(struct kc *k, size_t file, const char *p, char **out)
{
	const char *base = k->files[file].path, *slash = strrchr(base, '/');
	int n;

	if (p[0] == '/' || !slash)
		n = asprintf(out, "%s", p);
	else
		n = asprintf(out, "%.*s/%s", (int)(slash - base), base, p);
	return n < 0 ? -ENOMEM : 0;
}

/* A file path or inline base64 data of one role (CA, certificate, key). */
static int get_pem(struct kc *k, size_t file, json_object *o, const char *where,
		   const char *file_key, char **path, struct k8s_blob *data)
{
	char data_key[64];
	const char *p, *d;
	int err;

	snprintf(data_key, sizeof(data_key), "%s-data", file_key);
	err = get_string(k, file, o, where, data_key, &d);
	if (!err)
		err = get_string(k, file, o, where, file_key, &p);
	if (err)
		return err;
	if (d) {
		err = k8s_base64_decode(d, data);
		if (err == -EINVAL)
			return fail(k->err, k->errlen, "kubeconfig '%s': %s.%s: not valid base64",
				    k->files[file].path, where, data_key);
		return err;
	}
	return p ? resolve_path(k, file, p, path) : 0;
}

static int read_cluster(struct kc *k, const char *name, struct k8s_conn_cfg *c)
{
	static const char *const refused[] = { "proxy-url", "tls-server-name" };
	json_object *cl = NULL, *v;
	char where[320];
	const char *server;
	size_t f;
	int err;

	if (find_named(k, "clusters", name, "cluster", &cl, &f) || !cl)
		return fail(k->err, k->errlen, "kubeconfig: cluster '%s' is not defined", name);
	snprintf(where, sizeof(where), "clusters['%s'].cluster", name);
	/* Ignoring these would connect somewhere else than kubectl does. */
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (json_member(cl, refused[i]))
			return fail(k->err, k->errlen, "kubeconfig '%s': %s.%s: not supported",
				    k->files[f].path, where, refused[i]);
	err = get_string(k, f, cl, where, "server", &server);
	if (err)
		return err;
	if (!server || (strncmp(server, "https://", 8) && strncmp(server, "http://", 7)))
		return fail(k->err, k->errlen,
			    "kubeconfig '%s': %s.server: must be an https:// or http:// URL, "
			    "got '%s'",
			    k->files[f].path, where, server ? server : "");
	c->server = strdup(server);
	if (!c->server)
		return -ENOMEM;
	/* Paths are appended to it: "https://h/prefix/" + "/api/v1/..." */
	for (size_t n = strlen(c->server); n && c->server[n - 1] == '/'; n--)
		c->server[n - 1] = '\0';
	v = json_member(cl, "insecure-skip-tls-verify");
	if (v && !json_object_is_type(v, json_type_boolean))
		return fail(k->err, k->errlen,
			    "kubeconfig '%s': %s.insecure-skip-tls-verify: must be true or false",
			    k->files[f].path, where);
	c->insecure = v && json_object_get_boolean(v);
	return get_pem(k, f, cl, where, "certificate-authority", &c->ca_file, &c->ca_pem);
}

static int read_user(struct kc *k, const char *name, struct k8s_conn_cfg *c)
{
	static const char *const refused[] = { "exec", "auth-provider", "username", "password" };
	json_object *u = NULL;
	const char *token, *token_file;
	char where[320];
	size_t f;
	int err;

	if (find_named(k, "users", name, "user", &u, &f))
		return fail(k->err, k->errlen, "kubeconfig: user '%s' is not defined", name);
	snprintf(where, sizeof(where), "users['%s'].user", name);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (json_member(u, refused[i]))
			return fail(k->err, k->errlen,
				    "kubeconfig '%s': %s.%s: not supported (credential plugins and "
				    "basic auth need kubectl); use token, tokenFile or a client "
				    "certificate",
				    k->files[f].path, where, refused[i]);
	err = get_string(k, f, u, where, "token", &token);
	if (!err)
		err = get_string(k, f, u, where, "tokenFile", &token_file);
	if (err)
		return err;
	/* The kubeconfig reference: "If both Token and TokenFile are present,
	 * Token takes precedence."
	 */
	if (token) {
		c->token = strdup(token);
		if (!c->token)
			return -ENOMEM;
	} else if (token_file) {
		err = resolve_path(k, f, token_file, &c->token_file);
		if (err)
			return err;
	}
	err = get_pem(k, f, u, where, "client-certificate", &c->cert_file, &c->cert_pem);
	if (!err)
		err = get_pem(k, f, u, where, "client-key", &c->key_file, &c->key_pem);
	if (err)
		return err;
	if (!(c->cert_file || c->cert_pem.data) != !(c->key_file || c->key_pem.data))
		return fail(k->err, k->errlen,
			    "kubeconfig '%s': %s: client-certificate and client-key go together",
			    k->files[f].path, where);
	return 0;
}

static int read_context(struct kc *k, struct k8s_conn_cfg *c)
{
	const char *current = NULL, *cluster, *user;
	json_object *ctx = NULL;
	char where[320];
	size_t f;
	int err;

	for (f = 0; f < k->n && !current; f++) {
		err = get_string(k, f, k->files[f].doc, "(top)", "current-context", &current);
		if (err)
			return err;
	}
	if (!current)
		return fail(k->err, k->errlen, "kubeconfig: current-context is not set");
	if (find_named(k, "contexts", current, "context", &ctx, &f) || !ctx)
		return fail(k->err, k->errlen, "kubeconfig: current-context '%s' is not defined",
			    current);
	snprintf(where, sizeof(where), "contexts['%s'].context", current);
	err = get_string(k, f, ctx, where, "cluster", &cluster);
	if (!err)
		err = get_string(k, f, ctx, where, "user", &user);
	if (err)
		return err;
	if (!cluster)
		return fail(k->err, k->errlen, "kubeconfig '%s': %s.cluster: required",
			    k->files[f].path, where);
	snprintf(c->origin, sizeof(c->origin), "kubeconfig '%.200s' context '%.80s'",
		 k->files[0].path, current);
	err = read_cluster(k, cluster, c);
	/* A context without a user is anonymous access; kubectl allows it too. */
	if (!err && user)
		err = read_user(k, user, c);
	return err;
}

int k8s_conn_from_kubeconfig(const char *paths, struct k8s_conn_cfg *c, char *err,
			     size_t errlen)
{
	struct kc k = { .err = err, .errlen = errlen };
	char *list = strdup(paths), *save = NULL, *p;
	int rc = 0;

	*c = (struct k8s_conn_cfg){ 0 };
	if (!list)
		return -ENOMEM;
	for (p = strtok_r(list, ":", &save); p && !rc; p = strtok_r(NULL, ":", &save)) {
		if (k.n == KC_FILES_MAX)
			rc = fail(err, errlen, "kubeconfig: more than %d files", KC_FILES_MAX);
		else
			rc = load_file(&k, p);
		/* kubectl skips the missing files of a list, not a lone path. */
		if (rc == -ENOENT && strchr(paths, ':'))
			rc = 0;
	}
	if (!rc && !k.n)
		rc = fail(err, errlen, "kubeconfig: no file given");
	if (!rc)
		rc = read_context(&k, c);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "kubeconfig: out of memory");
	if (rc)
		k8s_conn_done(c);
	for (size_t i = 0; i < k.n; i++)
		json_object_put(k.files[i].doc);
	free(list);
	return rc;
}
