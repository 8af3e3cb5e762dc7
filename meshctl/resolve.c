// SPDX-License-Identifier: GPL-2.0-only
/* `meshctl resolve NAME [--type T] [--namespace NS | --pod NS/NAME]` (GET
 * /v1/resolve): whether the agent answers NAME for a meshed pod, along the
 * search path of namespace NS (or of the pod) when given, and the records it
 * answers with; for a pod, whether its queries reach the agent at all.
 */
#include <errno.h>
#include <stdio.h>

#include <json-c/json.h>

#include "meshctl.h"

int cmd_resolve_render(FILE *out, struct json_object *resp)
{
	struct json_object *tries = out_path(resp, "tries");

	if (!tries || !json_object_is_type(tries, json_type_array))
		return -EPROTO;
	fprintf(out, "Resolve %s %s (cluster domain %s)\n", out_str(resp, "name"),
		out_str(resp, "type"), out_str(resp, "cluster_domain"));
	if (out_path(resp, "pod"))
		fprintf(out, "As pod %s/%s: DNS %s\n", out_str(resp, "pod.namespace"),
			out_str(resp, "pod.name"),
			out_bool(resp, "pod.dns_captured") ? "captured by the agent"
							   : "not captured");
	fprintf(out, "\n");
	for (size_t i = 0; i < json_object_array_length(tries); i++) {
		struct json_object *t = json_object_array_get_idx(tries, i);
		struct json_object *recs = out_path(t, "records");

		fprintf(out, "%2zu. %-50s %s\n", i + 1, out_str(t, "name"),
			out_bool(t, "answered") ? "owned by the agent" : "not the agent's");
		for (size_t j = 0; recs && j < json_object_array_length(recs); j++)
			fprintf(out, "      %s\n",
				json_object_get_string(json_object_array_get_idx(recs, j)));
	}
	fprintf(out, "\nResult: %s\n", out_str(resp, "outcome"));
	return 0;
}

int cmd_resolve(struct meshctl *m, int argc, char **argv)
{
	const char *type = NULL, *ns = NULL, *pod = NULL;
	const struct cmd_opt opts[] = {
		{ "type", &type, NULL },
		{ "namespace", &ns, NULL },
		{ "pod", &pod, NULL },
	};
	char url[1024] = "/v1/resolve";
	int ret = meshctl_cmd_opts(m, &argc, argv, opts, 3);

	if (!ret)
		ret = meshctl_args(m, argc, argv, 1, "NAME");
	if (!ret)
		ret = meshctl_query(m, url, sizeof(url),
				    (const char *const[]){ "name", argv[1], "type", type,
							   "namespace", ns, "pod", pod },
				    4);
	return ret ? ret : meshctl_show(m, url, cmd_resolve_render, "\"tries\"");
}
