// SPDX-License-Identifier: GPL-2.0-only
/* The redirect programs end to end, without the agent: a child joins the test
 * cgroup in a netns of its own (lo only), the datapath enrols it, and real
 * connections are redirected to the proxy listener or left alone, with
 * SO_ORIGINAL_DST answered and every decision counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/types.h>

#include <criterion/criterion.h>

#include "abi.h"
#include "addr.h"
#include "datapath/dp.h"

#include "../helpers/cgroup.h"
#include "fixture.h"

#define REAL_V4 "198.18.0.10"
#define REAL_V6 "fd57:6566:7400::10"	/* unique local, on the test netns' lo only */
#define ORIGINAL_DST 80		/* SO_ORIGINAL_DST == IP6T_SO_ORIGINAL_DST */
#define CHILD_TIMEOUT_MS 10000

/* The listeners of the test netns: the proxy's and the "real" servers'. */
enum listener { L_PROXY4, L_PROXY6, L_REAL4, L_REAL6, L_LO4, L_LO6, L_COUNT };
static const char *const listener_addr[L_COUNT] = {
	"127.0.0.1:15001", "[::1]:15001", REAL_V4 ":80", "[" REAL_V6 "]:80",
	"127.0.0.1:80",	   "[::1]:80",
};

struct scenario {
	bool enroll;		/* put the child's netns cookie into mesh_pods */
	struct dp_pod pod;
	const char *cgroup;	/* the child joins it; NULL: fx.cgroup, a pod's */
	uint32_t mark;		/* SO_MARK of the client socket; 0: none */
	const char *first_dst;	/* connect there first, then disconnect (AF_UNSPEC) */
	int family;		/* of the client socket */
	int type;		/* SOCK_STREAM or SOCK_DGRAM */
	const char *dst;
	socklen_t optlen;	/* the proxy's getsockopt buffer; 0 = sockaddr_in6 */
	bool unrelated_large;	/* also run other large getsockopts on the client */
};

struct outcome {
	char failed[200];	/* the step that failed in the child; "" when none */
	int accepted_by;	/* enum listener, or -1 */
	struct addr peer;	/* getpeername() of the client */
	int orig_errno;		/* of the proxy's SO_ORIGINAL_DST; 0 = answered */
	struct addr orig;
	socklen_t orig_len;
	int again_errno;	/* of asking a second time */
	int tcp_info_errno, ip_tos_errno, client_orig_errno;
	socklen_t tcp_info_len, ip_tos_len;
};

#define child_check(o, cond, ...)                                                                  \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			int e_ = errno;                                                            \
			int n_ = snprintf((o)->failed, sizeof((o)->failed), __VA_ARGS__);          \
			if (n_ >= 0 && (size_t)n_ < sizeof((o)->failed))                           \
				snprintf((o)->failed + n_, sizeof((o)->failed) - (size_t)n_,       \
					 " (errno %s)", strerror(e_));                             \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static int set_lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == -1)
		err = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!err && ioctl(fd, SIOCSIFFLAGS, &ifr) == -1)
		err = -errno;
	close(fd);
	return err;
}

static void put_attr(struct nlmsghdr *nh, unsigned short type, const void *data, size_t len)
{
	struct rtattr *rta = (struct rtattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));

	rta->rta_type = type;
	rta->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

