// SPDX-License-Identifier: GPL-2.0-only
/* Every way around connect() a process in a meshed pod might try, in the
 * capture mode of the run (make test-integration runs this suite once per
 * mode): TCP Fast Open by sendto(MSG_FASTOPEN) and by TCP_FASTOPEN_CONNECT,
 * IPv4-mapped IPv6, a connect disconnected with AF_UNSPEC and made again
 * elsewhere, MPTCP, io_uring's IORING_OP_CONNECT, and the agent's own marks
 * set with nothing but CAP_NET_RAW. Each must end at the proxy, which its
 * counters prove; none may reach its destination unobserved.
 *
 * The pod's process is a child forked from the test (so in the test cgroup,
 * where the pods' processes are, never the agent's), inside pod a's netns.
 * The web VIP exists nowhere on the wire, so an answer from it proves the
 * proxy handled the connection; a direct connection to api-1 reaches the
 * server either way, so there the proxy's passthrough counter is the proof.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <json-c/json.h>

#include "addr.h"
#include "clock.h"
#include "../helpers/cgroup.h"
#include "fixture.h"
#include "require.h"
#include "sock.h"
#include "tns.h"
#include "topo.h"

#define VIP4 "198.19.0.10:80"
#define VIP6 "[fd00:198:19::10]:80"
#define VIP_MAPPED "[::ffff:198.19.0.10]:80"
#define DIRECT "198.18.2.14:8080"	/* api-1, reachable without the proxy */
#define POD_IP "198.18.1.2"
#define AGENT_MARK 0xef70u	/* the agent's default --mark */
#define INBOUND_MARK 0xef71u	/* and --inbound-mark */
#define NOBODY 65534
#define IO_TIMEOUT_MS 3000

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30
#endif

static void up(void)
{
	fixture_up();
	fixture_backends_start(true);
}

static void down(void)
{
	fixture_backends_stop();
	fixture_down();
}

TestSuite(bypass, .init = up, .fini = down, .timeout = 120);

/* ------------------------------------------------------------ the pod's process */

/* How the pod's process reaches its destination. */
enum shape {
	S_CONNECT,		/* plain connect(): the control */
	S_SENDTO_FASTOPEN,	/* sendto(MSG_FASTOPEN) on an unconnected socket */
	S_FASTOPEN_CONNECT,	/* TCP_FASTOPEN_CONNECT, connect(), then the first write */
	S_UNSPEC_RECONNECT,	/* connect(dst2), connect(AF_UNSPEC), connect(dst) */
	S_MPTCP,		/* socket(..., IPPROTO_MPTCP) */
	S_IO_URING,		/* IORING_OP_CONNECT */
};

struct attempt {
	enum shape shape;
	const char *dst;
	const char *first;	/* S_UNSPEC_RECONNECT: where the socket connects first */
	uint32_t mark;		/* SO_MARK to set first; 0 = none */
	const char *transparent_from;	/* IP_TRANSPARENT and bind to this "IP:PORT" */
	enum { CAPS_ROOT, CAPS_NET_RAW, CAPS_NONE } caps;	/* uid nobody unless root */
};

/* What the child reports: 0 and the server's answers, or the failing step. */
struct report {
	int err;		/* -errno of the first failing step, 0 when answered */
	char step[64];
	char first_answer[128];	/* S_UNSPEC_RECONNECT */
	char answer[128];
	unsigned long long cap_eff;	/* CapEff after dropping to nobody */
};

#define FAIL_AT(r, what)                                                                           \
	do {                                                                                       \
		(r)->err = errno ? -errno : -EIO;                                                  \
		snprintf((r)->step, sizeof((r)->step), "%s", what);                                \
		return;                                                                            \
	} while (0)

/* Read the server's one-line answer to the IDENT already sent, until EOF. */
static int read_answer(int fd, char *out, size_t len)
{
	ssize_t n = tsock_request(fd, "", out, len, IO_TIMEOUT_MS);

	if (n < 0)
		return (int)n;
	if (n == 0)
		return -ECONNRESET;
	out[strcspn(out, "\n")] = '\0';
	return 0;
}

static int ident(int fd, char *out, size_t len)
{
	if (send(fd, "IDENT\n", 6, MSG_NOSIGNAL) != 6)
		return -errno;
	return read_answer(fd, out, len);
}

/* connect() through io_uring: one IORING_OP_CONNECT on a ring of our own,
 * with the raw system calls (no liburing needed). 0 or -errno.
 */
