// SPDX-License-Identifier: GPL-2.0-only
/* meshctl and the admin API against a live agent (the sanitizer build) in the
 * integration topology: every command's table and JSON output; trace checked
 * against what really happens to a real connection; GET /metrics parsed by a
 * strict exposition-format parser (and promtool when installed); bad input
 * to the admin API answered cleanly; the pinned maps read with the agent
 * stopped. The agent runs with --metrics-addr 127.0.0.1:0 (loopback only).
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "curl_body.h"
#include "fixture.h"
#include "promtext.h"
#include "sock.h"
#include "tns.h"
#include "topo.h"

#define OUT_MAX 65536

static void up(void)
{
	/* With the metrics listener on. */
	fixture_up_with("--metrics-addr 127.0.0.1:0");
	fixture_backends_start(true);
}

static void down(void)
{
	fixture_backends_stop();
	fixture_down();
}

TestSuite(meshctl, .init = up, .fini = down, .timeout = 120);

/* meshctl trace runs the balancer and reads the outlier state of worker 0;
 * with N workers the kernel picks the worker by the connection's 4-tuple,
 * unknown before connect(), so exact predictions are a one-worker property
 * (docs/resilience.md). The tests that need one restart the agent with it.
 */
static void restart_with_workers(const char *n)
{
	cr_assert_eq(tenv_agent_stop(&env), 0, "the agent did not exit cleanly, see %s",
		     env.agent_log);
	setenv("WEFT_WORKERS", n, 1);
	/* The enrolled pods come back from the agent's saved state. */
	cr_assert_eq(tenv_agent_start(&env), 0, "weft-agent did not start, see %s", env.agent_log);
}

static char *out_buf(void)
{
	char *b = calloc(1, OUT_MAX);

	cr_assert_not_null(b);
	return b;
}

/* Run meshctl with @args against the test agent; stdout and stderr in @out. */
static int mc(char *out, const char *args)
{
	return tenv_capture(out, OUT_MAX, "%s/san/meshctl --socket %s/admin.sock %s 2>&1",
			    env.build, env.run_dir, args);
}

/* Run meshctl -o json @args; the parsed document (the caller puts it). */
static json_object *mc_json(const char *args, int want_rc)
{
	char *out = out_buf(), cmd[1024];
	json_object *o;
	int rc;

	snprintf(cmd, sizeof(cmd), "-o json %s", args);
	rc = tenv_capture(out, OUT_MAX, "%s/san/meshctl --socket %s/admin.sock %s", env.build,
			  env.run_dir, cmd);
	cr_assert_eq(rc, want_rc, "meshctl %s exited %d:\n%s", cmd, rc, out);
	o = json_tokener_parse(out);
	cr_assert_not_null(o, "meshctl %s is not JSON:\n%s", cmd, out);
	free(out);
	return o;
}

static json_object *jpath(json_object *o, const char *path)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *t = strtok_r(buf, ".", &save); t && o; t = strtok_r(NULL, ".", &save)) {
		if (json_object_is_type(o, json_type_array))
			o = json_object_array_get_idx(o, (size_t)atoi(t));
		else if (!json_object_object_get_ex(o, t, &o))
			o = NULL;
	}
	return o;
}

static const char *jstr(json_object *o, const char *path)
{
	json_object *v = jpath(o, path);

	return v ? json_object_get_string(v) : "";
}

/* ---------------------------------------------------------------- status, check */

