// SPDX-License-Identifier: GPL-2.0-only
/* DNS capture in the redirect programs, without the agent: a child joins the
 * test cgroup in a netns of its own (lo with a "resolver" address), the
 * datapath enrols it with a DNS port, and a connected UDP socket (glibc's
 * way), an unconnected sendto() and a TCP connect() to RESOLVER:53 reach the
 * responder's sockets on 127.53.X.Y instead; the slot X.Y names the resolver
 * in mesh_dns_up, and the reply from there reads as RESOLVER:53 to the
 * client. A pod without a DNS port reaches the resolver itself. An IPv6
 * resolver asked by a dual-stack socket's connect() goes to 127.54.X.Y (its
 * slot in mesh_dns_up6) and the reply reads as the IPv6 resolver; an
 * IPV6_V6ONLY socket and an unconnected sendto() reach it directly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/types.h>

#include <criterion/criterion.h>

#include "abi.h"
#include "datapath/dp.h"

#include "../helpers/cgroup.h"
#include "fixture.h"

#define RESOLVER "198.18.0.53"
#define DNS_PORT 15053
#define CHILD_TIMEOUT_MS 10000

/* What the child saw, for each of its three clients. */
struct dns_outcome {
	char failed[200];
	uint32_t local[3];	/* where the query arrived (network order) */
	uint32_t from[3];	/* the reply's source as recvfrom() showed it */
	uint16_t from_port[3];	/* host order */
	bool at_resolver;	/* the uncaptured case: the resolver's socket got it */
};

#define check(o, cond, ...)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			snprintf((o)->failed, sizeof((o)->failed), __VA_ARGS__);                   \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static int udp_bound(uint32_t ip, uint16_t port, bool pktinfo)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = ip };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd == -1)
		return -1;
	if ((pktinfo && setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Receive a datagram on the responder @fd, note the address it arrived on in
 * *@local and answer "a" from there, as the agent's responder does.
 */
static int respond(int fd, uint32_t *local)
{
	char buf[64], cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
	struct sockaddr_in peer;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_name = &peer, .msg_namelen = sizeof(peer), .msg_iov = &iov,
			     .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct in_pktinfo pi = { 0 };
	struct cmsghdr *c;

	if (poll(&p, 1, 2000) != 1 || recvmsg(fd, &mh, 0) < 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO)
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
	*local = pi.ipi_addr.s_addr;
	pi.ipi_spec_dst = pi.ipi_addr;
	pi.ipi_ifindex = 0;
	buf[0] = 'a';
	iov.iov_len = 1;
	mh.msg_namelen = sizeof(peer);
	mh.msg_controllen = CMSG_SPACE(sizeof(pi));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = IPPROTO_IP;
	c->cmsg_type = IP_PKTINFO;
	c->cmsg_len = CMSG_LEN(sizeof(pi));
	memcpy(CMSG_DATA(c), &pi, sizeof(pi));
	return sendmsg(fd, &mh, 0) == 1 ? 0 : -1;
}

static void child_run(struct dp *dp, uint16_t dns_port, struct dns_outcome *o)
{
	struct sockaddr_in res = { .sin_family = AF_INET, .sin_port = htons(53) };
	struct sockaddr_in from, local;
	struct dp_pod pod = { .pod_id = 5, .proxy_port = FX_PROXY_PORT, .capture = true,
			      .dns_port = dns_port };
	struct ifreq ifr = { .ifr_name = "lo" };
	socklen_t len;
	uint64_t cookie;
	int resp, real, tl, c, a, s;
	char buf[8];

	inet_pton(AF_INET, RESOLVER, &res.sin_addr);
	check(o, unshare(CLONE_NEWNET) == 0, "unshare");
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	check(o, s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0, "lo flags");
	ifr.ifr_flags |= IFF_UP;
	check(o, ioctl(s, SIOCSIFFLAGS, &ifr) == 0, "lo up");
	close(s);
	check(o, system("ip addr add " RESOLVER "/32 dev lo") == 0, "add " RESOLVER);
	check(o, tcg_join(fx.cgroup, 0) == 0, "join the test cgroup");
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	len = sizeof(cookie);
	check(o, getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) == 0, "cookie");
	close(s);
	check(o, dp_pod_upsert(dp, cookie, &pod) == 0, "enrol");

	resp = udp_bound(htonl(INADDR_ANY), DNS_PORT, true);
	real = udp_bound(res.sin_addr.s_addr, 53, false);
	tl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	local = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(DNS_PORT) };
	check(o, resp >= 0 && real >= 0 && tl >= 0 &&
			 bind(tl, (struct sockaddr *)&local, sizeof(local)) == 0 && listen(tl, 4) == 0,
	      "the responder's and the resolver's sockets");

	if (!dns_port) {
		struct pollfd p = { .fd = real, .events = POLLIN };

		c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		check(o, sendto(c, "q", 1, 0, (struct sockaddr *)&res, sizeof(res)) == 1, "sendto");
		o->at_resolver = poll(&p, 1, 2000) == 1;
		return;
	}
	/* 0: glibc's connected UDP socket; 1: sendto() without connect(). */
	for (int i = 0; i < 2; i++) {
		c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		check(o, c >= 0, "client socket");
		if (i == 0)
			check(o, connect(c, (struct sockaddr *)&res, sizeof(res)) == 0 &&
					 send(c, "q", 1, 0) == 1,
			      "connect and send");
		else
			check(o, sendto(c, "q", 1, 0, (struct sockaddr *)&res, sizeof(res)) == 1,
			      "sendto");
		check(o, respond(resp, &o->local[i]) == 0, "client %d: the responder got nothing",
		      i);
		len = sizeof(from);
		check(o, recvfrom(c, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len) == 1,
		      "client %d: no reply", i);
		o->from[i] = from.sin_addr.s_addr;
		o->from_port[i] = ntohs(from.sin_port);
		close(c);
	}
	/* 2: TCP, as after a truncated answer. */
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	check(o, c >= 0 && connect(c, (struct sockaddr *)&res, sizeof(res)) == 0, "TCP connect");
	a = accept4(tl, NULL, NULL, SOCK_CLOEXEC);
	len = sizeof(local);
	check(o, a >= 0 && getsockname(a, (struct sockaddr *)&local, &len) == 0,
	      "the responder's listener got nothing");
	o->local[2] = local.sin_addr.s_addr;
}

