// SPDX-License-Identifier: GPL-2.0-only
/* The plugin's side of lib/cni_proto.h: encode a request line, exchange it
 * with the agent over its unix socket within a deadline, decode the reply.
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

#include <json-c/json.h>

#include "cni.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define CONNECT_RETRY_MS 10

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int add_str(struct json_object *o, const char *key, const char *val)
{
	struct json_object *v = json_object_new_string(val);

	if (!v || json_object_object_add(o, key, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int fill_req(struct json_object *o, const struct cni_req *req)
{
	const struct {
		const char *key;
		const char *val;
	} fields[] = {
		{ "command", cni_cmd_name(req->cmd) }, { "container_id", req->container_id },
		{ "netns", req->netns },	       { "ifname", req->ifname },
		{ "namespace", req->ns },	       { "name", req->name },
		{ "uid", req->uid },
	};
	struct json_object *v, *ips;
	int err;

	v = json_object_new_int(CNI_PROTO_VERSION);
	if (!v || json_object_object_add(o, "version", v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		err = add_str(o, fields[i].key, fields[i].val);
		if (err)
			return err;
	}
	ips = json_object_new_array();
	if (!ips || json_object_object_add(o, "ips", ips)) {
		json_object_put(ips);
		return -ENOMEM;
	}
	for (size_t i = 0; i < req->n_ips; i++) {
		v = json_object_new_string(req->ips[i]);
		if (!v || json_object_array_add(ips, v)) {
			json_object_put(v);
			return -ENOMEM;
		}
	}
	return 0;
}

char *cni_req_encode(const struct cni_req *req, size_t *len)
{
	struct json_object *o = json_object_new_object();
	const char *s;
	char *line = NULL;
	size_t n;
	int err;

	if (!o) {
		errno = ENOMEM;
		return NULL;
	}
	err = fill_req(o, req);
	if (err)
		goto out_put;
	s = json_object_to_json_string_ext(o, JSON_FLAGS);
	if (!s) {
		err = -ENOMEM;
		goto out_put;
	}
	n = strlen(s);
	if (n + 1 > CNI_PROTO_MAX_LINE) {
		err = -EMSGSIZE;
		goto out_put;
	}
	line = malloc(n + 2);
	if (!line) {
		err = -ENOMEM;
		goto out_put;
	}
	memcpy(line, s, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
out_put:
	json_object_put(o);
	if (err)
		errno = -err;
	return line;
}

static void copy_str(struct json_object *o, const char *key, char *out, size_t len)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		snprintf(out, len, "%s", json_object_get_string(v));
}

int cni_reply_decode(const char *line, struct cni_reply *rep)
{
	struct json_object *o = json_tokener_parse(line), *v;
	int err = 0;

	*rep = (struct cni_reply){ 0 };
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "ok", &v) || !json_object_is_type(v, json_type_boolean)) {
		err = -EPROTO;
		goto out_put;
	}
	rep->ok = json_object_get_boolean(v);
	if (rep->ok) {
		if (json_object_object_get_ex(o, "meshed", &v) &&
		    json_object_is_type(v, json_type_boolean))
			rep->meshed = json_object_get_boolean(v);
		copy_str(o, "reason", rep->reason, sizeof(rep->reason));
		goto out_put;
	}
	/* An agent error without a usable code is still an error, and its
	 * message is worth more than a protocol complaint: keep it, as I/O failure.
	 */
	rep->err.code = CNI_ERR_IO;
	if (json_object_object_get_ex(o, "code", &v) && json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) > 0 && json_object_get_int64(v) < 1000)
		rep->err.code = (int)json_object_get_int64(v);
	snprintf(rep->err.msg, sizeof(rep->err.msg), "the agent refused the request");
	copy_str(o, "msg", rep->err.msg, sizeof(rep->err.msg));
	copy_str(o, "details", rep->err.details, sizeof(rep->err.details));
out_put:
	json_object_put(o);
	return err;
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
