// SPDX-License-Identifier: GPL-2.0-only
/* The workers' sandbox (README "Security model", "The agent's privileges"):
 * read from /proc, each proxy worker thread holds no capability, has
 * no_new_privs and a seccomp filter, while the main thread and the socket
 * broker keep the agent's capabilities; and traffic the workers carry still
 * works both ways, the inbound client's address kept. With --no-sandbox the
 * workers keep everything (the debugging switch does what it says).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fixture.h"
#include "servers.h"
#include "sock.h"

/* One thread of the agent, as /proc/<pid>/task/<tid>/status shows it. */
struct task {
	int tid;
	char name[32];
	uint64_t cap_eff, cap_prm, cap_inh, cap_amb;
	int no_new_privs, seccomp;
};

static void read_task(pid_t pid, int tid, struct task *t)
{
	char path[128], line[256];
	FILE *f;

	memset(t, 0, sizeof(*t));
	t->tid = tid;
	t->no_new_privs = t->seccomp = -1;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, tid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Name:\t%31s", t->name) == 1)
			continue;
		if (sscanf(line, "CapEff:\t%" SCNx64, &t->cap_eff) == 1 ||
		    sscanf(line, "CapPrm:\t%" SCNx64, &t->cap_prm) == 1 ||
		    sscanf(line, "CapInh:\t%" SCNx64, &t->cap_inh) == 1 ||
		    sscanf(line, "CapAmb:\t%" SCNx64, &t->cap_amb) == 1 ||
		    sscanf(line, "NoNewPrivs:\t%d", &t->no_new_privs) == 1 ||
		    sscanf(line, "Seccomp:\t%d", &t->seccomp) == 1)
			continue;
	}
	fclose(f);
	cr_assert_geq(t->seccomp, 0, "%s has no Seccomp line", path);
}

/* Every thread of the agent into @out (room for @max); returns how many. */
static size_t agent_tasks(struct task *out, size_t max)
{
	char path[64];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	cr_assert_gt(env.agent, 0, "no agent");
	snprintf(path, sizeof(path), "/proc/%d/task", (int)env.agent);
	d = opendir(path);
	cr_assert_not_null(d, "%s: %s", path, strerror(errno));
	while ((de = readdir(d)) && n < max) {
		if (de->d_name[0] == '.')
			continue;
		read_task(env.agent, atoi(de->d_name), &out[n++]);
	}
	closedir(d);
	return n;
}

static bool is_worker(const struct task *t)
{
	return !strncmp(t->name, "weft-worker-", 12);
}

/* The bits of CAP_NET_ADMIN (12) and CAP_SYS_ADMIN (21): what setns() and
 * SO_MARK need.
 */
#define NEEDED_CAPS ((1ull << 12) | (1ull << 21))

static unsigned int status_workers(void)
{
	json_object *st = tenv_admin_get(&env, "/v1/status"), *v;
	unsigned int n = 0;

	cr_assert_not_null(st);
	if (json_object_object_get_ex(st, "workers", &v))
		n = (unsigned int)json_object_get_int(v);
	json_object_put(st);
	return n;
}

static long long status_counter(const char *group, const char *key)
{
	json_object *st = tenv_admin_get(&env, "/v1/status"), *g, *v;
	long long n = -1;

	cr_assert_not_null(st);
	if (json_object_object_get_ex(st, group, &g) && json_object_object_get_ex(g, key, &v))
		n = json_object_get_int64(v);
	json_object_put(st);
	return n;
}

static bool status_sandbox(void)
{
	json_object *st = tenv_admin_get(&env, "/v1/status"), *v;
	bool on = false;

	cr_assert_not_null(st);
	cr_assert(json_object_object_get_ex(st, "sandbox", &v), "no sandbox in /v1/status");
	on = json_object_get_boolean(v);
	json_object_put(st);
	return on;
}

/* ---------------------------------------------------------------- on */

static void up(void)
{
	fixture_up();
	/* api-1 among them: api's one endpoint, where every connection to it lands. */
	fixture_backends_start(false);
	fixture_enroll("s", "mesh", "backends", "198.18.2.11");
}

static void down(void)
{
	fixture_backends_stop();
	fixture_down();
}

TestSuite(sandbox, .init = up, .fini = down, .timeout = 120);

