// SPDX-License-Identifier: GPL-2.0-only
/* The plugin's input: CNI versions and commands, the network config on stdin,
 * the CNI_* environment and CNI_ARGS, and the pod IPs of prevResult. Turns
 * them into a struct cni_req for agent.c, or into a CNI error naming the
 * variable or field that is wrong. No I/O.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "addr.h"
#include "cni.h"
#include "opt.h"

/* Every version whose result shape this plugin can pass through or convert.
 * 0.1.0 and 0.2.0 results have no "ips" list of the 0.3 form, so they are out.
 */
static const char *const cni_versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0" };
#define N_VERSIONS (sizeof(cni_versions) / sizeof(cni_versions[0]))

static const struct {
	const char *name;
	enum cni_cmd cmd;
	const char *min_version;	/* the spec version that introduced the verb */
} cni_cmds[] = {
	{ "ADD", CNI_CMD_ADD, "0.3.0" },
	{ "DEL", CNI_CMD_DEL, "0.3.0" },
	{ "CHECK", CNI_CMD_CHECK, "0.4.0" },
	{ "VERSION", CNI_CMD_VERSION, "0.3.0" },
	{ "GC", CNI_CMD_GC, "1.1.0" },
	{ "STATUS", CNI_CMD_STATUS, "1.1.0" },
};
#define N_CMDS (sizeof(cni_cmds) / sizeof(cni_cmds[0]))

int cni_cmd_parse(const char *s, enum cni_cmd *out)
{
	for (size_t i = 0; i < N_CMDS; i++) {
		if (!strcmp(s, cni_cmds[i].name)) {
			*out = cni_cmds[i].cmd;
			return 0;
		}
	}
	return -EINVAL;
}

const char *cni_cmd_name(enum cni_cmd cmd)
{
	for (size_t i = 0; i < N_CMDS; i++) {
		if (cni_cmds[i].cmd == cmd)
			return cni_cmds[i].name;
	}
	return "?";
}

bool cni_version_supported(const char *v)
{
	for (size_t i = 0; i < N_VERSIONS; i++) {
		if (!strcmp(v, cni_versions[i]))
			return true;
	}
	return false;
}

const char *cni_version_at(size_t i)
{
	return i < N_VERSIONS ? cni_versions[i] : NULL;
}

static int version_parse(const char *v, uint32_t out[3])
{
	char part[16];

	for (int i = 0; i < 3; i++) {
		size_t n = strcspn(v, ".");

		if (n == 0 || n >= sizeof(part) || (i < 2) != (v[n] == '.'))
			return -EINVAL;
		memcpy(part, v, n);
		part[n] = '\0';
		if (opt_parse_u32(part, 0, UINT32_MAX, &out[i]))
			return -EINVAL;
		v += n + (i < 2);
	}
	return 0;
}

bool cni_version_valid(const char *v)
{
	uint32_t parts[3];

	return !version_parse(v, parts);
}

int cni_version_cmp(const char *a, const char *b)
{
	uint32_t va[3], vb[3];
	bool ok_a = !version_parse(a, va), ok_b = !version_parse(b, vb);

	if (!ok_a || !ok_b)
		return (int)ok_a - (int)ok_b;
	for (int i = 0; i < 3; i++) {
		if (va[i] != vb[i])
			return va[i] < vb[i] ? -1 : 1;
	}
	return 0;
}