Test(meshctl, status_shows_version_mode_kernel_registries_and_programs)
{
	char *out = out_buf();
	json_object *o;

	cr_assert_eq(mc(out, "status"), 0, "%s", out);
	cr_expect(strstr(out, "mode ") && strstr(out, "ebpf"), "%s", out);
	cr_expect_not_null(strstr(out, "kernel.release "), "%s", out);
	cr_expect_not_null(strstr(out, "registries[0].health "), "%s", out);
	cr_expect_not_null(strstr(out, "bpf.programs[2].name "), "%s", out);
	cr_expect_not_null(strstr(out, "pods.meshed "), "%s", out);
	o = mc_json("status", 0);
	cr_expect_eq(json_object_get_int(jpath(o, "api")), 1);
	cr_expect_str_eq(jstr(o, "registries.0.health"), "synced");
	cr_expect_eq(json_object_get_int(jpath(o, "pods.meshed")), 2);
	/* sock_create, getsockopt, sockops, getpeername4/6, connect4/6, and
	 * DNS capture's sendmsg4/6 and recvmsg4/6.
	 */
	cr_expect_eq(json_object_array_length(jpath(o, "bpf.programs")), 11);
	for (size_t i = 0; i < 11; i++) {
		json_object *prog = json_object_array_get_idx(jpath(o, "bpf.programs"), i);

		cr_expect(json_object_get_boolean(jpath(prog, "attached")), "program %zu attached",
			  i);
	}
	cr_expect(strncmp(jstr(o, "metrics"), "127.0.0.1:", 10) == 0, "metrics '%s'",
		  jstr(o, "metrics"));
	/* The sanitizer build answers with AddressSanitizer's count: the
	 * catalogue, pods and workers alone hold more than 64 KiB.
	 */
	cr_expect_gt(json_object_get_int64(jpath(o, "heap_bytes")), 64 * 1024, "heap_bytes %lld",
		     (long long)json_object_get_int64(jpath(o, "heap_bytes")));
	json_object_put(o);
	free(out);
}

Test(meshctl, check_passes_on_this_machine_and_against_the_agent)
{
	char *out = out_buf(), args[PATH_MAX + 64];
	json_object *o, *checks;
	int rc;

	snprintf(args, sizeof(args), "check --pre --bpffs %s", env.bpffs);
	rc = mc(out, args);
	cr_assert_eq(rc, 0, "check --pre failed:\n%s", out);
	cr_expect_not_null(strstr(out, "PASS  BTF"), "%s", out);
	cr_expect_null(strstr(out, "PASS  agent"), "--pre must not look at the agent:\n%s", out);
	rc = mc(out, "check");
	cr_assert_eq(rc, 0, "check failed:\n%s", out);
	cr_expect_not_null(strstr(out, "PASS  programs attached"), "%s", out);
	cr_expect_not_null(strstr(out, "PASS  pods"), "%s", out);
	o = mc_json("check", 0);
	checks = jpath(o, "checks");
	cr_expect(json_object_get_boolean(jpath(o, "ok")));
	cr_expect_geq(json_object_array_length(checks), 10);
	json_object_put(o);
	/* Without an agent: the agent check fails, with its fix, exit 1. */
	rc = tenv_capture(out, OUT_MAX, "%s/san/meshctl --socket %s/none.sock check 2>&1",
			  env.build, env.run_dir);
	cr_expect_eq(rc, 1, "%s", out);
	cr_expect_not_null(strstr(out, "FAIL  agent"), "%s", out);
	cr_expect_not_null(strstr(out, "fix: start weft-agent"), "%s", out);
	free(out);
}

/* The readiness probe: the agent, its programs and registries; no machine
 * probe, no pod.
 */
Test(meshctl, check_ready_is_the_agent_only)
{
	char *out = out_buf();
	int rc;

	rc = mc(out, "check --ready");
	cr_assert_eq(rc, 0, "check --ready failed:\n%s", out);
	cr_expect_not_null(strstr(out, "PASS  agent"), "%s", out);
	cr_expect_not_null(strstr(out, "PASS  programs attached"), "%s", out);
	cr_expect_not_null(strstr(out, "PASS  registries"), "%s", out);
	cr_expect_null(strstr(out, "BTF"), "--ready must not probe the machine:\n%s", out);
	cr_expect_null(strstr(out, "PASS  pods"), "--ready must not look at pods:\n%s", out);
	rc = tenv_capture(out, OUT_MAX, "%s/san/meshctl --socket %s/none.sock check --ready 2>&1",
			  env.build, env.run_dir);
	cr_expect_eq(rc, 1, "%s", out);
	cr_expect_not_null(strstr(out, "FAIL  agent"), "%s", out);
	cr_expect_eq(mc(out, "check --pre --ready"), 2, "%s", out);
	free(out);
}

/* ---------------------------------------------------------------- pods, services */