Test(sandbox, workers_hold_nothing_while_the_main_thread_and_the_broker_keep_their_capabilities)
{
	struct task t[256];
	size_t n = agent_tasks(t, 256);
	unsigned int workers = 0, brokers = 0;
	bool main_seen = false;

	cr_assert(status_sandbox(), "/v1/status says the sandbox is off");
	for (size_t i = 0; i < n; i++) {
		if (is_worker(&t[i])) {
			workers++;
			cr_expect_eq(t[i].cap_eff, 0, "%s (tid %d) CapEff %" PRIx64, t[i].name,
				     t[i].tid, t[i].cap_eff);
			cr_expect_eq(t[i].cap_prm, 0, "%s CapPrm %" PRIx64, t[i].name, t[i].cap_prm);
			cr_expect_eq(t[i].cap_inh, 0, "%s CapInh %" PRIx64, t[i].name, t[i].cap_inh);
			cr_expect_eq(t[i].cap_amb, 0, "%s CapAmb %" PRIx64, t[i].name, t[i].cap_amb);
			cr_expect_eq(t[i].no_new_privs, 1, "%s NoNewPrivs %d", t[i].name,
				     t[i].no_new_privs);
			cr_expect_eq(t[i].seccomp, 2, "%s Seccomp %d (2: filter)", t[i].name,
				     t[i].seccomp);
		} else if (!strcmp(t[i].name, "weft-broker")) {
			brokers++;
			cr_expect_eq(t[i].cap_eff & NEEDED_CAPS, NEEDED_CAPS,
				     "the broker lost a capability it needs: CapEff %" PRIx64,
				     t[i].cap_eff);
			cr_expect_eq(t[i].seccomp, 0);
		}
		if (t[i].tid == env.agent) {
			main_seen = true;
			cr_expect_eq(t[i].cap_eff & NEEDED_CAPS, NEEDED_CAPS,
				     "the main thread lost a capability: CapEff %" PRIx64, t[i].cap_eff);
			cr_expect_eq(t[i].seccomp, 0, "the main thread is filtered");
		}
	}
	cr_assert(main_seen);
	cr_assert_eq(brokers, 1, "%u broker threads", brokers);
	cr_assert_eq(workers, status_workers(), "%u worker threads named, %u workers", workers,
		     status_workers());
}

Test(sandbox, sandboxed_workers_carry_opaque_tcp_out_and_keep_the_inbound_clients_address)
{
	long long waits = status_counter("connections", "socket_waits");
	char out[256];
	ssize_t n;
	int fd, err;

	cr_assert_geq(waits, 0, "no connections.socket_waits in /v1/status");
	/* Outbound from meshed pod a, bytes the proxy does not parse. */
	for (int i = 0; i < 20; i++) {
		fd = tsock_connect("a", "198.19.0.20:80", 3000);
		cr_assert_geq(fd, 0, "connect %d: %s", i, strerror(-fd));
		cr_assert_eq(send(fd, "ECHO\nsandbox", 12, 0), 12);
		cr_assert_eq(shutdown(fd, SHUT_WR), 0);
		n = tsock_request(fd, "", out, sizeof(out), 3000);
		close(fd);
		cr_assert_gt(n, 0, "connection %d: no answer", i);
		cr_assert_str_eq(out, "sandboxBYE 7\n", "connection %d", i);
	}
	/* Inbound from c (not meshed) to the backends pod: the application
	 * sees c's own address, so the worker bound a non-local source on a
	 * socket the broker made transparent.
	 */
	err = tsock_ident("c", "198.18.2.11:8080", out, sizeof(out));
	cr_assert_eq(err, 0, "ident: %s", strerror(-err));
	cr_assert_str_eq(out, "web-1 198.18.4.2", "the application did not see client c");
	/* The sockets came from the broker: pools start empty. */
	cr_assert_gt(status_counter("connections", "socket_waits"), waits);
	/* ... and ahead of demand: twenty connects waited a few times at most. */
	cr_assert_lt(status_counter("connections", "socket_waits"), waits + 10);
	cr_assert(fixture_web_answers_from("web-"), "HTTP through the sandboxed workers failed");
}

/* ---------------------------------------------------------------- off */

static pid_t srv;

static void up_off(void)
{
	fixture_up_with("--no-sandbox");
	srv = tsrv_start("s", "198.18.2.14", 8080, "api-1");
	cr_assert_gt(srv, 0);
}

static void down_off(void)
{
	tsrv_stop(srv);
	fixture_down();
}

TestSuite(sandbox_off, .init = up_off, .fini = down_off, .timeout = 120);

Test(sandbox_off, no_sandbox_leaves_the_workers_their_privileges_and_traffic_still_flows)
{
	struct task t[256];
	size_t n = agent_tasks(t, 256);
	unsigned int workers = 0;
	char out[256];
	int fd;

	cr_assert(!status_sandbox(), "/v1/status says the sandbox is on");
	for (size_t i = 0; i < n; i++) {
		cr_assert_neq(strcmp(t[i].name, "weft-broker"), 0, "a broker with --no-sandbox");
		if (!is_worker(&t[i]))
			continue;
		workers++;
		cr_expect_eq(t[i].cap_eff & NEEDED_CAPS, NEEDED_CAPS, "%s CapEff %" PRIx64,
			     t[i].name, t[i].cap_eff);
		cr_expect_eq(t[i].seccomp, 0, "%s Seccomp %d", t[i].name, t[i].seccomp);
	}
	cr_assert_eq(workers, status_workers() > 1 ? status_workers() : 0);
	fd = tsock_connect("a", "198.19.0.20:80", 3000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(send(fd, "ECHO\nplain", 10, 0), 10);
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	cr_assert_gt(tsock_request(fd, "", out, sizeof(out), 3000), 0);
	close(fd);
	cr_assert_str_eq(out, "plainBYE 5\n");
}
