// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/consul/consul_fake.h. */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consul_fake.h"
#include "curl_body.h"
#include "proc.h"

#define SCRIPT "tests/consul/consul_fake.py"
#define START_WAIT_MS 10000

static int make_certs(const char *dir)
{
	char cmd[4096];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && ( "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-keyout ca.key -out ca.crt -subj /CN=weft-consul-test-ca -days 2 && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-keyout server.key -out server.csr -subj /CN=127.0.0.1 && "
		 "printf 'subjectAltName=IP:127.0.0.1\\n' > server.ext && "
		 "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		 "-out server.crt -days 2 -extfile server.ext ) >/dev/null 2>&1",
		 dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int spawn(struct cfake *f)
{
	char port_file[PATH_MAX + 16], cert[PATH_MAX + 16], key[PATH_MAX + 16], port[16];
	char *argv[18] = { TPROC_PYTHON, SCRIPT, "--port-file", port_file, "--port", port,
			   "--start-index", f->port ? "1" : "10" };
	struct tproc_port_file pf = { .path = port_file };
	int n = 8, err;

	snprintf(port_file, sizeof(port_file), "%s/port", f->dir);
	snprintf(cert, sizeof(cert), "%s/server.crt", f->dir);
	snprintf(key, sizeof(key), "%s/server.key", f->dir);
	snprintf(port, sizeof(port), "%u", f->port);
	if (f->tls) {
		argv[n++] = "--cert";
		argv[n++] = cert;
		argv[n++] = "--key";
		argv[n++] = key;
	}
	if (f->token[0]) {
		argv[n++] = "--token";
		argv[n++] = f->token;
	}
	argv[n] = NULL;
	(void)unlink(port_file);
	if (access(SCRIPT, R_OK)) {
		fprintf(stderr, "consul_fake: %s not found: run the tests from the top of the tree\n",
			SCRIPT);
		return -1;
	}
	f->pid = tproc_spawn(argv, NULL, SIGKILL);
	if (f->pid == -1) {
		f->pid = 0;
		return -1;
	}
	err = tproc_wait_ready(&f->pid, START_WAIT_MS, 20, tproc_port_written, &pf);
	if (!err)
		f->port = pf.port;
	if (err)
		fprintf(stderr, "consul_fake: the fake Consul did not start\n");
	return err ? -1 : 0;
}

int cfake_start(struct cfake *f, bool tls, const char *token)
{
	memset(f, 0, sizeof(*f));
	f->tls = tls;
	snprintf(f->token, sizeof(f->token), "%s", token ? token : "");
	if (tproc_mkdtemp(f->dir, sizeof(f->dir), "consul"))
		return -1;
	snprintf(f->ca, sizeof(f->ca), "%s/ca.crt", f->dir);
	if (tls && make_certs(f->dir)) {
		fprintf(stderr, "consul_fake: openssl could not make the test certificates\n");
		return -1;
	}
	if (spawn(f))
		return -1;
	snprintf(f->url, sizeof(f->url), "%s://127.0.0.1:%u", tls ? "https" : "http", f->port);
	return 0;
}

void cfake_kill(struct cfake *f)
{
	tproc_kill(f->pid);
	f->pid = 0;
}

int cfake_restart(struct cfake *f)
{
	cfake_kill(f);
	return spawn(f);
}

void cfake_stop(struct cfake *f)
{
	cfake_kill(f);
	tproc_rmtree(f->dir);
}

/* One call; the parsed answer (caller puts it) or NULL. */
static json_object *call(struct cfake *f, const char *method, const char *path,
			 const char *json)
{
	char url[512], hdr[128];
	struct tcurl_body b = { 0 };
	struct curl_slist *h = NULL;
	json_object *o = NULL;
	CURL *c = curl_easy_init();
	long code = 0;

	if (!c)
		return NULL;
	snprintf(url, sizeof(url), "%s%s", f->url, path);
	snprintf(hdr, sizeof(hdr), "X-Consul-Token: %s", f->token);
	h = curl_slist_append(NULL, hdr);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (f->tls)
		curl_easy_setopt(c, CURLOPT_CAINFO, f->ca);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tcurl_body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (json)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	if (curl_easy_perform(c) == CURLE_OK &&
	    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200)
		o = b.buf ? json_tokener_parse(b.buf) : json_object_new_object();
	else
		fprintf(stderr, "consul_fake: %s %s failed (HTTP %ld)\n", method, path, code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(b.buf);
	return o;
}

static int put(struct cfake *f, const char *method, const char *path, const char *json)
{
	json_object *o = call(f, method, path, json);

	json_object_put(o);
	return o ? 0 : -1;
}

int cfake_register(struct cfake *f, const char *id, const char *name, const char *ip,
		   int port, const char *tags_json)
{
	char body[2048];

	snprintf(body, sizeof(body),
		 "{\"Node\":\"ext-node\",\"Address\":\"198.18.200.1\",\"Service\":{\"ID\":\"%s\","
		 "\"Service\":\"%s\",\"Address\":\"%s\",\"Port\":%d,\"Tags\":%s}}",
		 id, name, ip, port, tags_json);
	return put(f, "PUT", "/v1/catalog/register", body);
}

int cfake_deregister(struct cfake *f, const char *id)
{
	char body[512];

	snprintf(body, sizeof(body), "{\"Node\":\"ext-node\",\"ServiceID\":\"%s\"}", id);
	return put(f, "PUT", "/v1/catalog/deregister", body);
}

int cfake_test(struct cfake *f, const char *what, const char *json)
{
	char path[128];

	snprintf(path, sizeof(path), "/_test/%s", what);
	return put(f, "POST", path, json);
}

json_object *cfake_get(struct cfake *f, const char *path)
{
	return call(f, "GET", path, NULL);
}

long long cfake_stat(struct cfake *f, const char *key)
{
	json_object *s = call(f, "GET", "/_test/stats", NULL), *v;
	long long n = -1;

	if (s && json_object_object_get_ex(s, key, &v))
		n = json_object_get_int64(v);
	json_object_put(s);
	return n;
}