Test(meshctl, pods_and_one_pod_in_detail)
{
	char *out = out_buf();
	json_object *o;

	cr_assert_eq(mc(out, "pods"), 0, "%s", out);
	cr_expect(strstr(out, "client-a") && strstr(out, "client-c"), "%s", out);
	cr_assert_eq(mc(out, "pod mesh/client-a"), 0, "%s", out);
	cr_expect_not_null(strstr(out, "Meshed:       yes"), "%s", out);
	cr_expect_not_null(strstr(out, "(listening)"), "%s", out);
	cr_expect_not_null(strstr(out, "in place, as read back from the kernel"), "%s", out);
	cr_assert_eq(mc(out, "pod plain/client-c"), 0, "%s", out);
	cr_expect_not_null(strstr(out, "Meshed:       no"), "%s", out);
	o = mc_json("pod mesh/client-b", 0);
	cr_expect_str_eq(jstr(o, "name"), "client-b");
	cr_expect(json_object_get_boolean(jpath(o, "capture_in_place")));
	cr_expect(json_object_is_type(jpath(o, "conns"), json_type_array));
	json_object_put(o);
	cr_expect_eq(mc(out, "pod mesh/nope"), 1, "%s", out);
	cr_expect_not_null(strstr(out, "no pod mesh/nope is known"), "%s", out);
	cr_expect_eq(mc(out, "pod nope"), 2, "%s", out);
	free(out);
}

Test(meshctl, services_and_one_service_with_endpoints_and_latency)
{
	char *out = out_buf(), ident[128];
	json_object *o;

	for (int i = 0; i < 6; i++)
		cr_assert_eq(tsock_ident("a", "198.19.0.10:80", ident, sizeof(ident)), 0);
	cr_assert_eq(mc(out, "services"), 0, "%s", out);
	cr_expect_not_null(strstr(out, "198.19.0.10:80"), "%s", out);
	cr_expect_not_null(strstr(out, "3/3"), "%s", out);
	cr_assert_eq(mc(out, "service mesh/web"), 0, "%s", out);
	cr_expect_not_null(strstr(out, "VIP:          198.19.0.10:80"), "%s", out);
	cr_expect_not_null(strstr(out, "VIP:          [fd00:198:19::10]:80"), "%s", out);
	cr_expect_not_null(strstr(out, "Circuit:      closed"), "%s", out);
	cr_expect_not_null(strstr(out, "198.18.2.12:8080"), "%s", out);
	cr_expect_not_null(strstr(out, "connect  p50 "), "recent connect latency:\n%s", out);
	o = mc_json("service mesh/web", 0);
	cr_expect_eq(json_object_array_length(jpath(o, "services")), 2);
	cr_expect_geq(json_object_get_int(jpath(o, "services.0.latency.connect.count")), 6);
	cr_expect_geq(json_object_get_int(jpath(o, "services.0.total.connections")), 6);
	json_object_put(o);
	cr_expect_eq(mc(out, "service mesh/nothing"), 1, "%s", out);
	cr_expect_not_null(strstr(out, "no service mesh/nothing"), "%s", out);
	free(out);
}

/* ---------------------------------------------------------------- conns */

Test(meshctl, conns_lists_live_connections_with_bytes)
{
	char *out = out_buf(), buf[256];
	int fd1, fd2;
	json_object *o, *c;

	fd1 = tsock_connect("a", "198.19.0.10:80", 3000);
	fd2 = tsock_connect("a", "198.19.0.20:80", 3000);
	cr_assert(fd1 >= 0 && fd2 >= 0);
	cr_assert_eq(send(fd1, "ECHO\nhello\n", 11, 0), 11);
	cr_assert_gt(recv(fd1, buf, sizeof(buf), 0), 0);
	usleep(200000);
	cr_assert_eq(mc(out, "conns --pod mesh/client-a"), 0, "%s", out);
	cr_expect_not_null(strstr(out, "mesh/web"), "%s", out);
	cr_expect_not_null(strstr(out, "198.19.0.10:80"), "%s", out);
	cr_expect_not_null(strstr(out, "established"), "%s", out);
	o = mc_json("conns --service mesh/web", 0);
	cr_assert_eq(json_object_array_length(jpath(o, "conns")), 1, "%s",
		     json_object_to_json_string(o));
	c = jpath(o, "conns.0");
	cr_expect_str_eq(jstr(c, "pod"), "mesh/client-a");
	cr_expect_str_eq(jstr(c, "destination"), "198.19.0.10:80");
	/* The app's socket after the rewrite, and the pod's address upstream. */
	cr_expect(!strncmp(jstr(c, "client"), "127.0.0.1:", 10), "client %s", jstr(c, "client"));
	cr_expect(!strncmp(jstr(c, "source"), "198.18.1.2:", 11), "source %s", jstr(c, "source"));
	cr_expect(!strncmp(jstr(c, "endpoint"), "198.18.2.1", 10), "endpoint %s",
		  jstr(c, "endpoint"));
	cr_expect_geq(json_object_get_int(jpath(c, "bytes_out")), 11);
	cr_expect_geq(json_object_get_int(jpath(c, "bytes_in")), 6);
	cr_expect_str_eq(jstr(c, "protocol"), "tcp");
	json_object_put(o);
	/* Bounded: --limit 1 of two says it truncated. */
	o = mc_json("conns --limit 1", 0);
	cr_expect_eq(json_object_array_length(jpath(o, "conns")), 1);
	cr_expect(json_object_get_boolean(jpath(o, "truncated")));
	cr_expect_eq(json_object_get_int(jpath(o, "matched")), 2);
	json_object_put(o);
	cr_expect_eq(mc(out, "conns --limit 0"), 1, "%s", out);
	cr_expect_not_null(strstr(out, "'limit' must be an integer in 1..10000"), "%s", out);
	cr_expect_eq(mc(out, "conns --frob"), 2, "%s", out);
	close(fd1);
	close(fd2);
	free(out);
}

