// SPDX-License-Identifier: GPL-2.0-only
/* `meshctl trace NS/POD DEST:PORT`: what would happen to a TCP connection
 * from the pod to the destination, step by step, as the agent explains it
 * (GET /v1/trace): captured or not and why, the service, which endpoints are
 * eligible and why the others are not, and the one the balancer would pick.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "addr.h"
#include "meshctl.h"

static const char *const ep_headers[] = { "ENDPOINT", "ELIGIBLE", "WHY" };

static int ep_row(struct out_table *t, struct json_object *e, void *ctx)
{
	(void)ctx;
	return out_table_add(t, (const char *const[]){ out_str(e, "address"),
						       out_bool(e, "eligible") ? "yes" : "no",
						       out_str(e, "reason") });
}

int cmd_trace_render(FILE *out, struct json_object *resp)
{
	struct json_object *steps = out_path(resp, "steps"), *eps = out_path(resp, "endpoints");
	int err = 0;

	if (!steps || !json_object_is_type(steps, json_type_array))
		return -EPROTO;
	fprintf(out, "Trace %s -> %s\n\n", out_str(resp, "pod"), out_str(resp, "destination"));
	for (size_t i = 0; i < json_object_array_length(steps); i++) {
		struct json_object *s = json_object_array_get_idx(steps, i);

		fprintf(out, "%2zu. %-21s %-5s %s\n", i + 1, out_str(s, "check"),
			out_str(s, "result"), out_str(s, "detail"));
	}
	if (eps && json_object_is_type(eps, json_type_array) && json_object_array_length(eps)) {
		fputc('\n', out);
		err = out_table_rows(out, 3, ep_headers, eps, ep_row, NULL);
	}
	fprintf(out, "\nResult: %s\n", out_str(resp, "outcome"));
	return err;
}

int cmd_trace(struct meshctl *m, int argc, char **argv)
{
	char url[768] = "/v1/trace";
	int ret = meshctl_args(m, argc, argv, 2, "NAMESPACE/POD and DEST:PORT");

	if (!ret)
		ret = meshctl_ns_ref(m, argv[1], "POD", "pods");
	if (ret)
		return ret;
	if (addr_parse_ip_port(argv[2], &(struct addr){ 0 })) {
		out_err(m->err, m->format,
			"'%s' is not DEST:PORT (an IPv4 address, or [IPv6]:PORT; port 1..65535)",
			argv[2]);
		return MESHCTL_USAGE;
	}
	ret = meshctl_query(m, url, sizeof(url),
			    (const char *const[]){ "pod", argv[1], "dest", argv[2] }, 2);
	return ret ? ret : meshctl_show(m, url, cmd_trace_render, "\"steps\"");
}
