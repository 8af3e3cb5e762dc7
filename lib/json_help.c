// SPDX-License-Identifier: GPL-2.0-only
/* The json-c helpers of json_help.h, shared by the agent, the CNI plugin and
 * meshctl.
 */
#include <errno.h>
#include <stdio.h>

#include "json_help.h"

json_object *json_member(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return v;
}

const char *json_member_str(json_object *o, const char *key)
{
	json_object *v = json_member(o, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

void json_copy_str(json_object *o, const char *key, char *out, size_t len)
{
	const char *s = json_member_str(o, key);

	if (s)
		snprintf(out, len, "%s", s);
}

int json_add(json_object *o, const char *key, json_object *v)
{
	if (!v || json_object_object_add(o, key, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

int json_add_str(json_object *o, const char *key, const char *val)
{
	return json_add(o, key, json_object_new_string(val));
}

int json_append(json_object *arr, json_object *v)
{
	if (!v || json_object_array_add(arr, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}
