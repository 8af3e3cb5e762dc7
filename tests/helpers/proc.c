// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/proc.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

uint64_t tproc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint16_t tproc_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint16_t port = 0;

	if (fd == -1)
		return 0;
	if (!bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !getsockname(fd, (struct sockaddr *)&sa, &len))
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

pid_t tproc_spawn(char *const argv[], const char *log, int deathsig)
{
	pid_t parent = getpid(), pid = fork();
	int fd;

	if (pid)
		return pid;
	/* Dies with the test, whichever way the test ends. */
	prctl(PR_SET_PDEATHSIG, deathsig);
	if (getppid() != parent)
		_exit(127);
	if (log) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
	}
	execvp(argv[0], argv);
	_exit(127);
}

int tproc_wait_ready(pid_t *pid, uint32_t timeout_ms, uint32_t every_ms, tproc_ready_fn ready,
		     void *ctx)
{
	uint64_t until = tproc_now_ms() + timeout_ms;

	while (tproc_now_ms() < until) {
		if (ready(ctx))
			return 0;
		if (waitpid(*pid, NULL, WNOHANG) == *pid) {
			*pid = 0;
			return -ECHILD;
		}
		usleep(every_ms * 1000);
	}
	return -ETIMEDOUT;
}

void tproc_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
}

/* Every live helper of this process, stopped at exit. */
#define LIVE_MAX 16
static struct {
	void *obj;
	void (*stop)(void *obj);
} live[LIVE_MAX];

static void stop_live(void)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (live[i].obj)
			live[i].stop(live[i].obj);
}

void tproc_track(void *obj, void (*stop)(void *obj))
{
	static bool registered;
	int free_slot = -1;

	if (!registered) {
		atexit(stop_live);
		registered = true;
	}
	for (int i = 0; i < LIVE_MAX; i++) {
		if (live[i].obj == obj)
			return;
		if (!live[i].obj && free_slot < 0)
			free_slot = i;
	}
	if (free_slot >= 0) {
		live[free_slot].obj = obj;
		live[free_slot].stop = stop;
	}
}

void tproc_untrack(void *obj)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (live[i].obj == obj)
			live[i].obj = NULL;
}

int tproc_mkdtemp(char *dir, size_t len, const char *what)
{
	snprintf(dir, len, "/tmp/weft-%s-%d-XXXXXX", what, (int)getpid());
	if (!mkdtemp(dir)) {
		dir[0] = '\0';
		return -1;
	}
	return 0;
}

void tproc_rmtree(char *dir)
{
	char cmd[PATH_MAX + 16];

	if (dir[0] && !getenv("WEFT_KEEP_TMP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd))
			fprintf(stderr, "proc: cannot remove %s\n", dir);
	}
	dir[0] = '\0';
}

bool tproc_port_written(void *ctx)
{
	struct tproc_port_file *pf = ctx;
	FILE *p = fopen(pf->path, "r");
	unsigned int port = 0;
	int n;

	if (!p)
		return false;
	n = fscanf(p, "%u", &port);
	fclose(p);
	if (n != 1 || port == 0 || port >= 65536)
		return false;
	pf->port = (uint16_t)port;
	return true;
}
