// SPDX-License-Identifier: GPL-2.0-only
/* RUN_DIR/cni.sock: read one bounded request line per client, hand it to the
 * pods table, write one response line, close. A client that does not finish
 * its line in time is dropped. Requests are answered only after capture is in
 * place, which is what lets the runtime start the pod's containers safely.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cni_server.h"
#include "cni_proto.h"
#include "log.h"
#include "loop.h"
#include "pods.h"
#include "unix_sock.h"

#define CNI_MAX_CLIENTS 32
#define CNI_CLIENT_TIMEOUT_MS 5000

struct cni_client {
	struct cni_server *srv;
	int fd;
	int64_t timer;
	size_t len;
	char buf[CNI_PROTO_MAX_LINE];
};

struct cni_server {
	struct loop *loop;
	struct pods *pods;
	char path[108];
	int fd;
	struct cni_client *clients[CNI_MAX_CLIENTS];
};

static void client_free(struct cni_client *c)
{
	struct cni_server *s = c->srv;

	for (int i = 0; i < CNI_MAX_CLIENTS; i++) {
		if (s->clients[i] == c)
			s->clients[i] = NULL;
	}
	if (c->timer)
		loop_del_timer(s->loop, c->timer);
	(void)loop_del_fd(s->loop, c->fd);
	close(c->fd);
	free(c);
}

static void reply(struct cni_client *c, const struct cni_proto_reply *r)
{
	size_t len;
	char *line = cni_proto_reply_encode(r, &len);

	/* The reply is small and the socket buffer empty: one blocking-free write
	 * fits. A plugin that vanished loses its answer, nothing else.
	 */
	if (line)
		(void)send(c->fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	free(line);
}

static void error_reply(struct cni_proto_reply *r, int code, const char *msg, const char *details)
{
	*r = (struct cni_proto_reply){ .code = code };
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
	snprintf(r->details, sizeof(r->details), "%s", details ? details : "");
}

/* The CNI error code for an error of pods_add(). */
static int cni_code(int err)
{
	switch (err) {
	case -EINVAL:
	case -EEXIST:
		return CNI_ERR_INVALID_ENV;
	case -ENOENT:
		return CNI_ERR_UNKNOWN_CONTAINER;
	case -EAGAIN:
		return CNI_ERR_TRY_AGAIN;
	default:
		return CNI_ERR_IO;
	}
}

static void handle(struct cni_server *s, const char *line, struct cni_proto_reply *r)
{
	struct cni_proto_pod spec;
	enum cni_proto_cmd cmd;
	char err[512] = "";
	int rc;

	rc = cni_proto_req_decode(line, true, &cmd, &spec, err, sizeof(err));
	switch (rc) {
	case 0:
		break;
	case -EBADMSG:
		error_reply(r, CNI_ERR_DECODE, "agent: request is not a JSON object", NULL);
		return;
	case -EPROTONOSUPPORT:
		error_reply(r, CNI_ERR_INCOMPATIBLE_VERSION,
			    "agent: unsupported plugin protocol version",
			    "the weft-cni binary and weft-agent come from different releases");
		return;
	case -ENOMSG:
		error_reply(r, CNI_ERR_DECODE, "agent: request lacks 'command'", NULL);
		return;
	default:
		error_reply(r, CNI_ERR_DECODE, "agent: bad request", err);
		return;
	}
	switch (cmd) {
	case CNI_PROTO_ADD:
		if (!spec.netns[0]) {
			error_reply(r, CNI_ERR_INVALID_ENV, "agent: ADD needs a netns path", NULL);
			return;
		}
		rc = pods_add(s->pods, &spec, err, sizeof(err));
		if (rc) {
			error_reply(r, cni_code(rc), "agent: cannot enroll pod", err);
			return;
		}
		break;
	case CNI_PROTO_DEL:
		(void)pods_del(s->pods, spec.container_id);
		break;
	case CNI_PROTO_CHECK:
	case CNI_PROTO_NONE:
		if (pods_check(s->pods, spec.container_id, err, sizeof(err))) {
			error_reply(r, CNI_ERR_IO, "agent: check failed", err);
			return;
		}
		break;
	}
	*r = (struct cni_proto_reply){ .ok = true };
	for (const struct pod *pod = pods_first(s->pods); pod; pod = pod->next) {
		if (strcmp(pod->spec.container_id, spec.container_id))
			continue;
		r->has_pod = true;
		r->meshed = pod->meshed;
		snprintf(r->reason, sizeof(r->reason), "%s", pod->reason);
	}
}

static void on_client(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct cni_client *c = ctx;
	struct cni_proto_reply r;
	ssize_t n;
	char *nl;

	(void)loop;
	(void)events;
	n = recv(fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, MSG_DONTWAIT);
	if (n == -1 && errno == EAGAIN)
		return;
	if (n <= 0) {
		client_free(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	nl = strchr(c->buf, '\n');
	if (!nl) {
		if (c->len == sizeof(c->buf) - 1) {
			error_reply(&r, CNI_ERR_DECODE, "agent: request too long", NULL);
			reply(c, &r);
			client_free(c);
		}
		return;
	}
	*nl = '\0';
	handle(c->srv, c->buf, &r);
	reply(c, &r);
	client_free(c);
}

static void on_client_timeout(struct loop *loop, void *ctx)
{
	struct cni_client *c = ctx;

	(void)loop;
	c->timer = 0;
	log_debug("cni: client did not finish its request in time, closing");
	client_free(c);
}

static void on_accept(struct loop *loop, int lfd, uint32_t events, void *ctx)
{
	struct cni_server *s = ctx;
	struct cni_client *c;
	int fd, slot = -1;

	(void)events;
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1)
		return;
	for (int i = 0; i < CNI_MAX_CLIENTS && slot < 0; i++) {
		if (!s->clients[i])
			slot = i;
	}
	c = slot < 0 ? NULL : calloc(1, sizeof(*c));
	if (!c) {
		/* Busy: the plugin sees the close and reports "try again later". */
		close(fd);
		return;
	}
	c->srv = s;
	c->fd = fd;
	if (loop_add_fd(loop, fd, EPOLLIN, on_client, c)) {
		close(fd);
		free(c);
		return;
	}
	c->timer = loop_add_timer(loop, CNI_CLIENT_TIMEOUT_MS, on_client_timeout, c);
	if (c->timer < 0)
		c->timer = 0;
	s->clients[slot] = c;
}

struct cni_server *cni_server_new(struct loop *loop, const char *path, struct pods *pods)
{
	struct cni_server *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return NULL;
	s->loop = loop;
	s->pods = pods;
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->fd = unix_listen(path, 0600, 64);
	if (s->fd < 0) {
		err = s->fd;
		goto out_free;
	}
	err = loop_add_fd(loop, s->fd, EPOLLIN, on_accept, s);
	if (err)
		goto out_close;
	return s;
out_close:
	close(s->fd);
	(void)unlink(path);
out_free:
	free(s);
	errno = -err;
	return NULL;
}

void cni_server_free(struct cni_server *s)
{
	if (!s)
		return;
	for (int i = 0; i < CNI_MAX_CLIENTS; i++) {
		if (s->clients[i])
			client_free(s->clients[i]);
	}
	(void)loop_del_fd(s->loop, s->fd);
	close(s->fd);
	(void)unlink(s->path);
	free(s);
}
