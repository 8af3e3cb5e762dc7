// SPDX-License-Identifier: GPL-2.0-only
/* The agent's life around the traffic: registry reloads (a big one with the
 * admin API answering all along), CNI DEL and CHECK, stop (fail closed),
 * restart (pods taken back), --cleanup (nothing left).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "datapath/nft.h"
#include "datapath/retpath.h"
#include "fixture.h"
#include "netns.h"
#include "tns.h"
#include "sock.h"
#include "topo.h"

static void up(void)
{
	fixture_up();
	fixture_backends_start(false);
}

static void down(void)
{
	fixture_backends_stop();
	fixture_down();
}

/* Copy TOPO_REGISTRY into @buf with the first @from replaced by @to. */
static void registry_with(char *buf, size_t cap, const char *from, const char *to)
{
	const char *at = strstr(TOPO_REGISTRY, from);

	cr_assert(at != NULL, "'%s' not in the registry", from);
	snprintf(buf, cap, "%.*s%s%s", (int)(at - TOPO_REGISTRY), TOPO_REGISTRY, to,
		 at + strlen(from));
}

TestSuite(lifecycle, .init = up, .fini = down, .timeout = 120);

Test(lifecycle, registry_reload_moves_traffic_to_the_new_endpoints)
{
	char yaml[8192], out[256];

	/* web's endpoints become 198.18.2.14 only (served by "api-1"). */
	registry_with(yaml, sizeof(yaml),
		      "- addresses: [198.18.2.11]\n- addresses: [198.18.2.12]\n"
		      "- addresses: [198.18.2.13]\n",
		      "- addresses: [198.18.2.14]\n");
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	cr_assert(fixture_web_answers_from("api-1"), "traffic did not follow the reload");
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0);
		cr_assert(!strncmp(out, "api-1", 5), "answer %d from '%s' after reload", i, out);
	}
}

Test(lifecycle, a_broken_registry_file_keeps_the_previous_catalogue)
{
	char out[256];

	cr_assert_eq(tenv_write_registry(&env, "kind: [unterminated\n  - {"), 0);
	for (int i = 0; i < 50; i++) {
		if (tenv_status_counter(&env, "registries.0.load_errors") >= 1)
			break;
		usleep(100000);
	}
	cr_assert_geq(tenv_status_counter(&env, "registries.0.load_errors"), 1);
	cr_assert_eq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0,
		     "service lost after a bad reload");
	cr_assert(!strncmp(out, "web-", 4), "got '%s'", out);
}

/* The big registry: Services in namespace "bulk", each with a slice of two
 * endpoints that nothing connects to; VIPs from 198.19.64.1, endpoints in
 * 198.18.128.0/17. Big enough that reading it on the loop showed (about
 * half a second there with the optimised build; the sanitizer build the
 * suites run is slower still), small enough for a test of a few seconds.
 */
#define BULK_SERVICES 6000
/* The longest the admin API may take to answer during a reload: a few tens
 * of ms with the reload on its own thread, even on a 2-core machine loaded
 * by other jobs (which can stretch any answer to 100 ms and more).
 */
#define ADMIN_SLOW_MS 250

/* @base followed by BULK_SERVICES Services and their slices; the caller frees. */
static char *registry_with_bulk(const char *base)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	fprintf(f, "%s---\napiVersion: v1\nkind: Namespace\nmetadata: {name: bulk}\n", base);
	for (unsigned int i = 0; i < BULK_SERVICES; i++) {
		unsigned int ep = (i * 2) % 32768;

		fprintf(f,
			"---\napiVersion: v1\nkind: Service\n"
			"metadata: {name: s%05u, namespace: bulk}\n"
			"spec: {clusterIP: 198.19.%u.%u, ports: [{name: http, port: 80, "
			"targetPort: 8080}]}\n"
			"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			"metadata: {name: s%05u-1, namespace: bulk, "
			"labels: {kubernetes.io/service-name: s%05u}}\n"
			"addressType: IPv4\n"
			"endpoints: [{addresses: [198.18.%u.%u]}, {addresses: [198.18.%u.%u]}]\n"
			"ports: [{name: http, port: 8080}]\n",
			i, 64 + i / 250, 1 + i % 250, i, i, 128 + ep / 256, ep % 256,
			128 + (ep + 1) / 256, (ep + 1) % 256);
	}
	cr_assert_eq(fclose(f), 0);
	return buf;
}

