// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of proxy/sandbox.h: the per-thread capability drop (raw
 * capget/capset and prctl, which act on the calling thread only: libcap's
 * cap_set_proc() may act on every thread when built with psx) and the
 * worker's seccomp allowlist (libseccomp, loaded without TSYNC so that only
 * the calling thread is filtered).
 */
#include <errno.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <seccomp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "proxy/sandbox.h"

static int drop_caps(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { 0 };

	if (syscall(SYS_capget, &hdr, data) == -1)
		return -errno;
	/* The bounding set only limits what an execve() could gain, which the
	 * filter forbids anyway; dropping it needs CAP_SETPCAP, which the
	 * DaemonSet does not grant. Dropped when the thread may (root in tests).
	 */
	if (data[0].effective & (1u << CAP_SETPCAP)) {
		for (int c = 0; c < 64; c++) {
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == -1) {
				if (errno == EINVAL)
					break;	/* past the kernel's last capability */
				return -errno;
			}
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 && errno != EINVAL)
		return -errno;
	memset(data, 0, sizeof(data));
	hdr = (struct __user_cap_header_struct){ .version = _LINUX_CAPABILITY_VERSION_3 };
	/* pid 0: this thread only (capabilities are per task). */
	if (syscall(SYS_capset, &hdr, data) == -1)
		return -errno;
	return 0;
}

/* What a worker's loop calls, by purpose. Everything else fails with EPERM
 * (see load_filter() for why not a kill). Left out on purpose: socket() and
 * socketpair() (the broker makes the worker's sockets; its channels are
 * made before the workers start), setns(), unshare(), clone() (no new
 * threads or processes), execve(), ptrace(), bpf(), mount(), open()/openat()
 * (a worker opens no file), kill(), prctl(), capset(), setuid() and friends,
 * and setsockopt() of any option but the two the proxy sets (so no SO_MARK,
 * IP_TRANSPARENT, SO_BINDTODEVICE even on sockets it holds).
 */
static const int allowed[] = {
	/* the loop, its knock eventfd and timers */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(nanosleep),
	SCMP_SYS(clock_nanosleep),
	/* connections: accept, connect, relay, close */
	SCMP_SYS(accept4), SCMP_SYS(accept), SCMP_SYS(connect), SCMP_SYS(bind),
	SCMP_SYS(shutdown), SCMP_SYS(getsockopt), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername), SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv),
	SCMP_SYS(writev), SCMP_SYS(recvfrom), SCMP_SYS(sendto), SCMP_SYS(close),
	SCMP_SYS(splice), SCMP_SYS(pipe2), SCMP_SYS(fcntl),
	/* the broker's channel (SCM_RIGHTS) */
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg),
	/* isolation (mutex, condition variable) */
	SCMP_SYS(futex), SCMP_SYS(sched_yield),
	/* memory: malloc and the sanitizers' allocators; PROT_EXEC is refused below */
	SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
	/* signals and the thread's own end; abort() on a fatal error */
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigaction),
	SCMP_SYS(sigaltstack), SCMP_SYS(restart_syscall), SCMP_SYS(getpid),
	SCMP_SYS(gettid), SCMP_SYS(exit), SCMP_SYS(exit_group),
	/* what ASan/UBSan runtimes call in a thread (stack bounds, reports) */
	SCMP_SYS(sched_getaffinity), SCMP_SYS(prlimit64), SCMP_SYS(getrlimit),
	SCMP_SYS(getrandom),
};

/* Argument @arg compared with @op to @a (and @b, a mask's value): spelled out
 * because libseccomp's SCMP_A<n>() macros leave a field to default, which
 * clang's -Wmissing-field-initializers refuses.
 */
static struct scmp_arg_cmp arg_cmp(unsigned int arg, enum scmp_compare op, scmp_datum_t a,
				   scmp_datum_t b)
{
	return (struct scmp_arg_cmp){ .arg = arg, .op = op, .datum_a = a, .datum_b = b };
}

static int load_filter(void)
{
	/* EPERM, not a kill: a denied call does not happen either way, so the
	 * kill adds no protection, but a call missing from this list (a new
	 * libc or sanitizer runtime using another syscall on some path) would
	 * take down the proxy of every pod on the node instead of failing one
	 * operation, which the worker reports. A hijacked worker gains nothing
	 * from being allowed to go on asking.
	 */
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	int err = 0;

	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; !err && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	/* Memory, never executable: no new code in a taken-over worker. */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				       arg_cmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				       arg_cmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* abort() signals its own thread; never another process, which the
	 * worker (root, like most of the node's processes) could otherwise
	 * signal with no capability.
	 */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				       arg_cmp(0, SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
	/* The options the proxy sets on its sockets (conn.c, upstream.c). */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setsockopt), 2,
				       arg_cmp(1, SCMP_CMP_EQ, SOL_SOCKET, 0),
				       arg_cmp(2, SCMP_CMP_EQ, SO_LINGER, 0));
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setsockopt), 2,
				       arg_cmp(1, SCMP_CMP_EQ, IPPROTO_TCP, 0),
				       arg_cmp(2, SCMP_CMP_EQ, TCP_NODELAY, 0));
	/* This thread only: no TSYNC, the main thread and the broker keep
	 * their system calls. no_new_privs is set by the caller already.
	 */
	if (!err)
		err = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 0);
	/* Every system call of the worker runs the filter: a binary tree over
	 * the syscall numbers rather than a list checked in order.
	 */
	if (!err)
		err = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (!err)
		err = seccomp_load(ctx);
	seccomp_release(ctx);
	return err;
}

int sandbox_enter_worker(void)
{
	int err = drop_caps();

	if (err)
		return log_errno(err, "sandbox: cannot drop the worker's capabilities");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return log_errno(-errno, "sandbox: cannot set no_new_privs");
	err = load_filter();
	if (err)
		return log_errno(err, "sandbox: cannot load the worker's seccomp filter");
	return 0;
}