int cni_error_set(struct cni_error *e, int code, const char *msg, const char *details_fmt, ...)
{
	va_list ap;

	e->code = code;
	snprintf(e->msg, sizeof(e->msg), "%s", msg);
	va_start(ap, details_fmt);
	vsnprintf(e->details, sizeof(e->details), details_fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void supported_list(char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N_VERSIONS && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
					cni_versions[i]);
}

/* Parse all of @buf as one JSON value; trailing non-space bytes are an error. */
static struct json_object *parse_json(const char *buf, size_t len, struct cni_error *e)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj = NULL;
	enum json_tokener_error jerr;
	size_t end;

	if (!tok) {
		cni_error_set(e, CNI_ERR_IO, "out of memory", "parsing the network config");
		return NULL;
	}
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (!obj) {
		cni_error_set(e, CNI_ERR_DECODE, "network config on stdin is not valid JSON", "%s",
			      jerr == json_tokener_continue ? "unexpected end of input" :
							      json_tokener_error_desc(jerr));
		goto out;
	}
	while (end < len && isspace((unsigned char)buf[end]))
		end++;
	if (end < len) {
		cni_error_set(e, CNI_ERR_DECODE, "network config on stdin is not valid JSON",
			      "unexpected data after the JSON object at byte %zu", end);
		json_object_put(obj);
		obj = NULL;
	}
out:
	json_tokener_free(tok);
	return obj;
}

static bool is_dns_name(const char *s, size_t max, bool dots);

/* exclude_namespaces: DNS-1123 labels, [] for none; absent: kube-system. */
static int conf_exclude(struct cni_conf *conf, struct cni_error *e)
{
	struct json_object *v;
	size_t n;

	if (!json_object_object_get_ex(conf->root, "exclude_namespaces", &v)) {
		snprintf(conf->exclude[0], sizeof(conf->exclude[0]), CNI_DEFAULT_EXCLUDE);
		conf->n_exclude = 1;
		return 0;
	}
	if (!json_object_is_type(v, json_type_array))
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid exclude_namespaces",
				     "must be an array of namespace names");
	n = json_object_array_length(v);
	if (n > CNI_MAX_EXCLUDE)
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid exclude_namespaces",
				     "%zu entries, at most %d allowed", n, CNI_MAX_EXCLUDE);
	for (size_t i = 0; i < n; i++) {
		struct json_object *ns = json_object_array_get_idx(v, i);
		const char *s = json_object_get_string(ns);

		if (!json_object_is_type(ns, json_type_string) ||
		    !is_dns_name(s, CNI_NS_MAX, false))
			return cni_error_set(e, CNI_ERR_INVALID_CONFIG,
					     "invalid exclude_namespaces",
					     "entry %zu is not a namespace name (a DNS-1123 label)",
					     i);
		snprintf(conf->exclude[i], sizeof(conf->exclude[i]), "%s", s);
	}
	conf->n_exclude = n;
	return 0;
}

/* state_file: an absolute path; absent: mesh-state.json in agent_socket's
 * directory, which is where the agent writes it (its run dir).
 */
static int conf_state_file(struct cni_conf *conf, struct cni_error *e)
{
	struct json_object *v;
	const char *slash;

	if (json_object_object_get_ex(conf->root, "state_file", &v)) {
		const char *s = json_object_get_string(v);

		if (!json_object_is_type(v, json_type_string) || s[0] != '/' ||
		    strlen(s) >= sizeof(conf->state_file))
			return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid state_file",
					     "must be an absolute path shorter than %zu bytes",
					     sizeof(conf->state_file));
		snprintf(conf->state_file, sizeof(conf->state_file), "%s", s);
		return 0;
	}
	slash = strrchr(conf->agent_socket, '/');
	snprintf(conf->state_file, sizeof(conf->state_file), "%.*s/%s",
		 (int)(slash - conf->agent_socket), conf->agent_socket, CNI_PROTO_STATE_FILE);
	return 0;
}

bool cni_conf_excluded(const struct cni_conf *conf, const char *ns)
{
	for (size_t i = 0; i < conf->n_exclude; i++) {
		if (!strcmp(conf->exclude[i], ns))
			return true;
	}
	return false;
}

