// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/servers.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addr.h"
#include "tns.h"
#include "servers.h"
#include "sock.h"

enum srv_mode {
	SRV_LINE,
	SRV_HTTP,
	SRV_BANNER,
	SRV_SCRIPT,
};

/* What the server process serves; one per forked server. */
struct srv_cfg {
	enum srv_mode mode;
	const char *name;
	int status;
	unsigned int delay_ms;
	const char *const *script;	/* SRV_SCRIPT: responses by "/r/N" */
	size_t n_script;
	const char *log;		/* SRV_SCRIPT: what was received */
	atomic_long requests;
	atomic_long inflight;
	atomic_long max_inflight;
};

struct srv_conn {
	int fd;
	const char *name;
	struct srv_cfg *cfg;
};

static ssize_t write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, p + done, len - done, MSG_NOSIGNAL);

		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static void peer_ip(int fd, char *peer, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct addr a;

	getpeername(fd, (struct sockaddr *)&ss, &sl);
	addr_from_sockaddr(&a, (struct sockaddr *)&ss, sl);
	addr_unmap(&a);
	addr_fmt_ip(&a, peer, len);
}

/* Content-Length of the request head @head (NUL-terminated), 0 if none. */
static long content_length(const char *head)
{
	for (const char *p = head; (p = strchr(p, '\n')); p++) {
		if (!strncasecmp(p + 1, "content-length:", 15))
			return strtol(p + 16, NULL, 10);
	}
	return 0;
}

static void serve_http(struct srv_conn *sc)
{
	struct srv_cfg *cfg = sc->cfg;
	char buf[65536], peer[ADDR_STRLEN], out[1024], body[512];
	size_t have = 0;

	peer_ip(sc->fd, peer, sizeof(peer));
	for (;;) {
		char *end;
		size_t head_len;
		long clen, cur, max;
		bool close_after, is_head, stats;
		int blen, n;

		while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
			ssize_t r;

			if (have == sizeof(buf) - 1)
				return;
			r = recv(sc->fd, buf + have, sizeof(buf) - 1 - have, 0);
			if (r <= 0)
				return;
			have += (size_t)r;
		}
		head_len = (size_t)(end - buf) + 4;
		buf[head_len - 1] = '\0';
		clen = content_length(buf);
		close_after = strcasestr(buf, "\nconnection: close") != NULL;
		is_head = !strncmp(buf, "HEAD ", 5);
		stats = !strncmp(buf, "GET /__stats ", 13);
		/* Drop the body, which may still be arriving. */
		while ((long)(have - head_len) < clen) {
			ssize_t r = recv(sc->fd, buf + have, sizeof(buf) - 1 - have, 0);

			if (r <= 0)
				return;
			have += (size_t)r;
		}
		memmove(buf, buf + head_len + clen, have - head_len - (size_t)clen);
		have -= head_len + (size_t)clen;
		if (stats) {
			blen = snprintf(body, sizeof(body), "requests %ld max_inflight %ld\n",
					atomic_load(&cfg->requests), atomic_load(&cfg->max_inflight));
			n = snprintf(out, sizeof(out),
				     "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", blen, body);
			if (write_all(sc->fd, out, (size_t)n) < 0 || close_after)
				return;
			continue;
		}
		cur = atomic_fetch_add(&cfg->inflight, 1) + 1;
		max = atomic_load(&cfg->max_inflight);
		while (cur > max && !atomic_compare_exchange_weak(&cfg->max_inflight, &max, cur))
			;
		if (cfg->delay_ms)
			usleep(cfg->delay_ms * 1000);
		atomic_fetch_add(&cfg->requests, 1);
		atomic_fetch_sub(&cfg->inflight, 1);
		blen = snprintf(body, sizeof(body), "%s %s\n", sc->name, peer);
		n = snprintf(out, sizeof(out),
			     "HTTP/1.1 %d Status\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
			     "%s\r\n%s",
			     cfg->status, blen, close_after ? "Connection: close\r\n" : "",
			     is_head ? "" : body);
		if (write_all(sc->fd, out, (size_t)n) < 0 || close_after)
			return;
	}
}