/* "ip addr add @ip/@prefix dev lo" over rtnetlink, in the caller's netns. */
static int add_lo_addr(const char *ip, unsigned char prefix)
{
	struct {
		struct nlmsghdr nh;
		struct ifaddrmsg ifa;
		char attrs[64];
	} req = { 0 };
	struct {
		struct nlmsghdr nh;
		struct nlmsgerr err;
		char rest[256];
	} ack;
	struct addr a;
	size_t len;
	int fd, err;

	if (addr_parse_ip(ip, &a))
		return -EINVAL;
	len = a.family == AF_INET ? 4 : 16;
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifa));
	req.nh.nlmsg_type = RTM_NEWADDR;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	req.ifa.ifa_family = (unsigned char)a.family;
	req.ifa.ifa_prefixlen = prefix;
	req.ifa.ifa_flags = IFA_F_NODAD;	/* usable at once */
	req.ifa.ifa_index = if_nametoindex("lo");
	put_attr(&req.nh, IFA_LOCAL, &a.ip, len);
	put_attr(&req.nh, IFA_ADDRESS, &a.ip, len);

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd == -1)
		return -errno;
	if (send(fd, &req, req.nh.nlmsg_len, 0) == -1 || recv(fd, &ack, sizeof(ack), 0) == -1)
		err = -errno;
	else
		err = ack.nh.nlmsg_type == NLMSG_ERROR ? ack.err.error : -EPROTO;
	close(fd);
	return err;
}

static int listen_on(const char *where)
{
	struct sockaddr_storage ss;
	struct addr a;
	socklen_t len;
	int fd, one = 1;

	if (addr_parse_ip_port(where, &a))
		return -1;
	len = addr_to_sockaddr(&a, &ss);
	fd = socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if ((a.family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 8) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* IPv6 adds the prefix route of a new address at once but its local route
 * (table local, which delivers to lo) from the addrconf work queue, a moment
 * later; until then a TCP connect() to it fails with ENETUNREACH while a UDP
 * route lookup already succeeds. So probe with what the test needs, a TCP
 * connection to @ip, for up to a second.
 */
static bool wait_usable(const char *ip)
{
	struct timespec nap = { .tv_nsec = 10 * 1000 * 1000 };
	bool ok = false;
	struct addr a;

	if (addr_parse_ip(ip, &a))
		return false;
	for (int tries = 0; tries < 100 && !ok; tries++) {
		struct sockaddr_storage ss;
		socklen_t len = addr_to_sockaddr(&a, &ss);	/* port 0: any free one */
		int lfd, cfd = -1;

		lfd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd >= 0 && bind(lfd, (struct sockaddr *)&ss, len) == 0 &&
		    listen(lfd, 1) == 0 && getsockname(lfd, (struct sockaddr *)&ss, &len) == 0)
			cfd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ok = cfd >= 0 && connect(cfd, (struct sockaddr *)&ss, len) == 0;
		if (cfd >= 0)
			close(cfd);
		if (lfd >= 0)
			close(lfd);
		if (!ok)
			nanosleep(&nap, NULL);
	}
	return ok;
}

/* Ask SO_ORIGINAL_DST on @fd with a buffer of @buflen; 0 or errno. */
static int ask_orig(int fd, int family, socklen_t buflen, struct addr *out, socklen_t *out_len)
{
	char *buf = calloc(1, buflen);
	socklen_t len = buflen;
	int level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
	int err = 0;

	if (!buf)
		return ENOMEM;
	if (getsockopt(fd, level, ORIGINAL_DST, buf, &len) == -1)
		err = errno;
	else if (out && addr_from_sockaddr(out, (struct sockaddr *)buf, len))
		err = EAFNOSUPPORT;
	if (!err && out_len)
		*out_len = len;
	free(buf);
	return err;
}

static int family_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	return getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ? -1 : ss.ss_family;
}

/* The pod: joins the test cgroup, gets a netns of its own with only lo, runs
 * the listeners and one client, and records what happened in @o.
 */