/* Run @child (its outcome @o of @size bytes, starting with its "failed"
 * message) in a forked child and collect the decision counters it moved.
 */
static void run_child(void (*child)(struct dp *dp, uint16_t dns_port, void *o), uint16_t dns_port,
		      void *o, size_t size, uint64_t delta[MESH_R_MAX])
{
	uint64_t before[MESH_R_MAX], after[MESH_R_MAX];
	struct pollfd pfd;
	int fds[2], status;
	ssize_t n = 0;
	pid_t pid;

	cr_assert_eq(dp_counters(fx.dp, before, MESH_R_MAX), MESH_R_MAX);
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		memset(o, 0, size);
		child(fx.dp, dns_port, o);
		_exit(write(fds[1], o, size) == (ssize_t)size ? 0 : 2);
	}
	close(fds[1]);
	pfd = (struct pollfd){ .fd = fds[0], .events = POLLIN };
	if (poll(&pfd, 1, CHILD_TIMEOUT_MS) == 1)
		n = read(fds[0], o, size);
	close(fds[0]);
	if (n != (ssize_t)size)
		kill(pid, SIGKILL);	/* our own child, hung */
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(n, (ssize_t)size, "the child reported nothing (status %#x)", status);
	cr_assert_str_empty((const char *)o, "child: %s", (const char *)o);
	cr_assert_eq(dp_counters(fx.dp, after, MESH_R_MAX), MESH_R_MAX);
	for (int i = 0; i < MESH_R_MAX; i++)
		delta[i] = after[i] - before[i];
}

static void child_run4(struct dp *dp, uint16_t dns_port, void *o)
{
	child_run(dp, dns_port, o);
}

static void run(uint16_t dns_port, struct dns_outcome *o, uint64_t delta[MESH_R_MAX])
{
	run_child(child_run4, dns_port, o, sizeof(*o), delta);
}

#define E2E .init = fx_setup_dp, .fini = fx_teardown, .timeout = 60