/* Append @len bytes to the script server's log. */
static void script_log(const struct srv_cfg *cfg, const void *buf, size_t len)
{
	int fd = open(cfg->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

	if (fd == -1)
		return;
	if (write(fd, buf, len) != (ssize_t)len)
		(void)0;	/* the test reads what arrived; nothing better to do */
	close(fd);
}

static void serve_script(struct srv_conn *sc)
{
	const struct srv_cfg *cfg = sc->cfg;
	char buf[65536];
	size_t have = 0;
	long drop = 0;

	for (;;) {
		char *end;
		size_t head_len, idx;
		const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
		ssize_t r;

		if (drop && have) {
			size_t k = (size_t)drop < have ? (size_t)drop : have;

			memmove(buf, buf + k, have - k);
			have -= k;
			drop -= (long)k;
		}
		end = drop ? NULL : memmem(buf, have, "\r\n\r\n", 4);
		if (!end) {
			if (have == sizeof(buf) - 1)
				return;
			r = recv(sc->fd, buf + have, sizeof(buf) - 1 - have, 0);
			if (r <= 0) {
				script_log(cfg, "<eof>\n", 6);
				return;
			}
			script_log(cfg, buf + have, (size_t)r);
			have += (size_t)r;
			continue;
		}
		head_len = (size_t)(end - buf) + 4;
		buf[head_len - 1] = '\0';
		if (sscanf(buf, "%*s /r/%zu ", &idx) == 1 && idx < cfg->n_script)
			resp = cfg->script[idx];
		drop = content_length(buf);
		memmove(buf, buf + head_len, have - head_len);
		have -= head_len;
		if (write_all(sc->fd, resp, strlen(resp)) < 0)
			return;
	}
}

static void serve_banner(struct srv_conn *sc)
{
	char buf[4096], out[4200];
	size_t have = 0;
	int n = snprintf(out, sizeof(out), "BANNER %s\n", sc->name);

	if (write_all(sc->fd, out, (size_t)n) < 0)
		return;
	for (;;) {
		char *nl = memchr(buf, '\n', have);
		ssize_t r;

		if (nl) {
			size_t len = (size_t)(nl - buf);

			n = snprintf(out, sizeof(out), "OK %.*s\n", (int)len, buf);
			if (write_all(sc->fd, out, (size_t)n) < 0)
				return;
			memmove(buf, nl + 1, have - len - 1);
			have -= len + 1;
			continue;
		}
		if (have == sizeof(buf))
			return;
		r = recv(sc->fd, buf + have, sizeof(buf) - have, 0);
		if (r <= 0)
			return;
		have += (size_t)r;
	}
}

/* "DRIP <bytes> <ms>\n", of which @have bytes are in @buf (64 KiB room). */
static void serve_drip(int fd, char *buf, size_t have)
{
	unsigned long long total, ms, sent = 0;
	char out[8192];
	uint64_t ticks;
	ssize_t n;

	while (!memchr(buf, '\n', have) && have < 64 &&
	       (n = recv(fd, buf + have, 64 - have, 0)) > 0)
		have += (size_t)n;
	buf[have < 64 ? have : 63] = '\0';
	if (sscanf(buf, "DRIP %llu %llu", &total, &ms) != 2 || !ms)
		return;
	ticks = ms / 20 ? ms / 20 : 1;
	for (uint64_t t = 1; sent < total; t++) {
		unsigned long long due = t >= ticks ? total : total * t / ticks;

		while (sent < due) {
			size_t len = due - sent < sizeof(out) ? due - sent : sizeof(out);

			for (size_t i = 0; i < len; i++)
				out[i] = (char)tsrv_pattern(sent + i);
			if (write_all(fd, out, len) < 0)
				return;
			sent += len;
		}
		usleep(20000);
	}
}

static void *serve(void *arg)
{
	struct srv_conn *sc = arg;

	if (sc->cfg->mode != SRV_LINE) {
		if (sc->cfg->mode == SRV_HTTP)
			serve_http(sc);
		else if (sc->cfg->mode == SRV_SCRIPT)
			serve_script(sc);
		else
			serve_banner(sc);
		close(sc->fd);
		free(sc);
		return NULL;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char buf[65536], peer[ADDR_STRLEN], line[512];
	struct addr a;
	size_t have = 0;
	ssize_t n;

	getpeername(sc->fd, (struct sockaddr *)&ss, &sl);
	addr_from_sockaddr(&a, (struct sockaddr *)&ss, sl);
	addr_unmap(&a);
	addr_fmt_ip(&a, peer, sizeof(peer));
	/* Read the command line (the first bytes a client sends). */
	while (have < 5 && (n = recv(sc->fd, buf + have, sizeof(buf) - have, 0)) > 0)
		have += (size_t)n;
	if (have >= 5 && !memcmp(buf, "IDENT", 5)) {
		int len = snprintf(line, sizeof(line), "%s %s\n", sc->name, peer);

		write_all(sc->fd, line, (size_t)len);
	} else if (have >= 5 && !memcmp(buf, "ECHO\n", 5)) {
		unsigned long long count = have - 5;

		if (have > 5)
			write_all(sc->fd, buf + 5, have - 5);
		while ((n = recv(sc->fd, buf, sizeof(buf), 0)) > 0) {
			count += (unsigned long long)n;
			if (write_all(sc->fd, buf, (size_t)n) < 0)
				break;
		}
		/* EOF seen: the half-close made it through; answer after it. */
		if (n == 0) {
			int len = snprintf(line, sizeof(line), "BYE %llu\n", count);

			write_all(sc->fd, line, (size_t)len);
		}
	} else if (have >= 5 && !memcmp(buf, "DRIP ", 5)) {
		serve_drip(sc->fd, buf, have);
	} else if (have >= 4 && !memcmp(buf, "GET ", 4)) {
		char body[300], head[600];
		int blen = snprintf(body, sizeof(body), "%s %s\n", sc->name, peer);
		int hlen = snprintf(head, sizeof(head),
				    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
				    "Content-Length: %d\r\nConnection: close\r\n\r\n",
				    blen);

		write_all(sc->fd, head, (size_t)hlen);
		write_all(sc->fd, body, (size_t)blen);
	}
	close(sc->fd);
	free(sc);
	return NULL;
}

static void server_main(int lfd, const char *name, struct srv_cfg *cfg)
{
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		struct srv_conn *sc;
		pthread_t t;

		if (fd == -1)
			continue;
		sc = malloc(sizeof(*sc));
		if (!sc) {
			close(fd);
			continue;
		}
		sc->fd = fd;
		sc->name = name;
		sc->cfg = cfg;
		if (pthread_create(&t, NULL, serve, sc)) {
			close(fd);
			free(sc);
			continue;
		}
		pthread_detach(t);
	}
}

static pid_t start(const char *ns, const char *ip, uint16_t port, struct srv_cfg *cfg)
{
	int pfd[2], one = 1;
	char ok = 0;
	pid_t pid;

	if (pipe(pfd) == -1)
		return -1;
	pid = fork();
	if (pid == -1)
		return -1;
	if (pid == 0) {
		struct sockaddr_storage ss;
		struct addr a;
		socklen_t len;
		int lfd;

		/* Die with the test, whatever path it takes out. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(pfd[0]);
		if (tns_enter(ns) || addr_parse_ip(ip, &a))
			_exit(1);
		a.port = port;
		len = addr_to_sockaddr(&a, &ss);
		lfd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* IP_FREEBIND: the address may still be in IPv6 DAD. */
		setsockopt(lfd, SOL_IP, IP_FREEBIND, &one, sizeof(one));
		if (bind(lfd, (struct sockaddr *)&ss, len) == -1 || listen(lfd, 1024) == -1)
			_exit(1);
		ok = 1;
		if (write(pfd[1], &ok, 1) != 1)
			_exit(1);
		close(pfd[1]);
		server_main(lfd, cfg->name, cfg);
		_exit(0);
	}
	close(pfd[1]);
	if (read(pfd[0], &ok, 1) != 1 || !ok) {
		close(pfd[0]);
		tsrv_stop(pid);
		return -1;
	}
	close(pfd[0]);
	return pid;
}

/* The forked server process owns its copy of @cfg: the parent's stack is fine. */
pid_t tsrv_start(const char *ns, const char *ip, uint16_t port, const char *name)
{
	struct srv_cfg cfg = { .mode = SRV_LINE, .name = name };

	return start(ns, ip, port, &cfg);
}

pid_t tsrv_start_http(const char *ns, const char *ip, uint16_t port, const char *name, int status,
		      unsigned int delay_ms)
{
	struct srv_cfg cfg = { .mode = SRV_HTTP, .name = name, .status = status,
			       .delay_ms = delay_ms };

	return start(ns, ip, port, &cfg);
}

pid_t tsrv_start_banner(const char *ns, const char *ip, uint16_t port, const char *name)
{
	struct srv_cfg cfg = { .mode = SRV_BANNER, .name = name };

	return start(ns, ip, port, &cfg);
}

pid_t tsrv_start_script(const char *ns, const char *ip, uint16_t port,
			const char *const *responses, size_t n, const char *log)
{
	struct srv_cfg cfg = { .mode = SRV_SCRIPT, .name = "script", .script = responses,
			       .n_script = n, .log = log };

	return start(ns, ip, port, &cfg);
}

int tsrv_http_stats(const char *ns, const char *ip, uint16_t port, long *requests,
		    long *max_inflight)
{
	char dst[ADDR_STRLEN + 8], out[1024], *body;
	int fd;
	ssize_t n;

	snprintf(dst, sizeof(dst), "%s:%u", ip, port);
	fd = tsock_connect(ns, dst, 3000);
	if (fd < 0)
		return -1;
	n = tsock_request(fd, "GET /__stats HTTP/1.1\r\nConnection: close\r\n\r\n", out,
			  sizeof(out), 3000);
	close(fd);
	if (n <= 0 || !(body = strstr(out, "\r\n\r\n")))
		return -1;
	return sscanf(body + 4, "requests %ld max_inflight %ld", requests, max_inflight) == 2 ? 0
											       : -1;
}

void tsrv_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