static void child_run(struct dp *dp, const struct scenario *sc, struct outcome *o)
{
	int lfd[L_COUNT], cfd, afd;
	long page = sysconf(_SC_PAGESIZE);
	struct sockaddr_storage ss;
	struct pollfd pfd[L_COUNT];
	uint64_t cookie;
	socklen_t len;
	struct addr a;
	int err;

	o->accepted_by = -1;
	/* The netns is built before joining the cgroup, so that the probes of
	 * wait_usable() do not show in the counters. Only sockets matter to
	 * the hooks, and they take their cgroup when they are created; unshare()
	 * does not remount /sys the way "ip netns exec" does.
	 */
	child_check(o, unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET)");
	err = set_lo_up();
	child_check(o, !err, "set lo up: %s", strerror(-err));
	err = add_lo_addr(REAL_V4, 32);
	child_check(o, !err, "add %s to lo: %s", REAL_V4, strerror(-err));
	err = add_lo_addr(REAL_V6, 128);
	child_check(o, !err, "add %s to lo: %s", REAL_V6, strerror(-err));
	child_check(o, wait_usable(REAL_V4) && wait_usable(REAL_V6),
		    "the addresses on lo never became usable");
	err = tcg_join(sc->cgroup ? sc->cgroup : fx.cgroup, 0);
	child_check(o, !err, "join '%s': %s", sc->cgroup ? sc->cgroup : fx.cgroup, strerror(-err));

	if (sc->enroll) {
		cfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		len = sizeof(cookie);
		child_check(o, cfd >= 0 && getsockopt(cfd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie,
						      &len) == 0, "SO_NETNS_COOKIE");
		close(cfd);
		err = dp_pod_upsert(dp, cookie, &sc->pod);
		child_check(o, !err, "enroll netns: %s", strerror(-err));
	}
	for (int i = 0; i < L_COUNT; i++) {
		lfd[i] = listen_on(listener_addr[i]);
		child_check(o, lfd[i] >= 0, "listen on %s", listener_addr[i]);
		pfd[i] = (struct pollfd){ .fd = lfd[i], .events = POLLIN };
	}

	cfd = socket(sc->family, sc->type | SOCK_CLOEXEC, 0);
	child_check(o, cfd >= 0, "client socket");
	if (sc->mark)
		child_check(o, setsockopt(cfd, SOL_SOCKET, SO_MARK, &sc->mark, sizeof(sc->mark)) == 0,
			    "SO_MARK");
	if (sc->family == AF_INET6) {
		int zero = 0;

		child_check(o, setsockopt(cfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) == 0,
			    "dual-stack client");
	}
	if (sc->first_dst) {
		struct sockaddr unspec = { .sa_family = AF_UNSPEC };

		child_check(o, addr_parse_ip_port(sc->first_dst, &a) == 0, "parse %s",
			    sc->first_dst);
		len = addr_to_sockaddr(&a, &ss);
		child_check(o, connect(cfd, (struct sockaddr *)&ss, len) == 0, "connect %s",
			    sc->first_dst);
		/* Take the first connection off whichever listener got it, so
		 * that only the second one is waiting below.
		 */
		child_check(o, poll(pfd, L_COUNT, 2000) == 1, "one listener got the first");
		for (int i = 0; i < L_COUNT; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			afd = accept4(lfd[i], NULL, NULL, SOCK_CLOEXEC);
			child_check(o, afd >= 0, "accept the first connection");
			close(afd);
		}
		child_check(o, connect(cfd, &unspec, sizeof(unspec)) == 0, "connect AF_UNSPEC");
	}
	child_check(o, addr_parse_ip_port(sc->dst, &a) == 0, "parse %s", sc->dst);
	len = addr_to_sockaddr(&a, &ss);
	child_check(o, connect(cfd, (struct sockaddr *)&ss, len) == 0, "connect %s", sc->dst);
	len = sizeof(ss);
	child_check(o, getpeername(cfd, (struct sockaddr *)&ss, &len) == 0, "getpeername");
	child_check(o, addr_from_sockaddr(&o->peer, (struct sockaddr *)&ss, len) == 0, "peer");
	if (sc->type != SOCK_STREAM)
		return;

	/* The final ACK may still be in flight when connect() returns. */
	child_check(o, poll(pfd, L_COUNT, 2000) == 1, "exactly one listener got the connection");
	for (int i = 0; i < L_COUNT; i++) {
		if (pfd[i].revents & POLLIN)
			o->accepted_by = i;
	}
	afd = accept4(lfd[o->accepted_by], NULL, NULL, SOCK_CLOEXEC);
	child_check(o, afd >= 0, "accept on %s", listener_addr[o->accepted_by]);

	/* What the proxy does: ask in the family of the accepted socket. */
	o->orig_errno = ask_orig(afd, family_of(afd), sc->optlen ? sc->optlen : sizeof(ss),
				 &o->orig, &o->orig_len);
	o->again_errno = ask_orig(afd, family_of(afd), sizeof(ss), NULL, NULL);

	if (sc->unrelated_large) {
		/* Other programs' getsockopt with buffers past PAGE_SIZE, as in
		 * the kernel's sockopt_sk selftest: they must get the kernel's
		 * own answers, never EFAULT.
		 */
		socklen_t big = (socklen_t)(2 * page);
		char *buf = calloc(1, big);

		child_check(o, buf != NULL, "allocate");
		o->tcp_info_len = big;
		o->tcp_info_errno =
			getsockopt(cfd, IPPROTO_TCP, TCP_INFO, buf, &o->tcp_info_len) ? errno : 0;
		o->ip_tos_len = big;
		o->ip_tos_errno =
			getsockopt(cfd, IPPROTO_IP, IP_TOS, buf, &o->ip_tos_len) ? errno : 0;
		free(buf);
		o->client_orig_errno = ask_orig(cfd, AF_INET, big, NULL, NULL);
	}
}