/* @text with its first @from replaced by @to; the caller frees. */
static char *replaced(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *out;

	cr_assert(at != NULL, "'%s' not in the registry", from);
	cr_assert_neq(asprintf(&out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)),
		      -1);
	return out;
}

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One /v1/status: how long it took, the file registry's loads, the
 * catalogue's generation and Services (-1 each when it did not answer).
 */
struct status_poll {
	double ms;
	long long loads, generation, services;
};

static long long member_ll(json_object *o, const char *name)
{
	json_object *v;

	return o && json_object_object_get_ex(o, name, &v) ? json_object_get_int64(v) : -1;
}

static struct status_poll status_poll(void)
{
	double t0 = mono_ms();
	json_object *o = tenv_admin_get(&env, "/v1/status"), *regs;
	struct status_poll p = { .ms = mono_ms() - t0, .loads = -1 };

	p.generation = member_ll(o, "catalogue_generation");
	p.services = member_ll(o, "services");
	if (o && json_object_object_get_ex(o, "registries", &regs))
		p.loads = member_ll(json_object_array_get_idx(regs, 0), "loads");
	json_object_put(o);
	return p;
}

/* Write @yaml as the registry and poll the admin API every 10 ms until the
 * reload is applied (the file's loads counter moved, then the catalogue's
 * generation, and it has @services Services), and 200 ms beyond; returns
 * the longest answer in ms.
 */
static double admin_worst_during_reload(const char *yaml, long long services)
{
	struct status_poll before = status_poll(), p;
	double worst = 0, start, done = 0;

	cr_assert_geq(before.loads, 1, "no file registry in /v1/status");
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	start = mono_ms();
	for (;;) {
		p = status_poll();
		if (p.ms > worst)
			worst = p.ms;
		if (!done && p.loads > before.loads && p.generation != before.generation &&
		    p.services == services)
			done = mono_ms();
		if (done && mono_ms() - done >= 200)
			break;
		cr_assert_lt(mono_ms() - start, 60000, "the reload was not applied in 60 s");
		usleep(10000);
	}
	return worst;
}

/* Issue #15: the file is read and decoded on the registry's own thread, and
 * only what changed reaches the loop, so the admin API (and with it the CNI
 * server and the other registries, which share the loop) keeps answering
 * while a big file is reloaded.
 */
Test(lifecycle, a_big_registry_reload_leaves_the_admin_api_answering)
{
	char *big = registry_with_bulk(TOPO_REGISTRY), *moved;
	double worst;

	/* The Services arrive (web, api and the bulk): every object is new,
	 * and the loop applies them all.
	 */
	worst = admin_worst_during_reload(big, BULK_SERVICES + 2);
	cr_log_info("%u Services added: the admin API's longest answer %.1f ms", BULK_SERVICES,
		    worst);

	/* The same file but web's endpoints: read whole again, one object sent. */
	moved = replaced(big,
			 "- addresses: [198.18.2.11]\n- addresses: [198.18.2.12]\n"
			 "- addresses: [198.18.2.13]\n",
			 "- addresses: [198.18.2.14]\n");
	worst = admin_worst_during_reload(moved, BULK_SERVICES + 2);
	cr_log_info("%u Services reloaded, one changed: the admin API's longest answer %.1f ms",
		    BULK_SERVICES, worst);
	cr_assert_lt(worst, ADMIN_SLOW_MS,
		     "the admin API took %.1f ms to answer during the reload", worst);
	cr_assert(fixture_web_answers_from("api-1"), "traffic did not follow the reload");
	free(moved);
	free(big);
}

