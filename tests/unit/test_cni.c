// SPDX-License-Identifier: GPL-2.0-only
/* weft-cni: config, env and CNI_ARGS parsing, the agent request and reply,
 * error mapping, result conversion; then whole invocations, in process
 * (cni_run) and of the real binary (build/san/weft-cni, or $WEFT_BUILD/san),
 * against a fake agent: a unix socket server thread in a temp dir.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "cni.h"

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ---------------------------------------------------------------- fixtures */

#define PREV_V1                                                                                 \
	"{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"veth1\"},"                       \
	"{\"name\":\"eth0\",\"mac\":\"aa:bb:cc:dd:ee:ff\",\"sandbox\":\"/run/netns/p1\"}],"     \
	"\"ips\":[{\"address\":\"198.18.1.2/24\",\"gateway\":\"198.18.1.1\",\"interface\":1},"  \
	"{\"address\":\"198.18.1.1/24\",\"interface\":0},"                                      \
	"{\"address\":\"fd00::2/64\",\"interface\":1}],"                                        \
	"\"routes\":[{\"dst\":\"0.0.0.0/0\"}],\"dns\":{\"nameservers\":[\"198.18.0.10\"]}}"

static char *conf_text(const char *version, const char *extra)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf),
		 "{\"cniVersion\":\"%s\",\"name\":\"k8s-pod-network\",\"type\":\"weft-cni\"%s%s}",
		 version, extra[0] ? "," : "", extra);
	return buf;
}

static const struct cni_env env_add = {
	.command = "ADD",
	.container_id = "c0ffee",
	.netns = "/run/netns/p1",
	.ifname = "eth0",
	.args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=client-a;"
		"K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=1234-abcd",
	.path = "/opt/cni/bin",
};

static void parse_ok(const char *text, enum cni_cmd cmd, struct cni_conf *conf)
{
	struct cni_error e = { 0 };

	cr_assert_eq(cni_conf_parse(text, strlen(text), cmd, conf, &e), 0, "%d %s: %s", e.code,
		     e.msg, e.details);
}

static int parse_code(const char *text, enum cni_cmd cmd, struct cni_error *e)
{
	struct cni_conf conf;

	*e = (struct cni_error){ 0 };
	cr_assert_eq(cni_conf_parse(text, strlen(text), cmd, &conf, e), -EINVAL);
	cr_assert_null(conf.root);
	return e->code;
}

/* ---------------------------------------------------------------- versions, args */

Test(cni_parse, commands_and_versions)
{
	enum cni_cmd c;

	cr_expect_eq(cni_cmd_parse("ADD", &c), 0);
	cr_expect_eq(c, CNI_CMD_ADD);
	cr_expect_eq(cni_cmd_parse("STATUS", &c), 0);
	cr_expect_eq(c, CNI_CMD_STATUS);
	cr_expect_eq(cni_cmd_parse("add", &c), -EINVAL);
	cr_expect(cni_version_supported("0.4.0"));
	cr_expect(cni_version_supported("1.1.0"));
	cr_expect_not(cni_version_supported("0.2.0"));
	cr_expect_not(cni_version_supported("1.0"));
	cr_expect_lt(cni_version_cmp("0.3.1", "0.4.0"), 0);
	cr_expect_gt(cni_version_cmp("1.10.0", "1.9.0"), 0);
	cr_expect_eq(cni_version_cmp("1.0.0", "1.0.0"), 0);
	cr_expect_lt(cni_version_cmp("x", "0.0.1"), 0);
	cr_expect_not(cni_version_valid("1.0"));
	cr_expect_not(cni_version_valid("1.0.0.0"));
	cr_expect_not(cni_version_valid("1..0"));
	cr_expect(cni_version_valid("2.0.0"));
	cr_expect_str_eq(cni_version_at(0), "0.3.0");
	cr_expect_null(cni_version_at(5));
}

Test(cni_parse, cni_args)
{
	char v[16];

	cr_expect_eq(cni_args_get("A=1;B=two;C=", "B", v, sizeof(v)), 0);
	cr_expect_str_eq(v, "two");
	cr_expect_eq(cni_args_get("A=1;B=two;C=", "C", v, sizeof(v)), 0);
	cr_expect_str_eq(v, "");
	cr_expect_eq(cni_args_get("A=1;;B=2;", "B", v, sizeof(v)), 0);
	cr_expect_str_eq(v, "2");
	cr_expect_eq(cni_args_get("AB=1", "A", v, sizeof(v)), -ENOENT);
	cr_expect_eq(cni_args_get("", "A", v, sizeof(v)), -ENOENT);
	cr_expect_eq(cni_args_get("A=1;junk", "A", v, sizeof(v)), -EINVAL);
	cr_expect_eq(cni_args_get("=1", "A", v, sizeof(v)), -EINVAL);
	cr_expect_eq(cni_args_get("A=0123456789abcdef", "A", v, sizeof(v)), -ENAMETOOLONG);
	/* A value may contain '='. */
	cr_expect_eq(cni_args_get("A=x=y", "A", v, sizeof(v)), 0);
	cr_expect_str_eq(v, "x=y");
}

/* ---------------------------------------------------------------- config */

Test(cni_parse, config_fields)
{
	struct cni_conf conf;

	parse_ok(conf_text("1.0.0", "\"agent_socket\":\"/tmp/a.sock\",\"log_level\":\"debug\","
				    "\"standalone\":true,\"prevResult\":" PREV_V1),
		 CNI_CMD_ADD, &conf);
	cr_expect_str_eq(conf.version, "1.0.0");
	cr_expect_str_eq(conf.name, "k8s-pod-network");
	cr_expect_str_eq(conf.agent_socket, "/tmp/a.sock");
	cr_expect(conf.has_log_level);
	cr_expect_eq(conf.log_level, LOG_LEVEL_DEBUG);
	cr_expect(conf.standalone);
	cr_expect_not_null(conf.prev_result);
	cni_conf_done(&conf);
	cni_conf_done(&conf);

	parse_ok(conf_text("0.4.0", ""), CNI_CMD_DEL, &conf);
	cr_expect_str_eq(conf.agent_socket, CNI_DEFAULT_SOCKET);
	cr_expect_not(conf.standalone);
	cr_expect_null(conf.prev_result);
	cni_conf_done(&conf);
}

Test(cni_parse, config_errors)
{
	struct cni_error e;

	cr_expect_eq(parse_code("{\"cniVersion\":", CNI_CMD_ADD, &e), CNI_ERR_DECODE);
	cr_expect_str_eq(e.details, "unexpected end of input");
	cr_expect_eq(parse_code("{} x", CNI_CMD_ADD, &e), CNI_ERR_DECODE);
	cr_expect_eq(parse_code("[1]", CNI_CMD_ADD, &e), CNI_ERR_DECODE);
	cr_expect_str_eq(e.details, "got a JSON array");
	cr_expect_eq(parse_code("", CNI_CMD_ADD, &e), CNI_ERR_DECODE);
	cr_expect_eq(parse_code("{\"name\":\"x\"}", CNI_CMD_ADD, &e),
		     CNI_ERR_INCOMPATIBLE_VERSION);
	cr_expect_eq(parse_code(conf_text("0.2.0", ""), CNI_CMD_ADD, &e),
		     CNI_ERR_INCOMPATIBLE_VERSION);
	cr_expect_not_null(strstr(e.details, "config is \"0.2.0\"; weft-cni supports 0.3.0"));
	cr_expect_eq(parse_code(conf_text("0.3.1", ""), CNI_CMD_CHECK, &e),
		     CNI_ERR_INCOMPATIBLE_VERSION);
	cr_expect_str_eq(e.details, "config version 0.3.1 does not allow CHECK (needs 0.4.0 or "
				    "later)");
	cr_expect_eq(parse_code(conf_text("1.0.0", ""), CNI_CMD_GC, &e),
		     CNI_ERR_INCOMPATIBLE_VERSION);
	cr_expect_eq(parse_code("{\"cniVersion\":\"1.0.0\"}", CNI_CMD_ADD, &e),
		     CNI_ERR_INVALID_CONFIG);
	cr_expect_str_eq(e.msg, "missing network name");
	cr_expect_eq(parse_code(conf_text("1.0.0", "\"agent_socket\":\"rel.sock\""), CNI_CMD_ADD,
				&e),
		     CNI_ERR_INVALID_CONFIG);
	cr_expect_str_eq(e.msg, "invalid agent_socket");
	cr_expect_eq(parse_code(conf_text("1.0.0", "\"log_level\":\"loud\""), CNI_CMD_ADD, &e),
		     CNI_ERR_INVALID_CONFIG);
	cr_expect_eq(parse_code(conf_text("1.0.0", "\"standalone\":\"yes\""), CNI_CMD_ADD, &e),
		     CNI_ERR_INVALID_CONFIG);
	cr_expect_eq(parse_code(conf_text("1.0.0", "\"prevResult\":[]"), CNI_CMD_ADD, &e),
		     CNI_ERR_INVALID_CONFIG);
}

