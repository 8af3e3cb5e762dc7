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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "etcd_server.h"

#define ETCD_BIN "/usr/bin/etcd"
#define START_TIMEOUT_MS 15000

/* ---- processes ---- */

uint64_t tproc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint16_t tproc_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint16_t port = 0;

	if (fd == -1)
		return 0;
	if (!bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !getsockname(fd, (struct sockaddr *)&sa, &len))
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

pid_t tproc_spawn(char *const argv[], const char *log)
{
	pid_t parent = getpid(), pid = fork();
	int fd;

	if (pid)
		return pid;
	/* Dies with the test, whichever way the test ends. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execv(argv[0], argv);
	_exit(127);
}

void tproc_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
}

/* ---- etcd ---- */

/* Every live server of this process, killed at exit: Criterion skips .fini
 * when a test fails an assertion in .init.
 */
#define LIVE_MAX 8
static struct tetcd *live[LIVE_MAX];

static void stop_live(void)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (live[i])
			tetcd_stop(live[i]);
}

static void track(struct tetcd *s, bool on)
{
	static bool registered;

	if (!registered) {
		atexit(stop_live);
		registered = true;
	}
	for (int i = 0; on && i < LIVE_MAX; i++)
		if (live[i] == s)
			return;
	for (int i = 0; i < LIVE_MAX; i++) {
		if (on && !live[i]) {
			live[i] = s;
			return;
		}
		if (!on && live[i] == s)
			live[i] = NULL;
	}
}

struct body {
	char *buf;
	size_t len;
};

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct body *b = ctx;
	char *nb = realloc(b->buf, b->len + size * n + 1);

	if (!nb)
		return 0;
	memcpy(nb + b->len, data, size * n);
	b->buf = nb;
	b->len += size * n;
	b->buf[b->len] = '\0';
	return size * n;
}

/* POST @body to @path; the answer as JSON (caller puts it) or NULL. */
static json_object *post(struct tetcd *s, const char *path, const char *body, long timeout_ms)
{
	char url[128];
	struct body b = { 0 };
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
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
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

static int wait_ready(struct tetcd *s)
{
	uint64_t until = tproc_now_ms() + START_TIMEOUT_MS;

	while (tproc_now_ms() < until) {
		json_object *o = post(s, "/v3/maintenance/status", "{}", 1000);

		if (o) {
			json_object_put(o);
			return 0;
		}
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			return -1;
		}
		usleep(20000);
	}
	return -1;
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
	s->pid = tproc_spawn(argv, log);
	if (s->pid < 0) {
		s->pid = 0;
		return -1;
	}
	track(s, true);
	return wait_ready(s);
}

int tetcd_start(struct tetcd *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/weft-etcd-%d-XXXXXX", (int)getpid());
	if (!mkdtemp(s->dir)) {
		s->dir[0] = '\0';
		return -1;
	}
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
	char cmd[PATH_MAX + 16];

	tetcd_kill(s);
	track(s, false);
	if (s->dir[0] && !getenv("WEFT_KEEP_TMP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
		if (system(cmd))
			fprintf(stderr, "etcd_server: cannot remove %s\n", s->dir);
	}
	s->dir[0] = '\0';
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

int tetcd_get(struct tetcd *s, const char *key, char *value, size_t len)
{
	char *k = b64(key), *body;
	json_object *o = NULL, *kvs, *v;
	int found = -1;

	if (k && asprintf(&body, "{\"key\":\"%s\"}", k) > 0) {
		o = post(s, "/v3/kv/range", body, 3000);
		free(body);
	}
	free(k);
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
