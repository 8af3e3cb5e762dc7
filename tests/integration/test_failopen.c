// SPDX-License-Identifier: GPL-2.0-only
/* Fail-open per namespace (weft.io/fail-open): with the agent killed, a pod of
 * a fail-open namespace is captured until the agent's heartbeat is older than
 * --fail-open-after and reaches its peers directly after that, outbound and
 * inbound, while a pod of an ordinary meshed namespace keeps failing fast; a
 * restarted agent captures it again; a hand-over never lets the heartbeat go
 * stale. Run in both capture modes (MODE_SUITES).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "proc.h"
#include "servers.h"
#include "sock.h"
#include "topo.h"

#define AFTER_MS 3000		/* --fail-open-after */
#define BEAT_MS 1000		/* the agent's heartbeat period (CAPTURE_HEARTBEAT_MS) */
#define SLACK_MS 2500		/* a loaded 2-core machine, sanitizer build */

/* Namespace "open": meshed and fail-open. Pod b is enrolled in it, pod a in
 * "mesh" (fails closed), pod c in "plain" (not meshed).
 */
static const char open_ns[] =
	"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: open\n  labels:\n"
	"    weft.io/mesh: enabled\n  annotations:\n    weft.io/fail-open: \"true\"\n";

static pid_t apps[2];

static void up(void)
{
	char yaml[8192];

	tenv_setup(&env);
	snprintf(env.extra_args, sizeof(env.extra_args), "--fail-open-after %d", AFTER_MS);
	snprintf(yaml, sizeof(yaml), "%s%s", TOPO_REGISTRY, open_ns);
	cr_assert_eq(tenv_write_registry(&env, yaml), 0, "write registry");
	cr_assert_eq(tenv_agent_start(&env), 0, "weft-agent did not start, see %s", env.agent_log);
	fixture_enroll("a", "mesh", "client-a", "198.18.1.2");
	fixture_enroll("b", "open", "client-b", "198.18.3.2");
	fixture_enroll("c", "plain", "client-c", "198.18.4.2");
	fixture_backends_start(false);
	/* The pods' own applications, for inbound. */
	apps[0] = tsrv_start("a", "198.18.1.2", 9000, "app-a");
	apps[1] = tsrv_start("b", "198.18.3.2", 9000, "app-b");
	cr_assert(apps[0] > 0 && apps[1] > 0, "pod applications did not start");
}

static void down(void)
{
	for (int i = 0; i < 2; i++) {
		tsrv_stop(apps[i]);
		apps[i] = 0;
	}
	fixture_backends_stop();
	fixture_down();
}

TestSuite(failopen, .init = up, .fini = down, .timeout = 120);

static json_object *pod_of(json_object *pods, const char *name)
{
	json_object *arr = json_object_object_get(pods, "pods");

	for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
		json_object *p = json_object_array_get_idx(arr, i), *n;

		if (json_object_object_get_ex(p, "name", &n) &&
		    !strcmp(json_object_get_string(n), name))
			return p;
	}
	return NULL;
}

/* client-b's fail_open.heartbeat ("fresh", "stale"), or "" when none. */
static void heartbeat_of_b(char *out, size_t len)
{
	json_object *pods = tenv_admin_get(&env, "/v1/pods"), *p, *fo, *hb;

	out[0] = '\0';
	p = pods ? pod_of(pods, "client-b") : NULL;
	if (p && json_object_object_get_ex(p, "fail_open", &fo) && fo &&
	    json_object_object_get_ex(fo, "heartbeat", &hb))
		snprintf(out, len, "%s", json_object_get_string(hb));
	json_object_put(pods);
}

static long long total_conns_of(const char *name)
{
	json_object *pods = tenv_admin_get(&env, "/v1/pods"), *p, *c, *t;
	long long n = -1;

	p = pods ? pod_of(pods, name) : NULL;
	if (p && json_object_object_get_ex(p, "connections", &c) &&
	    json_object_object_get_ex(c, "total", &t))
		n = json_object_get_int64(t);
	json_object_put(pods);
	return n;
}