/* Run @sc in a child; fill @o and the counter movement @delta. */
static void run_scenario(struct dp *dp, const struct scenario *sc, struct outcome *o,
			 uint64_t delta[MESH_R_MAX])
{
	uint64_t before[MESH_R_MAX], after[MESH_R_MAX];
	struct pollfd pfd;
	int fds[2], status;
	ssize_t n = 0;
	pid_t pid;

	cr_assert_eq(dp_counters(dp, before, MESH_R_MAX), MESH_R_MAX);
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		struct outcome mine = { 0 };

		close(fds[0]);
		child_run(dp, sc, &mine);
		if (write(fds[1], &mine, sizeof(mine)) != sizeof(mine))
			_exit(2);
		_exit(0);
	}
	close(fds[1]);
	pfd = (struct pollfd){ .fd = fds[0], .events = POLLIN };
	if (poll(&pfd, 1, CHILD_TIMEOUT_MS) == 1)
		n = read(fds[0], o, sizeof(*o));
	close(fds[0]);
	if (n != sizeof(*o))
		kill(pid, SIGKILL);	/* our own child, hung or dead */
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(n, (ssize_t)sizeof(*o), "the child reported nothing (status %#x)", status);
	cr_assert_str_empty(o->failed, "child: %s", o->failed);
	cr_assert_eq(dp_counters(dp, after, MESH_R_MAX), MESH_R_MAX);
	for (int i = 0; i < MESH_R_MAX; i++)
		delta[i] = after[i] - before[i];
}

static void expect_counts(const uint64_t delta[MESH_R_MAX], const uint64_t want[MESH_R_MAX],
			  const char *what)
{
	for (int i = 0; i < MESH_R_MAX; i++)
		cr_expect_eq(delta[i], want[i], "%s: counter %s moved by %llu, expected %llu", what,
			     dp_counter_name((size_t)i), (unsigned long long)delta[i],
			     (unsigned long long)want[i]);
}

static void expect_addr(const struct addr *got, const char *want, const char *what)
{
	char g[ADDR_STRLEN];
	struct addr w;

	cr_assert_eq(addr_parse_ip_port(want, &w), 0);
	cr_expect(addr_equal(got, &w), "%s: got %s, expected %s", what,
		  addr_fmt(got, g, sizeof(g)), want);
}

