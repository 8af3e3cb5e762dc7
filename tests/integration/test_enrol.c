// SPDX-License-Identifier: GPL-2.0-only
/* Enrolment that cannot be tricked or lost (issue #12, docs/cni.md "The
 * netns path" and "A squatted proxy port"): netns paths that are FIFOs,
 * symlinks to other files or the agent's own netns are refused without
 * wedging the agent; one netns enrolled under two container ids stays meshed
 * until both are gone; a saved pod whose path now names another netns is
 * forgotten; a proxy port squatted while the agent is down never lets the
 * pod out of the mesh. Runs in both capture modes (MODE_SUITES).
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fixture.h"
#include "sock.h"
#include "tns.h"
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

TestSuite(enrol, .init = up, .fini = down, .timeout = 120);

/* weft-cni @cmd for container @ctr with CNI_NETNS=@netns, as pod
 * mesh/@pod (a meshed namespace). Its exit status, its output in @out.
 */
static int cni(const char *cmd, const char *ctr, const char *netns, const char *pod, char *out,
	       size_t len)
{
	char conf[PATH_MAX * 2 + 512], conf_path[PATH_MAX + 32];
	FILE *f;

	snprintf(conf, sizeof(conf),
		 "{\"cniVersion\":\"1.0.0\",\"name\":\"test\",\"type\":\"weft-cni\","
		 "\"agent_socket\":\"%s/cni.sock\",\"prevResult\":{\"cniVersion\":\"1.0.0\","
		 "\"interfaces\":[{\"name\":\"eth0\",\"sandbox\":\"%s\"}],"
		 "\"ips\":[{\"address\":\"198.18.9.2/24\",\"interface\":0}]}}",
		 env.run_dir, netns);
	snprintf(conf_path, sizeof(conf_path), "%s/cni-enrol-%s.json", env.tmp, ctr);
	f = fopen(conf_path, "w");
	cr_assert(f != NULL);
	fputs(conf, f);
	fclose(f);
	return tenv_capture(out, len,
			    "CNI_COMMAND=%s CNI_CONTAINERID=%s CNI_NETNS=%s CNI_IFNAME=eth0 "
			    "CNI_PATH=/opt/cni/bin CNI_ARGS='IgnoreUnknown=1;K8S_POD_NAMESPACE=mesh;"
			    "K8S_POD_NAME=%s;K8S_POD_UID=uid-%s' %s/san/weft-cni < %s 2>&1",
			    cmd, ctr, netns, pod, pod, env.build, conf_path);
}

/* The /v1/pods entry of mesh/@name, or NULL; a new reference in *@root. */
static json_object *pod_entry(const char *name, json_object **root)
{
	json_object *pods;

	*root = tenv_admin_get(&env, "/v1/pods");
	cr_assert(*root != NULL, "the admin API does not answer, see %s", env.agent_log);
	pods = json_object_object_get(*root, "pods");
	for (size_t i = 0; i < json_object_array_length(pods); i++) {
		json_object *p = json_object_array_get_idx(pods, i);

		if (!strcmp(json_object_get_string(json_object_object_get(p, "name")), name))
			return p;
	}
	return NULL;
}

static size_t pods_known(void)
{
	json_object *root = tenv_admin_get(&env, "/v1/pods");
	size_t n;

	cr_assert(root != NULL, "the admin API does not answer, see %s", env.agent_log);
	n = json_object_array_length(json_object_object_get(root, "pods"));
	json_object_put(root);
	return n;
}

/* A refused ADD: fails with CNI code 4 naming @why, fast, and the agent's
 * admin API still answers with the fixture's three pods.
 */
static void assert_refused(const char *ctr, const char *netns, const char *why)
{
	char out[4096];
	uint64_t t0 = mono_ms();
	int rc = cni("ADD", ctr, netns, ctr, out, sizeof(out));

	cr_assert_neq(rc, 0, "ADD with netns '%s' succeeded: %s", netns, out);
	cr_assert_lt(mono_ms() - t0, 5000, "ADD with netns '%s' took %llu ms", netns,
		     (unsigned long long)(mono_ms() - t0));
	cr_assert(strstr(out, "\"code\": 4") || strstr(out, "\"code\":4"),
		  "not CNI code 4 (invalid environment): %s", out);
	cr_assert(strstr(out, why), "the error does not say '%s': %s", why, out);
	cr_assert_eq(pods_known(), 3, "a refused netns was enrolled");
}