static int uring_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct io_uring_params p = { 0 };
	size_t sq_len, cq_len, sqes_len;
	void *sq = MAP_FAILED, *cq = MAP_FAILED, *sqes = MAP_FAILED;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	unsigned int tail, idx;
	int ring, err;

	ring = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (ring < 0)
		return -errno;
	sq_len = p.sq_off.array + p.sq_entries * sizeof(__u32);
	cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		sq_len = cq_len = sq_len > cq_len ? sq_len : cq_len;
	sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
		  IORING_OFF_SQ_RING);
	cq = (p.features & IORING_FEAT_SINGLE_MMAP) ?
		     sq :
		     mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
			  IORING_OFF_CQ_RING);
	sqes = mmap(NULL, sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
		    IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	tail = *(unsigned int *)((char *)sq + p.sq_off.tail);
	idx = tail & *(unsigned int *)((char *)sq + p.sq_off.ring_mask);
	sqe = (struct io_uring_sqe *)sqes + idx;
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_CONNECT;
	sqe->fd = fd;
	sqe->addr = (__u64)(uintptr_t)sa;
	sqe->off = len;		/* addr2: the address length */
	((__u32 *)((char *)sq + p.sq_off.array))[idx] = idx;
	__atomic_store_n((unsigned int *)((char *)sq + p.sq_off.tail), tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
		err = -errno;
		goto out;
	}
	idx = __atomic_load_n((unsigned int *)((char *)cq + p.cq_off.head), __ATOMIC_ACQUIRE) &
	      *(unsigned int *)((char *)cq + p.cq_off.ring_mask);
	cqe = (struct io_uring_cqe *)((char *)cq + p.cq_off.cqes) + idx;
	err = cqe->res;
out:
	if (sqes != MAP_FAILED)
		munmap(sqes, sqes_len);
	if (cq != MAP_FAILED && cq != sq)
		munmap(cq, cq_len);
	if (sq != MAP_FAILED)
		munmap(sq, sq_len);
	close(ring);
	return err;
}

/* Become uid/gid nobody holding CAP_NET_RAW and nothing else (@net_raw), as
 * an unprivileged process of a container with containerd's default set keeps
 * it, or nothing at all. 0 or -errno.
 */
static int drop_to_nobody(bool net_raw, unsigned long long *cap_eff)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { { 0 } };
	char line[128];
	FILE *f;

	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) || setgroups(0, NULL) || setgid(NOBODY) ||
	    setuid(NOBODY))
		return -errno;
	data[0].effective = data[0].permitted = net_raw ? 1u << CAP_NET_RAW : 0;
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	f = fopen("/proc/self/status", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", cap_eff) == 1)
			break;
	fclose(f);
	return 0;
}

static int sockaddr_of(const char *dst, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addr a;

	if (addr_parse_ip_port(dst, &a))
		return -EINVAL;
	*len = addr_to_sockaddr(&a, ss);
	return a.family;
}

/* The pod's process: runs in the child, in pod a's netns. */
static void pod_process(const struct attempt *at, struct report *r)
{
	struct sockaddr_storage ss, first;
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	socklen_t len, first_len = 0;
	int family, fd, one = 1, proto = 0;

	if (tns_enter("a"))
		FAIL_AT(r, "enter the pod's netns");
	if (at->caps != CAPS_ROOT &&
	    (errno = -drop_to_nobody(at->caps == CAPS_NET_RAW, &r->cap_eff)))
		FAIL_AT(r, "drop to uid nobody");
	family = sockaddr_of(at->dst, &ss, &len);
	if (at->first && sockaddr_of(at->first, &first, &first_len) != family)
		family = -EINVAL;
	if (family < 0) {
		errno = -family;
		FAIL_AT(r, "parse the destinations");
	}
	if (at->shape == S_MPTCP)
		proto = IPPROTO_MPTCP;
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, proto);
	if (fd < 0)
		FAIL_AT(r, "socket");
	if (at->mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &at->mark, sizeof(at->mark)))
		FAIL_AT(r, "SO_MARK");
	if (at->transparent_from) {
		struct sockaddr_storage src;
		socklen_t src_len;

		if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)))
			FAIL_AT(r, "IP_TRANSPARENT");
		if (sockaddr_of(at->transparent_from, &src, &src_len) < 0 ||
		    bind(fd, (struct sockaddr *)&src, src_len))
			FAIL_AT(r, "bind");
	}
	switch (at->shape) {
	case S_CONNECT:
	case S_MPTCP:
		if (connect(fd, (struct sockaddr *)&ss, len))
			FAIL_AT(r, "connect");
		break;
	case S_SENDTO_FASTOPEN:
		/* The request rides on the SYN (or follows the handshake when
		 * the server grants no cookie): there is no connect() call.
		 */
		if (sendto(fd, "IDENT\n", 6, MSG_FASTOPEN | MSG_NOSIGNAL, (struct sockaddr *)&ss,
			   len) != 6)
			FAIL_AT(r, "sendto MSG_FASTOPEN");
		errno = -read_answer(fd, r->answer, sizeof(r->answer));
		if (errno)
			FAIL_AT(r, "read the answer");
		close(fd);
		return;
	case S_FASTOPEN_CONNECT:
		/* connect() returns at once; the SYN leaves with the first write. */
		if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)))
			FAIL_AT(r, "TCP_FASTOPEN_CONNECT");
		if (connect(fd, (struct sockaddr *)&ss, len))
			FAIL_AT(r, "connect");
		break;
	case S_UNSPEC_RECONNECT:
		if (connect(fd, (struct sockaddr *)&first, first_len))
			FAIL_AT(r, "first connect");
		errno = -ident(fd, r->first_answer, sizeof(r->first_answer));
		if (errno)
			FAIL_AT(r, "first answer");
		if (connect(fd, &unspec, sizeof(unspec)))
			FAIL_AT(r, "connect AF_UNSPEC");
		if (connect(fd, (struct sockaddr *)&ss, len))
			FAIL_AT(r, "second connect");
		break;
	case S_IO_URING:
		errno = -uring_connect(fd, (struct sockaddr *)&ss, len);
		if (errno)
			FAIL_AT(r, "IORING_OP_CONNECT");
		break;
	}
	errno = -ident(fd, r->answer, sizeof(r->answer));
	if (errno)
		FAIL_AT(r, "IDENT");
	close(fd);
}