/* ---------------------------------------------------------------- request */

static int build(const struct cni_env *env, const char *extra, enum cni_cmd cmd,
		 struct cni_req *req, struct cni_error *e)
{
	struct cni_conf conf;
	int err;

	parse_ok(conf_text("1.0.0", extra), cmd, &conf);
	*e = (struct cni_error){ 0 };
	err = cni_req_build(env, &conf, cmd, req, e);
	cni_conf_done(&conf);
	return err;
}

Test(cni_req, add_from_env_args_and_prev_result)
{
	struct cni_error e;
	struct cni_req req;

	cr_assert_eq(build(&env_add, "\"prevResult\":" PREV_V1, CNI_CMD_ADD, &req, &e), 0,
		     "%s: %s", e.msg, e.details);
	cr_expect_str_eq(req.container_id, "c0ffee");
	cr_expect_str_eq(req.netns, "/run/netns/p1");
	cr_expect_str_eq(req.ifname, "eth0");
	cr_expect_str_eq(req.ns, "demo");
	cr_expect_str_eq(req.name, "client-a");
	cr_expect_str_eq(req.uid, "1234-abcd");
	/* 198.18.1.1 sits on the host-side veth (no sandbox): not the pod's. */
	cr_assert_eq(req.n_ips, 2);
	cr_expect_str_eq(req.ips[0], "198.18.1.2");
	cr_expect_str_eq(req.ips[1], "fd00::2");
}

Test(cni_req, env_errors_name_the_variable)
{
	struct cni_env env = env_add;
	struct cni_error e;
	struct cni_req req;
	const char *prev = "\"prevResult\":" PREV_V1;

	env.netns = NULL;
	env.ifname = "";
	cr_expect_eq(build(&env, prev, CNI_CMD_ADD, &req, &e), -EINVAL);
	cr_expect_eq(e.code, CNI_ERR_INVALID_ENV);
	cr_expect_str_eq(e.msg, "missing environment variable CNI_NETNS, CNI_IFNAME");

	env = env_add;
	env.container_id = "-bad id";
	cr_expect_eq(build(&env, prev, CNI_CMD_ADD, &req, &e), -EINVAL);
	cr_expect_str_eq(e.msg, "invalid CNI_CONTAINERID");

	env = env_add;
	env.ifname = "a-very-long-ifname0";
	cr_expect_eq(build(&env, prev, CNI_CMD_ADD, &req, &e), -EINVAL);
	cr_expect_str_eq(e.msg, "invalid CNI_IFNAME");

	env = env_add;
	env.netns = "run/netns/p1";
	cr_expect_eq(build(&env, prev, CNI_CMD_ADD, &req, &e), -EINVAL);
	cr_expect_str_eq(e.msg, "invalid CNI_NETNS");

	env = env_add;
	env.args = "K8S_POD_NAME=a";
	cr_expect_eq(build(&env, prev, CNI_CMD_ADD, &req, &e), -EINVAL);
	cr_expect_eq(e.code, CNI_ERR_INVALID_ENV);
	cr_expect_str_eq(e.msg, "missing K8S_POD_NAMESPACE in CNI_ARGS");

	env.args = "K8S_POD_NAMESPACE=Demo;K8S_POD_NAME=a";
	cr_expect_eq(build(&env, prev, CNI_CMD_ADD, &req, &e), -EINVAL);
	cr_expect_str_eq(e.msg, "invalid K8S_POD_NAMESPACE in CNI_ARGS");

	env.args = "K8S_POD_NAMESPACE=demo;junk";
	cr_expect_eq(build(&env, prev, CNI_CMD_ADD, &req, &e), -EINVAL);
	cr_expect_str_eq(e.msg, "invalid CNI_ARGS");
}

Test(cni_req, standalone_defaults_the_pod_identity)
{
	struct cni_env env = env_add;
	struct cni_error e;
	struct cni_req req;

	env.args = NULL;
	cr_assert_eq(build(&env, "\"standalone\":true,\"prevResult\":" PREV_V1, CNI_CMD_ADD,
			   &req, &e),
		     0, "%s", e.msg);
	cr_expect_str_eq(req.ns, "default");
	cr_expect_str_eq(req.name, "c0ffee");
	cr_expect_str_eq(req.uid, "");
}

Test(cni_req, chained_only)
{
	struct cni_error e;
	struct cni_req req;

	cr_expect_eq(build(&env_add, "", CNI_CMD_ADD, &req, &e), -EINVAL);
	cr_expect_eq(e.code, CNI_ERR_INVALID_CONFIG);
	cr_expect_str_eq(e.msg, "weft-cni is a chained plugin: prevResult is missing");
	cr_expect_eq(build(&env_add, "", CNI_CMD_CHECK, &req, &e), -EINVAL);
	cr_expect_eq(e.code, CNI_ERR_INVALID_CONFIG);
}

Test(cni_req, prev_result_errors)
{
	struct cni_error e;
	struct cni_req req;

	cr_expect_eq(build(&env_add, "\"prevResult\":{\"ips\":[{\"address\":\"198.18.1.2\"}]}",
			   CNI_CMD_ADD, &req, &e),
		     -EINVAL);
	cr_expect_eq(e.code, CNI_ERR_INVALID_CONFIG);
	cr_expect_str_eq(e.details, "prevResult.ips[0].address '198.18.1.2' is not IP/LEN");
	cr_expect_eq(build(&env_add, "\"prevResult\":{\"ips\":[{\"address\":\"198.18.1.2/33\"}]}",
			   CNI_CMD_ADD, &req, &e),
		     -EINVAL);
	cr_expect_eq(build(&env_add, "\"prevResult\":{\"ips\":{}}", CNI_CMD_ADD, &req, &e),
		     -EINVAL);
	cr_expect_eq(build(&env_add, "\"prevResult\":{\"ips\":[{}]}", CNI_CMD_ADD, &req, &e),
		     -EINVAL);
	cr_expect_str_eq(e.details, "prevResult.ips[0] has no \"address\" string");
	/* No ips at all: a chain without IPAM. */
	cr_expect_eq(build(&env_add, "\"prevResult\":{}", CNI_CMD_ADD, &req, &e), 0);
	cr_expect_eq(req.n_ips, 0);
}

Test(cni_req, too_many_ips)
{
	char extra[2048];
	size_t off = (size_t)snprintf(extra, sizeof(extra), "\"prevResult\":{\"ips\":[");
	struct cni_error e;
	struct cni_req req;

	for (int i = 0; i <= CNI_PROTO_MAX_IPS; i++)
		off += (size_t)snprintf(extra + off, sizeof(extra) - off,
					"%s{\"address\":\"198.18.2.%d/24\"}", i ? "," : "", i + 1);
	snprintf(extra + off, sizeof(extra) - off, "]}");
	cr_expect_eq(build(&env_add, extra, CNI_CMD_ADD, &req, &e), -EINVAL);
	cr_expect_str_eq(e.details, "more than 8 pod IPs in prevResult.ips");
}