/* ---------------------------------------------------------------- trace */

/* What GET /v1/trace says for pod @pod and @dest, as JSON. */
static json_object *trace(const char *pod, const char *dest)
{
	char args[256];

	snprintf(args, sizeof(args), "trace %s %s", pod, dest);
	return mc_json(args, 0);
}

Test(meshctl, trace_to_a_service_predicts_the_endpoint_a_real_connection_lands_on)
{
	char *out = out_buf(), ident[128];

	restart_with_workers("1");
	cr_assert_eq(mc(out, "trace mesh/client-a 198.19.0.10:80"), 0, "%s", out);
	cr_expect_not_null(strstr(out, "Result: captured; service mesh/web"), "%s", out);
	cr_expect_not_null(strstr(out, "other family"), "the IPv6 endpoint is listed:\n%s", out);
	for (int i = 0; i < 6; i++) {
		json_object *t = trace("mesh/client-a", "198.19.0.10:80");
		const char *pick = jstr(t, "pick");
		char want[64];

		cr_assert(json_object_get_boolean(jpath(t, "captured")));
		cr_expect_str_eq(jstr(t, "service.name"), "web");
		for (int e = 0; e < 3; e++)
			cr_expect(json_object_get_boolean(jpath(t, "endpoints")) == 0 ||
				  json_object_get_boolean(jpath(jpath(t, "endpoints"), "0.eligible")));
		cr_assert_eq(tsock_ident("a", "198.19.0.10:80", ident, sizeof(ident)), 0);
		/* "web-N 198.18.1.2": web-N serves 198.18.2.1N. */
		snprintf(want, sizeof(want), "198.18.2.1%c:8080", ident[4]);
		cr_expect_str_eq(pick, want, "trace predicted %s, the connection went to %s", pick,
				 ident);
		json_object_put(t);
	}
	free(out);
}

Test(meshctl, trace_of_an_unmeshed_pod_and_a_passthrough)
{
	json_object *t;
	long long total = tenv_status_counter(&env, "connections.total");
	char ident[128];

	t = trace("plain/client-c", "198.19.0.10:80");
	cr_expect_not(json_object_get_boolean(jpath(t, "captured")));
	cr_expect_str_eq(jstr(t, "decision"), "not_enrolled");
	json_object_put(t);
	cr_assert_eq(tsock_ident("c", "198.18.2.14:8080", ident, sizeof(ident)), 0);
	cr_expect_eq(tenv_status_counter(&env, "connections.total"), total, "pod c was proxied");
	/* Meshed pod, a destination that is not a service: captured, passed through. */
	t = trace("mesh/client-a", "198.18.2.14:8080");
	cr_expect(json_object_get_boolean(jpath(t, "captured")));
	cr_expect(json_object_is_type(jpath(t, "service"), json_type_null));
	cr_expect_not_null(strstr(jstr(t, "outcome"), "passed through"));
	json_object_put(t);
	cr_assert_eq(tsock_ident("a", "198.18.2.14:8080", ident, sizeof(ident)), 0);
	cr_expect_eq(tenv_status_counter(&env, "connections.total"), total + 1);
	/* Loopback stays in the pod. */
	t = trace("mesh/client-a", "127.0.0.1:8080");
	cr_expect_str_eq(jstr(t, "decision"), "loopback");
	json_object_put(t);
	/* Usage errors are caught before asking the agent. */
	{
		char *out = out_buf();

		cr_expect_eq(mc(out, "trace mesh/client-a nonsense"), 2, "%s", out);
		cr_expect_not_null(strstr(out, "is not DEST:PORT"), "%s", out);
		cr_expect_eq(mc(out, "trace client-a 198.19.0.10:80"), 2, "%s", out);
		cr_expect_eq(mc(out, "trace mesh/ghost 198.19.0.10:80"), 1, "%s", out);
		cr_expect_not_null(strstr(out, "no pod mesh/ghost"), "%s", out);
		free(out);
	}
}

