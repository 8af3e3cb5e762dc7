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

static void agent_error(const char *sock, int err, struct cni_error *e)
{
	char msg[sizeof(e->msg)];
	int code = CNI_ERR_TRY_AGAIN;

	if (is_agent_gone(err)) {
		snprintf(msg, sizeof(msg), "weft agent is not running: nothing listens on %s",
			 sock);
	} else if (err == -ETIMEDOUT) {
		snprintf(msg, sizeof(msg), "weft agent on %s did not answer within %d ms", sock,
			 CNI_PROTO_TIMEOUT_MS);
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

/* Exchange @req with the agent. Returns 0 with @rep filled (ok or not), or a
 * negative errno with @e filled; callers may look at the errno first
 * (is_agent_gone()) and ignore @e.
 */
static int ask_agent(const struct cni_conf *conf, const struct cni_req *req,
		     struct cni_reply *rep, struct cni_error *e)
{
	char reply[CNI_PROTO_MAX_LINE];
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
	err = cni_agent_call(conf->agent_socket, line, len, CNI_PROTO_TIMEOUT_MS, reply,
			     sizeof(reply));
	free(line);
	if (!err)
		err = cni_reply_decode(reply, rep);
	if (err)
		agent_error(conf->agent_socket, err, e);
	return err;
}

static int cmd_add(const struct cni_env *env, const struct cni_conf *conf, FILE *out,
		   struct cni_error *e)
{
	struct json_object *result;
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
	err = ask_agent(conf, &req, &rep, e);
	if (err)
		goto out_put;
	if (!rep.ok) {
		*e = rep.err;
		err = -EINVAL;
		goto out_put;
	}
	log_debug("ADD %s/%s: meshed=%s reason='%s'", req.ns, req.name, rep.meshed ? "yes" : "no",
		  rep.reason);
	print_json(out, result);
out_put:
	json_object_put(result);
	return err;
}

static int cmd_check(const struct cni_env *env, const struct cni_conf *conf,
		     struct cni_error *e)
{
	struct cni_reply rep;
	struct cni_req req;
	int err;

	err = cni_req_build(env, conf, CNI_CMD_CHECK, &req, e);
	if (err)
		return err;
	err = ask_agent(conf, &req, &rep, e);
	if (err)
		return err;
	if (!rep.ok) {
		*e = rep.err;
		return -EINVAL;
	}
	return 0;
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
	err = ask_agent(conf, &req, &rep, e);
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

/* STATUS: ready for ADD exactly when the agent accepts connections. */
static int cmd_status(const struct cni_conf *conf, struct cni_error *e)
{
	char msg[sizeof(e->msg)];
	int err = cni_agent_probe(conf->agent_socket, CNI_STATUS_PROBE_MS);

	if (!err)
		return 0;
	snprintf(msg, sizeof(msg), "weft agent is not available on %s", conf->agent_socket);
	return cni_error_set(e, CNI_ERR_NOT_AVAILABLE, msg, "%s", strerror(-err));
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
		/* Nothing to collect here: the plugin keeps no state, and before
		 * GC libcni sends DEL for every cached attachment that is not in
		 * the valid list, which is what makes the agent forget a pod.
		 */
		err = 0;
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
