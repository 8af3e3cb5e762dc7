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
	[CNI_PROTO_STATUS] = "STATUS",
	[CNI_PROTO_GC] = "GC",
};

const char *cni_proto_cmd_name(enum cni_proto_cmd cmd)
{
	return cmd > CNI_PROTO_NONE && cmd <= CNI_PROTO_CMD_LAST ? cmd_names[cmd] : NULL;
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
	if (!err && pod->netns_ino) {
		json_object *id = json_object_new_object();

		err = json_add(o, "netns_id", id);
		if (!err)
			err = json_add(id, "dev", json_object_new_uint64(pod->netns_dev));
		if (!err)
			err = json_add(id, "ino", json_object_new_uint64(pod->netns_ino));
		if (!err)
			err = json_add(id, "cookie", json_object_new_uint64(pod->netns_cookie));
	}
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
	enum cni_proto_cmd got = CNI_PROTO_NONE;
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
	if (want_cmd) {
		for (int i = CNI_PROTO_ADD; i <= CNI_PROTO_CMD_LAST; i++) {
			if (!strcmp(json_object_get_string(c), cmd_names[i]))
				got = (enum cni_proto_cmd)i;
		}
		if (got == CNI_PROTO_NONE) {
			snprintf(err, errlen, "unknown command '%.32s'", json_object_get_string(c));
			rc = -EINVAL;
			goto out;
		}
		if (cmd)
			*cmd = got;
		if (got == CNI_PROTO_STATUS || got == CNI_PROTO_GC)
			goto out;
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
	if (!want_cmd && json_object_object_get_ex(o, "netns_id", &v) &&
	    json_object_is_type(v, json_type_object)) {
		json_object *f;

		if (json_object_object_get_ex(v, "dev", &f))
			pod->netns_dev = json_object_get_uint64(f);
		if (json_object_object_get_ex(v, "ino", &f))
			pod->netns_ino = json_object_get_uint64(f);
		if (json_object_object_get_ex(v, "cookie", &f))
			pod->netns_cookie = json_object_get_uint64(f);
	}
out:
	if (rc && cmd)
		*cmd = CNI_PROTO_NONE;
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

char *cni_proto_cmd_encode(enum cni_proto_cmd cmd, const char *const *ids, size_t n,
			   size_t *len)
{
	json_object *o, *list = NULL;
	int err;

	if (cmd != CNI_PROTO_STATUS && cmd != CNI_PROTO_GC) {
		errno = EINVAL;
		return NULL;
	}
	if (n > CNI_PROTO_MAX_GC_IDS) {
		errno = EMSGSIZE;
		return NULL;
	}
	o = json_object_new_object();
	if (!o) {
		errno = ENOMEM;
		return NULL;
	}
	err = json_add(o, "version", json_object_new_int(CNI_PROTO_VERSION));
	if (!err)
		err = json_add(o, "command", json_object_new_string(cmd_names[cmd]));
	if (!err && cmd == CNI_PROTO_GC) {
		list = json_object_new_array();
		err = json_add(o, "valid", list);
	}
	for (size_t i = 0; !err && i < n; i++) {
		json_object *v = json_object_new_string(ids[i]);

		if (!v || json_object_array_add(list, v)) {
			json_object_put(v);
			err = -ENOMEM;
		}
	}
	return finish_line(o, err, len);
}

/* A JSON array of at most @max strings, each shorter than @size bytes, into
 * a malloc'd array of @size-byte slots. 0 or -EINVAL with @err filled.
 */
static int get_str_list(json_object *list, const char *key, size_t max, size_t size, char **out,
			size_t *n, char *err, size_t errlen)
{
	size_t len;
	char *arr;

	*out = NULL;
	*n = 0;
	if (!json_object_is_type(list, json_type_array)) {
		snprintf(err, errlen, "field '%s' must be an array of strings", key);
		return -EINVAL;
	}
	len = json_object_array_length(list);
	if (len > max) {
		snprintf(err, errlen, "field '%s' has %zu entries, at most %zu allowed", key, len,
			 max);
		return -EINVAL;
	}
	arr = calloc(len ? len : 1, size);
	if (!arr) {
		snprintf(err, errlen, "out of memory");
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		json_object *v = json_object_array_get_idx(list, i);

		if (!json_object_is_type(v, json_type_string) ||
		    !json_object_get_string_len(v) ||
		    (size_t)json_object_get_string_len(v) >= size) {
			snprintf(err, errlen, "field '%s[%zu]' must be a string of 1 to %zu bytes",
				 key, i, size - 1);
			free(arr);
			return -EINVAL;
		}
		memcpy(arr + i * size, json_object_get_string(v),
		       (size_t)json_object_get_string_len(v) + 1);
	}
	*out = arr;
	*n = len;
	return 0;
}

int cni_proto_gc_decode(const char *text, char (**ids)[CNI_PROTO_MAX_CONTAINER_ID + 1],
			size_t *n, char *err, size_t errlen)
{
	json_object *o = json_tokener_parse(text), *list;
	char *arr = NULL;
	int rc;

	*ids = NULL;
	*n = 0;
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "valid", &list)) {
		snprintf(err, errlen, "GC request lacks 'valid'");
		rc = -EINVAL;
		goto out;
	}
	rc = get_str_list(list, "valid", CNI_PROTO_MAX_GC_IDS, CNI_PROTO_MAX_CONTAINER_ID + 1,
			  &arr, n, err, errlen);
	*ids = (char(*)[CNI_PROTO_MAX_CONTAINER_ID + 1])arr;
out:
	json_object_put(o);
	return rc;
}

