// SPDX-License-Identifier: GPL-2.0-only
/* RUN_DIR/cni.sock: read one bounded request line per client, hand it to the
 * pods table, write one response line, close. The server core (agent/srv.h)
 * bounds the clients and drops one that does not finish its line in time.
 * Requests are answered only after capture is in place, which is what lets
 * the runtime start the pod's containers safely.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cni_server.h"
#include "cni_proto.h"
#include "pods.h"
#include "srv.h"

#define CNI_MAX_CLIENTS 32
#define CNI_CLIENT_TIMEOUT_MS 5000
/* Bytes of a request line: it and its NUL fit CNI_PROTO_MAX_LINE. */
#define CNI_MAX_LINE (CNI_PROTO_MAX_LINE - 1)

struct cni_server {
	struct pods *pods;
	struct srv *srv;
};

/* Queue @resp as the reply line. 0, or -errno when it cannot be: the client
 * is then dropped and the plugin reports the close, as it does when it
 * vanished before its answer.
 */
static int reply(struct srv_client *c, json_object *resp)
{
	const char *text = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);
	char line[CNI_PROTO_MAX_LINE], *out;
	int n = snprintf(line, sizeof(line), "%s\n", text);

	if (n <= 0 || (size_t)n >= sizeof(line))
		return -EMSGSIZE;
	out = malloc((size_t)n);
	if (!out)
		return -ENOMEM;
	memcpy(out, line, (size_t)n);
	srv_reply(c, out, (size_t)n);
	return 0;
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

static json_object *handle(struct cni_server *s, const char *line)
{
	json_object *req = json_tokener_parse(line), *v, *r = NULL;
	struct pod_spec spec;
	char err[512] = "";
	const char *cmd;
	int code = CNI_ERR_IO;

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
		if (pods_add(s->pods, &spec, &code, err, sizeof(err))) {
			r = error_reply(code, "agent: cannot enroll pod", err);
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

/* srv_ops.start: one request per connection. */
static void client_start(struct srv_client *c)
{
	c->close_after = true;
}

/* srv_ops.input: answer once the line is whole; refuse one that cannot be. */
static int client_input(struct srv_client *c)
{
	char *nl = strchr(c->in, '\n');
	json_object *r;
	int err;

	if (!nl && c->in_len < CNI_MAX_LINE)
		return 0;
	c->used = c->in_len;
	if (!nl) {
		r = error_reply(CNI_ERR_DECODE, "agent: request too long", NULL);
	} else {
		*nl = '\0';
		r = handle(c->ctx, c->in);
	}
	err = reply(c, r);
	json_object_put(r);
	return err;
}

static const struct srv_ops cni_ops = {
	.name = "cni",
	.client_size = sizeof(struct srv_client),
	.in_max = CNI_MAX_LINE,
	.max_clients = CNI_MAX_CLIENTS,
	.backlog = 64,
	.timeout_ms = CNI_CLIENT_TIMEOUT_MS,
	.start = client_start,
	.input = client_input,
	/* No .refuse: a plugin that finds every slot taken sees the close and
	 * reports "try again later".
	 */
};

struct cni_server *cni_server_new(struct loop *loop, const char *path, struct pods *pods)
{
	struct cni_server *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return NULL;
	s->pods = pods;
	s->srv = srv_new_unix(loop, path, 0600, &cni_ops, s);
	if (!s->srv) {
		err = errno;
		free(s);
		errno = err;
		return NULL;
	}
	return s;
}

void cni_server_free(struct cni_server *s)
{
	if (!s)
		return;
	srv_free(s->srv);
	free(s);
}
