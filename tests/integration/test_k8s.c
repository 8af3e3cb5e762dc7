// SPDX-License-Identifier: GPL-2.0-only
/* End to end with --registry kubernetes: the real agent (sanitizer build)
 * reads the topology's services from the fake API server of
 * tests/k8s-apiserver/ (TLS on 127.0.0.1, kubeconfig with a token file), a
 * meshed pod connects to a service VIP, the EndpointSlice changes in the
 * "cluster" and the traffic follows; the API server going away leaves the
 * traffic alone.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../k8s-apiserver/k8s_fake.h"
#include "fixture.h"
#include "sock.h"

#define NODE "node-test"

static struct kfake kf;

/* TOPO_REGISTRY (tests/helpers/topo.c) as the API server holds it, plus the
 * Pods of this node (uid "uid-NAME", as tenv_cni() sends K8S_POD_UID).
 */
#define SLICE_V4(eps)                                                                              \
	"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":"       \
	"{\"name\":\"web-v4\",\"namespace\":\"mesh\",\"labels\":{\"kubernetes.io/service-name\":" \
	"\"web\"}},\"addressType\":\"IPv4\",\"endpoints\":[" eps "],\"ports\":[{\"name\":"        \
	"\"http\",\"port\":8080}]}"
#define EP(ip) "{\"addresses\":[\"" ip "\"],\"conditions\":{\"ready\":true},\"nodeName\":\"" NODE "\"}"
#define POD(name, ip)                                                                              \
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name "\","           \
	"\"namespace\":\"mesh\",\"uid\":\"uid-" name "\"},\"spec\":{\"nodeName\":\"" NODE "\"},"   \
	"\"status\":{\"phase\":\"Running\",\"podIP\":\""                                   \
	ip "\"}}"

static const char CLUSTER[] =
	"[{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"mesh\","
	"\"labels\":{\"weft.io/mesh\":\"enabled\"}}},"
	"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"plain\"}},"
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\",\"namespace\":"
	"\"mesh\"},\"spec\":{\"clusterIP\":\"198.19.0.10\",\"clusterIPs\":[\"198.19.0.10\","
	"\"fd00:198:19::10\"],\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080}]}},"
	SLICE_V4(EP("198.18.2.11") "," EP("198.18.2.12") "," EP("198.18.2.13")) ","
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"api\",\"namespace\":"
	"\"mesh\"},\"spec\":{\"clusterIP\":\"198.19.0.20\",\"ports\":[{\"name\":\"http\",\"port\":80,"
	"\"targetPort\":8080}]}},"
	"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{\"name\":"
	"\"api-1\",\"namespace\":\"mesh\",\"labels\":{\"kubernetes.io/service-name\":\"api\"}},"
	"\"addressType\":\"IPv4\",\"endpoints\":[" EP("198.18.2.14") "],\"ports\":[{\"name\":"
	"\"http\",\"port\":8080}]},"
	POD("client-a", "198.18.1.2") "," POD("client-b", "198.18.3.2") "]";

static const char *registry_health(void)
{
	static char buf[64];
	json_object *st = tenv_admin_get(&env, "/v1/status"), *regs, *r, *h;

	buf[0] = '\0';
	if (st && json_object_object_get_ex(st, "registries", &regs) &&
	    (r = json_object_array_get_idx(regs, 0)) && json_object_object_get_ex(r, "health", &h))
		snprintf(buf, sizeof(buf), "%s", json_object_get_string(h));
	json_object_put(st);
	return buf;
}

static bool wait_health(const char *want)
{
	for (int i = 0; i < 150; i++) {
		if (!strcmp(registry_health(), want))
			return true;
		usleep(100000);
	}
	return false;
}

static void up(void)
{
	/* One worker: the round-robin test asserts an exact node-wide split,
	 * which per-worker balancers do not give (docs/resilience.md).
	 */
	setenv("WEFT_WORKERS", "1", 1);
	tenv_setup(&env);
	cr_assert_eq(kfake_start(&kf, NULL), 0, "the fake API server did not start");
	cr_assert_eq(kfake_apply(&kf, CLUSTER), 0);
	snprintf(env.registry_spec, sizeof(env.registry_spec), "kubernetes");
	snprintf(env.extra_args, sizeof(env.extra_args),
		 "--kubeconfig %s --node-name %s --pod-wait 2000", kf.kubeconfig, NODE);
	cr_assert_eq(tenv_agent_start(&env), 0, "weft-agent did not start, see %s", env.agent_log);
	cr_assert(wait_health("synced"), "the kubernetes registry is '%s', see %s", registry_health(),
		  env.agent_log);
	fixture_enroll("a", "mesh", "client-a", "198.18.1.2");
	fixture_enroll("c", "plain", "client-c", "198.18.4.2");
	fixture_backends_start(false);
}

static void down(void)
{
	fixture_backends_stop();
	/* Before the agent stops: the server runs in the test cgroup, which
	 * fixture_down() removes.
	 */
	kfake_stop(&kf);
	fixture_down();
}

TestSuite(k8s_e2e, .init = up, .fini = down, .timeout = 120);

Test(k8s_e2e, traffic_follows_the_endpointslice_in_the_api_server)
{
	int seen[3] = { 0 };
	char out[256];
	int err;

	for (int i = 0; i < 30; i++) {
		err = tsock_ident("a", "198.19.0.10:80", out, sizeof(out));
		cr_assert_eq(err, 0, "connect %d to the VIP: %s", i, strerror(-err));
		cr_assert(!strncmp(out, "web-", 4) && strstr(out, " 198.18.1.2"), "answer '%s'", out);
		seen[out[4] - '1']++;
	}
	cr_expect(seen[0] == 10 && seen[1] == 10 && seen[2] == 10, "round robin: %d %d %d", seen[0],
		  seen[1], seen[2]);
	/* The EndpointSlice controller moves web to 198.18.2.14 (served by "api-1"). */
	cr_assert_eq(kfake_apply(&kf, "[" SLICE_V4(EP("198.18.2.14")) "]"), 0);
	cr_assert(fixture_web_answers_from("api-1"), "traffic did not follow the EndpointSlice");
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0);
		cr_assert(!strncmp(out, "api-1", 5), "answer %d from '%s' after the change", i, out);
	}
	/* And back, to two endpoints. */
	cr_assert_eq(kfake_apply(&kf, "[" SLICE_V4(EP("198.18.2.11") "," EP("198.18.2.12")) "]"), 0);
	cr_assert(fixture_web_answers_from("web-"), "traffic did not come back");
	cr_assert_geq(tenv_status_counter(&env, "registries.0.events"), 2);
	cr_assert_eq(tenv_agent_stop(&env), 0, "weft-agent did not exit cleanly, see %s",
		     env.agent_log);
}

