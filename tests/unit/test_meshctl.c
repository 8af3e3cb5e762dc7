// SPDX-License-Identifier: GPL-2.0-only
/* meshctl: argument parsing, command selection, table/key-value/JSON output,
 * and whole command lines (meshctl_main) against the agent's real HTTP server
 * (http_fixture.c) answering with canned admin API documents.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "admin/http.h"
#include "client.h"
#include "http_fixture.h"
#include "meshctl.h"
#include "output.h"

/* ---------------------------------------------------------------- helpers */

/* An in-memory FILE; the text is in buf after close_capture(). */
struct capture {
	FILE *f;
	char *buf;
	size_t len;
};

static void open_capture(struct capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	cr_assert_not_null(c->f);
}

static void close_capture(struct capture *c)
{
	fclose(c->f);
	c->f = NULL;
}

static int parse(struct meshctl *m, char *line, char *err, size_t errlen)
{
	char *argv[64];
	int argc = 0;

	for (char *tok = strtok(line, " "); tok && argc < 64; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	return meshctl_parse_args(m, argc, argv, err, errlen);
}

/* ---------------------------------------------------------------- arguments */

Test(meshctl_args, defaults)
{
	char line[] = "meshctl pods", err[128] = "";
	struct meshctl m;

	cr_assert_eq(parse(&m, line, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(m.format, OUT_TABLE);
	cr_expect_str_eq(m.socket, CLIENT_DEFAULT_SOCKET);
	cr_expect_eq(m.timeout_ms, CLIENT_DEFAULT_TIMEOUT_MS);
	cr_expect_not(m.help);
	cr_assert_eq(m.argc, 1);
	cr_expect_str_eq(m.argv[0], "pods");
}

Test(meshctl_args, options_before_and_after_the_command)
{
	char line[] = "meshctl --socket /tmp/a.sock pods -o json --timeout 2s", err[128] = "";
	struct meshctl m;

	cr_assert_eq(parse(&m, line, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(m.format, OUT_JSON);
	cr_expect_str_eq(m.socket, "/tmp/a.sock");
	cr_expect_eq(m.timeout_ms, 2000);
	cr_assert_eq(m.argc, 1);
	cr_expect_str_eq(m.argv[0], "pods");
}

Test(meshctl_args, option_spellings)
{
	char l1[] = "meshctl --output=json --socket=/x status", l2[] = "meshctl -ojson status";
	char l3[] = "meshctl -j status", l4[] = "meshctl -o table --timeout=250ms status";
	char err[128] = "";
	struct meshctl m;

	cr_assert_eq(parse(&m, l1, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(m.format, OUT_JSON);
	cr_expect_str_eq(m.socket, "/x");
	cr_assert_eq(parse(&m, l2, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(m.format, OUT_JSON);
	cr_assert_eq(parse(&m, l3, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(m.format, OUT_JSON);
	cr_assert_eq(parse(&m, l4, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(m.format, OUT_TABLE);
	cr_expect_eq(m.timeout_ms, 250);
}

Test(meshctl_args, help_and_double_dash)
{
	char l1[] = "meshctl pods --help", l2[] = "meshctl -- pods -o", err[128] = "";
	struct meshctl m;

	cr_assert_eq(parse(&m, l1, err, sizeof(err)), 0);
	cr_expect(m.help);
	cr_expect_eq(m.argc, 1);
	cr_assert_eq(parse(&m, l2, err, sizeof(err)), 0);
	cr_assert_eq(m.argc, 2);
	cr_expect_str_eq(m.argv[1], "-o");
}

Test(meshctl_args, errors_name_the_option)
{
	char l1[] = "meshctl -o yaml pods", l2[] = "meshctl pods --socket";
	char l3[] = "meshctl --timeout 0 pods", l4[] = "meshctl --frobnicate";
	char l5[] = "meshctl --timeout 5 parsecs";
	char err[128];
	struct meshctl m;

	cr_expect_eq(parse(&m, l1, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "unknown output format 'yaml' (table or json)");
	cr_expect_eq(parse(&m, l2, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "option '--socket' needs a value");
	cr_expect_eq(parse(&m, l3, err, sizeof(err)), -EINVAL);
	cr_expect(!strncmp(err, "invalid --timeout '0'", 21), "%s", err);
	cr_expect_eq(parse(&m, l4, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "unknown option '--frobnicate'");
	/* "5" is 5 ms; "parsecs" is then a positional argument, not an error. */
	cr_expect_eq(parse(&m, l5, err, sizeof(err)), 0);
}

static int fake_cmd(struct meshctl *m, int argc, char **argv)
{
	(void)m;
	(void)argc;
	(void)argv;
	return 0;
}

static const struct cmd table[] = {
	{ "services", fake_cmd, "", "", "" },
	{ "status", fake_cmd, "", "", "" },
	{ "pods", fake_cmd, "", "", "" },
	{ "top", fake_cmd, "", "", "" },
	{ "trace", fake_cmd, "", "", "" },
};

Test(meshctl_args, cmd_select_by_prefix)
{
	char err[128] = "";

	cr_expect_eq(cmd_select(table, 5, "pods", err, sizeof(err)), &table[2]);
	cr_expect_eq(cmd_select(table, 5, "p", err, sizeof(err)), &table[2]);
	cr_expect_eq(cmd_select(table, 5, "se", err, sizeof(err)), &table[0]);
	cr_expect_eq(cmd_select(table, 5, "sta", err, sizeof(err)), &table[1]);
	cr_expect_eq(cmd_select(table, 5, "to", err, sizeof(err)), &table[3]);
	cr_expect_null(cmd_select(table, 5, "s", err, sizeof(err)));
	cr_expect_str_eq(err, "ambiguous command 's': services status");
	cr_expect_null(cmd_select(table, 5, "bpf", err, sizeof(err)));
	cr_expect_str_eq(err, "unknown command 'bpf'");
	cr_expect_null(cmd_select(table, 5, "", err, sizeof(err)));
}

/* ---------------------------------------------------------------- output */

Test(meshctl_output, table_aligns_columns)
{
	static const char *const headers[] = { "A", "LONGER", "LAST" };
	struct out_table *t = out_table_new(3, headers);
	struct capture c;

	cr_assert_not_null(t);
	cr_assert_eq(out_table_add(t, (const char *const[]){ "wide-cell", "x", "end" }), 0);
	cr_assert_eq(out_table_add(t, (const char *const[]){ "b", NULL, "tab\there" }), 0);
	open_capture(&c);
	out_table_print(t, c.f);
	close_capture(&c);
	cr_expect_str_eq(c.buf, "A           LONGER   LAST\n"
				"wide-cell   x        end\n"
				"b           -        tab?here\n");
	free(c.buf);
	out_table_free(t);
	out_table_free(NULL);
}

Test(meshctl_output, table_counts_utf8_as_one_column)
{
	struct out_table *t = out_table_new(2, NULL);
	struct capture c;

	cr_assert_not_null(t);
	cr_assert_eq(out_table_add(t, (const char *const[]){ "caf\xc3\xa9", "1" }), 0);
	cr_assert_eq(out_table_add(t, (const char *const[]){ "tea", "2" }), 0);
	open_capture(&c);
	out_table_print(t, c.f);
	close_capture(&c);
	cr_expect_str_eq(c.buf, "caf\xc3\xa9   1\ntea    2\n");
	free(c.buf);
	out_table_free(t);
}

Test(meshctl_output, kv_flattens_nested_objects)
{
	struct json_object *o = json_tokener_parse(
		"{\"api\":1,\"mode\":\"ebpf\",\"pods\":{\"known\":3,\"meshed\":2},"
		"\"last_error\":\"\",\"ips\":[\"a\",\"b\"],\"none\":[],"
		"\"registries\":[{\"name\":\"file:x\",\"loads\":2}],\"ok\":true}");
	struct capture c;

	cr_assert_not_null(o);
	open_capture(&c);
	cr_assert_eq(out_kv(c.f, o), 0);
	close_capture(&c);
	cr_expect_str_eq(c.buf, "api                   1\n"
				"mode                  ebpf\n"
				"pods.known            3\n"
				"pods.meshed           2\n"
				"last_error            -\n"
				"ips                   a,b\n"
				"none                  -\n"
				"registries[0].name    file:x\n"
				"registries[0].loads   2\n"
				"ok                    true\n");
	free(c.buf);
	json_object_put(o);
}

Test(meshctl_output, errors_follow_the_format)
{
	struct capture c;

	open_capture(&c);
	out_err(c.f, OUT_TABLE, "agent %s", "gone");
	out_err(c.f, OUT_JSON, "say \"%s\"", "hi");
	close_capture(&c);
	cr_expect_str_eq(c.buf, "meshctl: agent gone\n{\"error\":\"say \\\"hi\\\"\"}\n");
	free(c.buf);
}

static const char pods_doc[] =
	"{\"api\":1,\"pods\":["
	"{\"namespace\":\"demo\",\"name\":\"client-a\",\"uid\":\"u1\",\"container_id\":\"c1\","
	"\"netns\":\"/run/netns/x\",\"ips\":[\"198.18.1.2\",\"fd00::2\"],\"meshed\":true,"
	"\"reason\":\"namespace demo has weft.io/mesh=enabled\",\"netns_cookie\":4097,"
	"\"listeners\":[\"127.0.0.1:15001\",\"[::1]:15001\"],"
	"\"connections\":{\"active\":0,\"total\":12}},"
	"{\"namespace\":\"kube-system\",\"name\":\"dns\",\"ips\":[],\"meshed\":false,"
	"\"reason\":\"namespace not meshed\",\"listeners\":[],"
	"\"connections\":{\"active\":3,\"total\":4}}]}";

static const char pods_table[] =
	"NAMESPACE     NAME       MESHED   IPS                  LISTENERS                     "
	"CONNS   REASON\n"
	"demo          client-a   yes      198.18.1.2,fd00::2   127.0.0.1:15001,[::1]:15001   "
	"0/12    namespace demo has weft.io/mesh=enabled\n"
	"kube-system   dns        no       -                    -                             "
	"3/4     namespace not meshed\n";

Test(meshctl_output, pods_table)
{
	struct json_object *o = json_tokener_parse(pods_doc);
	struct capture c;

	cr_assert_not_null(o);
	open_capture(&c);
	cr_assert_eq(cmd_pods_render(c.f, o), 0);
	close_capture(&c);
	cr_expect_str_eq(c.buf, pods_table);
	free(c.buf);
	json_object_put(o);
}

Test(meshctl_output, pods_without_array_is_protocol_error)
{
	struct json_object *o = json_tokener_parse("{\"api\":1,\"pods\":{}}");
	struct capture c;

	open_capture(&c);
	cr_expect_eq(cmd_pods_render(c.f, o), -EPROTO);
	close_capture(&c);
	cr_expect_eq(c.len, 0);
	free(c.buf);
	json_object_put(o);
}

/* ---------------------------------------------------------------- end to end */

static const char status_doc[] =
	"{\"api\":1,\"version\":\"0.1.0\",\"mode\":\"ebpf\",\"uptime_s\":12,"
	"\"cgroup\":\"/sys/fs/cgroup/unified/x\",\"bpffs\":\"/sys/fs/bpf/weft\","
	"\"pods\":{\"known\":3,\"meshed\":2},\"services\":4,"
	"\"connections\":{\"active\":1,\"total\":57},"
	"\"registries\":[{\"name\":\"file:/etc/weft/registry.yaml\",\"loads\":2,"
	"\"load_errors\":0,\"objects_rejected\":1,\"last_error\":\"\"}],"
	"\"bpf\":{\"counters\":{\"redirected\":57,\"not_enrolled\":3}}}";

/* The handler context is the document to answer with. */
static int h_doc(const struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	resp->body = strdup(ctx);
	resp->body_len = resp->body ? strlen(resp->body) : 0;
	return resp->body ? 0 : -ENOMEM;
}

static int h_status(const struct http_request *req, struct http_response *resp, void *ctx)
{
	return h_doc(req, resp, (void *)(ctx ? ctx : status_doc));
}

static int h_pods(const struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)ctx;
	return h_doc(req, resp, (void *)pods_doc);
}

static const struct http_route agent_routes[] = {
	{ "GET", "/v1/status", h_status },
	{ "GET", "/v1/pods", h_pods },
};

static struct http_fixture fx;

static void start_agent(void)
{
	cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), 0);
	http_fixture_start(&fx, agent_routes, 2, NULL, 0);
}

static void stop_agent(void)
{
	http_fixture_stop(&fx);
	curl_global_cleanup();
}

struct run {
	int status;
	struct capture out, err;
};

/* meshctl_main() on "meshctl --socket <fixture> ARGS..." */
static void run_line(struct run *r, const char *sock, const char *args)
{
	char line[512], *argv[64];
	int argc = 0;

	snprintf(line, sizeof(line), "meshctl --socket %s %s", sock, args);
	for (char *tok = strtok(line, " "); tok && argc < 64; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	open_capture(&r->out);
	open_capture(&r->err);
	r->status = meshctl_main(argc, argv, r->out.f, r->err.f);
	close_capture(&r->out);
	close_capture(&r->err);
}

static void run_done(struct run *r)
{
	free(r->out.buf);
	free(r->err.buf);
}

TestSuite(meshctl_e2e, .init = start_agent, .fini = stop_agent, .timeout = 30);

Test(meshctl_e2e, pods_table)
{
	struct run r;

	run_line(&r, fx.sock, "pods");
	cr_expect_eq(r.status, MESHCTL_OK, "stderr: %s", r.err.buf);
	cr_expect_str_eq(r.out.buf, pods_table);
	cr_expect_str_eq(r.err.buf, "");
	run_done(&r);
}

Test(meshctl_e2e, pods_json_is_the_answer)
{
	struct json_object *got, *want = json_tokener_parse(pods_doc);
	struct run r;

	/* "pod" and "pods" share "po": "pods" needs its last letter. */
	run_line(&r, fx.sock, "-o json pods");
	cr_assert_eq(r.status, MESHCTL_OK, "stderr: %s", r.err.buf);
	got = json_tokener_parse(r.out.buf);
	cr_assert_not_null(got, "not JSON: %s", r.out.buf);
	cr_expect(json_object_equal(got, want));
	json_object_put(got);
	json_object_put(want);
	run_done(&r);
}

Test(meshctl_e2e, status_lines)
{
	struct run r;

	run_line(&r, fx.sock, "status");
	cr_expect_eq(r.status, MESHCTL_OK, "stderr: %s", r.err.buf);
	cr_expect_not_null(strstr(r.out.buf, "\nmode                             ebpf\n"), "%s",
			   r.out.buf);
	cr_expect_not_null(strstr(r.out.buf, "\npods.meshed                      2\n"));
	cr_expect_not_null(strstr(r.out.buf, "\nregistries[0].objects_rejected   1\n"));
	cr_expect_not_null(strstr(r.out.buf, "\nbpf.counters.not_enrolled        3\n"));
	run_done(&r);
}

Test(meshctl_e2e, agent_not_running)
{
	char sock[160];
	struct run r;

	snprintf(sock, sizeof(sock), "%s/none.sock", fx.dir);
	run_line(&r, sock, "status");
	cr_expect_eq(r.status, MESHCTL_ERR);
	cr_expect_str_eq(r.out.buf, "");
	cr_expect(strstr(r.err.buf, "meshctl: agent not running: no socket at ") == r.err.buf,
		  "%s", r.err.buf);
	cr_expect_not_null(strstr(r.err.buf, "(start weft-agent or pass --socket)\n"));
	run_done(&r);

	run_line(&r, sock, "-j pods");
	cr_expect_eq(r.status, MESHCTL_ERR);
	cr_expect(!strncmp(r.err.buf, "{\"error\":\"agent not running", 27), "%s", r.err.buf);
	run_done(&r);
}

Test(meshctl_e2e, stale_socket_is_not_running)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct run r;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/stale.sock", fx.dir);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	run_line(&r, sun.sun_path, "status");
	cr_expect_eq(r.status, MESHCTL_ERR);
	cr_expect_not_null(strstr(r.err.buf, "nothing listens on"), "%s", r.err.buf);
	unlink(sun.sun_path);
	run_done(&r);
}

Test(meshctl_e2e, silent_agent_times_out)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct run r;

	/* Listening but never accepting: connect succeeds, no answer comes. */
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/silent.sock", fx.dir);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	cr_assert_eq(listen(fd, 4), 0);
	run_line(&r, sun.sun_path, "--timeout 200ms status");
	cr_expect_eq(r.status, MESHCTL_ERR);
	cr_expect_not_null(strstr(r.err.buf, "did not answer within 200 ms"), "%s", r.err.buf);
	close(fd);
	unlink(sun.sun_path);
	run_done(&r);
}

Test(meshctl_e2e, other_api_version_is_refused)
{
	struct http_fixture other;
	struct run r;

	http_fixture_start(&other, agent_routes, 1, (void *)"{\"api\":2,\"version\":\"9.0.0\"}", 0);
	run_line(&r, other.sock, "status");
	cr_expect_eq(r.status, MESHCTL_ERR);
	cr_expect_str_eq(r.err.buf, "meshctl: agent speaks admin API v2 and this meshctl v1: use "
				    "the meshctl of the agent's release\n");
	run_done(&r);
	/* An agent without /v1/pods answers 404 with its {"error"}. */
	run_line(&r, other.sock, "pods");
	cr_expect_eq(r.status, MESHCTL_ERR);
	cr_expect_str_eq(r.err.buf, "meshctl: agent: no such path '/v1/pods' (HTTP 404 on "
				    "/v1/pods)\n");
	run_done(&r);
	http_fixture_stop(&other);
}

Test(meshctl_e2e, usage_errors_exit_2)
{
	struct run r;

	run_line(&r, fx.sock, "pods extra");
	cr_expect_eq(r.status, MESHCTL_USAGE);
	cr_expect_str_eq(r.err.buf, "meshctl: pods takes no arguments, got 'extra' (see "
				    "'meshctl pods --help')\n");
	run_done(&r);
	run_line(&r, fx.sock, "frob");
	cr_expect_eq(r.status, MESHCTL_USAGE);
	cr_expect_str_eq(r.err.buf, "meshctl: unknown command 'frob' (see 'meshctl --help')\n");
	run_done(&r);
	run_line(&r, fx.sock, "--json --bad");
	cr_expect_eq(r.status, MESHCTL_USAGE);
	cr_expect_str_eq(r.err.buf,
			 "{\"error\":\"unknown option '--bad' (see 'meshctl --help')\"}\n");
	run_done(&r);
	run_line(&r, fx.sock, "");
	cr_expect_eq(r.status, MESHCTL_USAGE);
	cr_expect(!strncmp(r.err.buf, "Usage: meshctl", 14));
	run_done(&r);
}

Test(meshctl_e2e, help_and_version)
{
	struct run r;

	run_line(&r, fx.sock, "--help");
	cr_expect_eq(r.status, MESHCTL_OK);
	cr_expect(!strncmp(r.out.buf, "Usage: meshctl [OPTIONS] COMMAND [ARGS]\n", 40));
	cr_expect_not_null(strstr(r.out.buf, "\n  pods "));
	run_done(&r);
	run_line(&r, fx.sock, "pods --help");
	cr_expect_eq(r.status, MESHCTL_OK);
	cr_expect(!strncmp(r.out.buf, "Usage: meshctl [OPTIONS] pods [NAMESPACE/NAME]\n", 47), "%s",
		  r.out.buf);
	run_done(&r);
	run_line(&r, fx.sock, "version");
	cr_expect_eq(r.status, MESHCTL_OK);
	cr_expect(!strncmp(r.out.buf, "meshctl ", 8));
	cr_expect_not_null(strstr(r.out.buf, "(admin API v1)\n"));
	run_done(&r);
	run_line(&r, fx.sock, "-o json version");
	cr_expect_eq(r.status, MESHCTL_OK);
	cr_expect_not_null(strstr(r.out.buf, "\"api\": 1"), "%s", r.out.buf);
	run_done(&r);
}