Test(cni_req, del_is_lenient)
{
	struct cni_env env = env_add;
	struct cni_error e;
	struct cni_req req;

	env.command = "DEL";
	env.netns = NULL;
	env.args = "garbage";
	cr_assert_eq(build(&env, "\"prevResult\":{\"ips\":7}", CNI_CMD_DEL, &req, &e), 0,
		     "%s", e.msg);
	cr_expect_str_eq(req.netns, "");
	cr_expect_str_eq(req.ns, "");
	cr_expect_eq(req.n_ips, 0);
	/* The container ID is how the agent finds the pod: still required. */
	env.container_id = NULL;
	cr_expect_eq(build(&env, "", CNI_CMD_DEL, &req, &e), -EINVAL);
	cr_expect_eq(e.code, CNI_ERR_INVALID_ENV);
}

Test(cni_req, encode_matches_the_protocol)
{
	struct cni_error e;
	struct cni_req req;
	struct json_object *o, *v;
	size_t len;
	char *line;

	cr_assert_eq(build(&env_add, "\"prevResult\":" PREV_V1, CNI_CMD_ADD, &req, &e), 0);
	line = cni_req_encode(&req, &len);
	cr_assert_not_null(line);
	cr_expect_eq(strlen(line), len);
	cr_expect_eq(line[len - 1], '\n');
	cr_expect_eq(strchr(line, '\n'), line + len - 1, "one line only");
	o = json_tokener_parse(line);
	cr_assert_not_null(o);
	cr_expect(json_object_object_get_ex(o, "version", &v) &&
		  json_object_get_int(v) == CNI_PROTO_VERSION);
	json_object_object_get_ex(o, "command", &v);
	cr_expect_str_eq(json_object_get_string(v), "ADD");
	json_object_object_get_ex(o, "namespace", &v);
	cr_expect_str_eq(json_object_get_string(v), "demo");
	json_object_object_get_ex(o, "netns", &v);
	cr_expect_str_eq(json_object_get_string(v), "/run/netns/p1");
	json_object_object_get_ex(o, "ips", &v);
	cr_expect_str_eq(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
			 "[\"198.18.1.2\",\"fd00::2\"]");
	json_object_put(o);
	free(line);
}

Test(cni_req, reply_decoding)
{
	struct cni_reply rep;

	cr_expect_eq(cni_reply_decode("{\"ok\":true,\"meshed\":true,\"reason\":\"ns x\"}",
				      &rep),
		     0);
	cr_expect(rep.ok);
	cr_expect(rep.meshed);
	cr_expect_str_eq(rep.reason, "ns x");
	cr_expect_eq(cni_reply_decode("{\"ok\":false,\"code\":7,\"msg\":\"no\",\"details\":\"d\"}",
				      &rep),
		     0);
	cr_expect_not(rep.ok);
	cr_expect_eq(rep.err.code, 7);
	cr_expect_str_eq(rep.err.msg, "no");
	cr_expect_str_eq(rep.err.details, "d");
	cr_expect_eq(cni_reply_decode("{\"ok\":false}", &rep), 0);
	cr_expect_eq(rep.err.code, CNI_ERR_IO);
	cr_expect_str_eq(rep.err.msg, "the agent refused the request");
	cr_expect_eq(cni_reply_decode("{\"ok\":\"yes\"}", &rep), -EPROTO);
	cr_expect_eq(cni_reply_decode("nope", &rep), -EPROTO);
	cr_expect_eq(cni_reply_decode("[]", &rep), -EPROTO);
}

/* ---------------------------------------------------------------- result */

Test(cni_result, same_version_is_the_same_object)
{
	struct json_object *prev = json_tokener_parse(PREV_V1), *out;
	struct cni_error e = { 0 };

	out = cni_result_for(prev, "1.0.0", &e);
	cr_expect_eq(out, prev);
	json_object_put(out);
	json_object_put(prev);
}

Test(cni_result, converts_ip_versions)
{
	struct json_object *prev = json_tokener_parse(PREV_V1), *down, *up;
	struct cni_error e = { 0 };
	const char *s;

	down = cni_result_for(prev, "0.4.0", &e);
	cr_assert_not_null(down);
	s = json_object_to_json_string_ext(down, JSON_FLAGS);
	cr_expect_not_null(strstr(s, "\"cniVersion\":\"0.4.0\""), "%s", s);
	cr_expect_not_null(strstr(s, "\"address\":\"198.18.1.2/24\",\"gateway\":\"198.18.1.1\","
				     "\"interface\":1,\"version\":\"4\""), "%s", s);
	cr_expect_not_null(strstr(s, "\"address\":\"fd00::2/64\",\"interface\":1,"
				     "\"version\":\"6\""), "%s", s);
	/* The input is left alone. */
	cr_expect_null(strstr(json_object_to_json_string(prev), "\"version\""));

	up = cni_result_for(down, "1.1.0", &e);
	cr_assert_not_null(up);
	s = json_object_to_json_string_ext(up, JSON_FLAGS);
	cr_expect_null(strstr(s, "\"version\""), "%s", s);
	cr_expect_not_null(strstr(s, "\"cniVersion\":\"1.1.0\""));
	json_object_put(up);
	json_object_put(down);
	json_object_put(prev);
}

Test(cni_result, unknown_prev_version)
{
	struct json_object *prev = json_tokener_parse("{\"cniVersion\":\"0.2.0\",\"ip4\":{}}");
	struct cni_error e = { 0 };

	cr_expect_null(cni_result_for(prev, "1.0.0", &e));
	cr_expect_eq(e.code, CNI_ERR_INCOMPATIBLE_VERSION);
	json_object_put(prev);
}

/* ---------------------------------------------------------------- fake agent */

struct fake_agent {
	char dir[64];
	char sock[96];
	int lfd;
	const char *reply;	/* answer line without "\n"; NULL: close without one */
	int n_conns;		/* connections to serve before the thread ends */
	int served;
	char req[CNI_PROTO_MAX_LINE];	/* the last request line */
	pthread_t thread;
};

static struct fake_agent agent;

static void *fake_serve(void *arg)
{
	struct fake_agent *a = arg;

	for (; a->served < a->n_conns; a->served++) {
		struct pollfd p = { .fd = a->lfd, .events = POLLIN };
		size_t got = 0;
		int fd;

		/* Bounded, so a test that never connects still ends. */
		if (poll(&p, 1, 5000) != 1)
			break;
		fd = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd == -1)
			break;
		while (got < sizeof(a->req) - 1) {
			ssize_t n = recv(fd, a->req + got, sizeof(a->req) - 1 - got, 0);

			if (n <= 0)
				break;
			got += (size_t)n;
			if (memchr(a->req, '\n', got))
				break;
		}
		a->req[got] = '\0';
		/* The plugin may hang up first (reply too long): no SIGPIPE. */
		if (a->reply) {
			(void)send(fd, a->reply, strlen(a->reply), MSG_NOSIGNAL);
			(void)send(fd, "\n", 1, MSG_NOSIGNAL);
		}
		close(fd);
	}
	return NULL;
}

static void make_dir(void)
{
	memset(&agent, 0, sizeof(agent));
	agent.lfd = -1;
	snprintf(agent.dir, sizeof(agent.dir), "/tmp/weft-cni-XXXXXX");
	cr_assert_not_null(mkdtemp(agent.dir));
	snprintf(agent.sock, sizeof(agent.sock), "%s/cni.sock", agent.dir);
}

