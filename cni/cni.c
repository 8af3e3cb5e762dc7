// SPDX-License-Identifier: GPL-2.0-only
/* One CNI invocation from start to end: pick the verb, parse the config
 * (conf.c), talk to the agent (agent.c) and print the result (result.c) or the
 * spec's error object. Decides which agent failures are errors for which verb.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cni.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static void print_json(FILE *out, struct json_object *o)
{
	fprintf(out, "%s\n", json_object_to_json_string_ext(o, JSON_FLAGS));
}

static void print_error(FILE *out, const char *version, const struct cni_error *e)
{
	struct json_object *o = json_object_new_object();

	if (!o) {
		fprintf(out, "{\"cniVersion\":\"%s\",\"code\":%d,\"msg\":\"out of memory\"}\n",
			version, CNI_ERR_IO);
		return;
	}
	json_object_object_add(o, "cniVersion", json_object_new_string(version));
	json_object_object_add(o, "code", json_object_new_int(e->code));
	json_object_object_add(o, "msg", json_object_new_string(e->msg));
	if (e->details[0])
		json_object_object_add(o, "details", json_object_new_string(e->details));
	print_json(out, o);
	json_object_put(o);
}

/* VERSION reads {"cniVersion": ...} from stdin and answers in kind; with no
 * usable input it answers in the newest version it knows.
 */
static int print_version(const char *in, size_t len, FILE *out)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *req = NULL, *resp, *list, *v;
	const char *version = CNI_VERSION_LATEST;
	const char *s;
	int status = 0;

	if (tok && len)
		req = json_tokener_parse_ex(tok, in, (int)len);
	if (req && json_object_object_get_ex(req, "cniVersion", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    cni_version_valid(json_object_get_string(v)))
		version = json_object_get_string(v);
	resp = json_object_new_object();
	list = json_object_new_array();
	if (resp)
		json_object_object_add(resp, "cniVersion", json_object_new_string(version));
	if (!resp || !list || json_object_object_add(resp, "supportedVersions", list)) {
		json_object_put(list);
		fprintf(out, "{\"cniVersion\":\"%s\",\"code\":%d,\"msg\":\"out of memory\"}\n",
			CNI_VERSION_LATEST, CNI_ERR_IO);
		status = 1;
		goto out_put;
	}
	for (size_t i = 0; (s = cni_version_at(i)); i++)
		json_object_array_add(list, json_object_new_string(s));
	print_json(out, resp);
out_put:
	json_object_put(resp);
	json_object_put(req);
	json_tokener_free(tok);
	return status;
}

/* Whether @err from cni_agent_call() means no agent listens at all, as
 * opposed to one that is there but failing.
 */
static bool is_agent_gone(int err)
{
	return err == -ENOENT || err == -ECONNREFUSED || err == -ENOTDIR;
}

static void agent_error(const char *sock, int err, unsigned int timeout_ms, struct cni_error *e)
{
	char msg[sizeof(e->msg)];
	int code = CNI_ERR_TRY_AGAIN;

	if (is_agent_gone(err)) {
		snprintf(msg, sizeof(msg), "weft agent is not running: nothing listens on %s",
			 sock);
	} else if (err == -ETIMEDOUT) {
		snprintf(msg, sizeof(msg), "weft agent on %s did not answer within %u ms", sock,
			 timeout_ms);
	} else if (err == -ECONNRESET || err == -EPIPE || err == -EAGAIN) {
		snprintf(msg, sizeof(msg), "weft agent on %s hung up without a reply", sock);
	} else if (err == -EMSGSIZE || err == -EPROTO) {
		code = CNI_ERR_DECODE;
		snprintf(msg, sizeof(msg), "malformed reply from the weft agent on %s", sock);
	} else {
		code = CNI_ERR_IO;
		snprintf(msg, sizeof(msg), "cannot talk to the weft agent on %s", sock);
	}
	cni_error_set(e, code, msg, "%s", strerror(-err));
}

