// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/etcd_server.h. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "curl_body.h"
#include "etcd_server.h"

#define ETCD_BIN "/usr/bin/etcd"
#define START_TIMEOUT_MS 15000

/* ---- etcd ---- */

static void stop_tracked(void *s)
{
	tetcd_stop(s);
}

/* POST @body to @path; the answer as JSON (caller puts it) or NULL. */
static json_object *post(struct tetcd *s, const char *path, const char *body, long timeout_ms)
{
	char url[128];
	struct tcurl_body b = { 0 };
	json_object *o = NULL;
	CURL *c = curl_easy_init();

	if (!c)
		return NULL;
	snprintf(url, sizeof(url), "%s%s", s->url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tcurl_body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(c) == CURLE_OK && b.buf)
		o = json_tokener_parse(b.buf);
	curl_easy_cleanup(c);
	free(b.buf);
	if (o && json_object_object_get_ex(o, "error", NULL)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static char *b64(const char *s)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s), o = 0;
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	for (size_t i = 0; out && i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)s[i] << 16;

		v |= i + 1 < n ? (uint32_t)(unsigned char)s[i + 1] << 8 : 0;
		v |= i + 2 < n ? (unsigned char)s[i + 2] : 0;
		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	if (out)
		out[o] = '\0';
	return out;
}

static bool answers(void *s)
{
	json_object *o = post(s, "/v3/maintenance/status", "{}", 1000);

	json_object_put(o);
	return o != NULL;
}

static int spawn(struct tetcd *s)
{
	char client[64], peer[64], cluster[96], data[PATH_MAX + 8], log[PATH_MAX + 16];
	char *argv[] = {
		ETCD_BIN, "--name", "t", "--data-dir", data, "--listen-client-urls", client,
		"--advertise-client-urls", client, "--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
		"--logger", "zap", "--log-outputs", "stderr", NULL,
	};

	snprintf(client, sizeof(client), "http://127.0.0.1:%u", s->client_port);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%u", s->peer_port);
	snprintf(cluster, sizeof(cluster), "t=%s", peer);
	snprintf(data, sizeof(data), "%s/data", s->dir);
	snprintf(log, sizeof(log), "%s/etcd.log", s->dir);
	snprintf(s->url, sizeof(s->url), "%s", client);
	s->pid = tproc_spawn(argv, log, SIGKILL);
	if (s->pid < 0) {
		s->pid = 0;
		return -1;
	}
	tproc_track(s, stop_tracked);
	return tproc_wait_ready(&s->pid, START_TIMEOUT_MS, 20, answers, s) ? -1 : 0;
}

int tetcd_start(struct tetcd *s)
{
	memset(s, 0, sizeof(*s));
	if (tproc_mkdtemp(s->dir, sizeof(s->dir), "etcd"))
		return -1;
	/* Another process may take a port between the pick and the bind. */
	for (int attempt = 0; attempt < 3; attempt++) {
		s->client_port = tproc_free_port();
		s->peer_port = tproc_free_port();
		if (s->client_port && s->peer_port && s->client_port != s->peer_port &&
		    !spawn(s))
			return 0;
		tetcd_kill(s);
	}
	return -1;
}

int tetcd_restart(struct tetcd *s)
{
	tetcd_kill(s);
	return spawn(s);
}

void tetcd_kill(struct tetcd *s)
{
	tproc_kill(s->pid);
	s->pid = 0;
}

void tetcd_stop(struct tetcd *s)
{
	tetcd_kill(s);
	tproc_untrack(s);
	tproc_rmtree(s->dir);
}

int tetcd_put(struct tetcd *s, const char *key, const char *value)
{
	char *k = b64(key), *v = b64(value), *body;
	json_object *o = NULL;

	if (k && v && asprintf(&body, "{\"key\":\"%s\",\"value\":\"%s\"}", k, v) > 0) {
		o = post(s, "/v3/kv/put", body, 3000);
		free(body);
	}
	free(k);
	free(v);
	json_object_put(o);
	return o ? 0 : -1;
}

int tetcd_del(struct tetcd *s, const char *key)
{
	char *k = b64(key), *body;
	json_object *o = NULL;

	if (k && asprintf(&body, "{\"key\":\"%s\"}", k) > 0) {
		o = post(s, "/v3/kv/deleterange", body, 3000);
		free(body);
	}
	free(k);
	json_object_put(o);
	return o ? 0 : -1;
}

/* The range reply for @key alone (caller puts it), or NULL. */
static json_object *range_one(struct tetcd *s, const char *key)
{
	char *k = b64(key), *body;
	json_object *o = NULL;

	if (k && asprintf(&body, "{\"key\":\"%s\"}", k) > 0) {
		o = post(s, "/v3/kv/range", body, 3000);
		free(body);
	}
	free(k);
	return o;
}

int64_t tetcd_create_revision(struct tetcd *s, const char *key)
{
	json_object *o = range_one(s, key), *kvs, *v;
	int64_t rev = -1;

	if (!o)
		return -1;
	if (json_object_object_get_ex(o, "kvs", &kvs) && json_object_array_length(kvs) > 0)
		rev = json_object_object_get_ex(json_object_array_get_idx(kvs, 0),
						"create_revision", &v)
			      ? json_object_get_int64(v)
			      : -1;
	else
		rev = 0;
	json_object_put(o);
	return rev;
}