static void agent_start(const char *reply, int n_conns)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	agent.reply = reply;
	agent.n_conns = n_conns;
	agent.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(agent.lfd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", agent.sock);
	cr_assert_eq(bind(agent.lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	cr_assert_eq(listen(agent.lfd, 8), 0);
	cr_assert_eq(pthread_create(&agent.thread, NULL, fake_serve, &agent), 0);
}

static void agent_wait(void)
{
	pthread_join(agent.thread, NULL);
}

/* After agent_wait(): no agent any more. */
static void agent_stop(void)
{
	close(agent.lfd);
	agent.lfd = -1;
	unlink(agent.sock);
	agent.served = 0;
}

/* After agent_wait(): listen afresh with another answer. */
static void agent_restart(const char *reply, int n_conns)
{
	close(agent.lfd);
	unlink(agent.sock);
	agent.served = 0;
	agent_start(reply, n_conns);
}

/* The agent's node state file, next to its socket, as the plugin finds it
 * by default.
 */
static void write_state(const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/" CNI_PROTO_STATE_FILE, agent.dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* "demo" meshed, "plain" not, as an agent that had synced writes it. */
#define STATE_DEMO_MESHED "{\"version\":1,\"generation\":7,\"synced\":true,\"meshed\":[\"demo\"]}\n"
#define STATE_NONE_MESHED "{\"version\":1,\"generation\":7,\"synced\":true,\"meshed\":[]}\n"

/* A socket that listens but never accepts: whether the plugin connected
 * shows as a pending connection.
 */
static void listen_only(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	agent.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(agent.lfd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", agent.sock);
	cr_assert_eq(bind(agent.lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	cr_assert_eq(listen(agent.lfd, 8), 0);
}

static bool someone_connected(void)
{
	struct pollfd p = { .fd = agent.lfd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

static void clean_dir(void)
{
	char path[128];

	if (agent.lfd >= 0)
		close(agent.lfd);
	unlink(agent.sock);
	snprintf(path, sizeof(path), "%s/" CNI_PROTO_STATE_FILE, agent.dir);
	unlink(path);
	rmdir(agent.dir);
}

/* A config whose agent_socket is the fake agent's. */
static char *conf_for_agent(const char *version, const char *extra)
{
	char more[3072];

	snprintf(more, sizeof(more), "\"agent_socket\":\"%s\"%s%s", agent.sock,
		 extra[0] ? "," : "", extra);
	return conf_text(version, more);
}

struct outcome {
	int status;
	char out[8192];
	struct json_object *json;	/* parsed out, or NULL */
	int code;			/* json.code, or 0 */
};

static void outcome_done(struct outcome *o)
{
	json_object_put(o->json);
	o->json = NULL;
}

static void outcome_parse(struct outcome *o)
{
	struct json_object *v;

	o->json = o->out[0] ? json_tokener_parse(o->out) : NULL;
	o->code = 0;
	if (o->json && json_object_object_get_ex(o->json, "code", &v))
		o->code = json_object_get_int(v);
}

/* cni_run() in this process. */
static void run_in_process(const struct cni_env *env, const char *conf, struct outcome *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	o->status = cni_run(env, conf, strlen(conf), f);
	fclose(f);
	snprintf(o->out, sizeof(o->out), "%s", buf);
	free(buf);
	outcome_parse(o);
}

static const char *err_msg(const struct outcome *o)
{
	struct json_object *v;

	if (o->json && json_object_object_get_ex(o->json, "msg", &v))
		return json_object_get_string(v);
	return "";
}

/* ---------------------------------------------------------------- cni_run */

TestSuite(cni_run, .init = make_dir, .fini = clean_dir, .timeout = 30);

Test(cni_run, add_tells_the_agent_and_passes_prev_result)
{
	struct outcome o;
	struct json_object *req, *v;

	agent_start("{\"ok\":true,\"meshed\":true,\"reason\":\"namespace demo is meshed\"}", 1);
	run_in_process(&env_add, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	agent_wait();
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, PREV_V1 "\n");
	req = json_tokener_parse(agent.req);
	cr_assert_not_null(req, "request: %s", agent.req);
	json_object_object_get_ex(req, "name", &v);
	cr_expect_str_eq(json_object_get_string(v), "client-a");
	json_object_object_get_ex(req, "uid", &v);
	cr_expect_str_eq(json_object_get_string(v), "1234-abcd");
	json_object_put(req);
	outcome_done(&o);
}

Test(cni_run, add_agent_error_is_passed_on)
{
	struct outcome o;

	agent_start("{\"ok\":false,\"code\":7,\"msg\":\"agent: cannot enroll pod\","
		    "\"details\":\"netns gone\"}", 1);
	run_in_process(&env_add, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	agent_wait();
	cr_expect_eq(o.status, 1);
	cr_expect_str_eq(o.out, "{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"agent: cannot "
				"enroll pod\",\"details\":\"netns gone\"}\n");
	outcome_done(&o);
}

Test(cni_run, add_agent_hangs_up_is_try_again)
{
	struct outcome o;

	agent_start(NULL, 1);
	run_in_process(&env_add, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	agent_wait();
	cr_expect_eq(o.code, CNI_ERR_TRY_AGAIN, "%s", o.out);
	cr_expect_not_null(strstr(err_msg(&o), "hung up without a reply"));
	outcome_done(&o);
}

Test(cni_run, add_garbage_reply_is_decode_error)
{
	struct outcome o;

	agent_start("{\"meshed\":true}", 1);
	run_in_process(&env_add, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	agent_wait();
	cr_expect_eq(o.code, CNI_ERR_DECODE, "%s", o.out);
	outcome_done(&o);
}

Test(cni_run, add_converts_a_prev_result_of_another_version)
{
	struct outcome o;

	agent_start("{\"ok\":true,\"meshed\":false}", 1);
	run_in_process(&env_add, conf_for_agent("0.4.0", "\"prevResult\":" PREV_V1), &o);
	agent_wait();
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_not_null(strstr(o.out, "\"cniVersion\":\"0.4.0\""));
	cr_expect_not_null(strstr(o.out, "\"version\":\"6\""));
	outcome_done(&o);
}

Test(cni_run, check_asks_the_agent)
{
	struct cni_env env = env_add;
	struct outcome o;

	env.command = "CHECK";
	agent_start("{\"ok\":false,\"code\":5,\"msg\":\"agent: check failed\"}", 1);
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	agent_wait();
	cr_expect_eq(o.code, CNI_ERR_IO, "%s", o.out);
	cr_expect_not_null(strstr(agent.req, "\"command\":\"CHECK\""));
	outcome_done(&o);
	agent_restart("{\"ok\":true}", 1);
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	agent_wait();
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, "");
	outcome_done(&o);
}

Test(cni_run, del_of_unknown_pod_succeeds)
{
	struct cni_env env = env_add;
	struct outcome o;

	env.command = "DEL";
	agent_start("{\"ok\":false,\"code\":3,\"msg\":\"no such container\"}", 1);
	run_in_process(&env, conf_for_agent("1.0.0", ""), &o);
	agent_wait();
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, "");
	cr_expect_not_null(strstr(agent.req, "\"command\":\"DEL\""));
	outcome_done(&o);
}

Test(cni_run, del_agent_failure_is_an_error)
{
	struct cni_env env = env_add;
	struct outcome o;

	env.command = "DEL";
	agent_start("{\"ok\":false,\"code\":5,\"msg\":\"agent: cannot remove nft rules\"}", 1);
	run_in_process(&env, conf_for_agent("1.0.0", ""), &o);
	agent_wait();
	cr_expect_eq(o.status, 1);
	cr_expect_eq(o.code, CNI_ERR_IO, "%s", o.out);
	outcome_done(&o);
}

Test(cni_run, status_asks_the_agent_whether_it_has_synced)
{
	struct cni_env env = { .command = "STATUS" };
	struct outcome o;

	/* No agent: not available. */
	run_in_process(&env, conf_for_agent("1.1.0", ""), &o);
	cr_expect_eq(o.status, 1);
	cr_expect_eq(o.code, CNI_ERR_NOT_AVAILABLE, "%s", o.out);
	cr_expect_not_null(strstr(err_msg(&o), agent.sock));
	outcome_done(&o);

	/* An agent that has not synced answers 50 itself. */
	agent_start("{\"ok\":false,\"code\":50,\"msg\":\"agent: not ready\","
		    "\"details\":\"the agent's registries have not synced yet\"}", 1);
	run_in_process(&env, conf_for_agent("1.1.0", ""), &o);
	agent_wait();
	cr_expect_eq(o.code, CNI_ERR_NOT_AVAILABLE, "%s", o.out);
	cr_expect_str_eq(agent.req, "{\"version\":1,\"command\":\"STATUS\"}\n");
	outcome_done(&o);

	/* An agent that accepts and hangs up is not ready either. */
	agent_restart(NULL, 1);
	run_in_process(&env, conf_for_agent("1.1.0", ""), &o);
	agent_wait();
	cr_expect_eq(o.code, CNI_ERR_NOT_AVAILABLE, "%s", o.out);
	outcome_done(&o);

	/* Ready: nothing printed. A state file changes nothing. */
	write_state(STATE_NONE_MESHED);
	agent_restart("{\"ok\":true}", 1);
	run_in_process(&env, conf_for_agent("1.1.0", ""), &o);
	agent_wait();
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, "");
	outcome_done(&o);
}

Test(cni_run, gc_sends_the_valid_attachments)
{
	struct cni_env env = { .command = "GC" };
	struct outcome o;

	agent_start("{\"ok\":true}", 1);
	run_in_process(&env,
		       conf_for_agent("1.1.0", "\"cni.dev/valid-attachments\":["
					       "{\"containerID\":\"c1\",\"ifname\":\"eth0\"},"
					       "{\"containerID\":\"c2\",\"ifname\":\"eth0\"},"
					       "{\"containerID\":\"c1\",\"ifname\":\"net1\"}]"),
		       &o);
	agent_wait();
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, "");
	/* One id per container, however many interfaces it has. */
	cr_expect_str_eq(agent.req,
			 "{\"version\":1,\"command\":\"GC\",\"valid\":[\"c1\",\"c2\"]}\n");
	outcome_done(&o);

	/* An empty list is sent as such: every enrolment is stale. */
	agent_restart("{\"ok\":true}", 1);
	run_in_process(&env, conf_for_agent("1.1.0", "\"cni.dev/valid-attachments\":[]"), &o);
	agent_wait();
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(agent.req, "{\"version\":1,\"command\":\"GC\",\"valid\":[]}\n");
	outcome_done(&o);

	/* An agent failure is the GC's. */
	agent_restart("{\"ok\":false,\"code\":5,\"msg\":\"agent: GC: out of memory\"}", 1);
	run_in_process(&env, conf_for_agent("1.1.0", "\"cni.dev/valid-attachments\":[]"), &o);
	agent_wait();
	cr_expect_eq(o.code, CNI_ERR_IO, "%s", o.out);
	outcome_done(&o);
}

Test(cni_run, gc_without_an_agent_has_nothing_to_collect)
{
	struct cni_env env = { .command = "GC" };
	struct outcome o;

	run_in_process(&env, conf_for_agent("1.1.0", "\"cni.dev/valid-attachments\":[]"), &o);
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, "");
	outcome_done(&o);
}

Test(cni_run, gc_with_a_bad_attachment_list_is_code_7)
{
	static const char *const bad[] = {
		"",
		"\"cni.dev/valid-attachments\":{}",
		"\"cni.dev/valid-attachments\":[\"c1\"]",
		"\"cni.dev/valid-attachments\":[{\"ifname\":\"eth0\"}]",
		"\"cni.dev/valid-attachments\":[{\"containerID\":\"\"}]",
		"\"cni.dev/valid-attachments\":[{\"containerID\":7}]",
	};
	struct cni_env env = { .command = "GC" };
	struct outcome o;

	/* Nothing listens on the socket: a bad list must fail before any
	 * attempt, not be read as "keep nothing".
	 */
	listen_only();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run_in_process(&env, conf_for_agent("1.1.0", bad[i]), &o);
		cr_expect_eq(o.code, CNI_ERR_INVALID_CONFIG, "%s: %s", bad[i], o.out);
		cr_expect_not_null(strstr(err_msg(&o), "cni.dev/valid-attachments"), "%s", o.out);
		outcome_done(&o);
	}
	cr_expect_not(someone_connected());
}

Test(cni_run, gc_with_too_many_containers_collects_nothing)
{
	static char extra[(CNI_MAX_GC_IDS + 1) * 32 + 64];
	struct cni_env env = { .command = "GC" };
	struct outcome o;
	size_t off;

	off = (size_t)snprintf(extra, sizeof(extra), "\"cni.dev/valid-attachments\":[");
	for (int i = 0; i <= CNI_MAX_GC_IDS; i++)
		off += (size_t)snprintf(extra + off, sizeof(extra) - off,
					"%s{\"containerID\":\"c%d\"}", i ? "," : "", i);
	snprintf(extra + off, sizeof(extra) - off, "]");
	listen_only();
	/* conf_for_agent() has a small buffer: build the config here. */
	{
		static char conf[sizeof(extra) + 256];

		snprintf(conf, sizeof(conf),
			 "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"agent_socket\":\"%s\",%s}",
			 agent.sock, extra);
		run_in_process(&env, conf, &o);
	}
	cr_expect_eq(o.code, CNI_ERR_IO, "%s", o.out);
	cr_expect_str_eq(err_msg(&o), "too many valid attachments");
	cr_expect_not(someone_connected());
	outcome_done(&o);
}

/* ------------------------------------------------ a node that never blocks */

Test(cni_run, excluded_namespace_passes_without_the_agent)
{
	struct cni_env env = env_add;
	struct outcome o;

	env.args = "K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-1";
	/* A meshed-looking state file and a listener: neither is consulted. */
	write_state("{\"version\":1,\"synced\":true,\"meshed\":[\"kube-system\"]}");
	listen_only();
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, PREV_V1 "\n");
	cr_expect_not(someone_connected(), "an excluded pod's ADD contacted the agent");
	outcome_done(&o);

	env.command = "CHECK";
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_not(someone_connected());
	outcome_done(&o);
}

Test(cni_run, exclusion_list_is_configurable)
{
	struct cni_env env = env_add;
	struct outcome o;

	/* No state file, no agent: only what the list names passes. */
	run_in_process(&env,
		       conf_for_agent("1.0.0", "\"exclude_namespaces\":[\"demo\"],"
					       "\"prevResult\":" PREV_V1),
		       &o);
	cr_expect_eq(o.status, 0, "%s", o.out);
	outcome_done(&o);
	env.args = "K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-1";
	run_in_process(&env, conf_for_agent("1.0.0", "\"exclude_namespaces\":[],"
						     "\"prevResult\":" PREV_V1),
		       &o);
	cr_expect_eq(o.code, CNI_ERR_TRY_AGAIN, "an empty list excludes nothing: %s", o.out);
	outcome_done(&o);
}

Test(cni_run, unmeshed_namespace_passes_while_the_agent_is_down)
{
	struct cni_env env = env_add;
	struct outcome o;

	env.args = "K8S_POD_NAMESPACE=plain;K8S_POD_NAME=web-0";
	write_state(STATE_DEMO_MESHED);
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, PREV_V1 "\n");
	outcome_done(&o);
	env.command = "CHECK";
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.status, 0, "%s", o.out);
	outcome_done(&o);
}

Test(cni_run, unmeshed_namespace_passes_while_the_agent_syncs)
{
	struct cni_env env = env_add;
	struct outcome o;

	env.args = "K8S_POD_NAMESPACE=plain;K8S_POD_NAME=web-0";
	write_state(STATE_DEMO_MESHED);
	agent_start("{\"ok\":false,\"code\":11,\"msg\":\"agent: cannot enroll pod\","
		    "\"details\":\"the agent's registries have not synced yet\"}", 1);
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	agent_wait();
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, PREV_V1 "\n");
	/* It was offered to the agent, so a later label can mesh it. */
	cr_expect_not_null(strstr(agent.req, "\"command\":\"ADD\""), "%s", agent.req);
	outcome_done(&o);
}

Test(cni_run, unmeshed_namespace_still_gets_the_agents_own_errors)
{
	struct cni_env env = env_add;
	struct outcome o;

	/* The agent answered: it decides, whatever the file says. */
	env.args = "K8S_POD_NAMESPACE=plain;K8S_POD_NAME=web-0";
	write_state(STATE_DEMO_MESHED);
	agent_start("{\"ok\":false,\"code\":5,\"msg\":\"agent: cannot enroll pod\"}", 1);
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	agent_wait();
	cr_expect_eq(o.code, CNI_ERR_IO, "%s", o.out);
	outcome_done(&o);
}

Test(cni_run, meshed_namespace_fails_closed_while_the_agent_is_down)
{
	struct cni_env env = env_add;
	struct outcome o;

	write_state(STATE_DEMO_MESHED);
	run_in_process(&env, conf_for_agent("1.0.0", "\"fail_open_without_agent\":true,"
						     "\"prevResult\":" PREV_V1),
		       &o);
	cr_expect_eq(o.status, 1);
	cr_expect_eq(o.code, CNI_ERR_TRY_AGAIN, "fail_open must not apply to a meshed pod: %s",
		     o.out);
	outcome_done(&o);
	env.command = "CHECK";
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.code, CNI_ERR_TRY_AGAIN, "%s", o.out);
	outcome_done(&o);
}