Test(k8s_e2e, a_deleted_service_stops_being_captured_and_an_outage_keeps_the_rest)
{
	char out[256];
	bool gone = false;

	cr_assert_eq(kfake_delete(&kf, "Service", "mesh", "api"), 0);
	for (int i = 0; i < 50 && !gone; i++) {
		gone = tsock_ident("a", "198.19.0.20:80", out, sizeof(out)) != 0;
		if (!gone)
			usleep(100000);
	}
	cr_assert(gone, "the deleted Service's VIP still answers");
	/* The API server dies: the agent keeps serving what it knows. */
	kfake_kill(&kf);
	cr_assert(wait_health("stale"), "registry health is '%s'", registry_health());
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0,
			     "the VIP stopped working during the outage");
		cr_assert(!strncmp(out, "web-", 4), "got '%s'", out);
	}
	cr_assert_eq(tenv_agent_stop(&env), 0, "weft-agent did not exit cleanly, see %s",
		     env.agent_log);
}

Test(k8s_e2e, a_restart_without_the_api_server_keeps_meshed_pods_captured)
{
	long long before;
	char out[4096];
	int rc;

	cr_assert_eq(tenv_agent_stop(&env), 0, "see %s", env.agent_log);
	/* The agent comes back while the cluster is unreachable: it cannot tell
	 * which pods are meshed, so it must hold on to what it saved.
	 */
	kfake_kill(&kf);
	cr_assert_eq(tenv_agent_start(&env), 0, "restart, see %s", env.agent_log);
	before = tenv_status_counter(&env, "connections.passthrough");
	cr_assert_eq(tsock_ident("a", "198.18.2.14:8080", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "api-1 198.18.1.2");
	cr_assert_eq(tenv_status_counter(&env, "connections.passthrough"), before + 1,
		     "pod a bypassed the mesh while the registry had not synced");
	/* The plain pod stays plain. */
	before = tenv_status_counter(&env, "connections.total");
	cr_assert_eq(tsock_ident("c", "198.18.2.14:8080", out, sizeof(out)), 0);
	cr_assert_eq(tenv_status_counter(&env, "connections.total"), before);
	/* A new pod cannot be decided yet: the runtime is told to retry. */
	rc = tenv_cni(&env, "ADD", "b", "mesh", "client-b", "198.18.3.2", out, sizeof(out));
	cr_assert_neq(rc, 0, "ADD before the first sync must fail");
	cr_assert(strstr(out, "\"code\": 11") || strstr(out, "\"code\":11"),
		  "not 'try again later': %s", out);
}

/* A Pod of this node in namespace mesh with uid "uid-NAME" (what
 * tenv_cni() sends as K8S_POD_UID) and the annotation weft.io/mesh: disabled.
 */
#define OPTED_OUT_POD(name, ip)                                                                    \
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name "\","           \
	"\"namespace\":\"mesh\",\"uid\":\"uid-" name "\",\"annotations\":{\"weft.io/mesh\":"      \
	"\"disabled\"}},\"spec\":{\"nodeName\":\"" NODE "\"},\"status\":{\"phase\":"            \
	"\"Pending\",\"podIP\":\"" ip "\"}}"

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* The "meshed" and "reason" of pod mesh/@name in the admin API. */
static bool pod_meshed(const char *name, char *reason, size_t len)
{
	char path[128];
	json_object *o, *arr = NULL, *p = NULL, *v;
	bool meshed = true;

	snprintf(path, sizeof(path), "/v1/pods?pod=mesh/%s", name);
	o = tenv_admin_get(&env, path);
	cr_assert(o && json_object_object_get_ex(o, "pods", &arr) &&
		  (p = json_object_array_get_idx(arr, 0)), "pod mesh/%s is not enrolled", name);
	if (json_object_object_get_ex(p, "meshed", &v))
		meshed = json_object_get_boolean(v);
	if (json_object_object_get_ex(p, "reason", &v))
		snprintf(reason, len, "%s", json_object_get_string(v));
	json_object_put(o);
	return meshed;
}

Test(k8s_e2e, an_add_waits_for_its_pod_object_and_honours_its_opt_out)
{
	long long t0, took;
	char out[4096], reason[256] = "";
	pid_t child;
	int rc, status;

	/* The runtime's ADD comes before the watch delivers the Pod, which
	 * the API server learns of 300 ms later.
	 */
	child = fork();
	cr_assert_neq(child, -1);
	if (child == 0) {
		usleep(300000);
		_exit(kfake_apply(&kf, "[" OPTED_OUT_POD("late", "198.18.3.2") "]") ? 1 : 0);
	}
	t0 = mono_ms();
	rc = tenv_cni(&env, "ADD", "b", "mesh", "late", "198.18.3.2", out, sizeof(out));
	took = mono_ms() - t0;
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "applying the Pod failed");
	cr_assert_eq(rc, 0, "ADD failed: %s", out);
	cr_expect_geq(took, 250, "the ADD did not wait for the Pod (%lld ms)", took);
	cr_expect_lt(took, 2000, "the ADD waited out its timeout (%lld ms)", took);
	cr_assert(!pod_meshed("late", reason, sizeof(reason)),
		  "the pod opted out but was meshed: %s", reason);
	cr_assert(strstr(reason, "disabled"), "reason '%s'", reason);
}