Test(enrol, a_fifo_netns_path_fails_fast_and_the_agent_keeps_answering)
{
	char fifo[PATH_MAX + 8];

	snprintf(fifo, sizeof(fifo), "%s/fifo", env.tmp);
	cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %m");
	/* Nobody ever opens the FIFO's other end: an open() would hang. */
	assert_refused("ctr-fifo", fifo, "FIFO");
}

Test(enrol, a_symlink_to_a_file_that_is_no_netns_is_refused)
{
	char link[PATH_MAX + 8];

	snprintf(link, sizeof(link), "%s/ns-link", env.tmp);
	cr_assert_eq(symlink(env.registry, link), 0, "symlink: %m");
	assert_refused("ctr-link", link, "not a network namespace");
}

Test(enrol, a_symlink_to_a_netns_is_judged_by_its_target)
{
	char link[PATH_MAX + 8], path[128], out[4096];
	json_object *root, *p;
	int rc;

	/* What runtimes do: /proc/PID/ns/net is a magic link. Here a plain
	 * one to an enrolled netns: accepted, and one capture for both.
	 */
	snprintf(link, sizeof(link), "%s/ns-link", env.tmp);
	cr_assert_eq(symlink(tns_path("b", path, sizeof(path)), link), 0, "symlink: %m");
	rc = cni("ADD", "ctr-b-link", link, "client-b-link", out, sizeof(out));
	cr_assert_eq(rc, 0, "ADD through a symlink to a netns: %s", out);
	p = pod_entry("client-b-link", &root);
	cr_assert(p != NULL);
	cr_assert(json_object_get_boolean(json_object_object_get(p, "meshed")));
	cr_assert_eq(json_object_get_int(json_object_object_get(p, "netns_enrolments")), 2);
	json_object_put(root);
}

Test(enrol, the_agents_own_netns_is_refused)
{
	char path[64];

	/* The agent's own netns through the magic link a runtime would pass. */
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)env.agent);
	assert_refused("ctr-self", path, "agent's own");
}

Test(enrol, one_netns_enrolled_twice_stays_meshed_until_both_are_deleted)
{
	char path[128], out[4096];
	json_object *root, *p;
	int rc;

	tns_path("a", path, sizeof(path));
	rc = cni("ADD", "ctr-a2", path, "client-a2", out, sizeof(out));
	cr_assert_eq(rc, 0, "second ADD of netns a: %s", out);
	p = pod_entry("client-a2", &root);
	cr_assert(p != NULL, "the second enrolment is not in /v1/pods");
	cr_assert(json_object_get_boolean(json_object_object_get(p, "meshed")));
	cr_assert_eq(json_object_get_int(json_object_object_get(p, "netns_enrolments")), 2);
	json_object_put(root);

	/* The first container goes: the netns stays captured for the second. */
	rc = tenv_cni(&env, "DEL", "a", "mesh", "client-a", "198.18.1.2", out, sizeof(out));
	cr_assert_eq(rc, 0, "DEL: %s", out);
	cr_assert_eq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0,
		     "netns a lost its capture with the other container's DEL");
	cr_assert(!strncmp(out, "web-", 4), "got '%s'", out);
	p = pod_entry("client-a", &root);
	cr_assert_null(p, "a deleted container is still in /v1/pods");
	json_object_put(root);
	p = pod_entry("client-a2", &root);
	cr_assert(p != NULL);
	cr_assert(json_object_get_boolean(json_object_object_get(p, "meshed")));
	cr_assert_eq(json_object_get_int(json_object_object_get(p, "netns_enrolments")), 1);
	cr_assert(json_object_array_length(json_object_object_get(p, "listeners")) >= 1,
		  "the shared netns lost its listeners");
	json_object_put(root);
	rc = cni("CHECK", "ctr-a2", path, "client-a2", out, sizeof(out));
	cr_assert_eq(rc, 0, "CHECK of the remaining container: %s", out);

	/* The last one goes: the pod's traffic is its own again. */
	rc = cni("DEL", "ctr-a2", path, "client-a2", out, sizeof(out));
	cr_assert_eq(rc, 0, "DEL: %s", out);
	cr_assert_neq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0,
		      "netns a is still captured after both DELs");
}