Test(cni_run, meshed_namespace_fails_closed_while_the_agent_syncs)
{
	struct outcome o;

	write_state("{\"version\":1,\"synced\":false,\"meshed\":[\"demo\"]}");
	agent_start("{\"ok\":false,\"code\":11,\"msg\":\"agent: cannot enroll pod\"}", 1);
	run_in_process(&env_add, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	agent_wait();
	cr_expect_eq(o.code, CNI_ERR_TRY_AGAIN, "%s", o.out);
	outcome_done(&o);
}

Test(cni_run, without_a_state_file_only_excluded_pods_pass_unless_told)
{
	struct cni_env env = env_add;
	struct outcome o;

	env.args = "K8S_POD_NAMESPACE=plain;K8S_POD_NAME=web-0";
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.code, CNI_ERR_TRY_AGAIN, "%s", o.out);
	outcome_done(&o);
	run_in_process(&env, conf_for_agent("1.0.0", "\"fail_open_without_agent\":true,"
						     "\"prevResult\":" PREV_V1),
		       &o);
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, PREV_V1 "\n");
	outcome_done(&o);
	/* fail_open covers an absent agent, not one that refuses. */
	agent_start("{\"ok\":false,\"code\":11,\"msg\":\"agent: cannot enroll pod\"}", 1);
	run_in_process(&env, conf_for_agent("1.0.0", "\"fail_open_without_agent\":true,"
						     "\"prevResult\":" PREV_V1),
		       &o);
	agent_wait();
	cr_expect_eq(o.code, CNI_ERR_TRY_AGAIN, "%s", o.out);
	outcome_done(&o);
}