Test(k8s_e2e, an_add_whose_pod_never_arrives_fails_with_try_again_later)
{
	long long t0, took;
	char out[4096];
	int rc;

	t0 = mono_ms();
	rc = tenv_cni(&env, "ADD", "b", "mesh", "never", "198.18.3.2", out, sizeof(out));
	took = mono_ms() - t0;
	cr_assert_neq(rc, 0, "ADD without its Pod object must fail: %s", out);
	cr_assert(strstr(out, "\"code\": 11") || strstr(out, "\"code\":11"),
		  "not 'try again later': %s", out);
	cr_assert(strstr(out, "mesh/never") && strstr(out, "2000 ms"), "message: %s", out);
	cr_expect_geq(took, 1900, "gave up after %lld ms, before --pod-wait 2000", took);
	/* Nothing is left enrolled or waiting. */
	cr_assert_eq(tenv_status_counter(&env, "pods.waiting"), 0);
	/* A pod of a namespace that is not meshed never waits. */
	t0 = mono_ms();
	rc = tenv_cni(&env, "ADD", "c", "plain", "nowhere", "198.18.4.2", out, sizeof(out));
	cr_assert_eq(rc, 0, "ADD in a plain namespace: %s", out);
	cr_expect_lt(mono_ms() - t0, 1000, "a pod of a plain namespace waited");
}

