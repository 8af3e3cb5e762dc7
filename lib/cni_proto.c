// SPDX-License-Identifier: GPL-2.0-only
/* The CNI plugin <-> agent wire format of lib/cni_proto.h, written once:
 * the plugin (cni/agent.c) and the agent (agent/cni_server.c, and the
 * per-pod state files of agent/pods.c) both encode and decode through here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cni_proto.h"
#include "json_help.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static const char *const cmd_names[] = {
	[CNI_PROTO_ADD] = "ADD",
	[CNI_PROTO_DEL] = "DEL",
	[CNI_PROTO_CHECK] = "CHECK",
};

const char *cni_proto_cmd_name(enum cni_proto_cmd cmd)
{
	return cmd > CNI_PROTO_NONE && cmd <= CNI_PROTO_CHECK ? cmd_names[cmd] : NULL;
}

/* The request's string fields, in wire order. */
static const struct field {
	const char *key;
	size_t off, len;
	bool required;
} fields[] = {
#define F(key, member, req)                                                                  \
	{ key, offsetof(struct cni_proto_pod, member),                                       \
	  sizeof(((struct cni_proto_pod *)0)->member), req }
	F("container_id", container_id, true),
	F("netns", netns, false),
	F("ifname", ifname, false),
	F("namespace", ns, true),
	F("name", name, true),
	F("uid", uid, false),
#undef F
};

/* Serialise @o plus a newline into a malloc'd line. NULL with errno set. */
static char *to_line(json_object *o, size_t *len)
{
	const char *s = json_object_to_json_string_ext(o, JSON_FLAGS);
	size_t n;
	char *line;

	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	n = strlen(s);
	if (n + 1 > CNI_PROTO_MAX_LINE) {
		errno = EMSGSIZE;
		return NULL;
	}
	line = malloc(n + 2);
	if (!line)
		return NULL;
	memcpy(line, s, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
	return line;
}

/* Unless @err (a -errno from building @o), @o as a line as to_line() makes
 * it. Drops @o. NULL with errno set.
 */
static char *finish_line(json_object *o, int err, size_t *len)
{
	char *line = NULL;

	if (!err)
		line = to_line(o, len);
	else
		errno = -err;
	json_object_put(o);
	return line;
}

char *cni_proto_req_encode(enum cni_proto_cmd cmd, const struct cni_proto_pod *pod, size_t *len)
{
	json_object *o = json_object_new_object(), *ips;
	int err;

	if (!o) {
		errno = ENOMEM;
		return NULL;
	}
	err = json_add(o, "version", json_object_new_int(CNI_PROTO_VERSION));
	if (!err && cni_proto_cmd_name(cmd))
		err = json_add(o, "command", json_object_new_string(cni_proto_cmd_name(cmd)));
	for (size_t i = 0; !err && i < sizeof(fields) / sizeof(fields[0]); i++)
		err = json_add(o, fields[i].key,
			       json_object_new_string((const char *)pod + fields[i].off));
	ips = json_object_new_array();
	if (!err)
		err = json_add(o, "ips", ips);
	else
		json_object_put(ips);
	for (unsigned int i = 0; !err && i < pod->n_ips; i++) {
		char buf[ADDR_STRLEN];
		const char *ip = addr_fmt_ip(&pod->ips[i], buf, sizeof(buf));
		json_object *v = json_object_new_string(ip);

		if (!v || json_object_array_add(ips, v)) {
			json_object_put(v);
			err = -ENOMEM;
		}
	}
	if (!err && pod->meshed_hint)
		err = json_add(o, "meshed", json_object_new_boolean(1));
	return finish_line(o, err, len);
}

static int get_str(json_object *o, const struct field *f, char *dst, char *err, size_t errlen)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, f->key, &v) || json_object_is_type(v, json_type_null)) {
		if (!f->required) {
			dst[0] = '\0';
			return 0;
		}
		snprintf(err, errlen, "field '%s' is missing", f->key);
		return -EINVAL;
	}
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "field '%s' must be a string", f->key);
		return -EINVAL;
	}
	s = json_object_get_string(v);
	if (strlen(s) >= f->len) {
		snprintf(err, errlen, "field '%s' is longer than %zu bytes", f->key, f->len - 1);
		return -EINVAL;
	}
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static int get_ips(json_object *o, struct cni_proto_pod *pod, char *err, size_t errlen)
{
	json_object *ips;
	size_t n;

	if (!json_object_object_get_ex(o, "ips", &ips) || json_object_is_type(ips, json_type_null))
		return 0;
	if (!json_object_is_type(ips, json_type_array)) {
		snprintf(err, errlen, "field 'ips' must be an array of strings");
		return -EINVAL;
	}
	n = json_object_array_length(ips);
	if (n > CNI_PROTO_MAX_IPS) {
		snprintf(err, errlen, "field 'ips' has %zu entries, at most %d allowed", n,
			 CNI_PROTO_MAX_IPS);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *ip = json_object_array_get_idx(ips, i);

		if (!json_object_is_type(ip, json_type_string) ||
		    addr_parse_ip(json_object_get_string(ip), &pod->ips[i])) {
			snprintf(err, errlen, "field 'ips[%zu]' is not an IP address", i);
			return -EINVAL;
		}
	}
	pod->n_ips = (unsigned int)n;
	return 0;
}

