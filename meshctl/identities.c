// SPDX-License-Identifier: GPL-2.0-only
/* `meshctl identities`: this node's workload certificates (GET
 * /v1/identities): each SPIFFE ID with its subject, serial, expiry and
 * issuer, and when the agent renews it (docs/mtls.md).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "meshctl.h"

static const char *const id_headers[] = {
	"IDENTITY", "SUBJECT", "SERIAL", "EXPIRES", "RENEWS", "ISSUER", "FROM",
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
			   out_str(e, "issuer"), out_str(e, "issued_by") });
}

static const char *or_dash(const char *s)
{
	return s && s[0] ? s : "-";
}

/* The agent's view of weft-ca, and weft-ca's own status when it answered. */
static void weft_ca_render(FILE *out, struct json_object *resp)
{
	struct json_object *refused = out_path(resp, "weft_ca.status.refused");

	const char *last = or_dash(out_str(resp, "weft_ca.last_error"));

	fprintf(out, "weft-ca %s: %s\n", or_dash(out_str(resp, "weft_ca.url")),
		out_bool(resp, "weft_ca.reachable") ? "reachable" : "not reachable");
	if (out_bool(resp, "weft_ca.reachable")) {
		long long age = (long long)time(NULL) - (long long)out_u64(resp, "weft_ca.status_at");

		fprintf(out, "  as of %llds ago: signer %s, bundle of %llu CA(s), signed %llu, refused:",
			age < 0 ? 0 : age,
			or_dash(out_str(resp, "weft_ca.status.signer")),
			out_u64(resp, "weft_ca.status.bundle_cas"),
			out_u64(resp, "weft_ca.status.signed"));
		if (refused && json_object_is_type(refused, json_type_object)) {
			json_object_object_foreach(refused, k, v)
				fprintf(out, " %s %lld", k, (long long)json_object_get_int64(v));
		}
		fputc('\n', out);
	}
	fprintf(out, "  this agent: %llu request(s), %llu signed, %llu refused, %llu failed, "
		     "%llu under way%s%s\n",
		out_u64(resp, "weft_ca.requests"), out_u64(resp, "weft_ca.ok"),
		out_u64(resp, "weft_ca.refused"), out_u64(resp, "weft_ca.failed"),
		out_u64(resp, "pending"), strcmp(last, "-") ? "; last error: " : "",
		strcmp(last, "-") ? last : "");
}

int cmd_identities_render(FILE *out, struct json_object *resp)
{
	struct json_object *arr = out_path(resp, "identities");

	if (!arr || !json_object_is_type(arr, json_type_array))
		return -EPROTO;
	if (!out_bool(resp, "enabled")) {
		fprintf(out, "no workload identities: the agent runs without --ca-url or --ca-cert (mTLS off)\n");
		return 0;
	}
	fprintf(out, "trust domain %s, %llu trust anchor(s), issuer %s\n",
		out_str(resp, "trust_domain"), out_u64(resp, "trust_anchors"),
		out_str(resp, "issuer"));
	if (out_path(resp, "weft_ca"))
		weft_ca_render(out, resp);
	return out_table_rows(out, N_ID_COLS, id_headers, arr, id_row, NULL);
}

int cmd_identities(struct meshctl *m, int argc, char **argv)
{
	int ret = meshctl_no_args(m, argc, argv);

	return ret ? ret : meshctl_show(m, "/v1/identities", cmd_identities_render,
					"\"identities\" array");
}