/* Whether the fake API server evicted @ref ("ns/name"); its refusals in
 * *@refused.
 */
static bool evicted(const char *ref, long long *refused)
{
	json_object *st = kfake_stats(&kf), *arr, *v;
	bool found = false;

	*refused = -1;
	if (!st)
		return false;
	if (json_object_object_get_ex(st, "evictions_refused", &v))
		*refused = json_object_get_int64(v);
	if (json_object_object_get_ex(st, "evictions", &arr)) {
		for (size_t i = 0; i < json_object_array_length(arr); i++)
			found |= !strcmp(json_object_get_string(json_object_array_get_idx(arr, i)),
					 ref);
	}
	json_object_put(st);
	return found;
}

Test(k8s_e2e, a_pod_that_escaped_is_reported_then_evicted_with_evict_escaped)
{
	json_object *o, *arr = NULL, *p = NULL, *v;
	char out[8192];
	long long refused = -1;
	bool done = false;
	int rc;

	/* client-b runs in meshed namespace "mesh" (phase Running) and was
	 * never enrolled: it started before weft-cni was chained.
	 */
	cr_assert_eq(tenv_status_counter(&env, "pods.escaped"), 1);
	o = tenv_admin_get(&env, "/v1/escaped");
	cr_assert(o && json_object_object_get_ex(o, "pods", &arr) &&
		  json_object_array_length(arr) == 1 && (p = json_object_array_get_idx(arr, 0)));
	cr_assert(json_object_object_get_ex(p, "name", &v));
	cr_assert_str_eq(json_object_get_string(v), "client-b");
	cr_assert(json_object_object_get_ex(p, "uid", &v));
	cr_assert_str_eq(json_object_get_string(v), "uid-client-b");
	json_object_put(o);
	rc = tenv_capture(out, sizeof(out), "%s/san/meshctl --socket %s/admin.sock check 2>&1",
			  env.build, env.run_dir);
	cr_assert_neq(rc, 0, "meshctl check passed with an unmeshed pod:\n%s", out);
	cr_assert(strstr(out, "FAIL  unmeshed pods") && strstr(out, "mesh/client-b"),
		  "meshctl check does not name the pod:\n%s", out);
	/* Nothing is evicted without the option. */
	cr_assert(!evicted("mesh/client-b", &refused));

	/* With --evict-escaped: a disruption budget refuses the first try
	 * (429), the next period's succeeds, and the pod leaves the node.
	 */
	cr_assert_eq(kfake_control(&kf, "evictions", "{\"refuse\":1}"), 0);
	cr_assert_eq(tenv_agent_stop(&env), 0, "see %s", env.agent_log);
	snprintf(env.extra_args, sizeof(env.extra_args),
		 "--kubeconfig %s --node-name %s --evict-escaped --repair-period 300",
		 kf.kubeconfig, NODE);
	cr_assert_eq(tenv_agent_start(&env), 0, "restart, see %s", env.agent_log);
	for (int i = 0; i < 100 && !done; i++) {
		done = evicted("mesh/client-b", &refused);
		if (!done)
			usleep(100000);
	}
	cr_assert(done, "client-b was not evicted, see %s", env.agent_log);
	cr_assert_eq(refused, 1, "the first eviction was not refused (%lld)", refused);
	done = false;
	for (int i = 0; i < 50 && !done; i++) {
		done = tenv_status_counter(&env, "pods.escaped") == 0;
		if (!done)
			usleep(100000);
	}
	cr_assert(done, "the evicted pod is still reported");
	o = tenv_admin_get(&env, "/v1/escaped");
	cr_assert(o && json_object_object_get_ex(o, "evictions", &v));
	cr_assert(json_object_object_get_ex(v, "refused", &p) && json_object_get_int64(p) == 1);
	cr_assert(json_object_object_get_ex(v, "evicted", &p) && json_object_get_int64(p) == 1);
	json_object_put(o);
	/* The plain pod was left alone. */
	cr_assert(!evicted("plain/client-c", &refused));
}