int cni_proto_req_decode(const char *text, bool want_cmd, enum cni_proto_cmd *cmd,
			 struct cni_proto_pod *pod, char *err, size_t errlen)
{
	json_object *o = json_tokener_parse(text), *v, *c = NULL;
	int rc = 0;

	memset(pod, 0, sizeof(*pod));
	if (cmd)
		*cmd = CNI_PROTO_NONE;
	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "request is not a JSON object");
		rc = -EBADMSG;
		goto out;
	}
	if (want_cmd) {
		if (!json_object_object_get_ex(o, "version", &v) ||
		    json_object_get_int(v) != CNI_PROTO_VERSION) {
			snprintf(err, errlen, "unsupported plugin protocol version");
			rc = -EPROTONOSUPPORT;
			goto out;
		}
		if (!json_object_object_get_ex(o, "command", &c) ||
		    !json_object_is_type(c, json_type_string)) {
			snprintf(err, errlen, "request lacks 'command'");
			rc = -ENOMSG;
			goto out;
		}
	}
	for (size_t i = 0; !rc && i < sizeof(fields) / sizeof(fields[0]); i++)
		rc = get_str(o, &fields[i], (char *)pod + fields[i].off, err, errlen);
	if (!rc)
		rc = get_ips(o, pod, err, errlen);
	if (rc)
		goto out;
	/* Only in saved state: what a restarted agent does before its registries
	 * have synced.
	 */
	if (json_object_object_get_ex(o, "meshed", &v))
		pod->meshed_hint = json_object_get_boolean(v);
	if (!want_cmd)
		goto out;
	for (int i = CNI_PROTO_ADD; i <= CNI_PROTO_CHECK; i++) {
		if (!strcmp(json_object_get_string(c), cmd_names[i]) && cmd)
			*cmd = (enum cni_proto_cmd)i;
	}
	if (cmd && *cmd == CNI_PROTO_NONE) {
		snprintf(err, errlen, "unknown command '%s'", json_object_get_string(c));
		rc = -EINVAL;
	}
out:
	json_object_put(o);
	return rc;
}

char *cni_proto_reply_encode(const struct cni_proto_reply *r, size_t *len)
{
	json_object *o = json_object_new_object();
	int err;

	if (!o) {
		errno = ENOMEM;
		return NULL;
	}
	err = json_add(o, "ok", json_object_new_boolean(r->ok));
	if (r->ok && r->has_pod) {
		if (!err)
			err = json_add(o, "meshed", json_object_new_boolean(r->meshed));
		if (!err)
			err = json_add(o, "reason", json_object_new_string(r->reason));
	} else if (!r->ok) {
		if (!err)
			err = json_add(o, "code", json_object_new_int(r->code));
		if (!err)
			err = json_add(o, "msg", json_object_new_string(r->msg));
		if (!err)
			err = json_add(o, "details", json_object_new_string(r->details));
	}
	return finish_line(o, err, len);
}

int cni_proto_reply_decode(const char *text, struct cni_proto_reply *r)
{
	json_object *o = json_tokener_parse(text), *v;
	int err = 0;

	*r = (struct cni_proto_reply){ 0 };
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "ok", &v) || !json_object_is_type(v, json_type_boolean)) {
		err = -EPROTO;
		goto out_put;
	}
	r->ok = json_object_get_boolean(v);
	if (r->ok) {
		if (json_object_object_get_ex(o, "meshed", &v) &&
		    json_object_is_type(v, json_type_boolean)) {
			r->has_pod = true;
			r->meshed = json_object_get_boolean(v);
		}
		json_copy_str(o, "reason", r->reason, sizeof(r->reason));
		goto out_put;
	}
	/* An agent error without a usable code is still an error, and its
	 * message is worth more than a protocol complaint: keep it, as I/O failure.
	 */
	r->code = CNI_ERR_IO;
	if (json_object_object_get_ex(o, "code", &v) && json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) > 0 && json_object_get_int64(v) < 1000)
		r->code = (int)json_object_get_int64(v);
	snprintf(r->msg, sizeof(r->msg), "the agent refused the request");
	json_copy_str(o, "msg", r->msg, sizeof(r->msg));
	json_copy_str(o, "details", r->details, sizeof(r->details));
out_put:
	json_object_put(o);
	return err;
}