/* TOPO_REGISTRY plus @extra YAML; waits for the agent to load it. */
static void registry_plus(const char *extra)
{
	char yaml[16384];
	long long gen = tenv_status_counter(&env, "catalogue_generation");

	snprintf(yaml, sizeof(yaml), "%s---\n%s", TOPO_REGISTRY, extra);
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	for (int i = 0; i < 100; i++) {
		if (tenv_status_counter(&env, "catalogue_generation") > gen)
			return;
		usleep(50000);
	}
	cr_assert_fail("the agent did not load the new registry");
}

Test(meshctl, trace_of_an_excluded_port_says_not_captured_and_the_proxy_sees_nothing)
{
	json_object *t;
	long long total, excl;
	char ident[128];

	registry_plus("apiVersion: v1\nkind: Pod\nmetadata:\n  name: client-a\n  namespace: mesh\n"
		      "  annotations:\n    weft.io/exclude-outbound-ports: \"8080\"\n");
	for (int i = 0; i < 50; i++) {
		t = trace("mesh/client-a", "198.18.2.13:8080");
		if (!json_object_get_boolean(jpath(t, "captured")))
			break;
		json_object_put(t);
		t = NULL;
		usleep(100000);
	}
	cr_assert_not_null(t, "the exclusion never reached the datapath");
	cr_expect_str_eq(jstr(t, "decision"), "excluded_port");
	json_object_put(t);
	total = tenv_status_counter(&env, "connections.total");
	excl = tenv_status_counter(&env, "bpf.counters.excluded_port");
	cr_assert_eq(tsock_ident("a", "198.18.2.13:8080", ident, sizeof(ident)), 0);
	cr_expect_str_eq(ident, "web-3 198.18.1.2");
	cr_expect_eq(tenv_status_counter(&env, "connections.total"), total,
		     "trace said not captured, yet the proxy saw the connection");
	cr_expect_eq(tenv_status_counter(&env, "bpf.counters.excluded_port"), excl + 1);
}

Test(meshctl, trace_names_not_ready_and_ejected_endpoints)
{
	char *out = out_buf(), ident[128];
	json_object *t, *eps;
	bool seen_ready = false, seen_ejected = false, seen_not_ready = false;

	/* .11:8080 serves; nothing listens on .12:9090 (ejected after 2 failed
	 * connects); .13 is declared not ready. Outlier state is per worker and
	 * trace shows worker 0's: one worker sees every failure.
	 */
	restart_with_workers("1");
	registry_plus("apiVersion: v1\nkind: Service\nmetadata:\n  name: mix\n  namespace: mesh\n"
		      "  annotations:\n    weft.io/outlier-consecutive-failures: \"2\"\n"
		      "spec:\n  clusterIP: 198.19.0.40\n  ports:\n  - name: tcp\n    port: 80\n"
		      "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
		      "  name: mix-1\n  namespace: mesh\n  labels:\n"
		      "    kubernetes.io/service-name: mix\naddressType: IPv4\nendpoints:\n"
		      "- addresses: [198.18.2.11]\n- addresses: [198.18.2.13]\n"
		      "  conditions: {ready: false}\nports:\n- name: tcp\n  port: 8080\n"
		      "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
		      "  name: mix-2\n  namespace: mesh\n  labels:\n"
		      "    kubernetes.io/service-name: mix\naddressType: IPv4\nendpoints:\n"
		      "- addresses: [198.18.2.12]\nports:\n- name: tcp\n  port: 9090\n");
	for (int i = 0; i < 8; i++)
		(void)tsock_ident("a", "198.19.0.40:80", ident, sizeof(ident));
	t = trace("mesh/client-a", "198.19.0.40:80");
	eps = jpath(t, "endpoints");
	for (size_t i = 0; i < json_object_array_length(eps); i++) {
		json_object *e = json_object_array_get_idx(eps, i);
		const char *a = jstr(e, "address"), *why = jstr(e, "reason");

		if (!strcmp(a, "198.18.2.11:8080"))
			seen_ready = json_object_get_boolean(jpath(e, "eligible"));
		if (!strcmp(a, "198.18.2.12:9090"))
			seen_ejected = !json_object_get_boolean(jpath(e, "eligible")) &&
				       strstr(why, "ejected for");
		if (!strcmp(a, "198.18.2.13:8080"))
			seen_not_ready = !json_object_get_boolean(jpath(e, "eligible")) &&
					 strstr(why, "not ready");
	}
	cr_expect(seen_ready && seen_ejected && seen_not_ready, "%s",
		  json_object_to_json_string(t));
	cr_expect_str_eq(jstr(t, "pick"), "198.18.2.11:8080");
	json_object_put(t);
	cr_assert_eq(mc(out, "service mesh/mix"), 0, "%s", out);
	cr_expect_not_null(strstr(out, "ejected"), "%s", out);
	free(out);
}

