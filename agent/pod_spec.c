// SPDX-License-Identifier: GPL-2.0-only
/* A pod's identity as JSON: the body of a CNI request (lib/cni_proto.h) and
 * of the state file a pod leaves under RUN_DIR/pods.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "pods.h"

static int get_str(json_object *o, const char *key, bool required, char *dst, size_t len,
		   char *err, size_t errlen)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
		if (!required) {
			dst[0] = '\0';
			return 0;
		}
		snprintf(err, errlen, "field '%s' is missing", key);
		return -EINVAL;
	}
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "field '%s' must be a string", key);
		return -EINVAL;
	}
	s = json_object_get_string(v);
	if (strlen(s) >= len) {
		snprintf(err, errlen, "field '%s' is longer than %zu bytes", key, len - 1);
		return -EINVAL;
	}
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

int pod_spec_parse(const char *json, struct pod_spec *spec, char *err, size_t errlen)
{
	json_object *o, *ips;
	int rc;

	memset(spec, 0, sizeof(*spec));
	o = json_tokener_parse(json);
	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "not a JSON object");
		rc = -EINVAL;
		goto out;
	}
	rc = get_str(o, "container_id", true, spec->container_id, sizeof(spec->container_id), err,
		     errlen);
	if (!rc)
		rc = get_str(o, "netns", false, spec->netns, sizeof(spec->netns), err, errlen);
	if (!rc)
		rc = get_str(o, "ifname", false, spec->ifname, sizeof(spec->ifname), err, errlen);
	if (!rc)
		rc = get_str(o, "namespace", true, spec->ns, sizeof(spec->ns), err, errlen);
	if (!rc)
		rc = get_str(o, "name", true, spec->name, sizeof(spec->name), err, errlen);
	if (!rc)
		rc = get_str(o, "uid", false, spec->uid, sizeof(spec->uid), err, errlen);
	if (rc)
		goto out;
	if (json_object_object_get_ex(o, "ips", &ips) && !json_object_is_type(ips, json_type_null)) {
		size_t n;

		if (!json_object_is_type(ips, json_type_array)) {
			snprintf(err, errlen, "field 'ips' must be an array of strings");
			rc = -EINVAL;
			goto out;
		}
		n = json_object_array_length(ips);
		if (n > CNI_PROTO_MAX_IPS) {
			snprintf(err, errlen, "field 'ips' has %zu entries, at most %d allowed", n,
				 CNI_PROTO_MAX_IPS);
			rc = -EINVAL;
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			json_object *ip = json_object_array_get_idx(ips, i);

			if (!json_object_is_type(ip, json_type_string) ||
			    addr_parse_ip(json_object_get_string(ip), &spec->ips[i])) {
				snprintf(err, errlen, "field 'ips[%zu]' is not an IP address", i);
				rc = -EINVAL;
				goto out;
			}
		}
		spec->n_ips = (unsigned int)n;
	}
	/* Only in saved state: what a restarted agent does before its registries
	 * have synced (see pods_restore()).
	 */
	if (json_object_object_get_ex(o, "meshed", &ips))
		spec->meshed_hint = json_object_get_boolean(ips);
out:
	json_object_put(o);
	return rc;
}

char *pod_spec_to_json(const struct pod_spec *spec)
{
	json_object *o = json_object_new_object(), *ips = json_object_new_array();
	char *out = NULL;

	if (!o || !ips)
		goto out;
	json_object_object_add(o, "version", json_object_new_int(CNI_PROTO_VERSION));
	json_object_object_add(o, "container_id", json_object_new_string(spec->container_id));
	json_object_object_add(o, "netns", json_object_new_string(spec->netns));
	json_object_object_add(o, "ifname", json_object_new_string(spec->ifname));
	json_object_object_add(o, "namespace", json_object_new_string(spec->ns));
	json_object_object_add(o, "name", json_object_new_string(spec->name));
	json_object_object_add(o, "uid", json_object_new_string(spec->uid));
	for (unsigned int i = 0; i < spec->n_ips; i++) {
		char buf[ADDR_STRLEN];

		json_object_array_add(ips, json_object_new_string(
						   addr_fmt_ip(&spec->ips[i], buf, sizeof(buf))));
	}
	json_object_object_add(o, "ips", ips);
	ips = NULL;
	if (spec->meshed_hint)
		json_object_object_add(o, "meshed", json_object_new_boolean(1));
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
out:
	json_object_put(ips);
	json_object_put(o);
	return out;
}
