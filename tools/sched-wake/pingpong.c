// SPDX-License-Identifier: GPL-2.0-only
/* A request/response pair between two processes in different sessions (so
 * in different scheduling groups, as a client and a server in two pods),
 * one round trip every 500 us over a UNIX socket pair, counting the round
 * trips that took longer than 0.5 and 1 ms:
 *
 *   pingpong SECONDS
 *
 * prints "round_trips=N over_500us=N over_1ms=N max_us=N".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void serve(int fd)
{
	char b;

	(void)setsid();
	while (read(fd, &b, 1) == 1)
		if (write(fd, &b, 1) != 1)
			break;
	_exit(0);
}

int main(int argc, char **argv)
{
	const struct timespec gap = { 0, 500000 };
	long n = 0, over_500 = 0, over_1000 = 0;
	double end, worst = 0;
	int sv[2];
	pid_t pid;

	if (argc != 2) {
		fprintf(stderr, "usage: pingpong SECONDS\n");
		return 2;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
		perror("pingpong: socketpair");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("pingpong: fork");
		return 1;
	}
	if (!pid) {
		close(sv[0]);
		serve(sv[1]);
	}
	close(sv[1]);
	end = now() + atof(argv[1]);
	while (now() < end) {
		double t0 = now(), us;
		char b = 'x';

		if (write(sv[0], &b, 1) != 1 || read(sv[0], &b, 1) != 1) {
			perror("pingpong: round trip");
			return 1;
		}
		us = (now() - t0) * 1e6;
		n++;
		over_500 += us > 500;
		over_1000 += us > 1000;
		if (us > worst)
			worst = us;
		nanosleep(&gap, NULL);
	}
	close(sv[0]);
	waitpid(pid, NULL, 0);
	printf("round_trips=%ld over_500us=%ld over_1ms=%ld max_us=%.0f\n", n, over_500,
	       over_1000, worst);
	return 0;
}
