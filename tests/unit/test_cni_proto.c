// SPDX-License-Identifier: GPL-2.0-only
/* lib/cni_proto.c: the CNI plugin <-> agent wire format, encoded and decoded
 * by the same code on both ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "cni_proto.h"

static void sample(struct cni_proto_pod *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->container_id, sizeof(p->container_id), "c0ffee");
	snprintf(p->netns, sizeof(p->netns), "/proc/42/ns/net");
	snprintf(p->ifname, sizeof(p->ifname), "eth0");
	snprintf(p->ns, sizeof(p->ns), "shop");
	snprintf(p->name, sizeof(p->name), "web-0");
	snprintf(p->uid, sizeof(p->uid), "u-1");
	cr_assert_eq(addr_parse_ip("198.18.0.5", &p->ips[p->n_ips++]), 0);
	cr_assert_eq(addr_parse_ip("fd00::5", &p->ips[p->n_ips++]), 0);
}

Test(cni_proto, request_round_trip)
{
	struct cni_proto_pod in, out;
	enum cni_proto_cmd cmd;
	char err[256] = "";
	size_t len;
	char *line;

	sample(&in);
	line = cni_proto_req_encode(CNI_PROTO_CHECK, &in, &len);
	cr_assert_not_null(line);
	cr_expect_eq(strlen(line), len);
	cr_expect_eq(strchr(line, '\n'), line + len - 1, "one line only");
	cr_assert_eq(cni_proto_req_decode(line, true, &cmd, &out, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cmd, CNI_PROTO_CHECK);
	cr_expect_eq(memcmp(&in, &out, sizeof(in)), 0);
	free(line);
}

Test(cni_proto, state_file_round_trip_keeps_the_hint)
{
	struct cni_proto_pod in, out;
	char err[256] = "";
	enum cni_proto_cmd cmd;
	size_t len;
	char *line;

	sample(&in);
	in.meshed_hint = true;
	line = cni_proto_req_encode(CNI_PROTO_NONE, &in, &len);
	cr_assert_not_null(line);
	cr_expect_null(strstr(line, "command"));
	cr_assert_eq(cni_proto_req_decode(line, false, NULL, &out, err, sizeof(err)), 0);
	cr_expect(out.meshed_hint);
	cr_expect_eq(memcmp(&in, &out, sizeof(in)), 0);
	/* Without a command it is not a request. */
	cr_expect_eq(cni_proto_req_decode(line, true, &cmd, &out, err, sizeof(err)), -ENOMSG);
	free(line);
}

Test(cni_proto, a_state_file_keeps_the_netns_identity_and_a_request_cannot_forge_it)
{
	struct cni_proto_pod in, out;
	char err[256];
	enum cni_proto_cmd cmd;
	size_t len;
	char *line;

	sample(&in);
	in.netns_dev = 4;
	in.netns_ino = 4026532999ULL;
	in.netns_cookie = 0x1234567890ULL;
	line = cni_proto_req_encode(CNI_PROTO_NONE, &in, &len);
	cr_assert_not_null(line);
	cr_assert_eq(cni_proto_req_decode(line, false, NULL, &out, err, sizeof(err)), 0);
	cr_expect_eq(out.netns_dev, 4);
	cr_expect_eq(out.netns_ino, 4026532999ULL);
	cr_expect_eq(out.netns_cookie, 0x1234567890ULL);
	free(line);
	/* What a restarted agent compares must come from its own file only. */
	line = cni_proto_req_encode(CNI_PROTO_ADD, &in, &len);
	cr_assert_not_null(line);
	cr_assert_eq(cni_proto_req_decode(line, true, &cmd, &out, err, sizeof(err)), 0);
	cr_expect_eq(out.netns_ino, 0);
	cr_expect_eq(out.netns_cookie, 0);
	free(line);
}