static bool kernel_no_answer(int err)
{
	/* No conntrack entry (ENOENT) or no conntrack at all (ENOPROTOOPT). */
	return err == ENOENT || err == ENOPROTOOPT;
}

static const struct dp_pod test_pod = {
	.pod_id = 77,
	.proxy_port = FX_PROXY_PORT,
	.capture = true,
};

/* A redirected connection: proxy accepts it, the original is answered once,
 * and getpeername() on the client shows the address it dialled (the VIP), not
 * the proxy's.
 */
static void expect_redirected(struct dp *dp, const struct scenario *sc, enum listener proxy,
			      const char *orig, socklen_t orig_len)
{
	uint64_t delta[MESH_R_MAX], want[MESH_R_MAX] = { 0 };
	struct outcome o = { 0 };

	run_scenario(dp, sc, &o, delta);
	cr_expect_eq(o.accepted_by, (int)proxy, "%s: accepted by %s, not the proxy", sc->dst,
		     o.accepted_by >= 0 ? listener_addr[o.accepted_by] : "nobody");
	expect_addr(&o.peer, sc->dst, "getpeername() of the redirected client");
	cr_expect_eq(o.orig_errno, 0, "SO_ORIGINAL_DST: %s", strerror(o.orig_errno));
	expect_addr(&o.orig, orig, "SO_ORIGINAL_DST");
	cr_expect_eq(o.orig_len, orig_len);
	cr_expect(kernel_no_answer(o.again_errno),
		  "answered entries are deleted; the second ask gets the kernel's: %s",
		  strerror(o.again_errno));
	want[MESH_R_REDIRECTED] = 1;
	want[MESH_R_ORIG_RECORDED] = 1;
	want[MESH_R_ORIG_ANSWERED] = 1;
	want[MESH_R_ORIG_MISS] = 1;
	want[MESH_R_PEER_REWRITTEN] = 1;
	expect_counts(delta, want, sc->dst);
}

/* A connection left alone: the real server gets it, nothing is recorded. */
static void expect_left_alone(const struct scenario *sc, enum listener real, enum mesh_reason why)
{
	uint64_t delta[MESH_R_MAX], want[MESH_R_MAX] = { 0 };
	struct outcome o = { 0 };

	run_scenario(fx.dp, sc, &o, delta);
	expect_addr(&o.peer, sc->dst, "client's peer");
	want[why] = 1;
	if (sc->type == SOCK_STREAM) {
		cr_expect_eq(o.accepted_by, (int)real, "%s: accepted by %s", sc->dst,
			     o.accepted_by >= 0 ? listener_addr[o.accepted_by] : "nobody");
		cr_expect(kernel_no_answer(o.orig_errno), "not ours: the kernel answers, got %s",
			  strerror(o.orig_errno));
		want[MESH_R_ORIG_MISS] = 2;
	}
	expect_counts(delta, want, sc->dst);
}

#define E2E .init = fx_setup_dp, .fini = fx_teardown, .timeout = 60

Test(redirect, redirects_ipv4, E2E)
{
	struct scenario sc = { .enroll = true, .pod = test_pod, .family = AF_INET,
			       .type = SOCK_STREAM, .dst = REAL_V4 ":80" };

	expect_redirected(fx.dp, &sc, L_PROXY4, REAL_V4 ":80",
			  sizeof(struct sockaddr_in));
}

Test(redirect, redirects_ipv6, E2E)
{
	struct scenario sc = { .enroll = true, .pod = test_pod, .family = AF_INET6,
			       .type = SOCK_STREAM, .dst = "[" REAL_V6 "]:80" };

	expect_redirected(fx.dp, &sc, L_PROXY6, "[" REAL_V6 "]:80",
			  sizeof(struct sockaddr_in6));
}