/* Wait up to @ms for the agent's log to contain @what. */
static bool log_says(const char *what, int ms)
{
	char cmd_out[64];

	for (int i = 0; i < ms / 100; i++) {
		if (tenv_capture(cmd_out, sizeof(cmd_out), "grep -qF -- '%s' %s", what,
				 env.agent_log) == 0)
			return true;
		usleep(100000);
	}
	return false;
}

/* Enroll fresh netns "d" through a symlink, stop the agent, point the
 * symlink at @target, restart: the saved pod must be forgotten.
 */
static void restore_after_repoint(const char *target, const char *why)
{
	char link[PATH_MAX + 8], path[128], state[PATH_MAX + 32], out[4096];
	json_object *root;
	int rc;

	cr_assert_eq(tns_add("d"), 0);
	snprintf(link, sizeof(link), "%s/d-link", env.tmp);
	cr_assert_eq(symlink(tns_path("d", path, sizeof(path)), link), 0, "symlink: %m");
	rc = cni("ADD", "ctr-d", link, "client-d", out, sizeof(out));
	cr_assert_eq(rc, 0, "ADD of netns d: %s", out);
	snprintf(state, sizeof(state), "%s/pods/ctr-d.json", env.run_dir);
	cr_assert_eq(access(state, F_OK), 0, "no saved state for ctr-d");

	cr_assert_eq(tenv_agent_stop(&env), 0, "agent exit status (leaks?), see %s",
		     env.agent_log);
	cr_assert_eq(unlink(link), 0);
	cr_assert_eq(symlink(target, link), 0, "symlink: %m");
	cr_assert_eq(tenv_agent_start(&env), 0, "restart, see %s", env.agent_log);

	cr_assert_null(pod_entry("client-d", &root), "a pod whose path moved was restored");
	json_object_put(root);
	cr_assert_neq(access(state, F_OK), 0, "the moved pod's state was kept");
	cr_assert(log_says(why, 3000), "the agent's log does not say '%s', see %s", why,
		  env.agent_log);
	/* The pods restored as they were. */
	cr_assert_eq(pods_known(), 3);
	cr_assert_eq(tsock_ident("a", "198.19.0.10:80", out, sizeof(out)), 0);
	cr_assert(!strncmp(out, "web-", 4), "got '%s'", out);
}

Test(enrol, a_saved_path_now_naming_another_netns_is_forgotten_at_restore)
{
	char path[128], out[256];

	/* Pod c is not meshed: the moved path must not mesh it either. */
	restore_after_repoint(tns_path("c", path, sizeof(path)),
			      "now names another network namespace");
	cr_assert_neq(tsock_ident("c", "198.19.0.10:80", out, sizeof(out)), 0,
		      "pod c got captured under the moved pod's entry");
}

Test(enrol, a_saved_path_now_naming_no_netns_is_forgotten_at_restore)
{
	restore_after_repoint(env.registry, "not a network namespace");
}

/* A process of pod a listening on @ip:@port, answering every connection
 * with "squatter" (what tsock_ident() reads). Returns its pid once it listens.
 */
static pid_t squat(const char *ip, uint16_t port)
{
	int ready[2];
	char c;
	pid_t pid;

	cr_assert_eq(pipe(ready), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
		int fd;

		close(ready[0]);
		inet_pton(AF_INET, ip, &sa.sin_addr);
		if (tns_enter("a"))
			_exit(1);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64))
			_exit(2);
		if (write(ready[1], "r", 1) != 1)
			_exit(3);
		for (;;) {
			int cfd = accept(fd, NULL, NULL);

			if (cfd >= 0) {
				(void)!write(cfd, "squatter", 8);
				close(cfd);
			}
		}
	}
	close(ready[1]);
	cr_assert_eq(read(ready[0], &c, 1), 1, "the squatter did not start");
	close(ready[0]);
	return pid;
}

