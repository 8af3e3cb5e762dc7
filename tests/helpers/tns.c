// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/netns.h, on iproute2 for set-up (what a
 * runtime would do) and setns(2) for entering.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tns.h"

static int home_fd = -1;
/* The pid that named the namespaces: forked servers keep their parent's names. */
static pid_t owner_pid;

static int owner(void)
{
	if (!owner_pid)
		owner_pid = getpid();
	return (int)owner_pid;
}

int tns_sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc == -1 || !WIFEXITED(rc))
		return -1;
	return WEXITSTATUS(rc);
}

const char *tns_name(const char *short_name, char *buf, size_t len)
{
	snprintf(buf, len, "wt%d%s", owner(), short_name);
	return buf;
}

const char *tns_path(const char *short_name, char *buf, size_t len)
{
	char n[64];

	snprintf(buf, len, "/run/netns/%s", tns_name(short_name, n, sizeof(n)));
	return buf;
}

int tns_add(const char *short_name)
{
	char n[64];

	tns_name(short_name, n, sizeof(n));
	if (tns_sh("ip netns add %s", n))
		return -1;
	return tns_sh("ip -n %s link set lo up", n) ? -1 : 0;
}

void tns_del_all(void)
{
	char prefix[32];

	snprintf(prefix, sizeof(prefix), "wt%d", owner());
	/* Only names carrying this process' prefix: never anything else's.
	 * Short names start with a letter, so "wt12" must not take the
	 * namespaces of process 123 ("wt123a") with it. One `ip -batch`
	 * deletes them all (-force: on past one that is already gone).
	 */
	tns_sh("ip netns list | awk '{print $1}' | grep '^%s[^0-9]' | "
	       "sed 's/^/netns del /' | ip -force -batch -",
	       prefix);
}

int tns_link(const char *a, const char *b)
{
	char na[64], nb[64];

	tns_name(a, na, sizeof(na));
	tns_name(b, nb, sizeof(nb));
	if (tns_sh("ip -n %s link add %s-%s type veth peer name %s-%s netns %s", na, a, b, b, a,
		   nb))
		return -1;
	if (tns_sh("ip -n %s link set %s-%s up && ip -n %s link set %s-%s up", na, a, b, nb, b, a))
		return -1;
	return 0;
}

int tns_enter(const char *short_name)
{
	char path[128];
	int fd, err = 0;

	if (home_fd == -1) {
		home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (home_fd == -1)
			return -errno;
	}
	if (!short_name)
		return setns(home_fd, CLONE_NEWNET) == -1 ? -errno : 0;
	fd = open(tns_path(short_name, path, sizeof(path)), O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	if (setns(fd, CLONE_NEWNET) == -1)
		err = -errno;
	close(fd);
	return err;
}