/* Send @line to the agent and decode its reply into @rep, within @timeout_ms.
 * Returns 0 with @rep filled (ok or not), or a negative errno with @e filled;
 * callers may look at the errno first (is_agent_gone()) and ignore @e.
 */
static int ask_agent_line(const struct cni_conf *conf, const char *line, size_t len,
			  unsigned int timeout_ms, struct cni_reply *rep, struct cni_error *e)
{
	char reply[CNI_PROTO_MAX_LINE];
	int err;

	err = cni_agent_call(conf->agent_socket, line, len, timeout_ms, reply, sizeof(reply));
	if (!err)
		err = cni_reply_decode(reply, rep);
	if (err)
		agent_error(conf->agent_socket, err, timeout_ms, e);
	return err;
}

/* Exchange @req with the agent, as ask_agent_line(). */
static int ask_agent(const struct cni_conf *conf, const struct cni_req *req,
		     unsigned int timeout_ms, struct cni_reply *rep, struct cni_error *e)
{
	size_t len;
	char *line;
	int err;

	line = cni_req_encode(req, &len);
	if (!line) {
		err = -errno;
		cni_error_set(e, CNI_ERR_IO, "cannot encode the request to the weft agent", "%s",
			      strerror(-err));
		return err;
	}
	log_debug("%s %s/%s: asking the agent on %s", cni_cmd_name(req->cmd), req->ns, req->name,
		  conf->agent_socket);
	err = ask_agent_line(conf, line, len, timeout_ms, rep, e);
	free(line);
	return err;
}

/* Send the @cmd (STATUS or GC, with @n container @ids) to the agent, as
 * ask_agent_line().
 */
static int ask_agent_cmd(const struct cni_conf *conf, enum cni_proto_cmd cmd,
			 const char *const *ids, size_t n, unsigned int timeout_ms,
			 struct cni_reply *rep, struct cni_error *e)
{
	size_t len;
	char *line = cni_proto_cmd_encode(cmd, ids, n, &len);
	int err;

	if (!line)
		return cni_error_set(e, CNI_ERR_IO, "cannot encode the request to the weft agent",
				     "%s", strerror(errno));
	err = ask_agent_line(conf, line, len, timeout_ms, rep, e);
	free(line);
	return err;
}

/* The outcome of an exchange that must succeed: @err from asking, else the
 * agent's refusal in @rep as -EINVAL with its error in @e.
 */
static int agent_verdict(int err, const struct cni_reply *rep, struct cni_error *e)
{
	if (err)
		return err;
	if (!rep->ok) {
		*e = rep->err;
		return -EINVAL;
	}
	return 0;
}

/* What the plugin knows about a pod's namespace before asking the agent. */
enum mesh_route {
	ROUTE_EXCLUDED,		/* in exclude_namespaces: never meshed, never waits */
	ROUTE_NOT_MESHED,	/* the state file says not meshed */
	ROUTE_MESHED,		/* the state file says meshed: the agent must capture */
	ROUTE_UNKNOWN,		/* no usable state file: the agent must answer */
};

static const char *const route_names[] = {
	[ROUTE_EXCLUDED] = "excluded",
	[ROUTE_NOT_MESHED] = "not meshed",
	[ROUTE_MESHED] = "meshed",
	[ROUTE_UNKNOWN] = "unknown (no node state file)",
};