/* Run @at in a forked child (the pod's process); fill @r. */
static void run_in_pod(const struct attempt *at, struct report *r)
{
	struct pollfd pfd;
	int fds[2], status;
	ssize_t n = 0;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		struct report mine = { 0 };

		close(fds[0]);
		pod_process(at, &mine);
		_exit(write(fds[1], &mine, sizeof(mine)) == sizeof(mine) ? 0 : 2);
	}
	close(fds[1]);
	pfd = (struct pollfd){ .fd = fds[0], .events = POLLIN };
	if (poll(&pfd, 1, 4 * IO_TIMEOUT_MS) == 1)
		n = read(fds[0], r, sizeof(*r));
	close(fds[0]);
	if (n != sizeof(*r))
		kill(pid, SIGKILL);	/* our own child, hung */
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(n, (ssize_t)sizeof(*r), "the pod's process reported nothing (status %#x)",
		     status);
}

/* ------------------------------------------------------------ expectations */

struct counts {
	long long to_service, passthrough, redirected, agent_cgroup;
};

static struct counts counts_now(void)
{
	struct counts c = {
		.to_service = tenv_status_counter(&env, "connections.to_service"),
		.passthrough = tenv_status_counter(&env, "connections.passthrough"),
	};

	if (tenv_mode_is("ebpf")) {
		c.redirected = tenv_status_counter(&env, "bpf.counters.redirected");
		c.agent_cgroup = tenv_status_counter(&env, "bpf.counters.agent_cgroup");
	}
	return c;
}

static bool is_vip(const char *dst)
{
	return !strcmp(dst, VIP4) || !strcmp(dst, VIP6) || !strcmp(dst, VIP_MAPPED);
}

/* The answer a captured connection to @dst gets: a web endpoint for the VIPs
 * (web-v6 for the IPv6 one), api-1 directly; from the pod's own address,
 * since the proxy's upstream socket lives in the pod.
 */
static void expect_answer(const char *what, const char *dst, const char *answer)
{
	if (!strcmp(dst, VIP6))
		cr_expect_str_eq(answer, "web-v6 fd00:198:1::2", "%s: answer", what);
	else if (is_vip(dst))
		cr_expect(!strncmp(answer, "web-", 4) && strstr(answer, " " POD_IP),
			  "%s: answer '%s' is not a web endpoint's to %s", what, answer, POD_IP);
	else
		cr_expect_str_eq(answer, "api-1 " POD_IP, "%s: answer", what);
}

/* @at must end at the proxy: answered, and counted by the proxy as a service
 * connection (VIP) or a passthrough (direct) for each connection it made; in
 * eBPF mode the programs redirected it and let the agent's upstream socket
 * (its cgroup's) go.
 */