int tetcd_get(struct tetcd *s, const char *key, char *value, size_t len)
{
	json_object *o = range_one(s, key), *kvs, *v;
	int found = -1;

	if (!o)
		return -1;
	found = json_object_object_get_ex(o, "kvs", &kvs) && json_object_array_length(kvs) > 0;
	if (found && value && len &&
	    json_object_object_get_ex(json_object_array_get_idx(kvs, 0), "value", &v)) {
		/* Decode by hand: a small helper for tests, not a general one. */
		static const char t[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		const char *in = json_object_get_string(v);
		size_t o_len = 0;
		uint32_t acc = 0;
		int bits = 0;

		for (; *in && *in != '=' && o_len + 1 < len; in++) {
			const char *p = strchr(t, *in);

			if (!p)
				break;
			acc = acc << 6 | (uint32_t)(p - t);
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				value[o_len++] = (char)(acc >> bits);
			}
		}
		value[o_len] = '\0';
	}
	json_object_put(o);
	return found;
}

int64_t tetcd_revision(struct tetcd *s)
{
	json_object *o = post(s, "/v3/kv/range", "{\"key\":\"AA==\"}", 3000), *h, *r;
	int64_t rev = -1;

	if (o && json_object_object_get_ex(o, "header", &h) &&
	    json_object_object_get_ex(h, "revision", &r))
		rev = strtoll(json_object_get_string(r), NULL, 10);
	json_object_put(o);
	return rev;
}

int tetcd_compact(struct tetcd *s, int64_t rev)
{
	char body[96];
	json_object *o;

	snprintf(body, sizeof(body), "{\"revision\":\"%lld\",\"physical\":true}", (long long)rev);
	o = post(s, "/v3/kv/compaction", body, 5000);
	json_object_put(o);
	return o ? 0 : -1;
}

/* ---- the gate ---- */

#define GATE_CONNS_MAX 64

static int connect_target(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void *gate_main(void *arg)
{
	struct tgate *g = arg;
	int pairs[GATE_CONNS_MAX][2];
	size_t n = 0;

	while (!atomic_load(&g->stop)) {
		struct pollfd pfd[2 + 2 * GATE_CONNS_MAX];
		char buf[65536], c;
		size_t np = 0;

		if (!atomic_load(&g->open)) {
			for (size_t i = 0; i < n; i++) {
				close(pairs[i][0]);
				close(pairs[i][1]);
			}
			n = 0;
		}
		pfd[np++] = (struct pollfd){ .fd = g->wake[0], .events = POLLIN };
		pfd[np++] = (struct pollfd){ .fd = g->lfd, .events = POLLIN };
		for (size_t i = 0; i < n; i++) {
			pfd[np++] = (struct pollfd){ .fd = pairs[i][0], .events = POLLIN };
			pfd[np++] = (struct pollfd){ .fd = pairs[i][1], .events = POLLIN };
		}
		if (poll(pfd, np, 1000) <= 0)
			continue;
		if (pfd[0].revents)
			(void)!read(g->wake[0], &c, 1);
		/* Relay; a pair whose either end ends is closed whole. */
		for (size_t i = n; i-- > 0;) {
			for (int side = 0; side < 2; side++) {
				struct pollfd *p = &pfd[2 + 2 * i + (size_t)side];
				ssize_t r;

				if (!p->revents || pairs[i][0] < 0)
					continue;
				r = read(p->fd, buf, sizeof(buf));
				if (r <= 0 || write(pairs[i][1 - side], buf, (size_t)r) != r) {
					close(pairs[i][0]);
					close(pairs[i][1]);
					pairs[i][0] = pairs[i][1] = -1;
				}
			}
			if (pairs[i][0] < 0) {
				pairs[i][0] = pairs[n - 1][0];
				pairs[i][1] = pairs[n - 1][1];
				n--;
			}
		}
		/* Accept last: a new pair has no poll entry in this round. */
		if (pfd[1].revents) {
			int cfd = accept4(g->lfd, NULL, NULL, SOCK_CLOEXEC), sfd = -1;

			if (cfd >= 0 && atomic_load(&g->open) && n < GATE_CONNS_MAX)
				sfd = connect_target(g->target);
			if (sfd >= 0) {
				pairs[n][0] = cfd;
				pairs[n][1] = sfd;
				n++;
			} else if (cfd >= 0) {
				close(cfd);
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		close(pairs[i][0]);
		close(pairs[i][1]);
	}
	return NULL;
}

int tgate_start(struct tgate *g, uint16_t target)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);

	memset(g, 0, sizeof(*g));
	g->target = target;
	g->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (g->lfd < 0 || bind(g->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(g->lfd, 64) || getsockname(g->lfd, (struct sockaddr *)&sa, &len) ||
	    pipe2(g->wake, O_CLOEXEC))
		return -1;
	g->port = ntohs(sa.sin_port);
	atomic_store(&g->open, true);
	if (pthread_create(&g->thread, NULL, gate_main, g))
		return -1;
	return 0;
}

void tgate_set_open(struct tgate *g, bool open)
{
	atomic_store(&g->open, open);
	(void)!write(g->wake[1], "x", 1);
	/* One turn of the relay loop closes the pairs: give it that turn. */
	usleep(100000);
}

void tgate_stop(struct tgate *g)
{
	if (!g->port)
		return;
	atomic_store(&g->stop, true);
	(void)!write(g->wake[1], "x", 1);
	pthread_join(g->thread, NULL);
	close(g->lfd);
	close(g->wake[0]);
	close(g->wake[1]);
	g->port = 0;
}
