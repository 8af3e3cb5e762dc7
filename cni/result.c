// SPDX-License-Identifier: GPL-2.0-only
/* The result weft-cni prints after ADD: the previous plugin's result, which
 * weft passes on untouched because it changes no interface, address or route.
 * Only a version mismatch needs work, and between 0.3.0 and 1.1.0 the one
 * difference in shape is ips[].version (present before 1.0.0, gone after).
 */
#include <string.h>

#include <json-c/json.h>

#include "cni.h"

static void set_ip_versions(struct json_object *out, bool want)
{
	struct json_object *ips, *addr;
	size_t n;

	if (!json_object_object_get_ex(out, "ips", &ips) ||
	    !json_object_is_type(ips, json_type_array))
		return;
	n = json_object_array_length(ips);
	for (size_t i = 0; i < n; i++) {
		struct json_object *ip = json_object_array_get_idx(ips, i);

		if (!json_object_is_type(ip, json_type_object))
			continue;
		if (!want) {
			json_object_object_del(ip, "version");
			continue;
		}
		if (json_object_object_get_ex(ip, "version", NULL) ||
		    !json_object_object_get_ex(ip, "address", &addr))
			continue;
		/* cni_prev_ips() already checked every address is IP/LEN. */
		json_object_object_add(ip, "version",
				       json_object_new_string(strchr(json_object_get_string(addr),
								     ':') ? "6" : "4"));
	}
}

struct json_object *cni_result_for(struct json_object *prev, const char *version,
				   struct cni_error *e)
{
	struct json_object *v, *out = NULL;
	const char *from;

	if (!json_object_object_get_ex(prev, "cniVersion", &v) ||
	    !json_object_is_type(v, json_type_string))
		return json_object_get(prev);
	from = json_object_get_string(v);
	if (!strcmp(from, version))
		return json_object_get(prev);
	if (!cni_version_supported(from)) {
		cni_error_set(e, CNI_ERR_INCOMPATIBLE_VERSION, "incompatible CNI version",
			      "prevResult has cniVersion \"%.32s\", which weft-cni cannot convert "
			      "to %s", from, version);
		return NULL;
	}
	if (json_object_deep_copy(prev, &out, NULL)) {
		cni_error_set(e, CNI_ERR_IO, "out of memory", "converting prevResult");
		return NULL;
	}
	json_object_object_add(out, "cniVersion", json_object_new_string(version));
	set_ip_versions(out, cni_version_cmp(version, "1.0.0") < 0);
	return out;
}