Test(dns, queries_reach_the_responder_and_replies_read_as_the_resolver, E2E)
{
	uint64_t delta[MESH_R_MAX];
	struct dns_outcome o = { 0 };
	uint32_t resolver, slot, held = 0;

	inet_pton(AF_INET, RESOLVER, &resolver);
	run(DNS_PORT, &o, delta);
	slot = ntohl(o.local[0]) & ~MESH_DNS_NET_MASK;
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(ntohl(o.local[i]) & MESH_DNS_NET_MASK, MESH_DNS_NET,
			     "query %d arrived on %#x, not in 127.53/16", i, ntohl(o.local[i]));
		cr_expect_eq(o.local[i], o.local[0], "one resolver, one slot");
	}
	cr_assert_eq(dp_dns_resolver(fx.dp, slot, &held), 0);
	cr_expect_eq(held, resolver, "slot %u holds %#x", slot, ntohl(held));
	for (int i = 0; i < 2; i++) {
		cr_expect_eq(o.from[i], resolver, "client %d saw the reply from %#x", i,
			     ntohl(o.from[i]));
		cr_expect_eq(o.from_port[i], 53, "client %d saw port %u", i, o.from_port[i]);
	}
	cr_expect_eq(delta[MESH_R_DNS_CAPTURED], 3);
	cr_expect_eq(delta[MESH_R_DNS_REPLY], 2);
	cr_expect_eq(delta[MESH_R_REDIRECTED], 0, "the TCP query went past the proxy");
}

Test(dns, a_pod_without_a_dns_port_reaches_its_resolver, E2E)
{
	uint64_t delta[MESH_R_MAX];
	struct dns_outcome o = { 0 };

	run(0, &o, delta);
	cr_expect(o.at_resolver, "the query never reached " RESOLVER);
	cr_expect_eq(delta[MESH_R_DNS_CAPTURED], 0);
}

/* ---- IPv6 resolvers */

#define RESOLVER6 "fd00:198::53"

/* What the child saw of its IPv6 clients: 0, a dual-stack connected UDP
 * socket (glibc's way); 1, a dual-stack TCP connect(); 2, an IPV6_V6ONLY
 * connected UDP socket; 3, an unconnected sendto().
 */
struct dns6_outcome {
	char failed[200];
	uint32_t local[2];		/* where queries 0 and 1 arrived (network order) */
	struct in6_addr from;		/* the reply's source as client 0 saw it */
	uint16_t from_port;		/* host order */
	bool at_resolver[2];		/* clients 2 and 3 reached the resolver itself */
};

static int udp6_at_resolver(void)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(53) };
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET6, RESOLVER6, &sa.sin6_addr);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

/* A datagram for the resolver's own socket @real within a second (drained). */
/* Only queries that must arrive are waited for, so a generous bound costs
 * nothing when they do and survives a loaded machine.
 */
static bool reached(int real)
{
	struct pollfd p = { .fd = real, .events = POLLIN };
	char buf[8];

	if (poll(&p, 1, 5000) != 1)
		return false;
	return recv(real, buf, sizeof(buf), 0) == 1;
}