static int conf_fields(struct cni_conf *conf, struct cni_error *e)
{
	struct json_object *v;
	int err;

	if (json_object_object_get_ex(conf->root, "agent_socket", &v)) {
		const char *s = json_object_get_string(v);

		if (!json_object_is_type(v, json_type_string) || s[0] != '/' ||
		    strlen(s) >= sizeof(conf->agent_socket))
			return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid agent_socket",
					     "must be an absolute path shorter than %zu bytes",
					     sizeof(conf->agent_socket));
		snprintf(conf->agent_socket, sizeof(conf->agent_socket), "%s", s);
	}
	if (json_object_object_get_ex(conf->root, "log_level", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    log_parse_level(json_object_get_string(v), &conf->log_level))
			return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid log_level",
					     "must be one of err, warn, info, debug");
		conf->has_log_level = true;
	}
	if (json_object_object_get_ex(conf->root, "standalone", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid standalone",
					     "must be true or false");
		conf->standalone = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(conf->root, "fail_open_without_agent", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return cni_error_set(e, CNI_ERR_INVALID_CONFIG,
					     "invalid fail_open_without_agent",
					     "must be true or false");
		conf->fail_open = json_object_get_boolean(v);
	}
	err = conf_exclude(conf, e);
	if (err)
		return err;
	err = conf_state_file(conf, e);
	if (err)
		return err;
	if (json_object_object_get_ex(conf->root, "prevResult", &v)) {
		if (!json_object_is_type(v, json_type_object))
			return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid prevResult",
					     "must be a CNI result object");
		conf->prev_result = v;
	}
	return 0;
}

int cni_conf_parse(const char *buf, size_t len, enum cni_cmd cmd, struct cni_conf *conf,
		   struct cni_error *e)
{
	char list[128];
	struct json_object *v;
	const char *min = "0.3.0";
	int err;

	*conf = (struct cni_conf){ 0 };
	snprintf(conf->agent_socket, sizeof(conf->agent_socket), "%s", CNI_DEFAULT_SOCKET);
	if (len == 0)
		return cni_error_set(e, CNI_ERR_DECODE, "network config on stdin is empty",
				     "the runtime passes the config as JSON on stdin");
	conf->root = parse_json(buf, len, e);
	if (!conf->root)
		return -EINVAL;
	if (!json_object_is_type(conf->root, json_type_object)) {
		err = cni_error_set(e, CNI_ERR_DECODE,
				    "network config on stdin is not a JSON object", "got a JSON %s",
				    json_type_to_name(json_object_get_type(conf->root)));
		goto out_done;
	}

	supported_list(list, sizeof(list));
	/* A config without cniVersion is a 0.1.0 one to libcni; we cannot speak it. */
	if (!json_object_object_get_ex(conf->root, "cniVersion", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		err = cni_error_set(e, CNI_ERR_INCOMPATIBLE_VERSION, "incompatible CNI version",
				    "cniVersion is missing; weft-cni supports %s", list);
		goto out_done;
	}
	if (!cni_version_supported(json_object_get_string(v))) {
		err = cni_error_set(e, CNI_ERR_INCOMPATIBLE_VERSION, "incompatible CNI version",
				    "config is \"%.32s\"; weft-cni supports %s",
				    json_object_get_string(v), list);
		goto out_done;
	}
	snprintf(conf->version, sizeof(conf->version), "%s", json_object_get_string(v));
	for (size_t i = 0; i < N_CMDS; i++) {
		if (cni_cmds[i].cmd == cmd)
			min = cni_cmds[i].min_version;
	}
	if (cni_version_cmp(conf->version, min) < 0) {
		err = cni_error_set(e, CNI_ERR_INCOMPATIBLE_VERSION, "incompatible CNI version",
				    "config version %s does not allow %s (needs %s or later)",
				    conf->version, cni_cmd_name(cmd), min);
		goto out_done;
	}

	if (!json_object_object_get_ex(conf->root, "name", &v) ||
	    !json_object_is_type(v, json_type_string) || !json_object_get_string_len(v)) {
		err = cni_error_set(e, CNI_ERR_INVALID_CONFIG, "missing network name",
				    "the config needs a non-empty \"name\"");
		goto out_done;
	}
	conf->name = json_object_get_string(v);
	err = conf_fields(conf, e);
	if (err)
		goto out_done;
	return 0;

out_done:
	cni_conf_done(conf);
	return err;
}

void cni_conf_done(struct cni_conf *conf)
{
	json_object_put(conf->root);
	conf->root = NULL;
	conf->name = NULL;
	conf->prev_result = NULL;
}

int cni_args_get(const char *args, const char *key, char *out, size_t len)
{
	size_t klen = strlen(key);
	const char *p = args;
	int found = -ENOENT;

	/* Walk every pair even after a match, so a malformed string is always
	 * reported rather than depending on where the key sits.
	 */
	while (*p) {
		size_t n = strcspn(p, ";");
		const char *eq = memchr(p, '=', n);

		if (n > 0 && (!eq || eq == p))
			return -EINVAL;
		if (n > 0 && found == -ENOENT && (size_t)(eq - p) == klen &&
		    !memcmp(p, key, klen)) {
			size_t vlen = n - klen - 1;

			if (vlen >= len)
				return -ENAMETOOLONG;
			memcpy(out, eq + 1, vlen);
			out[vlen] = '\0';
			found = 0;
		}
		p += n + (p[n] == ';');
	}
	return found;
}

/* DNS-1123 label (@dots false) or subdomain (@dots true), as Kubernetes
 * requires of namespace and pod names.
 */
static bool is_dns_name(const char *s, size_t max, bool dots)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(islower(c) || isdigit(c) || c == '-' || (dots && c == '.')))
			return false;
	}
	return true;
}