static void expect_captured(const char *what, const struct attempt *at)
{
	struct counts before = counts_now(), after;
	long long want_service = 0, want_pass = 0;
	struct report r;

	run_in_pod(at, &r);
	if (r.err) {
		cr_expect_fail("%s: %s failed: %s", what, r.step, strerror(-r.err));
		return;
	}
	expect_answer(what, at->dst, r.answer);
	*(is_vip(at->dst) ? &want_service : &want_pass) += 1;
	if (at->first) {
		expect_answer(what, at->first, r.first_answer);
		*(is_vip(at->first) ? &want_service : &want_pass) += 1;
	}
	after = counts_now();
	cr_expect_eq(after.to_service - before.to_service, want_service,
		     "%s: the proxy counted %lld service connections, expected %lld", what,
		     after.to_service - before.to_service, want_service);
	cr_expect_eq(after.passthrough - before.passthrough, want_pass,
		     "%s: the proxy counted %lld passthrough connections, expected %lld", what,
		     after.passthrough - before.passthrough, want_pass);
	if (tenv_mode_is("ebpf")) {
		cr_expect_eq(after.redirected - before.redirected, want_service + want_pass,
			     "%s: connect4/6 redirected %lld", what,
			     after.redirected - before.redirected);
		cr_expect_eq(after.agent_cgroup - before.agent_cgroup, want_service + want_pass,
			     "%s: the agent's upstream connects left alone: %lld", what,
			     after.agent_cgroup - before.agent_cgroup);
	}
}

/* @at must fail with @want at step @step, the proxy seeing nothing of it. */
static void expect_refused(const char *what, const struct attempt *at, int want, const char *step)
{
	struct counts before = counts_now(), after;
	struct report r;

	run_in_pod(at, &r);
	cr_expect_eq(r.err, want, "%s: got '%s' at %s ('%s'), expected %s", what,
		     strerror(-r.err), r.step[0] ? r.step : "no step", r.answer, strerror(-want));
	cr_expect_str_eq(r.step, step, "%s: refused at", what);
	after = counts_now();
	cr_expect_eq(after.to_service, before.to_service, "%s", what);
	cr_expect_eq(after.passthrough, before.passthrough, "%s", what);
}

/* ------------------------------------------------------------ the shapes */

static void plain_connect_is_captured_the_control(void)
{
	expect_captured("connect to the VIP", &(struct attempt){ .shape = S_CONNECT, .dst = VIP4 });
	expect_captured("connect direct", &(struct attempt){ .shape = S_CONNECT, .dst = DIRECT });
}

/* sendto() with MSG_FASTOPEN connects inside sendmsg: tcp_sendmsg_fastopen()
 * runs the protocol's pre_connect, where the cgroup connect hooks are; nft
 * sees the SYN like any other. Also with data in the SYN itself
 * (net.ipv4.tcp_fastopen 0x5: client, no cookie needed).
 */
static void sendto_msg_fastopen_is_captured(void)
{
	char ns[64];

	expect_captured("MSG_FASTOPEN to the VIP",
			&(struct attempt){ .shape = S_SENDTO_FASTOPEN, .dst = VIP4 });
	expect_captured("MSG_FASTOPEN direct",
			&(struct attempt){ .shape = S_SENDTO_FASTOPEN, .dst = DIRECT });
	expect_captured("MSG_FASTOPEN to the IPv6 VIP",
			&(struct attempt){ .shape = S_SENDTO_FASTOPEN, .dst = VIP6 });
	expect_captured("MSG_FASTOPEN to the IPv4-mapped VIP",
			&(struct attempt){ .shape = S_SENDTO_FASTOPEN, .dst = VIP_MAPPED });
	cr_assert_eq(tns_sh("ip netns exec %s sysctl -qw net.ipv4.tcp_fastopen=5",
			    tns_name("a", ns, sizeof(ns))),
		     0);
	expect_captured("MSG_FASTOPEN with data in the SYN, to the VIP",
			&(struct attempt){ .shape = S_SENDTO_FASTOPEN, .dst = VIP4 });
	expect_captured("MSG_FASTOPEN with data in the SYN, direct",
			&(struct attempt){ .shape = S_SENDTO_FASTOPEN, .dst = DIRECT });
}

/* TCP_FASTOPEN_CONNECT: connect() records the destination and returns, the
 * SYN leaves with the first write. The hooks run at that connect(), and the
 * address the first write could name is ignored for a deferred connect.
 */
static void tcp_fastopen_connect_is_captured(void)
{
	char ns[64];

	expect_captured("TCP_FASTOPEN_CONNECT to the VIP",
			&(struct attempt){ .shape = S_FASTOPEN_CONNECT, .dst = VIP4 });
	expect_captured("TCP_FASTOPEN_CONNECT direct",
			&(struct attempt){ .shape = S_FASTOPEN_CONNECT, .dst = DIRECT });
	expect_captured("TCP_FASTOPEN_CONNECT to the IPv6 VIP",
			&(struct attempt){ .shape = S_FASTOPEN_CONNECT, .dst = VIP6 });
	cr_assert_eq(tns_sh("ip netns exec %s sysctl -qw net.ipv4.tcp_fastopen=5",
			    tns_name("a", ns, sizeof(ns))),
		     0);
	expect_captured("TCP_FASTOPEN_CONNECT with data in the SYN",
			&(struct attempt){ .shape = S_FASTOPEN_CONNECT, .dst = DIRECT });
}