static void child_run6(struct dp *dp, uint16_t dns_port, void *out)
{
	struct dns6_outcome *o = out;
	struct sockaddr_in6 res = { .sin6_family = AF_INET6, .sin6_port = htons(53) }, from;
	struct sockaddr_in local;
	struct dp_pod pod = { .pod_id = 6, .proxy_port = FX_PROXY_PORT, .capture = true,
			      .dns_port = dns_port };
	struct ifreq ifr = { .ifr_name = "lo" };
	socklen_t len;
	uint64_t cookie;
	int resp, real, tl, c, a, s, one = 1;
	char buf[8];

	inet_pton(AF_INET6, RESOLVER6, &res.sin6_addr);
	check(o, unshare(CLONE_NEWNET) == 0, "unshare");
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	check(o, s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0, "lo flags");
	ifr.ifr_flags |= IFF_UP;
	check(o, ioctl(s, SIOCSIFFLAGS, &ifr) == 0, "lo up");
	close(s);
	check(o, system("ip addr add " RESOLVER6 "/128 dev lo nodad") == 0, "add " RESOLVER6);
	check(o, tcg_join(fx.cgroup, 0) == 0, "join the test cgroup");
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	len = sizeof(cookie);
	check(o, getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) == 0, "cookie");
	close(s);
	check(o, dp_pod_upsert(dp, cookie, &pod) == 0, "enrol");

	resp = udp_bound(htonl(INADDR_ANY), DNS_PORT, true);
	real = udp6_at_resolver();
	tl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	local = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(DNS_PORT) };
	check(o, resp >= 0 && real >= 0 && tl >= 0 &&
			 bind(tl, (struct sockaddr *)&local, sizeof(local)) == 0 && listen(tl, 4) == 0,
	      "the responder's and the resolver's sockets");

	/* 0: dual-stack, connected: to the responder, the reply as RESOLVER6. */
	c = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	check(o, c >= 0 && connect(c, (struct sockaddr *)&res, sizeof(res)) == 0 &&
			 send(c, "q", 1, 0) == 1,
	      "client 0: connect and send: %s", strerror(errno));
	check(o, respond(resp, &o->local[0]) == 0, "client 0: the responder got nothing");
	len = sizeof(from);
	check(o, recvfrom(c, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len) == 1,
	      "client 0: no reply");
	o->from = from.sin6_addr;
	o->from_port = ntohs(from.sin6_port);
	close(c);

	/* 1: TCP, as after a truncated answer. */
	c = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	check(o, c >= 0 && connect(c, (struct sockaddr *)&res, sizeof(res)) == 0,
	      "client 1: TCP connect: %s", strerror(errno));
	a = accept4(tl, NULL, NULL, SOCK_CLOEXEC);
	len = sizeof(local);
	check(o, a >= 0 && getsockname(a, (struct sockaddr *)&local, &len) == 0,
	      "client 1: the responder's listener got nothing");
	o->local[1] = local.sin_addr.s_addr;
	close(a);
	close(c);

	/* 2: IPV6_V6ONLY cannot be sent to an IPv4 responder: left alone. */
	c = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	check(o, c >= 0 && setsockopt(c, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == 0 &&
			 connect(c, (struct sockaddr *)&res, sizeof(res)) == 0 &&
			 send(c, "q", 1, 0) == 1,
	      "client 2: connect and send: %s", strerror(errno));
	o->at_resolver[0] = reached(real);
	close(c);

	/* 3: unconnected sendto(): the kernel takes no mapped rewrite there. */
	c = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	check(o, c >= 0 && sendto(c, "q", 1, 0, (struct sockaddr *)&res, sizeof(res)) == 1,
	      "client 3: sendto: %s", strerror(errno));
	o->at_resolver[1] = reached(real);
	close(c);
}

Test(dns, ipv6_resolvers_of_dual_stack_connects_reach_the_responder, E2E)
{
	uint64_t delta[MESH_R_MAX];
	struct dns6_outcome o;
	struct in6_addr resolver, held;
	char got[INET6_ADDRSTRLEN];
	uint32_t slot;

	inet_pton(AF_INET6, RESOLVER6, &resolver);
	run_child(child_run6, DNS_PORT, &o, sizeof(o), delta);
	for (int i = 0; i < 2; i++)
		cr_expect_eq(ntohl(o.local[i]) & MESH_DNS_NET_MASK, MESH_DNS_NET6,
			     "query %d arrived on %#x, not in 127.54/16", i, ntohl(o.local[i]));
	cr_expect_eq(o.local[1], o.local[0], "one resolver, one slot");
	slot = ntohl(o.local[0]) & ~MESH_DNS_NET_MASK;
	cr_assert_eq(dp_dns_resolver6(fx.dp, slot, &held), 0);
	cr_expect(!memcmp(&held, &resolver, sizeof(held)), "slot %u holds another address", slot);
	inet_ntop(AF_INET6, &o.from, got, sizeof(got));
	cr_expect(!memcmp(&o.from, &resolver, sizeof(resolver)), "the reply read as from %s", got);
	cr_expect_eq(o.from_port, 53);
	cr_expect(o.at_resolver[0], "the IPV6_V6ONLY socket's query did not reach " RESOLVER6);
	cr_expect(o.at_resolver[1], "the sendto() query did not reach " RESOLVER6);
	cr_expect_eq(delta[MESH_R_DNS_CAPTURED], 2);
	cr_expect_eq(delta[MESH_R_DNS_REPLY], 1);
	cr_expect_eq(delta[MESH_R_DNS_IPV6], 2, "the two left alone are counted");
	cr_expect_eq(delta[MESH_R_REDIRECTED], 0, "the TCP query went past the proxy");
}
