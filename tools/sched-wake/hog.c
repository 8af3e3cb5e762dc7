// SPDX-License-Identifier: GPL-2.0-only
/* A thread that keeps one CPU busy, in the scheduling class or at the nice
 * value a background thread of the agent might use:
 *
 *   hog POLICY SECONDS      POLICY: normal, nice19, batch19, idle
 *
 * Run it in its own session (setsid), so that it is in a scheduling group
 * (autogroup) of its own, as the agent is on a node (its pod's cgroup).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int set_policy(const char *policy)
{
	struct sched_param sp = { 0 };

	if (!strcmp(policy, "normal"))
		return 0;
	if (!strcmp(policy, "nice19"))
		return setpriority(PRIO_PROCESS, 0, 19);
	if (!strcmp(policy, "batch19"))
		return sched_setscheduler(0, SCHED_BATCH, &sp) ?: setpriority(PRIO_PROCESS, 0, 19);
	if (!strcmp(policy, "idle"))
		return sched_setscheduler(0, SCHED_IDLE, &sp);
	errno = EINVAL;
	return -1;
}

int main(int argc, char **argv)
{
	volatile unsigned long x = 0;
	double end;

	if (argc != 3) {
		fprintf(stderr, "usage: hog normal|nice19|batch19|idle SECONDS\n");
		return 2;
	}
	if (set_policy(argv[1])) {
		fprintf(stderr, "hog: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	end = now() + atof(argv[2]);
	while (now() < end)
		for (int i = 0; i < 2000; i++)
			x += (unsigned long)i * x + 1;
	return 0;
}