Test(redirect, redirects_ipv4_mapped_from_dual_stack_socket, E2E)
{
	struct scenario sc = { .enroll = true, .pod = test_pod, .family = AF_INET6,
			       .type = SOCK_STREAM, .dst = "[::ffff:" REAL_V4 "]:80" };

	/* connect4 never runs for it; connect6 keeps it mapped, and the proxy's
	 * IPv4 listener asks with SOL_IP.
	 */
	expect_redirected(fx.dp, &sc, L_PROXY4, REAL_V4 ":80",
			  sizeof(struct sockaddr_in));
}

Test(redirect, answers_into_a_buffer_larger_than_a_page, E2E)
{
	uint64_t delta[MESH_R_MAX], want[MESH_R_MAX] = { 0 };
	struct scenario sc = { .enroll = true, .pod = test_pod, .family = AF_INET,
			       .type = SOCK_STREAM, .dst = REAL_V4 ":8080",
			       .optlen = (socklen_t)(3 * sysconf(_SC_PAGESIZE)),
			       .unrelated_large = true };
	struct outcome o = { 0 };

	run_scenario(fx.dp, &sc, &o, delta);
	cr_expect_eq(o.accepted_by, L_PROXY4);
	cr_expect_eq(o.orig_errno, 0, "SO_ORIGINAL_DST with a 3-page buffer: %s",
		     strerror(o.orig_errno));
	expect_addr(&o.orig, REAL_V4 ":8080", "SO_ORIGINAL_DST");
	cr_expect_eq(o.orig_len, sizeof(struct sockaddr_in));
	cr_expect_eq(o.tcp_info_errno, 0, "TCP_INFO, 2 pages: %s", strerror(o.tcp_info_errno));
	/* The kernel's tcp_info outgrows glibc's; it returns its own size. */
	cr_expect(o.tcp_info_len >= sizeof(struct tcp_info) &&
		  o.tcp_info_len < (socklen_t)sysconf(_SC_PAGESIZE),
		  "TCP_INFO returned %u bytes", o.tcp_info_len);
	cr_expect_eq(o.ip_tos_errno, 0, "IP_TOS, 2 pages: %s", strerror(o.ip_tos_errno));
	cr_expect_eq(o.ip_tos_len, sizeof(int));
	cr_expect(kernel_no_answer(o.client_orig_errno),
		  "SO_ORIGINAL_DST on a socket that is not the proxy's, 2 pages: %s",
		  strerror(o.client_orig_errno));
	want[MESH_R_REDIRECTED] = 1;
	want[MESH_R_ORIG_RECORDED] = 1;
	want[MESH_R_ORIG_ANSWERED] = 1;
	want[MESH_R_ORIG_MISS] = 2;
	want[MESH_R_PEER_REWRITTEN] = 1;
	expect_counts(delta, want, sc.dst);
}

Test(redirect, redirects_after_takeover, E2E)
{
	struct scenario sc = { .enroll = true, .pod = test_pod, .family = AF_INET,
			       .type = SOCK_STREAM, .dst = REAL_V4 ":80" };
	struct dp *second = NULL;

	cr_assert_eq(dp_open(&second, &fx.opts), 0);
	dp_close(fx.dp);
	fx.dp = second;
	expect_redirected(fx.dp, &sc, L_PROXY4, REAL_V4 ":80",
			  sizeof(struct sockaddr_in));
}

/* The agent's sockets are those of its cgroup and below (a threaded or
 * nested sub-cgroup of it too); nothing else is, whatever the mark.
 */