Test(lifecycle, namespace_label_change_meshes_and_unmeshes_enrolled_pods)
{
	char yaml[8192], out[256];

	/* Drop the label: pod a must stop being captured. */
	registry_with(yaml, sizeof(yaml), "    weft.io/mesh: enabled\n", "    team: web\n");
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
	bool released = false;

	for (int i = 0; i < 50 && !released; i++) {
		released = tsock_ident("a", "198.19.0.10:80", out, sizeof(out)) != 0;
		if (!released)
			usleep(100000);
	}
	cr_assert(released, "pod a is still captured after its namespace lost the label");
	cr_assert_eq(tenv_write_registry(&env, TOPO_REGISTRY), 0);
	cr_assert(fixture_web_answers_from("web-"), "pod a was not captured again");
}

Test(lifecycle, cni_check_and_del)
{
	char out[4096];
	int rc;

	rc = tenv_cni(&env, "CHECK", "a", "mesh", "client-a", "198.18.1.2", out, sizeof(out));
	cr_assert_eq(rc, 0, "CHECK failed: %s", out);
	rc = tenv_cni(&env, "DEL", "a", "mesh", "client-a", "198.18.1.2", out, sizeof(out));
	cr_assert_eq(rc, 0, "DEL failed: %s", out);
	/* After DEL the pod is on its own: the VIP is unreachable again. */
	cr_assert_neq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0);
	rc = tenv_cni(&env, "DEL", "a", "mesh", "client-a", "198.18.1.2", out, sizeof(out));
	cr_assert_eq(rc, 0, "a second DEL must succeed too: %s", out);
	rc = tenv_cni(&env, "CHECK", "a", "mesh", "client-a", "198.18.1.2", out, sizeof(out));
	cr_assert_neq(rc, 0, "CHECK of a deleted pod must fail");
}

Test(lifecycle, stopped_agent_fails_closed_and_a_restarted_one_takes_the_pods_back)
{
	char out[256];
	int err;

	cr_assert_eq(tenv_agent_stop(&env), 0, "agent exit status (leaks?), see %s", env.agent_log);
	/* Programs stay pinned (eBPF mode), tables stay in the pods (nft mode):
	 * the pod's connect is still redirected, and with nobody listening it
	 * is refused — never a bypass.
	 */
	err = tsock_ident("a", "198.19.0.10:80", out, sizeof(out));
	cr_assert_eq(err, -ECONNREFUSED, "with the agent down got %d '%s'", err, out);
	err = tsock_ident("a", "198.18.2.14:8080", out, sizeof(out));
	cr_assert_eq(err, -ECONNREFUSED, "direct traffic bypassed the stopped mesh: %d", err);
	cr_assert_eq(tenv_agent_start(&env), 0, "restart, see %s", env.agent_log);
	/* No CNI ADD again: the agent restores the pod from its saved state. */
	cr_assert_eq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0);
	cr_assert(!strncmp(out, "web-", 4), "got '%s'", out);
	json_object *pods = tenv_admin_get(&env, "/v1/pods");

	cr_assert(pods != NULL);
	cr_assert_eq(json_object_array_length(json_object_object_get(pods, "pods")), 3);
	json_object_put(pods);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

Test(lifecycle, cleanup_leaves_no_attachment_no_pin_no_socket)
{
	char out[4096], cmd_out[4096];
	int rc;

	cr_assert_eq(tenv_agent_stop(&env), 0, "see %s", env.agent_log);
	rc = tenv_agent_cleanup(&env);
	cr_assert_eq(rc, 0, "--cleanup exited %d, see %s", rc, env.agent_log);
	cr_assert_eq(count_entries(env.bpffs), 0, "pins left under %s", env.bpffs);
	cr_assert_eq(count_entries(env.run_dir), 0, "files left under %s", env.run_dir);
	rc = tenv_capture(cmd_out, sizeof(cmd_out), "bpftool cgroup show %s", env.cgroup);
	cr_assert_eq(rc, 0);
	cr_assert_eq(strlen(cmd_out), 0, "programs still attached: %s", cmd_out);
	/* Nothing in the pods' netns either: no table, no return path. */
	{
		const struct retpath r = { .mark = 0xef71, .table = 15006, .priority = 32000 };
		struct nft_pod_state st;
		struct retpath_state rs;
		char path[128];
		int fd = netns_open(tns_path("a", path, sizeof(path)));

		cr_assert_geq(fd, 0);
		cr_assert_eq(nft_pod_read(fd, &st), 0);
		cr_assert_eq(retpath_read(fd, &r, &rs), 0);
		close(fd);
		cr_assert_not(st.table_present, "table inet weft left in pod a");
		cr_assert_not(rs.rule4 || rs.rule6 || rs.route4 || rs.route6,
			      "the return path left in pod a");
	}
	/* And the pod's traffic is its own again. */
	cr_assert_eq(tsock_ident("a", "198.18.2.14:8080", out, sizeof(out)), 0);
	cr_assert(!strcmp(out, "api-1 198.18.1.2"), "got '%s'", out);
}