static void squatter_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void squat_across_restart(const char *ip, uint16_t port)
{
	char want[64], out[8192], state[PATH_MAX + 32];
	json_object *root, *p;
	bool recovered = false;
	pid_t pid;
	int rc, err;

	cr_assert_eq(tenv_agent_stop(&env), 0, "agent exit status (leaks?), see %s",
		     env.agent_log);
	pid = squat(ip, port);
	cr_assert_eq(tenv_agent_start(&env), 0, "restart, see %s", env.agent_log);

	/* Enrolled, capture in place, reported. */
	snprintf(want, sizeof(want), "listener blocked: port %u held by another socket", port);
	p = pod_entry("client-a", &root);
	cr_assert(p != NULL, "the squatted pod was forgotten");
	cr_assert(json_object_get_boolean(json_object_object_get(p, "meshed")),
		  "the squatted pod is not meshed");
	cr_assert_str_eq(json_object_get_string(json_object_object_get(p, "listener_blocked")),
			 want);
	cr_assert_str_eq(json_object_get_string(json_object_object_get(p, "reason")), want);
	json_object_put(root);
	snprintf(state, sizeof(state), "%s/pods/ctr-client-a.json", env.run_dir);
	cr_assert_eq(access(state, F_OK), 0, "the squatted pod's state was deleted");
	rc = tenv_capture(out, sizeof(out), "%s/san/meshctl --socket %s/admin.sock check",
			  env.build, env.run_dir);
	cr_assert_neq(rc, 0, "meshctl check passes with a blocked listener:\n%s", out);
	cr_assert(strstr(out, "client-a"), "meshctl check does not name the pod:\n%s", out);

	/* Never out of the mesh unobserved: the VIP and a backend's own
	 * address are answered by the squatter inside the pod, or refused.
	 */
	for (int i = 0; i < 5; i++) {
		err = tsock_ident("a", "198.19.0.10:80", out, sizeof(out));
		cr_assert(err || !strcmp(out, "squatter"), "the VIP answered '%s' past the proxy",
			  out);
		err = tsock_ident("a", "198.18.2.14:8080", out, sizeof(out));
		cr_assert(err || !strcmp(out, "squatter"), "api-1 answered '%s' past the proxy",
			  out);
	}
	/* The other pods are served. */
	cr_assert_eq(tsock_ident("b", "198.19.0.10:80", out, sizeof(out)), 0);
	cr_assert(!strncmp(out, "web-", 4), "pod b got '%s'", out);

	/* The squatter goes: the agent's listener comes up, capture works. */
	squatter_stop(pid);
	for (int i = 0; i < 100 && !recovered; i++) {
		recovered = !tsock_ident("a", "198.19.0.10:80", out, sizeof(out)) &&
			    !strncmp(out, "web-", 4);
		if (!recovered)
			usleep(100000);
	}
	cr_assert(recovered, "pod a was not served after the squatter left, see %s",
		  env.agent_log);
	p = pod_entry("client-a", &root);
	cr_assert(p != NULL);
	cr_assert(json_object_is_type(json_object_object_get(p, "listener_blocked"),
				      json_type_null));
	cr_assert_geq(json_object_get_int64(json_object_object_get(p, "listener_retries")), 1);
	json_object_put(root);
	rc = tenv_capture(out, sizeof(out), "%s/san/meshctl --socket %s/admin.sock check",
			  env.build, env.run_dir);
	cr_assert(!strstr(out, "listener blocked"), "still reported blocked:\n%s", out);
}

Test(enrol, squatting_the_outbound_port_on_loopback_across_a_restart)
{
	squat_across_restart("127.0.0.1", 15001);
}

Test(enrol, squatting_the_outbound_port_on_the_wildcard_across_a_restart)
{
	squat_across_restart("0.0.0.0", 15001);
}

Test(enrol, squatting_the_inbound_port_across_a_restart)
{
	squat_across_restart("0.0.0.0", 15006);
}