Test(cni_run, a_broken_state_file_counts_as_none)
{
	static const char *const broken[] = {
		"",
		"{\"version\":1,\"synced\":true,\"meshed\":[",
		"{\"version\":9,\"synced\":true,\"meshed\":[]}",
		"[\"plain\"]",
	};
	struct cni_env env = env_add;
	struct outcome o;

	env.args = "K8S_POD_NAMESPACE=plain;K8S_POD_NAME=web-0";
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		write_state(broken[i]);
		run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
		cr_expect_eq(o.code, CNI_ERR_TRY_AGAIN, "'%s': %s", broken[i], o.out);
		outcome_done(&o);
	}
}

Test(cni_run, state_file_path_is_configurable)
{
	char extra[512], path[128];
	struct cni_env env = env_add;
	struct outcome o;
	FILE *f;

	snprintf(path, sizeof(path), "%s/elsewhere.json", agent.dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(STATE_NONE_MESHED, f);
	fclose(f);
	snprintf(extra, sizeof(extra), "\"state_file\":\"%s\",\"prevResult\":" PREV_V1, path);
	run_in_process(&env, conf_for_agent("1.0.0", extra), &o);
	unlink(path);
	cr_expect_eq(o.status, 0, "%s", o.out);
	outcome_done(&o);
}

Test(cni_run, check_of_a_pod_the_agent_does_not_know_fails)
{
	struct cni_env env = env_add;
	struct outcome o;

	env.command = "CHECK";
	write_state(STATE_DEMO_MESHED);
	agent_start("{\"ok\":false,\"code\":3,\"msg\":\"agent: check failed\","
		    "\"details\":\"container c0ffee is not enrolled\"}", 1);
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	agent_wait();
	cr_expect_eq(o.status, 1);
	cr_expect_eq(o.code, CNI_ERR_UNKNOWN_CONTAINER, "%s", o.out);
	outcome_done(&o);
}

Test(cni_run, del_twice_and_del_without_netns)
{
	struct cni_env env = env_add;
	struct outcome o;

	env.command = "DEL";
	agent_start("{\"ok\":true}", 2);
	for (int i = 0; i < 2; i++) {
		run_in_process(&env, conf_for_agent("1.0.0", ""), &o);
		cr_expect_eq(o.status, 0, "DEL %d: %s", i + 1, o.out);
		cr_expect_str_eq(o.out, "");
		outcome_done(&o);
	}
	agent_wait();
	cr_expect_eq(agent.served, 2);
	agent_stop();
	/* The runtime may lose the netns first, and the agent may be gone. */
	env.netns = "";
	run_in_process(&env, conf_for_agent("1.0.0", ""), &o);
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, "");
	outcome_done(&o);
	env.netns = NULL;
	env.args = NULL;
	run_in_process(&env, conf_for_agent("1.1.0", ""), &o);
	cr_expect_eq(o.status, 0, "%s", o.out);
	outcome_done(&o);
}

Test(cni_run, config_fields_of_the_wrong_type_are_code_7)
{
	static const char *const bad[] = {
		"\"exclude_namespaces\":\"kube-system\"",
		"\"exclude_namespaces\":[\"Kube_System\"]",
		"\"exclude_namespaces\":[1]",
		"\"fail_open_without_agent\":\"yes\"",
		"\"state_file\":\"relative/path\"",
		"\"state_file\":3",
	};
	struct outcome o;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run_in_process(&env_add, conf_for_agent("1.0.0", bad[i]), &o);
		cr_expect_eq(o.code, CNI_ERR_INVALID_CONFIG, "%s: %s", bad[i], o.out);
		outcome_done(&o);
	}
}

/* Every verb at every version of the matrix, against an agent that agrees. */
Test(cni_run, verb_version_matrix)
{
	static const char *const versions[] = { "0.4.0", "1.0.0", "1.1.0" };
	static const char *const verbs[] = { "ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION" };

	for (size_t v = 0; v < 3; v++) {
		for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
			bool new_verb = !strcmp(verbs[i], "STATUS") || !strcmp(verbs[i], "GC");
			bool allowed = !new_verb || !strcmp(versions[v], "1.1.0");
			bool talks = allowed && strcmp(verbs[i], "VERSION");
			struct cni_env env = env_add;
			char prev[sizeof(PREV_V1) + 64];
			struct outcome o;

			env.command = verbs[i];
			/* GC needs its list; the rest take prevResult. */
			snprintf(prev, sizeof(prev), "%s\"prevResult\":%s",
				 strcmp(verbs[i], "GC") ? "" : "\"cni.dev/valid-attachments\":[],",
				 PREV_V1);
			if (talks)
				agent_start("{\"ok\":true,\"meshed\":true}", 1);
			run_in_process(&env,
				       !strcmp(verbs[i], "VERSION") ?
					       conf_text(versions[v], "") :
					       conf_for_agent(versions[v], prev),
				       &o);
			if (talks) {
				agent_wait();
				agent_stop();
			}
			if (!allowed) {
				cr_expect_eq(o.code, CNI_ERR_INCOMPATIBLE_VERSION, "%s %s: %s",
					     verbs[i], versions[v], o.out);
				cr_expect_not_null(strstr(o.out, versions[v]), "%s", o.out);
				outcome_done(&o);
				continue;
			}
			cr_expect_eq(o.status, 0, "%s %s: %s", verbs[i], versions[v], o.out);
			if (!strcmp(verbs[i], "ADD"))
				cr_expect_not_null(strstr(o.out, versions[v]), "%s", o.out);
			else if (strcmp(verbs[i], "VERSION"))
				cr_expect_str_eq(o.out, "", "%s %s", verbs[i], versions[v]);
			outcome_done(&o);
		}
	}
}