Test(lifecycle, meshctl_shows_the_pods)
{
	char out[8192];
	int rc;

	rc = tenv_capture(out, sizeof(out), "%s/san/meshctl --socket %s/admin.sock pods", env.build,
			  env.run_dir);
	cr_assert_eq(rc, 0, "meshctl pods: %s", out);
	cr_assert(strstr(out, "client-a") && strstr(out, "client-b") && strstr(out, "client-c"),
		  "meshctl pods output lacks a pod:\n%s", out);
	rc = tenv_capture(out, sizeof(out), "%s/san/meshctl -o json --socket %s/admin.sock pods",
			  env.build, env.run_dir);
	cr_assert_eq(rc, 0);
	json_object *o = json_tokener_parse(out);

	cr_assert(o != NULL, "meshctl -o json pods is not JSON: %s", out);
	json_object_put(o);
	rc = tenv_capture(out, sizeof(out), "%s/san/meshctl --socket %s/nope.sock status 2>&1",
			  env.build, env.run_dir);
	cr_assert_eq(rc, 1, "meshctl against no agent must exit 1");
	cr_assert(strstr(out, "nope.sock") != NULL, "error does not name the socket: %s", out);
}

/* TOPO_REGISTRY plus a Pod object for client-a carrying @annotations; waits
 * until /v1/pods shows @expect.
 */
static void registry_with_pod_a(const char *annotations, const char *expect)
{
	char yaml[8192];

	snprintf(yaml, sizeof(yaml),
		 "%s---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: client-a\n"
		 "  namespace: mesh\n  annotations:\n%s",
		 TOPO_REGISTRY, annotations);
	fixture_registry_until(yaml, expect);
}

Test(lifecycle, excluded_cidr_and_port_are_left_alone)
{
	long long total, excl;
	char out[256];

	registry_with_pod_a("    weft.io/exclude-outbound-cidrs: \"198.18.2.14/32\"\n",
			    "\"exclude_cidrs\":[\"198.18.2.14/32\"]");
	total = tenv_status_counter(&env, "connections.total");
	excl = tenv_status_counter(&env, "bpf.counters.excluded_cidr");	/* eBPF mode only */
	cr_assert_eq(tsock_ident("a", "198.18.2.14:8080", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "api-1 198.18.1.2");
	cr_assert_eq(tenv_status_counter(&env, "connections.total"), total,
		     "an excluded CIDR went through the proxy");
	if (tenv_mode_is("ebpf"))
		cr_assert_eq(tenv_status_counter(&env, "bpf.counters.excluded_cidr"), excl + 1);

	registry_with_pod_a("    weft.io/exclude-outbound-ports: \"8080\"\n", "\"exclude_ports\":[8080]");
	excl = tenv_status_counter(&env, "bpf.counters.excluded_port");
	cr_assert_eq(tsock_ident("a", "198.18.2.13:8080", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "web-3 198.18.1.2");
	cr_assert_eq(tenv_status_counter(&env, "connections.total"), total,
		     "an excluded port went through the proxy");
	if (tenv_mode_is("ebpf"))
		cr_assert_eq(tenv_status_counter(&env, "bpf.counters.excluded_port"), excl + 1);
	/* The VIP's port is not excluded: still meshed. */
	cr_assert_eq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0);
	cr_assert_eq(tenv_status_counter(&env, "connections.total"), total + 1);
}
