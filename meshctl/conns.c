// SPDX-License-Identifier: GPL-2.0-only
/* `meshctl conns [--pod NS/NAME] [--service NS/NAME] [--limit N]`: the live
 * proxied connections (GET /v1/conns): who, where it wanted to go, where the
 * proxy sent it, for how long, how many bytes each way, in what state, and
 * whether it is mutual TLS and with whom.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "meshctl.h"
#include "spiffe.h"

static const char *const conn_headers[] = {
	"POD", "CLIENT", "DESTINATION", "SERVICE", "ENDPOINT", "AGE", "OUT", "IN", "PROTO", "STATE",
	"MTLS",
};
#define N_CONN_COLS (sizeof(conn_headers) / sizeof(conn_headers[0]))

/* "to ID" (this side dialled a meshed pod), "from ID" (another meshed pod
 * dialled this one), "-" (plaintext); " (resumed)" when its handshake
 * resumed a session.
 */
static const char *mtls_cell(struct json_object *c, char *buf, size_t len)
{
	const char *side = out_str(c, "mtls"), *peer = out_str(c, "peer_identity");

	if (!side || !side[0])
		return "-";
	snprintf(buf, len, "%s %s%s", strcmp(side, "server") ? "to" : "from",
		 peer && peer[0] ? peer : "?", out_bool(c, "mtls_resumed") ? " (resumed)" : "");
	return buf;
}

static int conn_row(struct out_table *t, struct json_object *c, void *ctx)
{
	char age[24], o[24], in[24], m[SPIFFE_ID_MAX + 24];

	(void)ctx;
	return out_table_add(
		t, (const char *const[]){
			   out_str(c, "pod"), out_str(c, "client"), out_str(c, "destination"),
			   out_str(c, "service") ? out_str(c, "service") : "(passthrough)",
			   out_str(c, "endpoint"), out_ms(age, sizeof(age), out_u64(c, "age_ms")),
			   out_bytes(o, sizeof(o), out_u64(c, "bytes_out")),
			   out_bytes(in, sizeof(in), out_u64(c, "bytes_in")),
			   out_str(c, "protocol"), out_str(c, "state"),
			   mtls_cell(c, m, sizeof(m)) });
}

int cmd_conns_render(FILE *out, struct json_object *resp)
{
	struct json_object *arr = out_path(resp, "conns");

	if (!arr || !json_object_is_type(arr, json_type_array))
		return -EPROTO;
	return out_table_rows(out, N_CONN_COLS, conn_headers, arr, conn_row, NULL);
}

int cmd_conns(struct meshctl *m, int argc, char **argv)
{
	const char *pod = NULL, *svc = NULL, *limit = NULL;
	const struct cmd_opt opts[] = {
		{ "pod", &pod, NULL },
		{ "service", &svc, NULL },
		{ "limit", &limit, NULL },
	};
	struct json_object *resp;
	char url[768] = "/v1/conns";
	int ret;

	ret = meshctl_opts_only(m, argc, argv, opts, sizeof(opts) / sizeof(opts[0]));
	if (!ret)
		ret = meshctl_query(m, url, sizeof(url),
				    (const char *const[]){ "pod", pod, "service", svc, "limit", limit },
				    3);
	if (ret)
		return ret;
	/* The agent judges the values (NAMESPACE/NAME, 1..10000) and says why. */
	ret = meshctl_get(m, url, &resp);
	if (ret)
		return ret;
	ret = meshctl_print(m, resp, cmd_conns_render, "/v1/conns", "\"conns\" array");
	if (!ret && m->format != OUT_JSON && out_bool(resp, "truncated")) {
		out_err(m->err, m->format,
			"showing %llu of %llu connections (--limit N, at most "
			"10000, to see more)",
			out_u64(resp, "limit"), out_u64(resp, "matched"));
	}
	json_object_put(resp);
	return ret;
}