/* Read the agent's node state file; 0 with @st filled, or -errno. */
static int state_load(const char *path, struct cni_proto_state *st)
{
	char *buf = malloc(CNI_PROTO_MAX_STATE + 1), err[128];
	FILE *f = fopen(path, "re");
	size_t n = 0;
	int rc;

	*st = (struct cni_proto_state){ 0 };
	rc = !f ? -errno : !buf ? -ENOMEM : 0;
	if (!rc) {
		n = fread(buf, 1, CNI_PROTO_MAX_STATE + 1, f);
		rc = ferror(f) ? -EIO : n > CNI_PROTO_MAX_STATE ? -EFBIG : 0;
	}
	if (!rc) {
		buf[n] = '\0';
		rc = cni_proto_state_decode(buf, st, err, sizeof(err));
		if (rc)
			log_warn("node state file %s: %s; deciding as if there were none", path,
				 err);
	} else if (rc != -ENOENT) {
		log_warn("node state file %s: %s; deciding as if there were none", path,
			 strerror(-rc));
	}
	if (f)
		fclose(f);
	free(buf);
	return rc;
}

static enum mesh_route mesh_route(const struct cni_conf *conf, const char *ns)
{
	struct cni_proto_state st;
	enum mesh_route r;

	if (cni_conf_excluded(conf, ns))
		return ROUTE_EXCLUDED;
	if (state_load(conf->state_file, &st))
		return ROUTE_UNKNOWN;
	r = cni_proto_state_meshed(&st, ns) ? ROUTE_MESHED : ROUTE_NOT_MESHED;
	cni_proto_state_done(&st);
	return r;
}

/* Whether an agent failure @err (from ask_agent()) may be ignored for a pod
 * on @route: the agent could not answer, and the plugin knows without it
 * that the pod needs no capture.
 */
static bool may_pass_without_agent(const struct cni_conf *conf, enum mesh_route route, int err)
{
	if (route == ROUTE_NOT_MESHED)
		return true;
	return route == ROUTE_UNKNOWN && conf->fail_open && is_agent_gone(err);
}

/* ADD: the agent decides for the pods it can reach; when it cannot answer,
 * the exclusion list and the node state file decide (docs/cni.md has the
 * table). A pod of a namespace not meshed is still offered to the agent, so
 * that labelling the namespace later meshes it live, but never waits for it.
 */
static int cmd_add(const struct cni_env *env, const struct cni_conf *conf, FILE *out,
		   struct cni_error *e)
{
	struct json_object *result;
	enum mesh_route route;
	struct cni_reply rep;
	struct cni_req req;
	int err;

	err = cni_req_build(env, conf, CNI_CMD_ADD, &req, e);
	if (err)
		return err;
	/* Settle the output before the agent enrolls the pod, so nothing can
	 * fail after it did (a failed ADD leaves the runtime to send DEL).
	 */
	result = cni_result_for(conf->prev_result, conf->version, e);
	if (!result)
		return -EINVAL;
	route = mesh_route(conf, req.ns);
	if (route == ROUTE_EXCLUDED) {
		log_debug("ADD %s/%s: namespace excluded, not asking the agent", req.ns, req.name);
		goto out_print;
	}
	{
		char why[256];

		/* Before the agent enrolls the pod: its inbound capture needs them.
		 * A failure is the agent's to judge (it reads them back).
		 */
		if (cni_pod_sysctls(req.netns, why, sizeof(why)))
			log_info("ADD %s/%s: %s; the agent will say whether inbound capture can work",
				 req.ns, req.name, why);
	}
	err = ask_agent(conf, &req,
			route == ROUTE_NOT_MESHED ? CNI_UNMESHED_WAIT_MS : CNI_PROTO_TIMEOUT_MS,
			&rep, e);
	/* An agent that answers "try again" (it has not synced) knows no more
	 * than the state file does.
	 */
	if (!err && !rep.ok && rep.err.code == CNI_ERR_TRY_AGAIN && route == ROUTE_NOT_MESHED) {
		*e = rep.err;
		err = -EAGAIN;
	}
	if (err && may_pass_without_agent(conf, route, err)) {
		log_info("ADD %s/%s: namespace %s, the agent cannot answer (%s): passing through",
			 req.ns, req.name, route_names[route], e->msg);
		err = 0;
		goto out_print;
	}
	err = agent_verdict(err, &rep, e);
	if (err)
		goto out_put;
	log_debug("ADD %s/%s: meshed=%s reason='%s'", req.ns, req.name, rep.meshed ? "yes" : "no",
		  rep.reason);
out_print:
	print_json(out, result);
out_put:
	json_object_put(result);
	return err;
}