Test(cni_proto, malformed_fields_are_named)
{
	static const struct {
		const char *text;
		int rc;
		const char *err;
	} cases[] = {
		{ "[1]", -EBADMSG, "request is not a JSON object" },
		{ "{\"version\":2,\"command\":\"ADD\"}", -EPROTONOSUPPORT,
		  "unsupported plugin protocol version" },
		{ "{\"version\":1,\"container_id\":\"c\"}", -ENOMSG, "request lacks 'command'" },
		{ "{\"version\":1,\"command\":\"ADD\",\"container_id\":\"c\",\"namespace\":\"n\"}",
		  -EINVAL, "field 'name' is missing" },
		{ "{\"version\":1,\"command\":\"ADD\",\"container_id\":7,\"namespace\":\"n\","
		  "\"name\":\"p\"}",
		  -EINVAL, "field 'container_id' must be a string" },
		{ "{\"version\":1,\"command\":\"ADD\",\"container_id\":\"c\",\"namespace\":\"n\","
		  "\"name\":\"p\",\"ips\":[\"198.18.0.1\",\"nope\"]}",
		  -EINVAL, "field 'ips[1]' is not an IP address" },
		{ "{\"version\":1,\"command\":\"UPGRADE\",\"container_id\":\"c\","
		  "\"namespace\":\"n\","
		  "\"name\":\"p\"}",
		  -EINVAL, "unknown command 'UPGRADE'" },
	};
	struct cni_proto_pod pod;
	enum cni_proto_cmd cmd;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";

		cr_expect_eq(
			cni_proto_req_decode(cases[i].text, true, &cmd, &pod, err, sizeof(err)),
			cases[i].rc, "%s", cases[i].text);
		cr_expect_str_eq(err, cases[i].err, "%s", cases[i].text);
	}
}

Test(cni_proto, reply_round_trip)
{
	struct cni_proto_reply in = { .ok = false, .code = CNI_ERR_TRY_AGAIN }, out;
	size_t len;
	char *line;

	snprintf(in.msg, sizeof(in.msg), "agent: cannot enroll pod");
	snprintf(in.details, sizeof(in.details), "the agent's registries have not synced yet");
	line = cni_proto_reply_encode(&in, &len);
	cr_assert_not_null(line);
	cr_assert_eq(cni_proto_reply_decode(line, &out), 0);
	cr_expect_not(out.ok);
	cr_expect_eq(out.code, CNI_ERR_TRY_AGAIN);
	cr_expect_str_eq(out.msg, in.msg);
	cr_expect_str_eq(out.details, in.details);
	free(line);
	in = (struct cni_proto_reply){ .ok = true, .has_pod = true, .meshed = true };
	snprintf(in.reason, sizeof(in.reason), "namespace shop has label weft.io/mesh=enabled");
	line = cni_proto_reply_encode(&in, &len);
	cr_assert_not_null(line);
	cr_assert_eq(cni_proto_reply_decode(line, &out), 0);
	cr_expect(out.ok && out.has_pod && out.meshed);
	cr_expect_str_eq(out.reason, in.reason);
	free(line);
}

