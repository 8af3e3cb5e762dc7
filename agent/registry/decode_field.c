// SPDX-License-Identifier: GPL-2.0-only
/* Field readers for registry/decode.c (see decode_field.h): typed, bounded,
 * syntax-checked access to json-c members, and error messages that carry
 * the object and the field path.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "registry/decode_field.h"

#define SHOW_MAX 48		/* longest offending value quoted in a message */

static const char *const check_what[] = {
	[DEC_ANY] = "printable characters",
	[DEC_LABEL] = "a DNS-1123 label (lower case letters, digits, '-')",
	[DEC_DNS1035] = "a DNS-1035 label (a lower case letter, then letters, digits, '-')",
	[DEC_SUBDOMAIN] = "a DNS-1123 subdomain (lower case letters, digits, '-', '.')",
	[DEC_IANA] = "an IANA service name (1-15 of a-z, 0-9, '-', with a letter)",
};

static int vfail(struct dec *d, const char *fmt, va_list ap)
{
	char msg[REG_DECODE_ERR_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (d->plen)
		snprintf(d->err, d->errlen, "%s: %s: %s", d->who, d->path, msg);
	else
		snprintf(d->err, d->errlen, "%s: %s", d->who, msg);
	return -EINVAL;
}

int dec_fail(struct dec *d, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = vfail(d, fmt, ap);
	va_end(ap);
	return err;
}

/* Append @n bytes of @s to the path, as much as fits. */
static void path_append(struct dec *d, const char *s, size_t n)
{
	size_t room = sizeof(d->path) - 1 - d->plen;

	if (n > room)
		n = room;
	memcpy(d->path + d->plen, s, n);
	d->plen += n;
	d->path[d->plen] = '\0';
}

/* Every field read extends the path, failing or not: built with plain
 * copies (no printf), as an object's hundred field reads add up.
 */
size_t dec_path_key(struct dec *d, const char *key)
{
	size_t old = d->plen, n = strlen(key);

	if (strpbrk(key, "./")) {
		path_append(d, "[\"", 2);
		path_append(d, key, n);
		path_append(d, "\"]", 2);
	} else {
		if (old)
			path_append(d, ".", 1);
		path_append(d, key, n);
	}
	return old;
}

size_t dec_path_idx(struct dec *d, size_t i)
{
	char buf[24];
	size_t old = d->plen, at = sizeof(buf);

	buf[--at] = ']';
	do
		buf[--at] = (char)('0' + i % 10);
	while ((i /= 10) && at > 1);
	buf[--at] = '[';
	path_append(d, buf + at, sizeof(buf) - at);
	return old;
}

void dec_path_pop(struct dec *d, size_t old)
{
	d->plen = old;
	d->path[old] = '\0';
}

/* A short rendering of an offending value: "http", 70000, an object... */
const char *dec_show(json_object *v, char *buf, size_t len)
{
	const char *s;

	switch (json_object_get_type(v)) {
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	default:
		break;
	}
	s = json_object_to_json_string_ext(v,
					   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (strlen(s) > SHOW_MAX)
		snprintf(buf, len, "%.*s...", SHOW_MAX - 3, s);
	else
		snprintf(buf, len, "%s", s);
	return buf;
}

/* A member of @o, or NULL when absent or null: Kubernetes treats both alike. */
json_object *dec_member(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

static bool is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_label(const char *s, size_t n, size_t max)
{
	if (n == 0 || n > max || !is_alnum_lower(s[0]) || !is_alnum_lower(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum_lower(s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool is_subdomain(const char *s, size_t n)
{
	size_t start = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.')
			continue;
		if (!is_label(s + start, i - start, 63))
			return false;
		start = i + 1;
	}
	return true;
}

static bool is_iana_name(const char *s, size_t n)
{
	bool letter = false;

	if (!is_label(s, n, 15) || strstr(s, "--"))
		return false;
	for (size_t i = 0; i < n; i++)
		letter |= s[i] >= 'a' && s[i] <= 'z';
	return letter;
}

bool dec_str_ok(const char *s, size_t n, enum dec_check check)
{
	switch (check) {
	case DEC_ANY:
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				return false;
		return true;
	case DEC_LABEL:
		return is_label(s, n, 63);
	case DEC_DNS1035:
		return is_label(s, n, 63) && s[0] >= 'a' && s[0] <= 'z';
	case DEC_SUBDOMAIN:
		return is_subdomain(s, n);
	case DEC_IANA:
		return is_iana_name(s, n);
	}
	return false;
}

/* Check string value @v against @check and a length under @size. */
static int check_string(struct dec *d, json_object *v, enum dec_check check, size_t size)
{
	char shown[DEC_SHOW_BUF];
	const char *s;
	size_t n;

	if (!json_object_is_type(v, json_type_string))
		return dec_fail(d, "must be a string, got %s", dec_show(v, shown, sizeof(shown)));
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (strlen(s) != n)
		return dec_fail(d, "must not contain NUL characters");
	if (n >= size)
		return dec_fail(d, "must be at most %zu characters, got %zu", size - 1, n);
	if (!dec_str_ok(s, n, check))
		return dec_fail(d, "must be %s, got %s", check_what[check],
			    dec_show(v, shown, sizeof(shown)));
	return 0;
}

int dec_take_string(struct dec *d, json_object *v, enum dec_check check, char *buf, size_t size)
{
	int err = check_string(d, v, check, size);

	if (!err)
		memcpy(buf, json_object_get_string(v), (size_t)json_object_get_string_len(v) + 1);
	return err;
}

/* The member of @o that dec_get_string() would read, or NULL for "". */
static json_object *string_member(json_object *o, const char *key)
{
	json_object *v = dec_member(o, key);

	/* "" is how the API writes an unset optional string (an unnamed port). */
	if (json_object_is_type(v, json_type_string) && !json_object_get_string_len(v))
		return NULL;
	return v;
}

int dec_get_string(struct dec *d, json_object *o, const char *key, bool required,
		   enum dec_check check, char *buf, size_t size)
{
	json_object *v = string_member(o, key);
	size_t old = dec_path_key(d, key);
	int err = 0;

	buf[0] = '\0';
	if (v)
		err = dec_take_string(d, v, check, buf, size);
	else if (required)
		err = dec_fail(d, "required");
	dec_path_pop(d, old);
	return err;
}

int dec_get_string_ref(struct dec *d, json_object *o, const char *key, enum dec_check check,
		       size_t size, const char **out)
{
	json_object *v = string_member(o, key);
	size_t old;
	int err;

	*out = "";
	if (!v)
		return 0;
	old = dec_path_key(d, key);
	err = check_string(d, v, check, size);
	if (!err)
		*out = json_object_get_string(v);
	dec_path_pop(d, old);
	return err;
}

int dec_get_object(struct dec *d, json_object *o, const char *key, bool required,
		   json_object **out)
{
	json_object *v = dec_member(o, key);
	char shown[DEC_SHOW_BUF];
	size_t old = dec_path_key(d, key);
	int err = 0;

	*out = NULL;
	if (!v && required)
		err = dec_fail(d, "required");
	else if (v && !json_object_is_type(v, json_type_object))
		err = dec_fail(d, "must be an object, got %s", dec_show(v, shown, sizeof(shown)));
	else
		*out = v;
	dec_path_pop(d, old);
	return err;
}

int dec_get_array(struct dec *d, json_object *o, const char *key, size_t max, json_object **out,
		  size_t *n)
{
	json_object *v = dec_member(o, key);
	char shown[DEC_SHOW_BUF];
	size_t old = dec_path_key(d, key);
	int err = 0;

	*out = NULL;
	*n = 0;
	if (v && !json_object_is_type(v, json_type_array)) {
		err = dec_fail(d, "must be an array, got %s", dec_show(v, shown, sizeof(shown)));
	} else if (v) {
		*out = v;
		*n = json_object_array_length(v);
		if (*n > max)
			err = dec_fail(d, "must have at most %zu entries, got %zu", max, *n);
	}
	dec_path_pop(d, old);
	return err;
}

int dec_take_port(struct dec *d, json_object *v, uint16_t *out)
{
	char shown[DEC_SHOW_BUF];
	int64_t p;

	if (!json_object_is_type(v, json_type_int))
		goto bad;
	p = json_object_get_int64(v);
	if (p < 1 || p > 65535)
		goto bad;
	*out = (uint16_t)p;
	return 0;
bad:
	return dec_fail(d, "must be an integer in 1..65535, got %s",
			dec_show(v, shown, sizeof(shown)));
}

int dec_get_port(struct dec *d, json_object *o, const char *key, bool required, uint16_t *out)
{
	json_object *v = dec_member(o, key);
	size_t old = dec_path_key(d, key);
	int err = 0;

	*out = 0;
	if (v)
		err = dec_take_port(d, v, out);
	else if (required)
		err = dec_fail(d, "required");
	dec_path_pop(d, old);
	return err;
}

int dec_get_proto(struct dec *d, json_object *o, enum obj_proto *out)
{
	static const enum obj_proto protos[] = { OBJ_PROTO_TCP, OBJ_PROTO_UDP, OBJ_PROTO_SCTP };
	char s[8];
	size_t old;
	int err;

	*out = OBJ_PROTO_TCP;
	err = dec_get_string(d, o, "protocol", false, DEC_ANY, s, sizeof(s));
	if (err || !s[0])
		return err;
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		if (!strcmp(s, obj_proto_name(protos[i]))) {
			*out = protos[i];
			return 0;
		}
	}
	old = dec_path_key(d, "protocol");
	err = dec_fail(d, "must be TCP, UDP or SCTP, got \"%s\"", s);
	dec_path_pop(d, old);
	return err;
}

int dec_get_meta_string(struct dec *d, json_object *meta, const char *map, const char *key,
			enum dec_check check, char *buf, size_t size)
{
	json_object *m;
	size_t old;
	int err;

	buf[0] = '\0';
	old = dec_path_key(d, "metadata");
	err = dec_get_object(d, meta, map, false, &m);
	if (!err && m) {
		size_t old_map = dec_path_key(d, map);

		err = dec_get_string(d, m, key, false, check, buf, size);
		dec_path_pop(d, old_map);
	}
	dec_path_pop(d, old);
	return err;
}

int dec_take_ip(struct dec *d, json_object *v, int family, struct addr *out)
{
	char shown[DEC_SHOW_BUF];
	char s[ADDR_STRLEN];
	int err;

	err = dec_take_string(d, v, DEC_ANY, s, sizeof(s));
	if (err)
		return err;
	if (addr_parse_ip(s, out))
		return dec_fail(d, "must be an IP address, got %s",
				dec_show(v, shown, sizeof(shown)));
	if (family && out->family != family)
		return dec_fail(d, "must be an %s address, got %s",
				family == AF_INET ? "IPv4" : "IPv6",
				dec_show(v, shown, sizeof(shown)));
	return 0;
}
