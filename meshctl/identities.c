// SPDX-License-Identifier: GPL-2.0-only
/* `meshctl identities`: this node's workload certificates (GET
 * /v1/identities): each SPIFFE ID with its subject, serial, expiry and
 * issuer, and when the agent renews it (docs/mtls.md).
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include <json-c/json.h>

#include "meshctl.h"

static const char *const id_headers[] = {
	"IDENTITY", "SUBJECT", "SERIAL", "EXPIRES", "RENEWS", "ISSUER",
};
#define N_ID_COLS (sizeof(id_headers) / sizeof(id_headers[0]))

/* Seconds since the epoch as a UTC time. */
static const char *utc(char *buf, size_t len, long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%lld", t);
	return buf;
}

static int id_row(struct out_table *t, struct json_object *e, void *ctx)
{
	struct json_object *v;
	char exp[32], ren[32];

	(void)ctx;
	return out_table_add(
		t, (const char *const[]){
			   out_str(e, "id"), out_str(e, "subject"), out_str(e, "serial"),
			   utc(exp, sizeof(exp),
			       json_object_object_get_ex(e, "not_after", &v) ? json_object_get_int64(v) : 0),
			   utc(ren, sizeof(ren),
			       json_object_object_get_ex(e, "renew_at", &v) ? json_object_get_int64(v) : 0),
			   out_str(e, "issuer") });
}

int cmd_identities_render(FILE *out, struct json_object *resp)
{
	struct json_object *arr = out_path(resp, "identities");

	if (!arr || !json_object_is_type(arr, json_type_array))
		return -EPROTO;
	if (!out_bool(resp, "enabled")) {
		fprintf(out, "no workload identities: the agent runs without --ca-cert (mTLS off)\n");
		return 0;
	}
	fprintf(out, "trust domain %s, %llu trust anchor(s), issuer %s\n",
		out_str(resp, "trust_domain"), out_u64(resp, "trust_anchors"),
		out_str(resp, "issuer"));
	return out_table_rows(out, N_ID_COLS, id_headers, arr, id_row, NULL);
}

int cmd_identities(struct meshctl *m, int argc, char **argv)
{
	int ret = meshctl_no_args(m, argc, argv);

	return ret ? ret : meshctl_show(m, "/v1/identities", cmd_identities_render,
					"\"identities\" array");
}