char *cni_proto_state_encode(const struct cni_proto_state *st, size_t *len)
{
	json_object *o = json_object_new_object(), *list = json_object_new_array();
	char *text = NULL;
	const char *s;
	int err;

	if (!o || !list) {
		json_object_put(o);
		json_object_put(list);
		errno = ENOMEM;
		return NULL;
	}
	err = json_add(o, "version", json_object_new_int(CNI_PROTO_VERSION));
	if (!err)
		err = json_add(o, "generation", json_object_new_uint64(st->generation));
	if (!err)
		err = json_add(o, "synced", json_object_new_boolean(st->synced));
	if (!err)
		err = json_add(o, "meshed", list);
	else
		json_object_put(list);
	for (size_t i = 0; !err && i < st->n_meshed; i++) {
		json_object *v = json_object_new_string(st->meshed[i]);

		if (!v || json_object_array_add(list, v)) {
			json_object_put(v);
			err = -ENOMEM;
		}
	}
	s = err ? NULL : json_object_to_json_string_ext(o, JSON_FLAGS);
	if (err || !s) {
		errno = err ? -err : ENOMEM;
		goto out_put;
	}
	*len = strlen(s) + 1;
	if (*len > CNI_PROTO_MAX_STATE) {
		errno = EMSGSIZE;
		goto out_put;
	}
	text = malloc(*len + 1);
	if (text) {
		memcpy(text, s, *len - 1);
		text[*len - 1] = '\n';
		text[*len] = '\0';
	}
out_put:
	json_object_put(o);
	return text;
}

int cni_proto_state_decode(const char *text, struct cni_proto_state *st, char *err,
			   size_t errlen)
{
	json_object *o = json_tokener_parse(text), *v;
	char *arr = NULL;
	int rc = -EINVAL;

	*st = (struct cni_proto_state){ 0 };
	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "not a JSON object");
		goto out;
	}
	if (!json_object_object_get_ex(o, "version", &v) ||
	    json_object_get_int(v) != CNI_PROTO_VERSION) {
		snprintf(err, errlen, "unsupported state file version");
		goto out;
	}
	if (!json_object_object_get_ex(o, "synced", &v) ||
	    !json_object_is_type(v, json_type_boolean)) {
		snprintf(err, errlen, "field 'synced' must be true or false");
		goto out;
	}
	st->synced = json_object_get_boolean(v);
	if (json_object_object_get_ex(o, "generation", &v) && json_object_is_type(v, json_type_int))
		st->generation = (unsigned long long)json_object_get_uint64(v);
	if (!json_object_object_get_ex(o, "meshed", &v)) {
		snprintf(err, errlen, "field 'meshed' is missing");
		goto out;
	}
	rc = get_str_list(v, "meshed", CNI_PROTO_MAX_STATE / 4, CNI_PROTO_MAX_NAMESPACE + 1, &arr,
			  &st->n_meshed, err, errlen);
	st->meshed = (char(*)[CNI_PROTO_MAX_NAMESPACE + 1])arr;
out:
	json_object_put(o);
	return rc;
}

bool cni_proto_state_meshed(const struct cni_proto_state *st, const char *ns)
{
	for (size_t i = 0; i < st->n_meshed; i++) {
		if (!strcmp(st->meshed[i], ns))
			return true;
	}
	return false;
}

void cni_proto_state_done(struct cni_proto_state *st)
{
	free(st->meshed);
	*st = (struct cni_proto_state){ 0 };
}
