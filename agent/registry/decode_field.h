/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to registry/decode*.c: reading one field of a json-c object with
 * its type, bounds and syntax checked, while tracking the field's path
 * ("spec.ports[1].port") so every error names the object and the field.
 */
#ifndef WEFT_REG_DECODE_FIELD_H
#define WEFT_REG_DECODE_FIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "registry/decode.h"

#define DEC_PATH_MAX 256
#define DEC_SHOW_BUF 56		/* room for dec_show(): 48 characters and quotes */

/* Decoding state: who is decoded and where we are, for error messages. */
struct dec {
	char *err;
	size_t errlen;
	char who[OBJ_NS_MAX + OBJ_NAME_MAX + 32];	/* "Service default/web" */
	char path[DEC_PATH_MAX];			/* "spec.ports[1].port" */
	size_t plen;
};

/* What a kept string must look like. */
enum dec_check {
	DEC_ANY,	/* no control characters */
	DEC_LABEL,	/* DNS-1123 label: a namespace, a port name */
	DEC_DNS1035,	/* DNS-1035 label: a Service name */
	DEC_SUBDOMAIN,	/* DNS-1123 subdomain: object and node names */
	DEC_IANA,	/* IANA service name: a named targetPort */
};

/* Write "<who>: <path>: <message>" into d->err and return -EINVAL. */
__attribute__((format(printf, 2, 3))) int dec_fail(struct dec *d, const char *fmt, ...);

/* Extend the path by ".key" (["key"] when the key has dots or slashes, as
 * label keys do) or by "[i]"; return the length to give dec_path_pop().
 */
size_t dec_path_key(struct dec *d, const char *key);
size_t dec_path_idx(struct dec *d, size_t i);
void dec_path_pop(struct dec *d, size_t old);

/* A short rendering of @v for messages ("http" quoted, 70000, "an object"):
 * in @buf (DEC_SHOW_BUF bytes) or a constant. Returns it.
 */
const char *dec_show(json_object *v, char *buf, size_t len);

/* Member @key of @o, or NULL when absent or null (Kubernetes treats both
 * alike) or when @o is not an object. Borrowed.
 */
json_object *dec_member(json_object *o, const char *key);

/* Whether @s (@n bytes) passes @check. */
bool dec_str_ok(const char *s, size_t n, enum dec_check check);

/* Each reader below returns 0 or -EINVAL with the message in d->err; the
 * ones named for a member read it from @o under the current path.
 */

/* String value @v, checked, copied into @buf of @size (too long is an error). */
int dec_take_string(struct dec *d, json_object *v, enum dec_check check, char *buf, size_t size);
/* Member @key as a string; "" when absent, null or "" and not @required. */
int dec_get_string(struct dec *d, json_object *o, const char *key, bool required,
		   enum dec_check check, char *buf, size_t size);
/* dec_get_string() of an optional member without the copy: *@out points
 * into @o (valid while @o is) or is "". For strings decoded by the thousand
 * and copied once more anyway (an endpoint's node and zone).
 */
int dec_get_string_ref(struct dec *d, json_object *o, const char *key, enum dec_check check,
		       size_t size, const char **out);
/* Member @key as an object; *out NULL when absent and not @required. */
int dec_get_object(struct dec *d, json_object *o, const char *key, bool required,
		   json_object **out);
/* Member @key as an array of at most @max entries; absent = empty (*out NULL). */
int dec_get_array(struct dec *d, json_object *o, const char *key, size_t max, json_object **out,
		  size_t *n);
/* Value @v as a port, an integer in 1..65535. */
int dec_take_port(struct dec *d, json_object *v, uint16_t *out);
/* Member @key as a port; 0 when absent and not @required. */
int dec_get_port(struct dec *d, json_object *o, const char *key, bool required, uint16_t *out);
/* Member "protocol": TCP (the API default) when absent. */
int dec_get_proto(struct dec *d, json_object *o, enum obj_proto *out);
/* Label or annotation @key of metadata.@map (@map is "labels" or
 * "annotations") into @buf; "" when absent.
 */
int dec_get_meta_string(struct dec *d, json_object *meta, const char *map, const char *key,
			enum dec_check check, char *buf, size_t size);
/* String value @v as an IP literal, of @family unless it is 0. Port 0. */
int dec_take_ip(struct dec *d, json_object *v, int family, struct addr *out);

#endif /* WEFT_REG_DECODE_FIELD_H */
