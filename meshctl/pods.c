// SPDX-License-Identifier: GPL-2.0-only
/* `meshctl pods`: the agent's GET /v1/pods as one table row per pod, or the
 * answer itself under -o json.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "meshctl.h"

static const char *const pod_headers[] = {
	"NAMESPACE", "NAME", "MESHED", "IPS", "LISTENERS", "CONNS", "REASON",
};
#define N_POD_COLS (sizeof(pod_headers) / sizeof(pod_headers[0]))

static const char *str_field(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* "a,b" from an array of strings, "-" when empty or absent. malloc'd. */
static char *join_field(struct json_object *o, const char *key)
{
	struct json_object *arr;
	size_t n, len = 2, off = 0;
	char *s;

	if (!json_object_object_get_ex(o, key, &arr) ||
	    !json_object_is_type(arr, json_type_array) || !(n = json_object_array_length(arr)))
		return strdup("-");
	for (size_t i = 0; i < n; i++)
		len += strlen(json_object_get_string(json_object_array_get_idx(arr, i))) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, len - off, "%s%s", i ? "," : "",
					json_object_get_string(json_object_array_get_idx(arr, i)));
	return s;
}

static uint64_t conn_count(struct json_object *pod, const char *key)
{
	struct json_object *conns, *v;

	if (!json_object_object_get_ex(pod, "connections", &conns) ||
	    !json_object_object_get_ex(conns, key, &v))
		return 0;
	return json_object_get_uint64(v);
}

static int add_pod(struct out_table *t, struct json_object *pod)
{
	struct json_object *meshed;
	char conns[48];
	char *ips = join_field(pod, "ips"), *ls = join_field(pod, "listeners");
	int err = -ENOMEM;

	if (!ips || !ls)
		goto out_free;
	snprintf(conns, sizeof(conns), "%" PRIu64 "/%" PRIu64, conn_count(pod, "active"),
		 conn_count(pod, "total"));
	json_object_object_get_ex(pod, "meshed", &meshed);
	err = out_table_add(t, (const char *const[]){
		str_field(pod, "namespace"),
		str_field(pod, "name"),
		json_object_get_boolean(meshed) ? "yes" : "no",
		ips,
		ls,
		conns,
		str_field(pod, "reason"),
	});
out_free:
	free(ips);
	free(ls);
	return err;
}

int cmd_pods_render(FILE *out, struct json_object *resp)
{
	struct json_object *pods;
	struct out_table *t;
	size_t n;
	int err = 0;

	if (!json_object_object_get_ex(resp, "pods", &pods) ||
	    !json_object_is_type(pods, json_type_array))
		return -EPROTO;
	t = out_table_new(N_POD_COLS, pod_headers);
	if (!t)
		return -errno;
	n = json_object_array_length(pods);
	for (size_t i = 0; i < n && !err; i++) {
		struct json_object *pod = json_object_array_get_idx(pods, i);

		if (!json_object_is_type(pod, json_type_object))
			err = -EPROTO;
		else
			err = add_pod(t, pod);
	}
	if (!err)
		out_table_print(t, out);
	out_table_free(t);
	return err;
}

int cmd_pods(struct meshctl *m, int argc, char **argv)
{
	struct json_object *resp;
	int ret = meshctl_no_args(m, argc, argv), err;

	if (ret)
		return ret;
	ret = meshctl_get(m, "/v1/pods", &resp);
	if (ret)
		return ret;
	if (m->format == OUT_JSON) {
		out_json(m->out, resp);
		goto out_put;
	}
	err = cmd_pods_render(m->out, resp);
	if (err == -EPROTO) {
		out_err(m->err, m->format, "malformed answer from the agent on %s: /v1/pods has "
			"no \"pods\" array of objects", m->socket);
		ret = MESHCTL_ERR;
	} else if (err) {
		out_err(m->err, m->format, "out of memory");
		ret = MESHCTL_ERR;
	}
out_put:
	json_object_put(resp);
	return ret;
}