/* ---------------------------------------------------------------- top */

static void *traffic(void *arg)
{
	char ident[128];

	(void)arg;
	for (int i = 0; i < 20; i++) {
		(void)tsock_ident("a", "198.19.0.10:80", ident, sizeof(ident));
		usleep(40000);
	}
	return NULL;
}

Test(meshctl, top_once_shows_rates_from_two_samples)
{
	char *out = out_buf();
	pthread_t th;
	json_object *o;

	cr_assert_eq(pthread_create(&th, NULL, traffic, NULL), 0);
	cr_assert_eq(mc(out, "top --once --interval 1s"), 0, "%s", out);
	pthread_join(th, NULL);
	cr_expect_not_null(strstr(out, "CONN/S"), "%s", out);
	{
		/* The web row: its CONN/S column is positive. */
		char *row = strstr(out, "mesh        web");
		double rate = 0;

		cr_assert_not_null(row, "%s", out);
		cr_expect_eq(sscanf(row, "mesh web %*s %*s %lf", &rate), 1, "%s", row);
		cr_expect_gt(rate, 0, "no rate in:\n%s", out);
	}
	o = mc_json("top --once --interval 200ms", 0);
	cr_expect_not_null(jpath(o, "before.services"));
	cr_expect_not_null(jpath(o, "after.services"));
	json_object_put(o);
	cr_expect_eq(mc(out, "top --interval 1ns"), 2, "%s", out);
	free(out);
}

/* ---------------------------------------------------------------- bpf */

Test(meshctl, bpf_maps_and_progs_read_the_pins_even_with_the_agent_stopped)
{
	char *out = out_buf(), args[3 * PATH_MAX];
	json_object *o, *pods;
	int rc;

	snprintf(args, sizeof(args), "bpf progs --bpffs %s --cgroup %s", env.bpffs, env.cgroup);
	cr_assert_eq(mc(out, args), 0, "%s", out);
	cr_expect_not_null(strstr(out, "mesh_connect4"), "%s", out);
	cr_expect_not_null(strstr(out, "cgroup_inet4_connect"), "%s", out);
	cr_expect_null(strstr(out, "NO (cgroup gone)"), "%s", out);
	snprintf(args, sizeof(args), "bpf maps --bpffs %s", env.bpffs);
	cr_assert_eq(mc(out, args), 0, "%s", out);
	cr_expect_not_null(strstr(out, "mesh_pods"), "%s", out);
	cr_expect_not_null(strstr(out, "redirected"), "%s", out);
	o = mc_json(args, 0);
	pods = jpath(o, "pods");
	cr_expect_geq(json_object_array_length(pods), 2);
	json_object_put(o);

	rc = tenv_agent_stop(&env);
	cr_assert_eq(rc, 0, "the agent did not exit cleanly (sanitizers?), see %s", env.agent_log);
	cr_assert_eq(mc(out, args), 0, "%s", out);
	o = mc_json(args, 0);
	cr_expect_geq(json_object_array_length(jpath(o, "pods")), 2,
		      "the pinned pods map must outlive the agent");
	cr_expect(json_object_get_boolean(jpath(o, "pods.0.capture")) ||
		  json_object_get_boolean(jpath(o, "pods.1.capture")));
	cr_expect_gt(json_object_get_int(jpath(o, "counters.redirected")), -1);
	json_object_put(o);
	snprintf(args, sizeof(args), "bpf maps --bpffs %s/nope", env.bpffs);
	cr_expect_eq(mc(out, args), 1, "%s", out);
	cr_expect_not_null(strstr(out, "no pinned weft maps"), "%s", out);
	free(out);
}