/* A dual-stack socket naming an IPv4 peer as ::ffff:a.b.c.d goes out as IPv4
 * without connect4 ever running; connect6 must catch it.
 */
static void ipv4_mapped_ipv6_is_captured(void)
{
	expect_captured("connect to the IPv4-mapped VIP",
			&(struct attempt){ .shape = S_CONNECT, .dst = VIP_MAPPED });
	expect_captured("connect to IPv4-mapped api-1",
			&(struct attempt){ .shape = S_CONNECT, .dst = "[::ffff:198.18.2.14]:8080" });
	expect_captured("IPv4-mapped through io_uring",
			&(struct attempt){ .shape = S_IO_URING, .dst = VIP_MAPPED });
}

/* connect(AF_UNSPEC) disconnects a TCP socket and a second connect() may go
 * elsewhere: each connect is decided afresh, and the second one carries
 * nothing of the first (the first destination is not what it is routed to).
 */
static void af_unspec_reconnect_is_captured(void)
{
	expect_captured("VIP, AF_UNSPEC, then direct",
			&(struct attempt){ .shape = S_UNSPEC_RECONNECT, .first = VIP4,
					   .dst = DIRECT });
	expect_captured("direct, AF_UNSPEC, then the VIP",
			&(struct attempt){ .shape = S_UNSPEC_RECONNECT, .first = DIRECT,
					   .dst = VIP4 });
	expect_captured("IPv6: VIP, AF_UNSPEC, IPv4-mapped direct",
			&(struct attempt){ .shape = S_UNSPEC_RECONNECT, .first = VIP6,
					   .dst = "[::ffff:198.18.2.14]:8080" });
}

/* MPTCP: the cgroup connect hooks never see the MPTCP socket itself (it has
 * no pre_connect); they see its first subflow, a TCP socket, and redirect it
 * like any other. The proxy's listener does not speak MPTCP, so the
 * connection falls back to plain TCP through the proxy and no further
 * subflow can be joined to it. nft sees the subflow's TCP packets.
 */
static void mptcp_is_captured(void)
{
	struct report r;

	run_in_pod(&(struct attempt){ .shape = S_MPTCP, .dst = "127.0.0.1:1" }, &r);
	require(r.err != -EPROTONOSUPPORT && r.err != -EINVAL,
		"this kernel has no MPTCP (socket: %s): the test cannot run", strerror(-r.err));
	expect_captured("MPTCP to the VIP", &(struct attempt){ .shape = S_MPTCP, .dst = VIP4 });
	expect_captured("MPTCP direct", &(struct attempt){ .shape = S_MPTCP, .dst = DIRECT });
	expect_captured("MPTCP to the IPv6 VIP", &(struct attempt){ .shape = S_MPTCP, .dst = VIP6 });
	expect_captured("MPTCP to the IPv4-mapped VIP",
			&(struct attempt){ .shape = S_MPTCP, .dst = VIP_MAPPED });
}

/* IORING_OP_CONNECT calls the socket's connect from io_uring, in the
 * submitting task or one of its io-wq threads (threads of the same process,
 * in the same cgroup): the same hooks, the same decision.
 */
static void io_uring_connect_is_captured(void)
{
	expect_captured("io_uring to the VIP", &(struct attempt){ .shape = S_IO_URING, .dst = VIP4 });
	expect_captured("io_uring direct", &(struct attempt){ .shape = S_IO_URING, .dst = DIRECT });
	expect_captured("io_uring to the IPv6 VIP",
			&(struct attempt){ .shape = S_IO_URING, .dst = VIP6 });
}

/* The agent's marks, set by an unprivileged process holding CAP_NET_RAW (in
 * containerd's default set), prove nothing: only the agent's cgroup does.
 */
