// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/servers.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
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

struct srv_conn {
	int fd;
	const char *name;
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

static void *serve(void *arg)
{
	struct srv_conn *sc = arg;
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

static void server_main(int lfd, const char *name)
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
		if (pthread_create(&t, NULL, serve, sc)) {
			close(fd);
			free(sc);
			continue;
		}
		pthread_detach(t);
	}
}

pid_t tsrv_start(const char *ns, const char *ip, uint16_t port, const char *name)
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
		server_main(lfd, name);
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

void tsrv_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