Test(redirect, agent_cgroup_is_not_redirected, E2E)
{
	struct scenario sc = { .enroll = true, .pod = test_pod, .cgroup = fx.agent_cgroup,
			       .family = AF_INET, .type = SOCK_STREAM, .dst = REAL_V4 ":80" };
	char below[2 * FX_PATH_MAX];

	expect_left_alone(&sc, L_REAL4, MESH_R_AGENT_CGROUP);
	sc.family = AF_INET6;
	sc.dst = "[" REAL_V6 "]:80";
	expect_left_alone(&sc, L_REAL6, MESH_R_AGENT_CGROUP);
	snprintf(below, sizeof(below), "%s/worker", fx.agent_cgroup);
	cr_assert_eq(mkdir(below, 0755), 0, "mkdir %s: %s", below, strerror(errno));
	sc.cgroup = below;
	sc.family = AF_INET;
	sc.dst = REAL_V4 ":80";
	expect_left_alone(&sc, L_REAL4, MESH_R_AGENT_CGROUP);
	cr_assert_eq(tcg_remove(below), 0);
}

/* What a pod holding CAP_NET_RAW can do: set the agent's marks. Its sockets
 * are captured all the same.
 */
Test(redirect, agent_marks_on_a_pod_socket_are_redirected, E2E)
{
	struct scenario sc = { .enroll = true, .pod = test_pod, .mark = FX_MARK,
			       .family = AF_INET, .type = SOCK_STREAM, .dst = REAL_V4 ":80" };

	expect_redirected(fx.dp, &sc, L_PROXY4, REAL_V4 ":80", sizeof(struct sockaddr_in));
	sc.mark = FX_INBOUND_MARK;
	expect_redirected(fx.dp, &sc, L_PROXY4, REAL_V4 ":80", sizeof(struct sockaddr_in));
	sc.family = AF_INET6;
	sc.dst = "[" REAL_V6 "]:80";
	expect_redirected(fx.dp, &sc, L_PROXY6, "[" REAL_V6 "]:80", sizeof(struct sockaddr_in6));
}

/* A cgroup that is not the agent's but sits at its depth (a sibling) is a
 * pod's like any other.
 */
Test(redirect, a_sibling_of_the_agents_cgroup_is_redirected, E2E)
{
	struct scenario sc = { .enroll = true, .pod = test_pod, .family = AF_INET,
			       .type = SOCK_STREAM, .dst = REAL_V4 ":80" };
	char sibling[2 * FX_PATH_MAX];

	snprintf(sibling, sizeof(sibling), "%s/pod", fx.cgroup);
	cr_assert_eq(mkdir(sibling, 0755), 0, "mkdir %s: %s", sibling, strerror(errno));
	sc.cgroup = sibling;
	sc.mark = FX_MARK;
	expect_redirected(fx.dp, &sc, L_PROXY4, REAL_V4 ":80", sizeof(struct sockaddr_in));
	cr_assert_eq(tcg_remove(sibling), 0);
}

/* Redirected, disconnected with AF_UNSPEC, connected again: the second
 * connect is decided afresh. Elsewhere captured again; to a destination left
 * alone, it is left alone and does not inherit the first one's original
 * destination (getpeername shows where it went, nothing is recorded for it).
 */
Test(redirect, af_unspec_reconnect_is_decided_afresh, E2E)
{
	uint64_t delta[MESH_R_MAX], want[MESH_R_MAX] = { 0 };
	struct scenario sc = { .enroll = true, .pod = test_pod, .family = AF_INET,
			       .type = SOCK_STREAM, .first_dst = REAL_V4 ":80",
			       .dst = REAL_V4 ":8080" };
	struct outcome o = { 0 };

	run_scenario(fx.dp, &sc, &o, delta);
	cr_expect_eq(o.accepted_by, L_PROXY4);
	expect_addr(&o.peer, REAL_V4 ":8080", "getpeername() after the second connect");
	cr_expect_eq(o.orig_errno, 0, "SO_ORIGINAL_DST: %s", strerror(o.orig_errno));
	expect_addr(&o.orig, REAL_V4 ":8080", "SO_ORIGINAL_DST of the second connection");
	want[MESH_R_REDIRECTED] = 2;
	want[MESH_R_ORIG_RECORDED] = 2;
	want[MESH_R_ORIG_ANSWERED] = 1;
	want[MESH_R_ORIG_MISS] = 1;
	want[MESH_R_PEER_REWRITTEN] = 1;
	expect_counts(delta, want, "redirected twice");

	sc.dst = "127.0.0.1:80";
	memset(want, 0, sizeof(want));
	run_scenario(fx.dp, &sc, &o, delta);
	cr_expect_eq(o.accepted_by, L_LO4);
	expect_addr(&o.peer, "127.0.0.1:80", "getpeername() is not the first destination");
	cr_expect(kernel_no_answer(o.orig_errno), "nothing recorded for it: %s",
		  strerror(o.orig_errno));
	want[MESH_R_REDIRECTED] = 1;
	want[MESH_R_ORIG_RECORDED] = 1;
	want[MESH_R_LOOPBACK] = 1;
	want[MESH_R_ORIG_MISS] = 2;
	expect_counts(delta, want, "redirected, then loopback");
}