Test(cni_proto, status_and_gc_requests_carry_no_pod)
{
	const char *ids[] = { "c1", "c2" };
	char (*valid)[CNI_PROTO_MAX_CONTAINER_ID + 1];
	struct cni_proto_pod pod;
	enum cni_proto_cmd cmd;
	char err[256] = "";
	size_t len, n;
	char *line;

	line = cni_proto_cmd_encode(CNI_PROTO_STATUS, NULL, 0, &len);
	cr_assert_not_null(line);
	cr_expect_str_eq(line, "{\"version\":1,\"command\":\"STATUS\"}\n");
	cr_expect_eq(cni_proto_req_decode(line, true, &cmd, &pod, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cmd, CNI_PROTO_STATUS);
	free(line);

	line = cni_proto_cmd_encode(CNI_PROTO_GC, ids, 2, &len);
	cr_assert_not_null(line);
	cr_expect_str_eq(line, "{\"version\":1,\"command\":\"GC\",\"valid\":[\"c1\",\"c2\"]}\n");
	cr_expect_eq(cni_proto_req_decode(line, true, &cmd, &pod, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cmd, CNI_PROTO_GC);
	cr_assert_eq(cni_proto_gc_decode(line, &valid, &n, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 2);
	cr_expect_str_eq(valid[0], "c1");
	cr_expect_str_eq(valid[1], "c2");
	free(valid);
	free(line);

	/* An empty list is a valid GC: every enrolment is stale. */
	line = cni_proto_cmd_encode(CNI_PROTO_GC, NULL, 0, &len);
	cr_assert_eq(cni_proto_gc_decode(line, &valid, &n, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(n, 0);
	free(valid);
	free(line);

	cr_expect_null(cni_proto_cmd_encode(CNI_PROTO_ADD, NULL, 0, &len));
	cr_expect_eq(errno, EINVAL);
	cr_expect_null(cni_proto_cmd_encode(CNI_PROTO_GC, ids, CNI_PROTO_MAX_GC_IDS + 1, &len));
	cr_expect_eq(errno, EMSGSIZE);
}

Test(cni_proto, a_full_gc_request_fits_a_line)
{
	static char ids_buf[CNI_PROTO_MAX_GC_IDS][CNI_PROTO_MAX_CONTAINER_ID + 1];
	static const char *ids[CNI_PROTO_MAX_GC_IDS];
	char (*valid)[CNI_PROTO_MAX_CONTAINER_ID + 1];
	char err[256] = "";
	size_t len, n;
	char *line;

	for (size_t i = 0; i < CNI_PROTO_MAX_GC_IDS; i++) {
		memset(ids_buf[i], 'a', CNI_PROTO_MAX_CONTAINER_ID);
		snprintf(ids_buf[i], 8, "%06zu", i);
		ids_buf[i][6] = 'x';
		ids[i] = ids_buf[i];
	}
	line = cni_proto_cmd_encode(CNI_PROTO_GC, ids, CNI_PROTO_MAX_GC_IDS, &len);
	cr_assert_not_null(line, "%s", strerror(errno));
	cr_expect_leq(len, CNI_PROTO_MAX_LINE);
	cr_assert_eq(cni_proto_gc_decode(line, &valid, &n, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(n, CNI_PROTO_MAX_GC_IDS);
	cr_expect_str_eq(valid[n - 1], ids[n - 1]);
	free(valid);
	free(line);
}

Test(cni_proto, malformed_gc_requests_are_named)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
		{ "{\"version\":1,\"command\":\"GC\"}", "GC request lacks 'valid'" },
		{ "{\"version\":1,\"command\":\"GC\",\"valid\":\"c1\"}",
		  "field 'valid' must be an array of strings" },
		{ "{\"version\":1,\"command\":\"GC\",\"valid\":[\"c1\",3]}",
		  "field 'valid[1]' must be a string of 1 to 127 bytes" },
		{ "{\"version\":1,\"command\":\"GC\",\"valid\":[\"\"]}",
		  "field 'valid[0]' must be a string of 1 to 127 bytes" },
	};
	char (*valid)[CNI_PROTO_MAX_CONTAINER_ID + 1];
	size_t n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";

		cr_expect_eq(cni_proto_gc_decode(cases[i].text, &valid, &n, err, sizeof(err)),
			     -EINVAL, "%s", cases[i].text);
		cr_expect_null(valid);
		cr_expect_str_eq(err, cases[i].err, "%s", cases[i].text);
	}
}

Test(cni_proto, state_file_round_trip)
{
	char meshed[2][CNI_PROTO_MAX_NAMESPACE + 1] = { "demo", "shop" };
	struct cni_proto_state in = { .generation = 42, .synced = true, .meshed = meshed,
				      .n_meshed = 2 },
			       out;
	char err[256] = "";
	size_t len;
	char *text = cni_proto_state_encode(&in, &len);

	cr_assert_not_null(text);
	cr_expect_str_eq(text, "{\"version\":1,\"generation\":42,\"synced\":true,"
			       "\"meshed\":[\"demo\",\"shop\"]}\n");
	cr_expect_eq(len, strlen(text));
	cr_assert_eq(cni_proto_state_decode(text, &out, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(out.generation, 42);
	cr_expect(out.synced);
	cr_expect(cni_proto_state_meshed(&out, "demo"));
	cr_expect(cni_proto_state_meshed(&out, "shop"));
	cr_expect_not(cni_proto_state_meshed(&out, "kube-system"));
	cni_proto_state_done(&out);
	free(text);
}

Test(cni_proto, malformed_state_files_are_refused)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
		{ "", "not a JSON object" },
		{ "{\"version\":1,\"synced\":tr", "not a JSON object" },
		{ "[]", "not a JSON object" },
		{ "{\"version\":2,\"synced\":true,\"meshed\":[]}",
		  "unsupported state file version" },
		{ "{\"version\":1,\"meshed\":[]}", "field 'synced' must be true or false" },
		{ "{\"version\":1,\"synced\":true}", "field 'meshed' is missing" },
		{ "{\"version\":1,\"synced\":true,\"meshed\":[1]}",
		  "field 'meshed[0]' must be a string of 1 to 63 bytes" },
	};
	struct cni_proto_state st;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";

		cr_expect_eq(cni_proto_state_decode(cases[i].text, &st, err, sizeof(err)), -EINVAL,
			     "%s", cases[i].text);
		cr_expect_eq(st.n_meshed, 0);
		cr_expect_null(st.meshed);
		cr_expect_str_eq(err, cases[i].err, "%s", cases[i].text);
		cni_proto_state_done(&st);
	}
}