/* ---------------------------------------------------------------- metrics */

/* GET @path from the metrics listener; the body (caller frees) and status. */
static char *scrape(const char *path, long *status, char *ctype, size_t ctlen)
{
	json_object *st = tenv_admin_get(&env, "/v1/status");
	char url[256];
	struct tcurl_body b = { 0 };
	CURL *c = curl_easy_init();
	char *ct = NULL;

	cr_assert(st && c);
	snprintf(url, sizeof(url), "http://%s%s", jstr(st, "metrics"), path);
	json_object_put(st);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tcurl_body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	cr_assert_eq(curl_easy_perform(c), CURLE_OK, "GET %s", url);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	if (ctype)
		snprintf(ctype, ctlen, "%s", ct ? ct : "");
	curl_easy_cleanup(c);
	return b.buf;
}

Test(meshctl, metrics_are_strict_prometheus_text_with_services_endpoints_and_health)
{
	char ident[128], err[256], ctype[128], path[PATH_MAX + 32];
	const char *web = "namespace=\"mesh\",service=\"web\",port=\"http\",vip=\"198.19.0.10:80\"";
	char labels[PATH_MAX + 512];
	struct prom_doc *d;
	long status;
	char *text;
	FILE *f;

	for (int i = 0; i < 9; i++)
		cr_assert_eq(tsock_ident("a", "198.19.0.10:80", ident, sizeof(ident)), 0);
	text = scrape("/metrics", &status, ctype, sizeof(ctype));
	cr_assert_eq(status, 200);
	cr_expect_str_eq(ctype, "text/plain; version=0.0.4; charset=utf-8");
	d = promtext_parse(text, err, sizeof(err));
	cr_assert_not_null(d, "not valid exposition text: %s", err);
	cr_expect_geq(promtext_families(d), 30);
	cr_expect_geq(promtext_value(d, "weft_service_connections_total", web), 9);
	snprintf(labels, sizeof(labels), "%s,le=\"+Inf\"", web);
	cr_expect_geq(promtext_value(d, "weft_service_connect_duration_seconds_bucket", labels), 9);
	cr_expect_str_eq(promtext_type(d, "weft_service_connect_duration_seconds"), "histogram");
	snprintf(labels, sizeof(labels), "%s,endpoint=\"198.18.2.11:8080\"", web);
	cr_expect_geq(promtext_value(d, "weft_endpoint_connections_total", labels), 3);
	cr_expect_eq(promtext_value(d, "weft_endpoint_ready", labels), 1);
	cr_expect_eq(promtext_value(d, "weft_bpf_program_attached", "program=\"mesh_connect4\""), 1);
	cr_expect_geq(promtext_value(d, "weft_bpf_decisions_total", "reason=\"redirected\""), 9);
	cr_expect_eq(promtext_value(d, "weft_pods_meshed", ""), 2);
	/* The file registry's pods carry no phase: none counts as escaped. */
	cr_expect_eq(promtext_value(d, "weft_pods_unmeshed", ""), 0);
	cr_expect_eq(promtext_value(d, "weft_pods_add_waiting", ""), 0);
	cr_expect_eq(promtext_value(d, "weft_pod_evictions_total", "result=\"requested\""), 0);
	snprintf(labels, sizeof(labels), "source=\"file:%s\",state=\"synced\"", env.registry);
	cr_expect_eq(promtext_value(d, "weft_registry_health", labels), 1);
	cr_expect_eq(promtext_value(d, "weft_metrics_limited", "kind=\"endpoint\""), 0);
	promtext_free(d);
	/* promtool, when the prometheus package is installed (it is in Debian 12). */
	if (access("/usr/bin/promtool", X_OK) == 0) {
		snprintf(path, sizeof(path), "%s/metrics.txt", env.tmp);
		f = fopen(path, "w");
		cr_assert_not_null(f);
		fputs(text, f);
		fclose(f);
		cr_expect_eq(tns_sh("promtool check metrics < %s", path), 0,
			     "promtool rejects the exposition");
	}
	free(text);
	/* The listener serves GET /metrics only. */
	free(scrape("/v1/status", &status, NULL, 0));
	cr_expect_eq(status, 404);
	free(scrape("/metrics?x=1", &status, NULL, 0));
	cr_expect_eq(status, 400);
}

