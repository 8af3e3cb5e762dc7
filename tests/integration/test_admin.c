// SPDX-License-Identifier: GPL-2.0-only
/* Which admin reads wait for the proxy workers (docs/admin-api.md, "Which
 * reads stop the proxy"): one worker thread of the agent is stopped where
 * it runs (ptrace, as a debugger stops one thread), which holds it inside
 * its current event as a long event would; /v1/status still answers at
 * once with the counters, while a read that parks the workers
 * (/v1/services) waits for that worker, which shows the hold is real.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

/* Well under tenv_admin_get()'s 3 s, well over a loaded sanitizer build's answer. */
#define PROMPT_MS 1500

TestSuite(admin, .init = fixture_up_two_workers,
	  .fini = fixture_down_with_backends, .timeout = 120);

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The thread id of the agent's thread named @name, or -1. */
static int agent_thread(const char *name)
{
	char path[PATH_MAX], comm[32];
	struct dirent *de;
	int tid = -1;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)env.agent);
	d = opendir(path);
	cr_assert_not_null(d, "%s: %s", path, strerror(errno));
	while (tid == -1 && (de = readdir(d))) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)env.agent, de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f)) {
			comm[strcspn(comm, "\n")] = '\0';
			if (!strcmp(comm, name))
				tid = atoi(de->d_name);
		}
		fclose(f);
	}
	closedir(d);
	return tid;
}

/* Stop thread @tid alone, wherever it is (PTRACE_INTERRUPT stops the traced
 * thread, not its process). 0 or -errno.
 */
static int thread_stop(int tid)
{
	int st;

	if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) == -1)
		return -errno;
	errno = 0;
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) == -1 ||
	    waitpid(tid, &st, __WALL) != tid || !WIFSTOPPED(st)) {
		int err = errno ? -errno : -EIO;

		(void)ptrace(PTRACE_DETACH, tid, NULL, NULL);
		return err;
	}
	return 0;
}

static long long counter(json_object *st, const char *group, const char *key)
{
	json_object *g, *v;

	if (st && json_object_object_get_ex(st, group, &g) &&
	    json_object_object_get_ex(g, key, &v))
		return json_object_get_int64(v);
	return -1;
}

Test(admin, status_answers_with_the_counters_while_a_worker_is_held_in_an_event)
{
	json_object *st, *svcs;
	long long total, held_total;
	double t0, status_ms, services_ms;
	bool services_answered;
	int tid, err;

	/* Traffic first, so that the counters have something to show. */
	cr_assert(fixture_web_answers_from("web-"), "no answer through the proxy");
	total = tenv_status_counter(&env, "connections.total");
	cr_assert_geq(total, 1, "connections.total %lld after a proxied connection", total);

	tid = agent_thread("weft-worker-0");
	cr_assert_gt(tid, 0, "the agent has no thread weft-worker-0");
	err = thread_stop(tid);
	cr_assert_eq(err, 0, "cannot stop weft-worker-0 (tid %d): %s", tid, strerror(-err));

	t0 = mono_ms();
	st = tenv_admin_get(&env, "/v1/status");
	status_ms = mono_ms() - t0;
	held_total = counter(st, "connections", "total");
	json_object_put(st);

	/* A read that parks the workers waits for the held one: the client
	 * gives up (3 s) before the agent can answer.
	 */
	t0 = mono_ms();
	svcs = tenv_admin_get(&env, "/v1/services");
	services_ms = mono_ms() - t0;
	services_answered = svcs != NULL;
	json_object_put(svcs);

	/* Let it go before asserting: the agent finishes the parked read. */
	cr_assert_eq(ptrace(PTRACE_DETACH, tid, NULL, 0), 0, "PTRACE_DETACH: %s", strerror(errno));

	cr_log_info("worker held: /v1/status %.1f ms, /v1/services %.1f ms (%s)", status_ms,
		    services_ms, services_answered ? "answered" : "no answer");
	cr_assert_neq(held_total, -1,
		      "/v1/status did not answer in %.0f ms while a worker was held in an event",
		      status_ms);
	cr_assert_lt(status_ms, PROMPT_MS, "/v1/status took %.1f ms while a worker was held",
		     status_ms);
	cr_assert_geq(held_total, total, "connections.total %lld while held, %lld before",
		      held_total, total);
	cr_assert_not(services_answered,
		      "/v1/services answered in %.1f ms with a worker held: the hold did not hold",
		      services_ms);

	/* Released, the parking reads answer again and traffic flows. */
	for (int i = 0; !(svcs = tenv_admin_get(&env, "/v1/services")); i++) {
		cr_assert_lt(i, 20, "/v1/services never answered after the worker was released");
		usleep(100000);
	}
	json_object_put(svcs);
	cr_assert(fixture_web_answers_from("web-"), "no answer through the proxy afterwards");
	cr_assert_gt(tenv_status_counter(&env, "connections.total"), total);
}