static void agent_marks_with_cap_net_raw_are_captured(void)
{
	const uint32_t marks[] = { AGENT_MARK, INBOUND_MARK };
	struct report r;

	/* The controls: uid nobody without capabilities may not mark; with
	 * CAP_NET_RAW alone it may, and does.
	 */
	run_in_pod(&(struct attempt){ .shape = S_CONNECT, .dst = VIP4, .mark = AGENT_MARK,
				      .caps = CAPS_NONE },
		   &r);
	cr_assert_eq(r.err, -EPERM, "SO_MARK without CAP_NET_RAW: %s at %s", strerror(-r.err),
		     r.step);
	cr_assert_str_eq(r.step, "SO_MARK");
	run_in_pod(&(struct attempt){ .shape = S_CONNECT, .dst = VIP4, .mark = AGENT_MARK,
				      .caps = CAPS_NET_RAW },
		   &r);
	cr_assert_eq(r.err, 0, "%s: %s", r.step, strerror(-r.err));
	cr_assert_eq(r.cap_eff, 1ull << CAP_NET_RAW, "CapEff %#llx after dropping", r.cap_eff);
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		const struct attempt at[] = {
			{ .shape = S_CONNECT, .dst = VIP4 },
			{ .shape = S_CONNECT, .dst = DIRECT },
			{ .shape = S_CONNECT, .dst = VIP6 },
			{ .shape = S_SENDTO_FASTOPEN, .dst = DIRECT },
			{ .shape = S_IO_URING, .dst = DIRECT },
			{ .shape = S_MPTCP, .dst = VIP4 },
		};

		for (size_t j = 0; j < sizeof(at) / sizeof(at[0]); j++) {
			struct attempt a = at[j];
			char what[96];

			a.mark = marks[i];
			a.caps = CAPS_NET_RAW;
			snprintf(what, sizeof(what), "mark %#x, shape %d, to %s", marks[i],
				 (int)a.shape, a.dst);
			/* nft mode routes before it rewrites: for IPv4 the
			 * inbound mark's rule (every address is local in the
			 * return table) picks the destination itself as the
			 * source, which is no address of the pod, and the
			 * connect fails before a packet leaves. IPv6 picks a
			 * source of the pod's and is captured; eBPF mode
			 * rewrites before any route lookup.
			 */
			if (marks[i] == INBOUND_MARK && tenv_mode_is("nft") &&
			    strchr(a.dst, '[') == NULL)
				expect_refused(what, &a, -ENETUNREACH,
					       a.shape == S_SENDTO_FASTOPEN ? "sendto MSG_FASTOPEN" :
					       a.shape == S_IO_URING	    ? "IORING_OP_CONNECT" :
										      "connect");
			else
				expect_captured(what, &a);
		}
	}
}

/* A socket built exactly like the agent's inbound-side one (IP_TRANSPARENT,
 * bound to a client's address, the inbound mark), by a process holding
 * CAP_NET_RAW alone: still not the agent's.
 */
static void a_copy_of_the_agents_inbound_socket_is_captured(void)
{
	expect_captured("transparent, bound to 198.18.2.99, inbound mark, to the VIP",
			&(struct attempt){ .shape = S_CONNECT, .dst = VIP4, .mark = INBOUND_MARK,
					   .transparent_from = "198.18.2.99:40999",
					   .caps = CAPS_NET_RAW });
	expect_captured("transparent, bound to 198.18.2.99, inbound mark, direct",
			&(struct attempt){ .shape = S_CONNECT, .dst = DIRECT, .mark = INBOUND_MARK,
					   .transparent_from = "198.18.2.99:40999",
					   .caps = CAPS_NET_RAW });
}

/* ------------------------------------------------------------ the agent's side */

/* Every thread of the agent (its proxy workers too) is in the agent's cgroup:
 * its sockets are the agent's whichever thread makes them.
 */
static void every_agent_thread_is_in_the_agents_cgroup(void)
{
	char dir[64], path[PATH_MAX], line[PATH_MAX], mnt[PATH_MAX], want[PATH_MAX];
	long long workers = tenv_status_counter(&env, "workers");
	struct dirent *de;
	int threads = 0;
	DIR *d;

	cr_assert_eq(tcg_mount_point(mnt, sizeof(mnt)), 0);
	cr_assert(!strncmp(env.agent_cgroup, mnt, strlen(mnt)));
	snprintf(want, sizeof(want), "0::%s", env.agent_cgroup + strlen(mnt));
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)env.agent);
	d = opendir(dir);
	cr_assert_not_null(d, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		bool found = false;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/cgroup", dir, de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;	/* a thread that just exited */
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = '\0';
			if (strncmp(line, "0::", 3))
				continue;
			found = true;
			cr_expect_str_eq(line, want, "thread %s is not in the agent's cgroup",
					 de->d_name);
		}
		fclose(f);
		cr_expect(found, "thread %s has no cgroup v2 line", de->d_name);
		threads++;
	}
	closedir(d);
	/* The main thread and, with more than one, a thread per worker. */
	cr_assert_gt(workers, 0);
	cr_expect_geq(threads, workers > 1 ? workers + 1 : 1, "%d threads for %lld workers",
		      threads, workers);
}

/* ------------------------------------------------------------ the tests */

/* One agent per test is most of a test's time here, so the shapes share
 * three: each shape's failures are reported by name and do not stop the rest.
 */
Test(bypass, tcp_fast_open_is_captured)
{
	plain_connect_is_captured_the_control();
	sendto_msg_fastopen_is_captured();
	tcp_fastopen_connect_is_captured();
}

Test(bypass, other_connect_paths_are_captured)
{
	ipv4_mapped_ipv6_is_captured();
	af_unspec_reconnect_is_captured();
	mptcp_is_captured();
	io_uring_connect_is_captured();
}