/* The rule of libcni's ValidateContainerID. */
static bool is_container_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CNI_ID_MAX || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(isalnum(c) || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* What the kernel accepts as an interface name (dev_valid_name()). */
static bool is_ifname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '/' || s[i] == ':' || isspace((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* Absolute, shorter than PATH_MAX, and free of control characters, which
 * also keeps its JSON form within CNI_PROTO_MAX_LINE.
 */
static bool is_netns_path(const char *s)
{
	size_t n = strlen(s);

	if (s[0] != '/' || n >= PATH_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	}
	return true;
}

static bool is_uid(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (!(isalnum(c) || c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

static int check_env(const struct cni_env *env, enum cni_cmd cmd, struct cni_error *e)
{
	bool need_netns = cmd != CNI_CMD_DEL;
	const struct {
		const char *name;
		const char *val;
		bool required;
	} vars[] = {
		{ "CNI_CONTAINERID", env->container_id, true },
		{ "CNI_NETNS", env->netns, need_netns },
		{ "CNI_IFNAME", env->ifname, true },
	};
	char missing[sizeof(e->msg)];
	size_t off, n = 0;

	off = (size_t)snprintf(missing, sizeof(missing), "missing environment variable");
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		if (!vars[i].required || (vars[i].val && vars[i].val[0]))
			continue;
		off += (size_t)snprintf(missing + off, sizeof(missing) - off, "%s%s",
					n ? ", " : " ", vars[i].name);
		n++;
	}
	if (n)
		return cni_error_set(e, CNI_ERR_INVALID_ENV, missing,
				     "%s needs CNI_CONTAINERID, %sCNI_IFNAME", cni_cmd_name(cmd),
				     need_netns ? "CNI_NETNS, " : "");
	if (!is_container_id(env->container_id))
		return cni_error_set(e, CNI_ERR_INVALID_ENV, "invalid CNI_CONTAINERID",
				     "'%.64s': 1 to %d letters, digits, '_', '.' or '-', "
				     "starting with a letter or digit",
				     env->container_id, CNI_ID_MAX);
	if (!is_ifname(env->ifname))
		return cni_error_set(e, CNI_ERR_INVALID_ENV, "invalid CNI_IFNAME",
				     "'%.32s': 1 to %d bytes, no '/', ':' or whitespace",
				     env->ifname, IFNAMSIZ - 1);
	if (env->netns && env->netns[0] && !is_netns_path(env->netns))
		return cni_error_set(e, CNI_ERR_INVALID_ENV, "invalid CNI_NETNS",
				     "'%.128s': must be an absolute path", env->netns);
	return 0;
}

/* One K8S_POD_* key of CNI_ARGS into @out; -ENOENT when absent. */
static int pod_arg(const struct cni_env *env, const char *key, char *out, size_t len,
		   struct cni_error *e)
{
	int err;

	out[0] = '\0';
	if (!env->args)
		return -ENOENT;
	err = cni_args_get(env->args, key, out, len);
	if (err == -EINVAL)
		return cni_error_set(e, CNI_ERR_INVALID_ENV, "invalid CNI_ARGS",
				     "expected KEY=VALUE pairs separated by ';'");
	if (err == -ENAMETOOLONG)
		return cni_error_set(e, CNI_ERR_INVALID_ENV, "invalid CNI_ARGS",
				     "%s is longer than %zu bytes", key, len - 1);
	return err;
}

/* Namespace, name and uid of the pod from CNI_ARGS. A runtime that is not
 * kubelet passes no K8S_POD_* keys; rather than guess which namespace's mesh
 * policy such a sandbox falls under, ADD and CHECK refuse it unless the
 * config says "standalone": true, which means namespace "default" and the
 * container ID as the pod name (docs/cni.md).
 */
static int pod_identity(const struct cni_env *env, const struct cni_conf *conf,
			struct cni_req *req, struct cni_error *e)
{
	int err;

	err = pod_arg(env, "K8S_POD_NAMESPACE", req->ns, sizeof(req->ns), e);
	if (err == -ENOENT && conf->standalone)
		snprintf(req->ns, sizeof(req->ns), "default");
	else if (err == -ENOENT)
		return cni_error_set(e, CNI_ERR_INVALID_ENV,
				     "missing K8S_POD_NAMESPACE in CNI_ARGS",
				     "kubelet always passes it; set \"standalone\": true in the "
				     "config to run without Kubernetes");
	else if (err)
		return err;
	else if (!is_dns_name(req->ns, CNI_NS_MAX, false))
		return cni_error_set(e, CNI_ERR_INVALID_ENV,
				     "invalid K8S_POD_NAMESPACE in CNI_ARGS",
				     "'%s' is not a DNS-1123 label", req->ns);

	err = pod_arg(env, "K8S_POD_NAME", req->name, sizeof(req->name), e);
	if (err == -ENOENT && conf->standalone)
		snprintf(req->name, sizeof(req->name), "%s", req->container_id);
	else if (err == -ENOENT)
		return cni_error_set(e, CNI_ERR_INVALID_ENV, "missing K8S_POD_NAME in CNI_ARGS",
				     "kubelet always passes it; set \"standalone\": true in the "
				     "config to run without Kubernetes");
	else if (err)
		return err;
	else if (!is_dns_name(req->name, CNI_NAME_MAX, true))
		return cni_error_set(e, CNI_ERR_INVALID_ENV, "invalid K8S_POD_NAME in CNI_ARGS",
				     "'%.64s' is not a DNS-1123 subdomain", req->name);

	err = pod_arg(env, "K8S_POD_UID", req->uid, sizeof(req->uid), e);
	if (err && err != -ENOENT)
		return err;
	if (!is_uid(req->uid))
		return cni_error_set(e, CNI_ERR_INVALID_ENV, "invalid K8S_POD_UID in CNI_ARGS",
				     "'%.64s': letters, digits, '-', '_' or '.' only", req->uid);
	return 0;
}

int cni_req_build(const struct cni_env *env, const struct cni_conf *conf, enum cni_cmd cmd,
		  struct cni_req *req, struct cni_error *e)
{
	struct cni_error ignored = { 0 };
	int err;

	*req = (struct cni_req){ .cmd = cmd };
	err = check_env(env, cmd, e);
	if (err)
		return err;
	req->container_id = env->container_id;
	req->netns = env->netns ? env->netns : "";
	req->ifname = env->ifname;

	if (cmd == CNI_CMD_DEL) {
		/* DEL must succeed whatever state the sandbox is in (the runtime
		 * retries it until it does), and the agent finds a pod by container
		 * ID; so identity and IPs are best effort here.
		 */
		if (pod_identity(env, conf, req, &ignored)) {
			req->ns[0] = req->name[0] = req->uid[0] = '\0';
			log_debug("DEL: ignoring CNI_ARGS: %s", ignored.msg);
		}
		if (conf->prev_result && cni_prev_ips(conf->prev_result, req, &ignored)) {
			req->n_ips = 0;
			log_debug("DEL: ignoring prevResult: %s", ignored.msg);
		}
		return 0;
	}

	err = pod_identity(env, conf, req, e);
	if (err)
		return err;
	/* weft only captures what another plugin connected: it cannot be first. */
	if (!conf->prev_result)
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG,
				     "weft-cni is a chained plugin: prevResult is missing",
				     "list weft-cni after the plugin that creates the pod's "
				     "interface in the network's \"plugins\"");
	return cni_prev_ips(conf->prev_result, req, e);
}

/* Whether ips[i].interface points at an interface outside the sandbox (the
 * host end of a veth, a bridge): its address is not the pod's.
 */
static bool is_host_side(struct json_object *prev, struct json_object *ip)
{
	struct json_object *idx, *ifaces, *iface, *sandbox;
	int64_t i;

	if (!json_object_object_get_ex(ip, "interface", &idx) ||
	    !json_object_is_type(idx, json_type_int) ||
	    !json_object_object_get_ex(prev, "interfaces", &ifaces) ||
	    !json_object_is_type(ifaces, json_type_array))
		return false;
	i = json_object_get_int64(idx);
	if (i < 0 || (size_t)i >= json_object_array_length(ifaces))
		return false;
	iface = json_object_array_get_idx(ifaces, (size_t)i);
	if (!json_object_is_type(iface, json_type_object))
		return false;
	return !json_object_object_get_ex(iface, "sandbox", &sandbox) ||
	       !json_object_is_type(sandbox, json_type_string) ||
	       !json_object_get_string_len(sandbox);
}

/* "198.18.0.5/24" -> @a; 0 or -EINVAL. */
static int parse_ip_cidr(const char *s, struct addr *a)
{
	char ip[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : 0;
	uint32_t len;

	if (!slash || n == 0 || n >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (addr_parse_ip(ip, a))
		return -EINVAL;
	return opt_parse_u32(slash + 1, 0, a->family == AF_INET ? 32 : 128, &len) ? -EINVAL : 0;
}

int cni_prev_ips(struct json_object *prev, struct cni_req *req, struct cni_error *e)
{
	struct json_object *ips;
	size_t n;

	/* A chain whose first plugin assigns no address (no IPAM) is legal. */
	if (!json_object_object_get_ex(prev, "ips", &ips))
		return 0;
	if (!json_object_is_type(ips, json_type_array))
		return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid prevResult",
				     "prevResult.ips is not an array");
	n = json_object_array_length(ips);
	for (size_t i = 0; i < n; i++) {
		struct json_object *ip = json_object_array_get_idx(ips, i), *address;
		struct addr a;

		if (!json_object_is_type(ip, json_type_object) ||
		    !json_object_object_get_ex(ip, "address", &address) ||
		    !json_object_is_type(address, json_type_string))
			return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid prevResult",
					     "prevResult.ips[%zu] has no \"address\" string", i);
		if (parse_ip_cidr(json_object_get_string(address), &a))
			return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid prevResult",
					     "prevResult.ips[%zu].address '%.64s' is not IP/LEN", i,
					     json_object_get_string(address));
		if (is_host_side(prev, ip))
			continue;
		if (req->n_ips == CNI_PROTO_MAX_IPS)
			return cni_error_set(e, CNI_ERR_INVALID_CONFIG, "invalid prevResult",
					     "more than %d pod IPs in prevResult.ips",
					     CNI_PROTO_MAX_IPS);
		addr_fmt_ip(&a, req->ips[req->n_ips], sizeof(req->ips[0]));
		req->n_ips++;
	}
	return 0;
}