/* Input that is not what the spec says never crashes: it is the right code. */
Test(cni_run, oversized_and_malformed_input)
{
	static char big[CNI_MAX_STDIN + 64], huge_args[70000], long_netns[PATH_MAX + 16];
	struct cni_env env = env_add;
	struct outcome o;

	memset(big, ' ', sizeof(big) - 1);
	memcpy(big, "{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}", 33);
	run_in_process(&env, big, &o);
	cr_expect_eq(o.code, CNI_ERR_INVALID_CONFIG, "%s", o.out);
	cr_expect_str_eq(err_msg(&o), "network config too large");
	outcome_done(&o);

	/* 2000 nested arrays: deeper than json-c parses. */
	{
		static char deep[4100];

		memset(deep, '[', 2000);
		memset(deep + 2000, ']', 2000);
		run_in_process(&env, deep, &o);
		cr_expect_eq(o.code, CNI_ERR_DECODE, "%s", o.out);
		outcome_done(&o);
	}
	run_in_process(&env, "\"just a string\"", &o);
	cr_expect_eq(o.code, CNI_ERR_DECODE, "%s", o.out);
	outcome_done(&o);
	run_in_process(&env, "{\"cniVersion\":\"1.0.0\",\"name\":\"n\"} trailing", &o);
	cr_expect_eq(o.code, CNI_ERR_DECODE, "%s", o.out);
	outcome_done(&o);
	run_in_process(&env, "{\"cniVersion\":1,\"name\":\"n\"}", &o);
	cr_expect_eq(o.code, CNI_ERR_INCOMPATIBLE_VERSION, "%s", o.out);
	outcome_done(&o);
	run_in_process(&env, "{\"cniVersion\":\"1.0.0\",\"name\":\"\"}", &o);
	cr_expect_eq(o.code, CNI_ERR_INVALID_CONFIG, "%s", o.out);
	outcome_done(&o);

	memset(huge_args, 'a', sizeof(huge_args) - 1);
	memcpy(huge_args, "K8S_POD_NAMESPACE=", 18);
	env.args = huge_args;
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.code, CNI_ERR_INVALID_ENV, "%s", o.out);
	cr_expect_str_eq(err_msg(&o), "invalid CNI_ARGS");
	outcome_done(&o);
	env.args = "K8S_POD_NAMESPACE";
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.code, CNI_ERR_INVALID_ENV, "%s", o.out);
	outcome_done(&o);

	env = env_add;
	long_netns[0] = '/';
	memset(long_netns + 1, 'n', sizeof(long_netns) - 2);
	env.netns = long_netns;
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.code, CNI_ERR_INVALID_ENV, "%s", o.out);
	cr_expect_str_eq(err_msg(&o), "invalid CNI_NETNS");
	outcome_done(&o);

	env = env_add;
	env.container_id = huge_args;
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.code, CNI_ERR_INVALID_ENV, "%s", o.out);
	cr_expect_str_eq(err_msg(&o), "invalid CNI_CONTAINERID");
	outcome_done(&o);

	env = env_add;
	env.ifname = "a-very-long-interface-name";
	run_in_process(&env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.code, CNI_ERR_INVALID_ENV, "%s", o.out);
	outcome_done(&o);

	env = env_add;
	env.command = huge_args;
	run_in_process(&env, "{}", &o);
	cr_expect_eq(o.code, CNI_ERR_INVALID_ENV, "%s", o.out);
	cr_expect_lt(strlen(o.out), 512, "the message quotes a bounded part of the input");
	outcome_done(&o);
}

Test(cni_run, version_answers_in_kind)
{
	struct cni_env env = { .command = "VERSION" };
	struct outcome o;

	run_in_process(&env, "{\"cniVersion\":\"0.4.0\"}", &o);
	cr_expect_eq(o.status, 0);
	cr_expect_str_eq(o.out, "{\"cniVersion\":\"0.4.0\",\"supportedVersions\":[\"0.3.0\","
				"\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]}\n");
	outcome_done(&o);
	run_in_process(&env, "", &o);
	cr_expect(!strncmp(o.out, "{\"cniVersion\":\"1.1.0\",", 22), "%s", o.out);
	outcome_done(&o);
}

Test(cni_run, command_errors)
{
	struct cni_env env = { 0 };
	struct outcome o;

	run_in_process(&env, "{}", &o);
	cr_expect_eq(o.code, CNI_ERR_INVALID_ENV);
	cr_expect_str_eq(err_msg(&o), "missing environment variable");
	outcome_done(&o);
	env.command = "UPGRADE";
	run_in_process(&env, "{}", &o);
	cr_expect_eq(o.code, CNI_ERR_INVALID_ENV);
	cr_expect_str_eq(err_msg(&o), "invalid CNI_COMMAND");
	outcome_done(&o);
}

Test(cni_run, agent_call_times_out)
{
	char reply[64];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* A listener that never accepts: the request fits the socket buffer,
	 * the reply never comes.
	 */
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", agent.sock);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	cr_assert_eq(listen(lfd, 1), 0);
	cr_expect_eq(cni_agent_call(agent.sock, "{}\n", 3, 150, reply, sizeof(reply)), -ETIMEDOUT);
	close(lfd);
	cr_expect_eq(cni_agent_call(agent.sock, "{}\n", 3, 150, reply, sizeof(reply)),
		     -ECONNREFUSED);
	unlink(agent.sock);
	cr_expect_eq(cni_agent_call(agent.sock, "{}\n", 3, 150, reply, sizeof(reply)), -ENOENT);
}

Test(cni_run, agent_reply_too_long)
{
	static char big[CNI_PROTO_MAX_LINE + 10];
	char reply[CNI_PROTO_MAX_LINE];

	memset(big, 'x', sizeof(big) - 1);
	agent_start(big, 1);
	cr_expect_eq(cni_agent_call(agent.sock, "{}\n", 3, 2000, reply, sizeof(reply)),
		     -EMSGSIZE);
	agent_wait();
}

/* ---------------------------------------------------------------- the binary */

static const char *cni_binary(void)
{
	static char path[PATH_MAX];
	const char *build = getenv("WEFT_BUILD");

	snprintf(path, sizeof(path), "%s/san/weft-cni", build ? build : "build");
	return access(path, X_OK) ? NULL : path;
}