Test(bypass, only_the_agents_cgroup_is_the_agent)
{
	every_agent_thread_is_in_the_agents_cgroup();
	agent_marks_with_cap_net_raw_are_captured();
	a_copy_of_the_agents_inbound_socket_is_captured();
}

/* ------------------------------------------------------------ raw sockets */

/* A raw IP socket of @family and @proto made in netns @ns by this process
 * (in the test cgroup, where the pods' processes are): its fd, or -errno.
 */
static int raw_socket_in(const char *ns, int family, int proto)
{
	int fd, err = 0;

	cr_assert_eq(tns_enter(ns), 0);
	fd = socket(family, SOCK_RAW | SOCK_CLOEXEC, proto);
	if (fd < 0)
		err = -errno;
	cr_assert_eq(tns_enter(NULL), 0);
	return fd < 0 ? err : fd;
}

/* The Internet checksum over @len bytes, continuing @sum. */
static uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *b = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)(b[len - 1] << 8);
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Send a hand-made TCP SYN from pod a (POD_IP:@sport) to @dst with a raw
 * socket, past connect() altogether, and wait for the first TCP segment
 * coming back from @dst to @sport. Returns its TTL (the IP header's), or
 * -1 when nothing came within a second; *@flags gets its TCP flags.
 */
static int raw_syn(const char *dst, uint16_t sport, uint8_t *flags)
{
	struct {
		uint32_t src, dst;
		uint8_t zero, proto;
		uint16_t len;
	} pseudo;
	uint8_t syn[20] = { 0 }, buf[1500];
	struct sockaddr_in to = { .sin_family = AF_INET };
	struct addr d, s;
	uint64_t end;
	uint16_t c;
	int fd;

	cr_assert(addr_parse_ip_port(dst, &d) == 0 && addr_parse_ip(POD_IP, &s) == 0);
	fd = raw_socket_in("a", AF_INET, IPPROTO_TCP);
	cr_assert_geq(fd, 0, "raw socket in pod a: %s", strerror(-fd));
	syn[0] = (uint8_t)(sport >> 8);
	syn[1] = (uint8_t)sport;
	syn[2] = (uint8_t)(d.port >> 8);
	syn[3] = (uint8_t)d.port;
	syn[4] = 0x12;		/* an arbitrary initial sequence number */
	syn[12] = 5 << 4;	/* data offset: 5 words, no options */
	syn[13] = 0x02;		/* SYN */
	syn[14] = 0xff;		/* window */
	pseudo.src = s.ip.v4.s_addr;
	pseudo.dst = d.ip.v4.s_addr;
	pseudo.zero = 0;
	pseudo.proto = IPPROTO_TCP;
	pseudo.len = htons(sizeof(syn));
	c = csum_fold(csum_add(csum_add(0, &pseudo, sizeof(pseudo)), syn, sizeof(syn)));
	syn[16] = (uint8_t)(c >> 8);
	syn[17] = (uint8_t)c;
	to.sin_addr = d.ip.v4;
	cr_assert_eq(sendto(fd, syn, sizeof(syn), 0, (struct sockaddr *)&to, sizeof(to)),
		     (ssize_t)sizeof(syn), "sendto: %s", strerror(errno));
	/* A raw IPPROTO_TCP socket gets a copy of every TCP segment the netns
	 * receives, IP header first.
	 */
	end = mono_ms() + 1000;
	while (mono_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		size_t ihl;

		if (poll(&p, 1, (int)(end - mono_ms())) != 1)
			break;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 20)
			continue;
		ihl = (size_t)(buf[0] & 0xf) * 4;
		if ((size_t)n < ihl + 20 || memcmp(buf + 12, &d.ip.v4, 4) ||
		    (buf[ihl] << 8 | buf[ihl + 1]) != d.port ||
		    (buf[ihl + 2] << 8 | buf[ihl + 3]) != sport)
			continue;
		*flags = buf[ihl + 13];
		close(fd);
		return buf[8];
	}
	close(fd);
	return -1;
}

/* Wait (about 5 s) until pod @name's "raw_sockets" in /v1/pods is @want. */
static void raw_state_is(const char *name, const char *want)
{
	char got[64] = "";

	for (int i = 0; i < 50; i++) {
		json_object *all = tenv_admin_get(&env, "/v1/pods"), *pods, *v;

		got[0] = '\0';
		for (size_t j = 0; all && json_object_object_get_ex(all, "pods", &pods) &&
				   j < json_object_array_length(pods);
		     j++) {
			json_object *p = json_object_array_get_idx(pods, j), *n;

			if (json_object_object_get_ex(p, "name", &n) &&
			    !strcmp(json_object_get_string(n), name) &&
			    json_object_object_get_ex(p, "raw_sockets", &v))
				snprintf(got, sizeof(got), "%s", json_object_get_string(v));
		}
		json_object_put(all);
		if (!strcmp(got, want))
			return;
		usleep(100000);
	}
	cr_assert_fail("pod %s: raw_sockets is '%s', expected '%s'", name, got, want);
}

