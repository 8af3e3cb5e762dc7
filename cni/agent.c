// SPDX-License-Identifier: GPL-2.0-only
/* The plugin's side of lib/cni_proto.h: encode a request line, exchange it
 * with the agent over its unix socket within a deadline, decode the reply
 * (the wire format itself is lib/cni_proto.c's).
 * Everything here is bounded: one connect, one line each way, one deadline.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cni.h"

#define CONNECT_RETRY_MS 10

/* Copy @src into @dst of @len bytes; -EMSGSIZE if it does not fit. */
static int put(char *dst, size_t len, const char *src)
{
	int n = snprintf(dst, len, "%s", src ? src : "");

	return n < 0 || (size_t)n >= len ? -EMSGSIZE : 0;
}

/* The request's strings into @pod. 0 or -EMSGSIZE. */
static int put_strings(struct cni_proto_pod *pod, const struct cni_req *req)
{
	const struct {
		char *dst;
		size_t len;
		const char *src;
	} fields[] = {
		{ pod->container_id, sizeof(pod->container_id), req->container_id },
		{ pod->netns, sizeof(pod->netns), req->netns },
		{ pod->ifname, sizeof(pod->ifname), req->ifname },
		{ pod->ns, sizeof(pod->ns), req->ns },
		{ pod->name, sizeof(pod->name), req->name },
		{ pod->uid, sizeof(pod->uid), req->uid },
	};
	int err = 0;

	for (size_t i = 0; !err && i < sizeof(fields) / sizeof(fields[0]); i++)
		err = put(fields[i].dst, fields[i].len, fields[i].src);
	return err;
}

char *cni_req_encode(const struct cni_req *req, size_t *len)
{
	struct cni_proto_pod *pod = calloc(1, sizeof(*pod));
	enum cni_proto_cmd cmd = CNI_PROTO_NONE;
	char *line = NULL;
	int err;

	if (!pod)
		return NULL;
	for (int i = CNI_PROTO_ADD; i <= CNI_PROTO_CHECK; i++) {
		if (!strcmp(cni_proto_cmd_name((enum cni_proto_cmd)i), cni_cmd_name(req->cmd)))
			cmd = (enum cni_proto_cmd)i;
	}
	err = cmd == CNI_PROTO_NONE ? -EINVAL : 0;
	if (!err)
		err = put_strings(pod, req);
	for (size_t i = 0; !err && i < req->n_ips && i < CNI_PROTO_MAX_IPS; i++) {
		err = addr_parse_ip(req->ips[i], &pod->ips[i]) ? -EINVAL : 0;
		pod->n_ips++;
	}
	if (!err) {
		line = cni_proto_req_encode(cmd, pod, len);
		err = line ? 0 : -errno;
	}
	free(pod);
	if (err)
		errno = -err;
	return line;
}

int cni_reply_decode(const char *line, struct cni_reply *rep)
{
	struct cni_proto_reply r;
	int err = cni_proto_reply_decode(line, &r);

	*rep = (struct cni_reply){ .ok = r.ok, .meshed = r.meshed };
	if (err)
		return err;
	snprintf(rep->reason, sizeof(rep->reason), "%s", r.reason);
	if (!r.ok) {
		rep->err.code = r.code;
		snprintf(rep->err.msg, sizeof(rep->err.msg), "%s", r.msg);
		snprintf(rep->err.details, sizeof(rep->err.details), "%s", r.details);
	}
	return 0;
}

/* Wait until @fd is ready for @events or @deadline passes. 0 or -errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		uint64_t now = mono_ms();
		int n;

		if (now >= deadline)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)(deadline - now));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		return 0;
	}
}

static int connect_agent(const char *path, uint64_t deadline)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return -errno;
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			return fd;
		err = -errno;
		if (err == -EINTR)
			continue;
		/* A unix socket with a full listen backlog fails a nonblocking
		 * connect with EAGAIN and gives nothing to poll on (unlike TCP's
		 * EINPROGRESS): retry shortly until the deadline.
		 */
		if (err != -EAGAIN)
			break;
		if (mono_ms() + CONNECT_RETRY_MS >= deadline) {
			err = -ETIMEDOUT;
			break;
		}
		(void)poll(NULL, 0, CONNECT_RETRY_MS);
	}
	close(fd);
	return err;
}

static int send_all(int fd, const char *buf, size_t len, uint64_t deadline)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n;
		int err = wait_fd(fd, POLLOUT, deadline);

		if (err)
			return err;
		n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n == -1)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

/* Read up to the first newline (or EOF after some bytes). 0 or -errno. */
static int recv_line(int fd, char *buf, size_t size, uint64_t deadline)
{
	size_t got = 0;

	for (;;) {
		ssize_t n;
		char *nl;
		int err;

		if (got == size - 1)
			return -EMSGSIZE;
		err = wait_fd(fd, POLLIN, deadline);
		if (err)
			return err;
		n = recv(fd, buf + got, size - 1 - got, 0);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n == -1)
			return -errno;
		if (n == 0) {
			if (got == 0)
				return -ECONNRESET;
			break;
		}
		nl = memchr(buf + got, '\n', (size_t)n);
		got += (size_t)n;
		if (nl) {
			got = (size_t)(nl - buf);
			break;
		}
	}
	buf[got] = '\0';
	return 0;
}

int cni_agent_call(const char *sock_path, const char *req, size_t req_len,
		   unsigned int timeout_ms, char *reply, size_t reply_size)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	int fd, err;

	if (reply_size < 2)
		return -EMSGSIZE;
	fd = connect_agent(sock_path, deadline);
	if (fd < 0)
		return fd;
	err = send_all(fd, req, req_len, deadline);
	if (!err)
		err = recv_line(fd, reply, reply_size, deadline);
	close(fd);
	return err;
}

int cni_agent_probe(const char *sock_path, unsigned int timeout_ms)
{
	int fd = connect_agent(sock_path, mono_ms() + timeout_ms);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}