/* CHECK: a pod that needs no capture (excluded, or not meshed by the state
 * file) passes; any other must be known to the agent with its capture in
 * place (the agent answers code 3 for a pod it does not know).
 */
static int cmd_check(const struct cni_env *env, const struct cni_conf *conf,
		     struct cni_error *e)
{
	enum mesh_route route;
	struct cni_reply rep;
	struct cni_req req;
	int err;

	err = cni_req_build(env, conf, CNI_CMD_CHECK, &req, e);
	if (err)
		return err;
	route = mesh_route(conf, req.ns);
	if (route == ROUTE_EXCLUDED || route == ROUTE_NOT_MESHED)
		return 0;
	err = ask_agent(conf, &req, CNI_PROTO_TIMEOUT_MS, &rep, e);
	if (err && may_pass_without_agent(conf, route, err))
		return 0;
	return agent_verdict(err, &rep, e);
}

/* DEL succeeds when there is nothing to delete: no agent (one that starts
 * later forgets saved pods whose netns is gone) or a pod the agent does not
 * know. An agent that is there but fails gets the error, so the runtime
 * retries rather than the agent keeping the pod's netns alive.
 */
static int cmd_del(const struct cni_env *env, const struct cni_conf *conf, struct cni_error *e)
{
	struct cni_reply rep;
	struct cni_req req;
	int err;

	err = cni_req_build(env, conf, CNI_CMD_DEL, &req, e);
	if (err)
		return err;
	err = ask_agent(conf, &req, CNI_PROTO_TIMEOUT_MS, &rep, e);
	if (is_agent_gone(err)) {
		log_debug("DEL %s: no agent on %s, nothing to do", req.container_id,
			  conf->agent_socket);
		return 0;
	}
	if (err)
		return err;
	if (!rep.ok && rep.err.code != CNI_ERR_UNKNOWN_CONTAINER) {
		*e = rep.err;
		return -EINVAL;
	}
	return 0;
}

/* STATUS: ready exactly when a meshed ADD would succeed: the agent answers
 * and has synced its registries. Any failure is code 50.
 */
static int cmd_status(const struct cni_conf *conf, struct cni_error *e)
{
	struct cni_reply rep;
	int err;

	err = ask_agent_cmd(conf, CNI_PROTO_STATUS, NULL, 0, CNI_STATUS_PROBE_MS, &rep, e);
	if (err) {
		/* agent_error() (or the encoder) said why. */
		e->code = CNI_ERR_NOT_AVAILABLE;
		return -EINVAL;
	}
	if (!rep.ok) {
		*e = rep.err;
		e->code = CNI_ERR_NOT_AVAILABLE;
		return -EINVAL;
	}
	return 0;
}

/* The container ids of "cni.dev/valid-attachments" ([{"containerID", "ifname"}])
 * into @ids, without repeats. 0 or -EINVAL with @e filled (code 7).
 */
static int valid_attachments(const struct cni_conf *conf, const char **ids, size_t *n,
			     struct cni_error *e)
{
	struct json_object *list;
	size_t len;