/* ---------------------------------------------------------------- bad input */

/* Send @req raw on the admin socket; the status code of the answer, 0 when
 * the agent closed without one.
 */
static int raw_admin(const char *req, size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[4096];
	ssize_t n, got = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), code = 0;
	struct timeval tv = { .tv_sec = 5 };

	cr_assert(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.90s/admin.sock", env.run_dir);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (size_t off = 0; off < len;) {
		n = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;	/* the agent may stop reading an oversized request */
		off += (size_t)n;
	}
	while ((n = recv(fd, buf + got, sizeof(buf) - 1 - (size_t)got, 0)) > 0 &&
	       (size_t)got < sizeof(buf) - 1)
		got += n;
	buf[got] = '\0';
	close(fd);
	if (got && sscanf(buf, "HTTP/1.1 %d", &code) != 1)
		code = -1;
	cr_expect(got == 0 || strstr(buf, "{\"error\":") || code == 200, "answer: %s", buf);
	return code;
}

static int get(const char *target)
{
	char req[1024];

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		 target);
	return raw_admin(req, strlen(req));
}

Test(meshctl, admin_api_answers_bad_input_cleanly_and_survives)
{
	size_t big = 100000;
	char *huge = malloc(big);

	cr_assert_not_null(huge);
	memset(huge, 'a', big);
	memcpy(huge, "GET /v1/status HTTP/1.1\r\nX-Pad: ", 32);
	cr_expect_eq(raw_admin(huge, big), 413);
	free(huge);
	cr_expect_eq(raw_admin("GARBAGE\r\n\r\n", 11), 400);
	cr_expect_eq(raw_admin("POST /v1/status HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 55),
		     413);
	cr_expect_eq(raw_admin("DELETE /v1/pods HTTP/1.1\r\nConnection: close\r\n\r\n", 47), 405);
	cr_expect_eq(get("/v2/status"), 404);
	cr_expect_eq(get("/v1/trace"), 400);
	cr_expect_eq(get("/v1/trace?pod=mesh/client-a"), 400);
	cr_expect_eq(get("/v1/trace?pod=mesh/client-a&dest=nonsense"), 400);
	cr_expect_eq(get("/v1/trace?pod=mesh/client-a&dest=198.19.0.10:0"), 400);
	cr_expect_eq(get("/v1/trace?pod=client-a&dest=198.19.0.10:80"), 400);
	cr_expect_eq(get("/v1/trace?pod=mesh/ghost&dest=198.19.0.10:80"), 404);
	cr_expect_eq(get("/v1/trace?pod=mesh/client-a&dest=198.19.0.10:80&x=1"), 400);
	cr_expect_eq(get("/v1/trace?pod=mesh%2Fclient-a&dest=%5Bfd00:198:19::10%5D:80"), 200);
	cr_expect_eq(get("/v1/conns?limit=abc"), 400);
	cr_expect_eq(get("/v1/conns?limit=99999999999999999999"), 400);
	cr_expect_eq(get("/v1/conns?pod=%zz"), 400);
	cr_expect_eq(get("/v1/conns?pod=%00/x"), 400);
	cr_expect_eq(get("/v1/pods?pod=mesh/nope"), 404);
	cr_expect_eq(get("/v1/pods?bogus"), 400);
	cr_expect_eq(get("/v1/services?service=a/b/c"), 400);
	cr_expect_eq(get("/v1/status?verbose=1"), 400);
	cr_expect_eq(get("/v1/status"), 200);
	/* Still alive, and a clean exit with no leak after all that. */
	json_object *st = tenv_admin_get(&env, "/v1/status");

	cr_assert_not_null(st);
	json_object_put(st);
	cr_expect_eq(tenv_agent_stop(&env), 0, "agent exit status, see %s", env.agent_log);
}