/* Registry: TOPO_REGISTRY with Namespace mesh annotated @ns_ann and Pods
 * mesh/client-a and mesh/client-b annotated @a_ann and @b_ann (YAML lines).
 */
static void declare_raw(const char *ns_ann, const char *a_ann, const char *b_ann)
{
	static const char ns_head[] = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: mesh\n";
	char yaml[16384];

	/* TOPO_REGISTRY starts with Namespace mesh: give it the annotation. */
	cr_assert_eq(strncmp(TOPO_REGISTRY, ns_head, sizeof(ns_head) - 1), 0);
	snprintf(yaml, sizeof(yaml),
		 "%s  annotations:\n%s%s"
		 "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: client-a\n  namespace: mesh\n"
		 "  annotations:\n%s"
		 "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: client-b\n  namespace: mesh\n"
		 "  annotations:\n%s",
		 ns_head, ns_ann, TOPO_REGISTRY + sizeof(ns_head) - 1, a_ann, b_ann);
	cr_assert_eq(tenv_write_registry(&env, yaml), 0);
}

/* weft.io/deny-raw-sockets (the Pod's, else its Namespace's): in eBPF mode
 * sock_create refuses raw IP sockets of both families in that pod, and only
 * there; nft mode has no hook that can, and says so in /v1/pods. What a raw
 * SYN does without the refusal differs by mode and is what docs/datapath.md
 * says: in eBPF mode it goes out untouched and the server answers it across
 * the router (TTL 63); in nft mode netfilter's OUTPUT hook sees raw packets
 * too, so the SYN is redirected to the proxy's listener in the pod, which
 * answers it locally (TTL 64) as the server's address.
 */
Test(bypass, raw_sockets_are_refused_where_the_pod_asks)
{
	bool nft = tenv_mode_is("nft");
	const char *refused = nft ? "allowed: nft mode cannot refuse them" : "refused";
	uint8_t flags = 0;
	int fd, ttl;

	/* Without the annotation, what a raw SYN meets in each mode. */
	ttl = raw_syn(DIRECT, 47001, &flags);
	cr_log_info("%s mode: a raw SYN to %s from pod a is answered with TTL %d, flags %#x",
		    tenv_mode(), DIRECT, ttl, flags);
	cr_assert_eq(ttl, nft ? 64 : 63, "%s mode: a raw SYN was answered with TTL %d",
		     tenv_mode(), ttl);
	cr_assert_eq(flags & 0x12, 0x12, "not a SYN-ACK: flags %#x", flags);

	declare_raw("", "    weft.io/deny-raw-sockets: \"true\"\n", "    x: y\n");
	raw_state_is("client-a", refused);
	raw_state_is("client-b", "allowed");
	if (nft) {
		fd = raw_socket_in("a", AF_INET, IPPROTO_TCP);
		cr_assert_geq(fd, 0, "nft mode refused a raw socket: %s", strerror(-fd));
		close(fd);
		return;
	}
	cr_assert_eq(raw_socket_in("a", AF_INET, IPPROTO_TCP), -EPERM);
	cr_assert_eq(raw_socket_in("a", AF_INET6, IPPROTO_TCP), -EPERM);
	cr_assert_eq(raw_socket_in("a", AF_INET, IPPROTO_RAW), -EPERM);
	cr_assert_eq(raw_socket_in("a", AF_INET, IPPROTO_ICMP), -EPERM);
	cr_assert_geq(tenv_status_counter(&env, "bpf.counters.raw_socket_denied"), 4);
	/* Other sockets of the pod, and the other pod's raw sockets, work. */
	cr_assert_eq(tns_enter("a"), 0);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_geq(fd, 0);
	close(fd);
	fd = raw_socket_in("b", AF_INET, IPPROTO_TCP);
	cr_assert_geq(fd, 0, "pod b's raw socket: %s", strerror(-fd));
	close(fd);

	/* The Namespace's annotation, and a Pod's own "false" over it. */
	declare_raw("    weft.io/deny-raw-sockets: \"true\"\n",
		    "    weft.io/deny-raw-sockets: \"false\"\n", "    x: y\n");
	raw_state_is("client-a", "allowed");
	raw_state_is("client-b", "refused");
	fd = raw_socket_in("a", AF_INET, IPPROTO_TCP);
	cr_assert_geq(fd, 0, "pod a's raw socket: %s", strerror(-fd));
	close(fd);
	cr_assert_eq(raw_socket_in("b", AF_INET6, IPPROTO_TCP), -EPERM);
}
