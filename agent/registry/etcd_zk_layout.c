// SPDX-License-Identifier: GPL-2.0-only
/* The key-value layout of the etcd and ZooKeeper registries
 * (registry/etcd_zk_layout.h): paths to keys and back, values to objects
 * through the one decoder.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "registry/decode.h"
#include "registry/etcd_zk_layout.h"

static const char *const plurals[OBJ_KIND_COUNT] = {
	[OBJ_NAMESPACE] = "namespaces",
	[OBJ_SERVICE] = "services",
	[OBJ_ENDPOINTSLICE] = "endpointslices",
	[OBJ_POD] = "pods",
};

const char *reg_kv_plural(enum obj_kind kind)
{
	return (unsigned int)kind < OBJ_KIND_COUNT ? plurals[kind] : "unknown";
}

static int fits(int n, size_t len)
{
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int reg_kv_path(const struct obj_key *key, char *buf, size_t len)
{
	if (key->kind == OBJ_NAMESPACE)
		return fits(snprintf(buf, len, "%s/%s", plurals[OBJ_NAMESPACE], key->name), len);
	return fits(snprintf(buf, len, "%s/%s/%s", reg_kv_plural(key->kind), key->ns, key->name),
		    len);
}

/* Copy the segment [s, s + n) into @buf of @size: non-empty and fitting. */
static int take_segment(const char *s, size_t n, char *buf, size_t size)
{
	if (!n || n >= size)
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return 0;
}

int reg_kv_parse_path(const char *rel, size_t len, struct obj_key *key)
{
	const char *end = rel + len, *s1, *s2;
	size_t plen;
	int k;

	memset(key, 0, sizeof(*key));
	s1 = memchr(rel, '/', len);
	if (!s1)
		return -EINVAL;
	plen = (size_t)(s1 - rel);
	for (k = 0; k < OBJ_KIND_COUNT; k++)
		if (strlen(plurals[k]) == plen && !memcmp(rel, plurals[k], plen))
			break;
	if (k == OBJ_KIND_COUNT)
		return -EINVAL;
	key->kind = (enum obj_kind)k;
	s1++;
	s2 = memchr(s1, '/', (size_t)(end - s1));
	if (key->kind == OBJ_NAMESPACE)
		return s2 ? -EINVAL
			  : take_segment(s1, (size_t)(end - s1), key->name, sizeof(key->name));
	if (!s2 || memchr(s2 + 1, '/', (size_t)(end - s2 - 1)))
		return -EINVAL;
	if (take_segment(s1, (size_t)(s2 - s1), key->ns, sizeof(key->ns)))
		return -EINVAL;
	return take_segment(s2 + 1, (size_t)(end - s2 - 1), key->name, sizeof(key->name));
}

int reg_kv_decode(const struct obj_key *key, const char *val, size_t len, struct obj **out,
		  char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct obj *obj = NULL;
	json_object *o;
	char a[OBJ_NS_MAX + OBJ_NAME_MAX + 32], b[sizeof(a)];
	size_t used;
	int ret;

	*out = NULL;
	if (len > REG_KV_VALUE_MAX) {
		snprintf(err, errlen, "value of %zu bytes, more than %u MiB", len,
			 REG_KV_VALUE_MAX >> 20);
		return -EINVAL;
	}
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, val, (int)len);
	used = json_tokener_get_parse_end(tok);
	if (!o) {
		enum json_tokener_error je = json_tokener_get_error(tok);

		snprintf(err, errlen, "not JSON: %s at offset %zu",
			 je == json_tokener_continue ? "unexpected end"
						     : json_tokener_error_desc(je),
			 used);
		json_tokener_free(tok);
		return -EINVAL;
	}
	json_tokener_free(tok);
	while (used < len && strchr(" \t\r\n", val[used]))
		used++;
	if (used < len) {
		snprintf(err, errlen, "not JSON: trailing data at offset %zu", used);
		ret = -EINVAL;
		goto out;
	}
	ret = reg_decode(o, &obj, err, errlen);
	if (ret)
		goto out;
	if (obj_key_cmp(&obj->key, key)) {
		snprintf(err, errlen, "holds %s, not %s", obj_key_fmt(&obj->key, a, sizeof(a)),
			 obj_key_fmt(key, b, sizeof(b)));
		obj_free(obj);
		ret = -EINVAL;
		goto out;
	}
	*out = obj;
out:
	json_object_put(o);
	return ret;
}
