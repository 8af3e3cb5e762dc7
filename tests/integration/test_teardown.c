// SPDX-License-Identifier: GPL-2.0-only
/* The fixture's tear-down leaves no cgroup behind: not with a process still
 * in the agent's cgroup that ignores SIGTERM (a predecessor a hand-over test
 * left draining), nor with a cgroup of the test's own below the test's, nor
 * when the test process dies before its tear-down. And tcg_remove() touches
 * nothing that is not this process' test cgroup.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helpers/cgroup.h"
#include "env.h"
#include "proc.h"

TestSuite(teardown, .timeout = 60);

/* A process in @cgroup that ignores SIGTERM (as an agent busy draining
 * does not stop at once), sleeping until killed.
 */
static pid_t stubborn_in(const char *cgroup)
{
	char cmd[PATH_MAX + 96];
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };

	snprintf(cmd, sizeof(cmd), "echo $$ > %s/cgroup.procs && trap '' TERM && exec sleep 600",
		 cgroup);
	return tproc_spawn(argv, NULL, SIGTERM);
}

/* Until @cgroup lists @pid (the shell has moved itself in). */
static bool holds(const char *cgroup, pid_t pid)
{
	char path[PATH_MAX + 16];
	int p;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
	for (int i = 0; i < 300 && !found; i++) {
		f = fopen(path, "re");
		while (f && fscanf(f, "%d", &p) == 1)
			found |= p == pid;
		if (f)
			fclose(f);
		if (!found)
			usleep(10000);
	}
	return found;
}

/* Reap @pid if it has ended (it has, once its cgroup is gone); kill it if not. */
static bool ended(pid_t pid, int *status)
{
	*status = 0;
	for (int i = 0; i < 100; i++) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return true;
		usleep(10000);
	}
	tproc_kill(pid);
	return false;
}

Test(teardown, removes_the_test_cgroups_with_processes_still_inside)
{
	struct tenv e;
	char test_cg[PATH_MAX], agent_cg[PATH_MAX], pod_cg[PATH_MAX + 8];
	pid_t in_agent, in_pod;
	int status;

	tenv_setup(&e);
	snprintf(test_cg, sizeof(test_cg), "%s", e.cgroup);
	snprintf(agent_cg, sizeof(agent_cg), "%s", e.agent_cgroup);
	/* A cgroup below the test's that only the test knows of. */
	snprintf(pod_cg, sizeof(pod_cg), "%s/pod", e.cgroup);
	cr_assert_eq(mkdir(pod_cg, 0755), 0, "mkdir %s: %s", pod_cg, strerror(errno));
	in_agent = stubborn_in(agent_cg);
	in_pod = stubborn_in(pod_cg);
	cr_assert_gt(in_agent, 0);
	cr_assert_gt(in_pod, 0);
	cr_assert(holds(agent_cg, in_agent), "%d never joined %s", in_agent, agent_cg);
	cr_assert(holds(pod_cg, in_pod), "%d never joined %s", in_pod, pod_cg);

	tenv_teardown(&e);

	cr_expect_eq(access(test_cg, F_OK), -1, "%s is still there", test_cg);
	cr_expect_eq(errno, ENOENT);
	/* Both ended by the removal (SIGTERM alone would not have done it). */
	cr_expect(ended(in_agent, &status), "%d (in the agent's cgroup) is still running",
		  in_agent);
	cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
	cr_expect(ended(in_pod, &status), "%d (in a cgroup below the test's) is still running",
		  in_pod);
	cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %#x", status);
}

/* A test process killed before its tear-down (what Criterion does to a
 * test that times out; one whose .init fails an assertion ends as abruptly)
 * leaves nothing either: the guard tcg_create() started takes its cgroup,
 * and what still runs in it, once the process is gone.
 */
Test(teardown, a_test_process_killed_before_its_tear_down_leaves_no_cgroup)
{
	char cg[PATH_MAX];
	int fds[2], status;
	pid_t child;
	ssize_t n;

	cr_assert_eq(pipe(fds), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		pid_t in_cg;

		close(fds[0]);
		if (tcg_create(cg, sizeof(cg)))
			_exit(1);
		in_cg = stubborn_in(cg);
		if (in_cg <= 0 || !holds(cg, in_cg))
			_exit(2);
		if (write(fds[1], cg, strlen(cg) + 1) < 0)
			_exit(3);
		raise(SIGKILL);
	}
	close(fds[1]);
	n = read(fds[0], cg, sizeof(cg));
	close(fds[0]);
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(n > 0 && WIFSIGNALED(status), "the child did not get as far (status %#x)",
		  status);
	for (int i = 0; i < 1000 && access(cg, F_OK) == 0; i++)
		usleep(10000);
	cr_expect_eq(access(cg, F_OK), -1, "%s is still there 10 s after its test process died",
		     cg);
}

Test(teardown, tcg_remove_refuses_what_is_not_its_own)
{
	char mnt[PATH_MAX], other[PATH_MAX + 32];

	cr_assert_eq(tcg_mount_point(mnt, sizeof(mnt)), 0);
	/* The machine's root cgroup, and the name another process' test would use:
	 * refused from the name alone, before anything is read or written.
	 */
	cr_expect_eq(tcg_remove(mnt), -EPERM);
	snprintf(other, sizeof(other), "%s/weft-test-%d-0", mnt, (int)getpid() + 1);
	cr_expect_eq(tcg_remove(other), -EPERM);
}