/* Run the binary with exactly @env (plus sanitizer options) and @in on stdin. */
static void run_binary(const char *const *env, const char *in, struct outcome *o)
{
	const char *bin = cni_binary();
	const char *passthrough[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" };
	char *envp[32], extra[3][512];
	int n = 0, pin[2], pout[2], wstatus;
	posix_spawn_file_actions_t fa;
	size_t got = 0;
	pid_t pid;

	if (!bin)
		cr_skip_test("no weft-cni binary at %s/san/weft-cni: run 'make build/san/weft-cni'"
			     " or set WEFT_BUILD", getenv("WEFT_BUILD") ?: "build");
	for (; env[n]; n++)
		envp[n] = (char *)env[n];
	for (size_t i = 0; i < 3; i++) {
		if (getenv(passthrough[i])) {
			snprintf(extra[i], sizeof(extra[i]), "%s=%s", passthrough[i],
				 getenv(passthrough[i]));
			envp[n++] = extra[i];
		}
	}
	envp[n] = NULL;
	cr_assert_eq(pipe2(pin, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(pout, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	cr_assert_eq(posix_spawn(&pid, bin, &fa, NULL, (char *[]){ (char *)bin, NULL }, envp), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(pin[0]);
	close(pout[1]);
	cr_assert_eq(write(pin[1], in, strlen(in)), (ssize_t)strlen(in));
	close(pin[1]);
	for (;;) {
		ssize_t r = read(pout[0], o->out + got, sizeof(o->out) - 1 - got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	o->out[got] = '\0';
	close(pout[0]);
	cr_assert_eq(waitpid(pid, &wstatus, 0), pid);
	cr_assert(WIFEXITED(wstatus), "weft-cni died: status %#x", wstatus);
	o->status = WEXITSTATUS(wstatus);
	outcome_parse(o);
}

#define ENV_ADD                                                                                 \
	"CNI_COMMAND=ADD", "CNI_CONTAINERID=c0ffee", "CNI_NETNS=/run/netns/p1",                 \
	"CNI_IFNAME=eth0", "CNI_PATH=/opt/cni/bin",                                              \
	"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=client-a;K8S_POD_UID=u-1"

TestSuite(cni_binary, .init = make_dir, .fini = clean_dir, .timeout = 60);

Test(cni_binary, add_happy_path_prints_prev_result_verbatim)
{
	const char *env[] = { ENV_ADD, NULL };
	struct outcome o;

	agent_start("{\"ok\":true,\"meshed\":true,\"reason\":\"namespace demo is meshed\"}", 1);
	run_binary(env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	agent_wait();
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, PREV_V1 "\n");
	cr_expect_not_null(strstr(agent.req, "\"command\":\"ADD\""), "%s", agent.req);
	cr_expect_not_null(strstr(agent.req, "\"ips\":[\"198.18.1.2\",\"fd00::2\"]"), "%s",
			   agent.req);
	outcome_done(&o);
}

Test(cni_binary, add_with_agent_down_is_try_again)
{
	const char *env[] = { ENV_ADD, NULL };
	struct outcome o;

	run_binary(env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.status, 1);
	cr_expect_eq(o.code, CNI_ERR_TRY_AGAIN, "%s", o.out);
	cr_expect_not_null(strstr(err_msg(&o), agent.sock), "%s", o.out);
	outcome_done(&o);
}

Test(cni_binary, del_with_agent_down_succeeds)
{
	const char *env[] = { "CNI_COMMAND=DEL", "CNI_CONTAINERID=c0ffee", "CNI_IFNAME=eth0",
			      "CNI_PATH=/opt/cni/bin", NULL };
	struct outcome o;

	run_binary(env, conf_for_agent("1.0.0", ""), &o);
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, "");
	outcome_done(&o);
}

Test(cni_binary, malformed_config_is_code_6)
{
	const char *env[] = { ENV_ADD, NULL };
	struct outcome o;

	run_binary(env, "{\"cniVersion\":\"1.0.0\",\"name\":", &o);
	cr_expect_eq(o.status, 1);
	cr_expect_eq(o.code, CNI_ERR_DECODE, "%s", o.out);
	outcome_done(&o);
}

Test(cni_binary, missing_env_is_code_4)
{
	const char *env[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=c0ffee", "CNI_IFNAME=eth0",
			      "CNI_ARGS=K8S_POD_NAMESPACE=demo;K8S_POD_NAME=a", NULL };
	struct outcome o;

	run_binary(env, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.status, 1);
	cr_expect_eq(o.code, CNI_ERR_INVALID_ENV, "%s", o.out);
	cr_expect_str_eq(err_msg(&o), "missing environment variable CNI_NETNS");
	outcome_done(&o);
}

Test(cni_binary, bad_version_is_code_1)
{
	const char *env[] = { ENV_ADD, NULL };
	struct outcome o;

	run_binary(env, conf_for_agent("9.9.9", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.status, 1);
	cr_expect_eq(o.code, CNI_ERR_INCOMPATIBLE_VERSION, "%s", o.out);
	outcome_done(&o);
}

Test(cni_binary, version)
{
	const char *env[] = { "CNI_COMMAND=VERSION", NULL };
	struct outcome o;

	run_binary(env, "{\"cniVersion\":\"1.0.0\"}", &o);
	cr_expect_eq(o.status, 0);
	cr_expect_str_eq(o.out, "{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.3.0\","
				"\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]}\n");
	outcome_done(&o);
}

#define ENV_PLAIN                                                                               \
	"CNI_COMMAND=ADD", "CNI_CONTAINERID=c0ffee", "CNI_NETNS=/run/netns/p1",                 \
	"CNI_IFNAME=eth0", "CNI_ARGS=K8S_POD_NAMESPACE=plain;K8S_POD_NAME=web-0"

Test(cni_binary, node_state_decides_while_the_agent_is_down)
{
	const char *plain[] = { ENV_PLAIN, NULL };
	const char *meshed[] = { ENV_ADD, NULL };
	const char *system[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=c0ffee",
				 "CNI_NETNS=/run/netns/p1", "CNI_IFNAME=eth0",
				 "CNI_ARGS=K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-1",
				 NULL };
	struct outcome o;

	/* No state file: only kube-system passes. */
	run_binary(system, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, PREV_V1 "\n");
	outcome_done(&o);
	run_binary(plain, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.code, CNI_ERR_TRY_AGAIN, "%s", o.out);
	outcome_done(&o);

	write_state(STATE_DEMO_MESHED);
	run_binary(plain, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.status, 0, "%s", o.out);
	cr_expect_str_eq(o.out, PREV_V1 "\n");
	outcome_done(&o);
	run_binary(meshed, conf_for_agent("1.0.0", "\"prevResult\":" PREV_V1), &o);
	cr_expect_eq(o.status, 1);
	cr_expect_eq(o.code, CNI_ERR_TRY_AGAIN, "%s", o.out);
	outcome_done(&o);
}

Test(cni_binary, status_follows_the_agent)
{
	const char *env[] = { "CNI_COMMAND=STATUS", NULL };
	struct outcome o;

	write_state(STATE_DEMO_MESHED);
	run_binary(env, conf_for_agent("1.1.0", ""), &o);
	cr_expect_eq(o.status, 1);
	cr_expect_eq(o.code, CNI_ERR_NOT_AVAILABLE, "%s", o.out);
	outcome_done(&o);
	agent_start("{\"ok\":true}", 1);
	run_binary(env, conf_for_agent("1.1.0", ""), &o);
	agent_wait();
	cr_expect_eq(o.status, 0, "%s", o.out);
	outcome_done(&o);
	run_binary(env, conf_for_agent("1.0.0", ""), &o);
	cr_expect_eq(o.code, CNI_ERR_INCOMPATIBLE_VERSION, "STATUS before 1.1.0: %s", o.out);
	outcome_done(&o);
}

Test(cni_binary, gc_before_1_1_0_is_code_1)
{
	const char *env[] = { "CNI_COMMAND=GC", NULL };
	struct outcome o;

	run_binary(env, conf_for_agent("0.4.0", "\"cni.dev/valid-attachments\":[]"), &o);
	cr_expect_eq(o.code, CNI_ERR_INCOMPATIBLE_VERSION, "%s", o.out);
	outcome_done(&o);
	run_binary(env, conf_for_agent("1.1.0", "\"cni.dev/valid-attachments\":[]"), &o);
	cr_expect_eq(o.status, 0, "GC without an agent: %s", o.out);
	outcome_done(&o);
}

Test(cni_binary, del_with_empty_netns_and_no_agent_succeeds)
{
	const char *env[] = { "CNI_COMMAND=DEL", "CNI_CONTAINERID=c0ffee", "CNI_NETNS=",
			      "CNI_IFNAME=eth0", NULL };
	struct outcome o;

	for (int i = 0; i < 2; i++) {
		run_binary(env, conf_for_agent("1.0.0", ""), &o);
		cr_expect_eq(o.status, 0, "DEL %d: %s", i + 1, o.out);
		cr_expect_str_eq(o.out, "");
		outcome_done(&o);
	}
}

Test(cni_binary, oversized_stdin_is_code_7)
{
	static char big[CNI_MAX_STDIN + 100];
	const char *env[] = { ENV_ADD, NULL };
	struct outcome o;

	memset(big, ' ', sizeof(big) - 1);
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	run_binary(env, big, &o);
	cr_expect_eq(o.status, 1);
	cr_expect_eq(o.code, CNI_ERR_INVALID_CONFIG, "%s", o.out);
	outcome_done(&o);
}

Test(cni_binary, binary_garbage_on_stdin_is_code_6)
{
	const char *env[] = { ENV_ADD, NULL };
	struct outcome o;

	run_binary(env, "\x7f" "ELF\x02\x01\x01", &o);
	cr_expect_eq(o.status, 1);
	cr_expect_eq(o.code, CNI_ERR_DECODE, "%s", o.out);
	outcome_done(&o);
	run_binary(env, "", &o);
	cr_expect_eq(o.code, CNI_ERR_DECODE, "%s", o.out);
	outcome_done(&o);
}
