// SPDX-License-Identifier: GPL-2.0-only
/* RUN_DIR/cni.sock: read one bounded request line per client, hand it to the
 * pods table, write one response line, close. A client that does not finish
 * its line in time is dropped. Requests are answered only after capture is in
 * place, which is what lets the runtime start the pod's containers safely.
 */
#include <errno.h>
#include <json-c/json.h>
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

static void reply(struct cni_client *c, json_object *resp)
{
	const char *text = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);
	char line[CNI_PROTO_MAX_LINE];
	int n = snprintf(line, sizeof(line), "%s\n", text);

	/* The reply is small and the socket buffer empty: one blocking-free write
	 * fits. A plugin that vanished loses its answer, nothing else.
	 */
	if (n > 0 && (size_t)n < sizeof(line))
		(void)send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static json_object *error_reply(int code, const char *msg, const char *details)
{
	json_object *r = json_object_new_object();

	json_object_object_add(r, "ok", json_object_new_boolean(0));
	json_object_object_add(r, "code", json_object_new_int(code));
	json_object_object_add(r, "msg", json_object_new_string(msg));
	json_object_object_add(r, "details", json_object_new_string(details ? details : ""));
	return r;
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

static json_object *handle(struct cni_server *s, const char *line)
{
	json_object *req = json_tokener_parse(line), *v, *r = NULL;
	struct pod_spec spec;
	char err[512] = "";
	const char *cmd;
	int rc;

	if (!req || !json_object_is_type(req, json_type_object)) {
		r = error_reply(CNI_ERR_DECODE, "agent: request is not a JSON object", NULL);
		goto out;
	}
	if (!json_object_object_get_ex(req, "version", &v) ||
	    json_object_get_int(v) != CNI_PROTO_VERSION) {
		r = error_reply(CNI_ERR_INCOMPATIBLE_VERSION,
				"agent: unsupported plugin protocol version",
				"the weft-cni binary and weft-agent come from different releases");
		goto out;
	}
	if (!json_object_object_get_ex(req, "command", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		r = error_reply(CNI_ERR_DECODE, "agent: request lacks 'command'", NULL);
		goto out;
	}
	cmd = json_object_get_string(v);
	if (pod_spec_parse(line, &spec, err, sizeof(err))) {
		r = error_reply(CNI_ERR_DECODE, "agent: bad request", err);
		goto out;
	}
	if (!strcmp(cmd, "ADD")) {
		if (!spec.netns[0]) {
			r = error_reply(CNI_ERR_INVALID_ENV, "agent: ADD needs a netns path", NULL);
			goto out;
		}
		rc = pods_add(s->pods, &spec, err, sizeof(err));
		if (rc) {
			r = error_reply(cni_code(rc), "agent: cannot enroll pod", err);
			goto out;
		}
	} else if (!strcmp(cmd, "DEL")) {
		(void)pods_del(s->pods, spec.container_id);
	} else if (!strcmp(cmd, "CHECK")) {
		if (pods_check(s->pods, spec.container_id, err, sizeof(err))) {
			r = error_reply(CNI_ERR_IO, "agent: check failed", err);
			goto out;
		}
	} else {
		snprintf(err, sizeof(err), "unknown command '%s'", cmd);
		r = error_reply(CNI_ERR_DECODE, "agent: bad request", err);
		goto out;
	}
	r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(1));
	for (const struct pod *pod = pods_first(s->pods); pod; pod = pod->next) {
		if (strcmp(pod->spec.container_id, spec.container_id))
			continue;
		json_object_object_add(r, "meshed", json_object_new_boolean(pod->meshed));
		json_object_object_add(r, "reason", json_object_new_string(pod->reason));
	}
out:
	json_object_put(req);
	return r;
}

static void on_client(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct cni_client *c = ctx;
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
			json_object *r = error_reply(CNI_ERR_DECODE, "agent: request too long", NULL);

			reply(c, r);
			json_object_put(r);
			client_free(c);
		}
		return;
	}
	*nl = '\0';
	json_object *r = handle(c->srv, c->buf);

	reply(c, r);
	json_object_put(r);
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