Test(failopen, kill9_fails_open_after_the_threshold_only_where_asked_and_a_restart_captures_again)
{
	char out[256];
	uint64_t t0, t_out = 0, t_in = 0, t_closed;
	long long before;
	int err;

	/* Alive: both pods are captured (the VIP answers only through the
	 * proxy), and the heartbeat is fresh.
	 */
	cr_assert_eq(tsock_ident("b", "198.19.0.10:80", out, sizeof(out)), 0);
	cr_assert_eq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0);
	heartbeat_of_b(out, sizeof(out));
	cr_assert_str_eq(out, "fresh");

	tproc_kill(env.agent);
	env.agent = 0;
	t0 = tproc_now_ms();
	/* Until the heartbeat can be stale (its last beat was at most BEAT_MS
	 * before the kill), both pods fail fast: refused, never bypassing.
	 */
	t_closed = t0 + AFTER_MS - BEAT_MS - 500;
	while (tproc_now_ms() < t_closed) {
		err = tsock_ident("b", "198.18.2.14:8080", out, sizeof(out));
		cr_assert_eq(err, -ECONNREFUSED, "pod b %llu ms after the kill: %d '%s'",
			     (unsigned long long)(tproc_now_ms() - t0), err, out);
		err = tsock_ident("c", "198.18.3.2:9000", out, sizeof(out));
		cr_assert_neq(err, 0, "inbound to pod b %llu ms after the kill reached '%s'",
			      (unsigned long long)(tproc_now_ms() - t0), out);
		usleep(100000);
	}
	/* Then pod b's connections go straight to the backend, and inbound
	 * ones straight to its application, within the threshold and slack.
	 */
	while (tproc_now_ms() < t0 + AFTER_MS + SLACK_MS && (!t_out || !t_in)) {
		if (!t_out && !tsock_ident("b", "198.18.2.14:8080", out, sizeof(out))) {
			t_out = tproc_now_ms();
			cr_assert_str_eq(out, "api-1 198.18.3.2");
		}
		if (!t_in && !tsock_ident("c", "198.18.3.2:9000", out, sizeof(out))) {
			t_in = tproc_now_ms();
			cr_assert_str_eq(out, "app-b 198.18.4.2");
		}
		usleep(50000);
	}
	cr_assert(t_out, "pod b never reached the backend after the kill");
	cr_assert(t_in, "nobody reached pod b's application after the kill");
	fprintf(stderr, "failopen (%s): kill -9 -> first bypassing connection after %llu ms "
		"outbound, %llu ms inbound (--fail-open-after %d)\n",
		tenv_mode(), (unsigned long long)(t_out - t0), (unsigned long long)(t_in - t0),
		AFTER_MS);
	/* Pod a, of an ordinary namespace, still fails fast both ways. */
	err = tsock_ident("a", "198.18.2.14:8080", out, sizeof(out));
	cr_assert_eq(err, -ECONNREFUSED, "pod a bypassed the dead mesh: %d '%s'", err, out);
	err = tsock_ident("c", "198.18.1.2:9000", out, sizeof(out));
	cr_assert_neq(err, 0, "inbound to pod a bypassed the dead mesh: '%s'", out);

	/* The same state, restarted: pod b is captured again, no action. */
	cr_assert_eq(tenv_agent_start(&env), 0, "restart, see %s", env.agent_log);
	heartbeat_of_b(out, sizeof(out));
	cr_assert_str_eq(out, "fresh");
	cr_assert_eq(tsock_ident("b", "198.19.0.10:80", out, sizeof(out)), 0,
		     "the VIP answers only through the proxy");
	before = total_conns_of("client-b");
	cr_assert_geq(before, 0);
	cr_assert_eq(tsock_ident("b", "198.18.2.14:8080", out, sizeof(out)), 0);
	cr_assert_eq(total_conns_of("client-b"), before + 1,
		     "the agent did not see pod b's direct connection: not captured");
	if (tenv_mode_is("ebpf")) {
		cr_expect_geq(tenv_status_counter(&env, "bpf.counters.fail_open"), 1);
		cr_expect_geq(tenv_status_counter(&env, "bpf.counters.inbound_fail_open"), 1);
	}
}

Test(failopen, the_admin_api_meshctl_and_trace_say_which_pods_fail_open)
{
	json_object *pods = tenv_admin_get(&env, "/v1/pods"), *p, *fo, *tr, *v;
	char out[8192];
	int rc;

	cr_assert(pods != NULL);
	p = pod_of(pods, "client-a");
	cr_assert(p && json_object_object_get_ex(p, "fail_open", &fo) && !fo,
		  "pod a is not fail-open");
	p = pod_of(pods, "client-b");
	cr_assert(p && json_object_object_get_ex(p, "fail_open", &fo) && fo);
	cr_assert_eq(json_object_get_int64(json_object_object_get(fo, "after_ms")), AFTER_MS);
	cr_assert_str_eq(json_object_get_string(json_object_object_get(fo, "heartbeat")), "fresh");
	json_object_put(pods);
	rc = tenv_capture(out, sizeof(out), "%s/san/meshctl --socket %s/admin.sock pod open/client-b",
			  env.build, env.run_dir);
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert(strstr(out, "Fail-open:") && strstr(out, "heartbeat fresh"), "%s", out);
	tr = tenv_admin_get(&env, "/v1/trace?pod=open/client-b&dest=198.18.2.14:8080");
	cr_assert(tr != NULL);
	cr_assert(json_object_object_get_ex(tr, "fail_open", &v) && json_object_get_boolean(v));
	cr_assert(json_object_object_get_ex(tr, "heartbeat_stale", &v) &&
		  !json_object_get_boolean(v));
	cr_assert_str_eq(json_object_get_string(json_object_object_get(tr, "decision")),
			 "redirected");
	json_object_put(tr);
}

Test(failopen, a_hand_over_keeps_the_heartbeat_fresh)
{
	pid_t prev = env.agent;
	uint64_t until;
	char out[256];
	int status;

	env.agent = 0;
	snprintf(env.extra_args, sizeof(env.extra_args), "--fail-open-after %d --takeover",
		 AFTER_MS);
	cr_assert_eq(tenv_agent_start(&env), 0, "successor, see %s", env.agent_log);
	until = tproc_now_ms() + 15000;
	while (tenv_admin_pid(&env) != env.agent) {
		cr_assert_lt(tproc_now_ms(), until, "no take-over, see %s", env.agent_log);
		usleep(20000);
	}
	/* The predecessor stopped beating when it released; with nothing to
	 * drain it exits at once.
	 */
	cr_assert_eq(waitpid(prev, &status, 0), prev);
	/* Past the threshold and a beat, pod b is still captured. */
	until = tproc_now_ms() + AFTER_MS + BEAT_MS + 500;
	while (tproc_now_ms() < until) {
		cr_assert_eq(tsock_ident("b", "198.19.0.10:80", out, sizeof(out)), 0);
		heartbeat_of_b(out, sizeof(out));
		cr_assert_str_eq(out, "fresh");
		usleep(250000);
	}
	if (tenv_mode_is("ebpf"))
		cr_expect_eq(tenv_status_counter(&env, "bpf.counters.fail_open"), 0);
}
