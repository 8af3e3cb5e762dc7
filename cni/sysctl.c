// SPDX-License-Identifier: GPL-2.0-only
/* The pod's sysctls the inbound return path needs (agent/datapath/retpath.h),
 * set by the plugin at ADD. The agent usually runs in a container whose
 * /proc/sys is mounted read-only, as runtimes mount it; the plugin runs
 * where the runtime runs, in the node's mount namespace, which is also where
 * CNI's own `tuning` plugin sets per-pod sysctls. Each of them changes only
 * what happens to packets carrying a firewall mark, which nothing in a pod
 * sets but the agent's inbound side: harmless in a pod that is never meshed.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cni.h"
#include "pod_sysctl.h"

static int write_one(const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd == -1)
		return -errno;
	if (write(fd, "1\n", 2) != 2)
		err = -errno;
	close(fd);
	return err;
}

/* Whether @a and @b are the same namespace file. */
static bool same_ns(int a, int b)
{
	struct stat sa, sb;

	return !fstat(a, &sa) && !fstat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cni_pod_sysctls(const char *netns_path, char *why, size_t len)
{
	int home, ns, err = 0;

	/* O_NONBLOCK: a FIFO in place of the netns must not hang the runtime. */
	ns = open(netns_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (ns == -1) {
		err = -errno;
		snprintf(why, len, "open netns '%s': %s", netns_path, strerror(-err));
		return err;
	}
	home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home == -1) {
		err = -errno;
		snprintf(why, len, "open this process's netns: %s", strerror(-err));
		goto out_ns;
	}
	/* Never the node's own netns, whatever the runtime passed. */
	if (same_ns(ns, home)) {
		err = -EINVAL;
		snprintf(why, len, "netns '%s' is the plugin's own, not a pod's", netns_path);
		goto out_home;
	}
	if (setns(ns, CLONE_NEWNET) == -1) {
		err = -errno;
		snprintf(why, len, "enter netns '%s': %s", netns_path, strerror(-err));
		goto out_home;
	}
	for (size_t i = 0; i < POD_SYSCTLS && !err; i++) {
		err = write_one(pod_sysctls[i].path);
		if (err == -ENOENT && pod_sysctls[i].optional)
			err = 0;
		else if (err)
			snprintf(why, len, "set %s=1 in the pod: %s", pod_sysctls[i].path,
				 strerror(-err));
	}
	/* The plugin talks to the agent over a path-named socket, which works from
	 * any netns, but nothing after this point should run in the pod's.
	 */
	if (setns(home, CLONE_NEWNET) == -1 && !err) {
		err = -errno;
		snprintf(why, len, "return to the plugin's netns: %s", strerror(-err));
	}
out_home:
	close(home);
out_ns:
	close(ns);
	return err;
}