Test(redirect, loopback_is_not_redirected, E2E)
{
	struct scenario sc = { .enroll = true, .pod = test_pod, .type = SOCK_STREAM };

	sc.family = AF_INET;
	sc.dst = "127.0.0.1:80";
	expect_left_alone(&sc, L_LO4, MESH_R_LOOPBACK);
	sc.family = AF_INET6;
	sc.dst = "[::1]:80";
	expect_left_alone(&sc, L_LO6, MESH_R_LOOPBACK);
	sc.dst = "[::ffff:127.0.0.1]:80";
	expect_left_alone(&sc, L_LO4, MESH_R_LOOPBACK);
}

Test(redirect, excluded_port_is_not_redirected, E2E)
{
	struct scenario sc = { .enroll = true, .pod = test_pod, .family = AF_INET,
			       .type = SOCK_STREAM, .dst = REAL_V4 ":80" };

	sc.pod.excl_ports[3] = 80;
	expect_left_alone(&sc, L_REAL4, MESH_R_EXCL_PORT);
}

Test(redirect, excluded_cidr_is_not_redirected, E2E)
{
	struct scenario sc = { .enroll = true, .pod = test_pod, .type = SOCK_STREAM };

	sc.pod.excl_cidrs[0] = fx_cidr("198.18.0.0/24");
	sc.pod.excl_cidrs[5] = fx_cidr("fd57:6566:7400::/48");
	sc.family = AF_INET;
	sc.dst = REAL_V4 ":80";
	expect_left_alone(&sc, L_REAL4, MESH_R_EXCL_CIDR);
	sc.family = AF_INET6;
	sc.dst = "[" REAL_V6 "]:80";
	expect_left_alone(&sc, L_REAL6, MESH_R_EXCL_CIDR);
	sc.dst = "[::ffff:" REAL_V4 "]:80";
	expect_left_alone(&sc, L_REAL4, MESH_R_EXCL_CIDR);
}

Test(redirect, netns_not_enrolled_is_not_redirected, E2E)
{
	struct scenario sc = { .enroll = false, .family = AF_INET, .type = SOCK_STREAM,
			       .dst = REAL_V4 ":80" };

	expect_left_alone(&sc, L_REAL4, MESH_R_NOT_ENROLLED);
}

Test(redirect, pod_without_capture_is_not_redirected, E2E)
{
	struct scenario sc = { .enroll = true, .pod = test_pod, .family = AF_INET,
			       .type = SOCK_STREAM, .dst = REAL_V4 ":80" };

	sc.pod.capture = false;
	expect_left_alone(&sc, L_REAL4, MESH_R_NOT_ENROLLED);
}

Test(redirect, udp_is_not_redirected, E2E)
{
	struct scenario sc = { .enroll = true, .pod = test_pod, .family = AF_INET,
			       .type = SOCK_DGRAM, .dst = REAL_V4 ":53" };

	expect_left_alone(&sc, L_COUNT, MESH_R_NOT_TCP);
}
