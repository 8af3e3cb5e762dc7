// SPDX-License-Identifier: GPL-2.0-only
/* RUN_DIR/cni.sock: read one bounded request line per client, hand it to the
 * pods table, write one response line, close. The server core (agent/srv.h)
 * bounds the clients and drops one that does not finish its line in time.
 * Requests are answered only after capture is in place, which is what lets
 * the runtime start the pod's containers safely. An ADD that waits for its
 * Pod object (pods_add()) is answered later, from the publish or the timer
 * that ends the wait (srv_defer()).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cni_server.h"
#include "cni_proto.h"
#include "log.h"
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

/* A client; an ADD may wait for its Pod object (pods_add()). */
struct cni_client {
	struct srv_client c;
	struct pods_wait *wait;		/* while its ADD waits; NULL otherwise */
	char container_id[CNI_PROTO_MAX_CONTAINER_ID + 1];	/* of the waiting ADD */
};

/* Queue @r as the reply line. 0, or -errno when it cannot be: the client
 * is then dropped and the plugin reports the close, as it does when it
 * vanished before its answer.
 */
static int reply(struct srv_client *c, const struct cni_proto_reply *r)
{
	size_t len;
	char *line = cni_proto_reply_encode(r, &len);

	if (!line)
		return -errno;
	srv_reply(c, line, len);
	return 0;
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

/* GC: forget every enrolled pod whose container id @line does not list.
 * Collects first, since pods_del() unlinks from the list being walked.
 */
static void gc(struct cni_server *s, const char *line, struct cni_proto_reply *r)
{
	char (*valid)[CNI_PROTO_MAX_CONTAINER_ID + 1] = NULL;
	char (*stale)[CNI_PROTO_MAX_CONTAINER_ID + 1];
	size_t n_valid, n_stale = 0;
	char err[256] = "";

	if (cni_proto_gc_decode(line, &valid, &n_valid, err, sizeof(err))) {
		error_reply(r, CNI_ERR_DECODE, "agent: bad GC request", err);
		return;
	}
	stale = calloc(pods_count(s->pods, false) + 1, sizeof(*stale));
	if (!stale) {
		free(valid);
		error_reply(r, CNI_ERR_IO, "agent: GC: out of memory", NULL);
		return;
	}
	for (const struct pod *pod = pods_first(s->pods); pod; pod = pod->next) {
		bool listed = false;

		for (size_t i = 0; i < n_valid && !listed; i++)
			listed = !strcmp(valid[i], pod->spec.container_id);
		if (!listed)
			memcpy(stale[n_stale++], pod->spec.container_id, sizeof(*stale));
	}
	for (size_t i = 0; i < n_stale; i++) {
		log_info("cni: GC: forgetting container %s, not among the %zu valid attachments",
			 stale[i], n_valid);
		(void)pods_del(s->pods, stale[i]);
	}
	free(stale);
	free(valid);
	*r = (struct cni_proto_reply){ .ok = true };
}

/* The success reply for @container_id, with the pod's meshing decision. */
static void ok_reply(struct cni_server *s, const char *container_id, struct cni_proto_reply *r)
{
	*r = (struct cni_proto_reply){ .ok = true };
	for (const struct pod *pod = pods_first(s->pods); pod; pod = pod->next) {
		if (strcmp(pod->spec.container_id, container_id))
			continue;
		r->has_pod = true;
		r->meshed = pod->meshed;
		snprintf(r->reason, sizeof(r->reason), "%s", pod->reason);
	}
}

/* pods_add_done_fn: the ADD that waited for its Pod object is decided. */
static void add_done(void *ctx, int err, const char *msg)
{
	struct cni_client *cc = ctx;
	struct cni_server *s = cc->c.ctx;
	struct cni_proto_reply r;
	char *line;
	size_t len;

	cc->wait = NULL;
	if (err)
		error_reply(&r, cni_code(err), "agent: cannot enroll pod", msg);
	else
		ok_reply(s, cc->container_id, &r);
	line = cni_proto_reply_encode(&r, &len);
	if (!line) {
		/* Nothing to send: the plugin sees the close and retries. */
		line = strdup("");
		len = 0;
	}
	srv_reply_deferred(&cc->c, line, len);
}

/* Returns true when the reply is deferred (an ADD waiting for its Pod). */
static bool handle(struct cni_client *cc, const char *line, struct cni_proto_reply *r)
{
	struct cni_server *s = cc->c.ctx;
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
		return false;
	case -EPROTONOSUPPORT:
		error_reply(r, CNI_ERR_INCOMPATIBLE_VERSION,
			    "agent: unsupported plugin protocol version",
			    "the weft-cni binary and weft-agent come from different releases");
		return false;
	case -ENOMSG:
		error_reply(r, CNI_ERR_DECODE, "agent: request lacks 'command'", NULL);
		return false;
	default:
		error_reply(r, CNI_ERR_DECODE, "agent: bad request", err);
		return false;
	}
	switch (cmd) {
	case CNI_PROTO_ADD:
		if (!spec.netns[0]) {
			error_reply(r, CNI_ERR_INVALID_ENV, "agent: ADD needs a netns path", NULL);
			return false;
		}
		rc = pods_add(s->pods, &spec, add_done, cc, &cc->wait, err, sizeof(err));
		if (rc == -EINPROGRESS) {
			snprintf(cc->container_id, sizeof(cc->container_id), "%s",
				 spec.container_id);
			return true;
		}
		if (rc) {
			error_reply(r, cni_code(rc), "agent: cannot enroll pod", err);
			return false;
		}
		break;
	case CNI_PROTO_DEL:
		(void)pods_del(s->pods, spec.container_id);
		break;
	case CNI_PROTO_CHECK:
	case CNI_PROTO_NONE:
		rc = pods_check(s->pods, spec.container_id, err, sizeof(err));
		if (rc) {
			error_reply(r, rc == -ENOENT ? CNI_ERR_UNKNOWN_CONTAINER : CNI_ERR_IO,
				    "agent: check failed", err);
			return false;
		}
		break;
	case CNI_PROTO_STATUS:
		/* Not ready exactly while pods_add() would answer -EAGAIN. */
		if (!pods_can_enroll(s->pods)) {
			error_reply(r, CNI_ERR_NOT_AVAILABLE, "agent: not ready",
				    "the agent's registries have not synced yet");
			return false;
		}
		*r = (struct cni_proto_reply){ .ok = true };
		return false;
	case CNI_PROTO_GC:
		gc(s, line, r);
		return false;
	}
	ok_reply(s, spec.container_id, r);
	return false;
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
	struct cni_proto_reply r;

	if (!nl && c->in_len < CNI_MAX_LINE)
		return 0;
	c->used = c->in_len;
	if (!nl) {
		error_reply(&r, CNI_ERR_DECODE, "agent: request too long", NULL);
	} else {
		*nl = '\0';
		if (handle((struct cni_client *)c, c->in, &r)) {
			/* The plugin waits CNI_PROTO_TIMEOUT_MS for its answer. */
			srv_defer(c, CNI_PROTO_TIMEOUT_MS);
			return 0;
		}
	}
	return reply(c, &r);
}

/* srv_ops.done: a client that goes while its ADD waits withdraws it. */
static void client_done(struct srv_client *c)
{
	struct cni_client *cc = (struct cni_client *)c;
	struct cni_server *s = c->ctx;

	pods_wait_cancel(s->pods, cc->wait);
	cc->wait = NULL;
}

static const struct srv_ops cni_ops = {
	.name = "cni",
	.client_size = sizeof(struct cni_client),
	.in_max = CNI_MAX_LINE,
	.max_clients = CNI_MAX_CLIENTS,
	.backlog = 64,
	.timeout_ms = CNI_CLIENT_TIMEOUT_MS,
	.start = client_start,
	.input = client_input,
	.done = client_done,
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