	*n = 0;
	if (!json_object_object_get_ex(conf->root, "cni.dev/valid-attachments", &list))
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG,
				     "missing cni.dev/valid-attachments",
				     "GC needs the list of attachments to keep");
	if (!json_object_is_type(list, json_type_array))
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG,
				     "invalid cni.dev/valid-attachments", "must be an array");
	len = json_object_array_length(list);
	for (size_t i = 0; i < len; i++) {
		struct json_object *a = json_object_array_get_idx(list, i), *id;
		const char *s;
		bool seen = false;

		if (!json_object_is_type(a, json_type_object) ||
		    !json_object_object_get_ex(a, "containerID", &id) ||
		    !json_object_is_type(id, json_type_string) || !json_object_get_string_len(id) ||
		    json_object_get_string_len(id) > CNI_ID_MAX)
			return cni_error_set(e, CNI_ERR_INVALID_CONFIG,
					     "invalid cni.dev/valid-attachments",
					     "entry %zu has no \"containerID\" of 1 to %d bytes", i,
					     CNI_ID_MAX);
		s = json_object_get_string(id);
		for (size_t j = 0; j < *n && !seen; j++)
			seen = !strcmp(ids[j], s);
		if (seen)
			continue;
		if (*n == CNI_MAX_GC_IDS)
			return cni_error_set(e, CNI_ERR_IO, "too many valid attachments",
					     "weft-cni collects garbage with at most %d containers "
					     "on a node; nothing was collected",
					     CNI_MAX_GC_IDS);
		ids[(*n)++] = s;
	}
	return 0;
}

/* GC: the agent forgets every pod not among the valid attachments. With no
 * agent there is nothing to collect: a starting agent drops saved pods whose
 * netns is gone.
 */
static int cmd_gc(const struct cni_conf *conf, struct cni_error *e)
{
	static const char *ids[CNI_MAX_GC_IDS];
	struct cni_reply rep;
	size_t n;
	int err;

	err = valid_attachments(conf, ids, &n, e);
	if (err)
		return err;
	err = ask_agent_cmd(conf, CNI_PROTO_GC, ids, n, CNI_PROTO_TIMEOUT_MS, &rep, e);
	if (is_agent_gone(err)) {
		log_debug("GC: no agent on %s, nothing to collect", conf->agent_socket);
		return 0;
	}
	return agent_verdict(err, &rep, e);
}

int cni_run(const struct cni_env *env, const char *in, size_t in_len, FILE *out)
{
	struct cni_error e = { 0 };
	struct cni_conf conf = { 0 };
	enum cni_cmd cmd;
	int err;

	if (!env->command || !env->command[0]) {
		err = cni_error_set(&e, CNI_ERR_INVALID_ENV, "missing environment variable",
				    "CNI_COMMAND not set; weft-cni is run by a container runtime "
				    "(see docs/cni.md)");
		goto out_print;
	}
	if (cni_cmd_parse(env->command, &cmd)) {
		err = cni_error_set(&e, CNI_ERR_INVALID_ENV, "invalid CNI_COMMAND",
				    "'%.32s': expected ADD, DEL, CHECK, VERSION, GC or STATUS",
				    env->command);
		goto out_print;
	}
	if (cmd == CNI_CMD_VERSION)
		return print_version(in, in_len, out);
	if (in_len > CNI_MAX_STDIN) {
		err = cni_error_set(&e, CNI_ERR_INVALID_CONFIG, "network config too large",
				    "more than %d bytes on stdin", CNI_MAX_STDIN);
		goto out_print;
	}
	err = cni_conf_parse(in, in_len, cmd, &conf, &e);
	if (err)
		goto out_print;
	if (conf.has_log_level)
		log_set_level(conf.log_level);

	switch (cmd) {
	case CNI_CMD_ADD:
		err = cmd_add(env, &conf, out, &e);
		break;
	case CNI_CMD_CHECK:
		err = cmd_check(env, &conf, &e);
		break;
	case CNI_CMD_DEL:
		err = cmd_del(env, &conf, &e);
		break;
	case CNI_CMD_STATUS:
		err = cmd_status(&conf, &e);
		break;
	case CNI_CMD_GC:
		err = cmd_gc(&conf, &e);
		break;
	case CNI_CMD_VERSION:
		break;
	}
out_print:
	if (err)
		print_error(out, conf.version[0] ? conf.version : CNI_VERSION_LATEST, &e);
	cni_conf_done(&conf);
	return err ? 1 : 0;
}
