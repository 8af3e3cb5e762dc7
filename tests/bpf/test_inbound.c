// SPDX-License-Identifier: GPL-2.0-only
/* Inbound capture by sk_lookup end to end, without the agent: a pod netns
 * "p" and a peer netns "c" joined by a veth pair (198.18.5.0/24,
 * fd57:6566:7405::/64), the datapath attached to "p" with dp_inbound_attach,
 * and real connections from the peer landing on the inbound listener (with
 * the original destination as the accepted socket's own address) or on the
 * application's, with every decision counted. Also the pins: restart
 * adoption, detach, cleanup, a stale pin.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>

#include <bpf/bpf.h>
#include <criterion/criterion.h>

#include "abi.h"
#include "addr.h"
#include "datapath/dp.h"

#include "../helpers/cgroup.h"
#include "../helpers/sock.h"
#include "../helpers/tns.h"
#include "fixture.h"

#define POD_V4 "198.18.5.2"
#define PEER_V4 "198.18.5.1"
#define POD_V6 "fd57:6566:7405::2"
#define PEER_V6 "fd57:6566:7405::1"
#define APP_PORT "8080"
#define EXCL_PORT "9090"
#define INBOUND_PORT 15006
#define WAIT_MS 2000

/* The listeners of the pod netns: the agent's and the application's. */
enum lsn { IN4, IN6, APP4, APP6, EXCL4, PROXY4, N_LSN };
static const char *const lsn_addr[N_LSN] = {
	"0.0.0.0:15006", "[::]:15006", "0.0.0.0:" APP_PORT, "[::]:" APP_PORT,
	"0.0.0.0:" EXCL_PORT, "0.0.0.0:15001",
};

static struct {
	int nsfd;		/* of "p" */
	uint64_t cookie;	/* of "p" */
	int lfd[N_LSN];
} pod;

static const struct dp_pod pod_entry = {
	.pod_id = 5,
	.proxy_port = FX_PROXY_PORT,
	.capture = true,
	.inbound_port = INBOUND_PORT,
	.excl_in_ports = { [2] = 9090 },
};

/* A listener in netns @ns (non-blocking; IPv6 ones V6ONLY). -1 on failure. */
static int listen_in(const char *ns, const char *where, bool reuseport)
{
	struct sockaddr_storage ss;
	struct addr a;
	socklen_t len;
	int fd, one = 1;

	if (addr_parse_ip_port(where, &a) || tns_enter(ns))
		return -1;
	len = addr_to_sockaddr(&a, &ss);
	fd = socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	(void)tns_enter(NULL);
	if (fd == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1) ||
	    (a.family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 64) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static uint64_t netns_cookie_of(const char *ns)
{
	uint64_t cookie = 0;
	socklen_t len = sizeof(cookie);
	int fd;

	cr_assert_eq(tns_enter(ns), 0);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len), 0,
		     "SO_NETNS_COOKIE: %s", strerror(errno));
	close(fd);
	return cookie;
}

static int open_netns(const char *ns)
{
	char path[128];
	int fd = open(tns_path(ns, path, sizeof(path)), O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0, "open '%s': %s", path, strerror(errno));
	return fd;
}

/* Accept what arrived on @lfd[0..@n): returns the index of the one listener
 * that got a connection (-1 if none did) and the accepted fd in *@afd.
 */
static int accepted_on(const int *lfd, int n, int *afd)
{
	struct pollfd pfd[N_LSN + 2];
	int got = -1;

	*afd = -1;
	for (int i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = lfd[i], .events = POLLIN };
	/* The final ACK may still be in flight when connect() returns. */
	if (poll(pfd, (nfds_t)n, WAIT_MS) < 1)
		return -1;
	for (int i = 0; i < n; i++) {
		if (!(pfd[i].revents & POLLIN))
			continue;
		cr_expect_eq(got, -1, "two listeners got a connection");
		got = i;
	}
	if (got >= 0)
		*afd = accept4(lfd[got], NULL, NULL, SOCK_CLOEXEC);
	return got;
}

static struct addr sock_name(int fd, bool peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct addr a = { 0 };

	cr_assert_eq((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&ss, &len), 0);
	cr_assert_eq(addr_from_sockaddr(&a, (struct sockaddr *)&ss, len), 0);
	return a;
}

static void expect_addr(const struct addr *got, const struct addr *want, const char *what)
{
	char g[ADDR_STRLEN], w[ADDR_STRLEN];

	cr_expect(addr_equal(got, want), "%s: got %s, expected %s", what,
		  addr_fmt(got, g, sizeof(g)), addr_fmt(want, w, sizeof(w)));
}

static void counters(uint64_t out[MESH_R_MAX])
{
	cr_assert_eq(dp_counters(fx.dp, out, MESH_R_MAX), MESH_R_MAX);
}

/* Expect the counters @reasons[0..@n) to have moved by one each since
 * @before, and every other counter to have stood still.
 */
static void expect_moved(const uint64_t before[MESH_R_MAX], const char *what,
			 const enum mesh_reason *reasons, size_t n)
{
	uint64_t after[MESH_R_MAX];

	counters(after);
	for (int i = 0; i < MESH_R_MAX; i++) {
		uint64_t want = 0;

		for (size_t r = 0; r < n; r++)
			want += reasons[r] == (enum mesh_reason)i;
		cr_expect_eq(after[i] - before[i], want, "%s: counter %s moved by %llu", what,
			     dp_counter_name((size_t)i),
			     (unsigned long long)(after[i] - before[i]));
	}
}

/* Expect listener @want (enum lsn) of the pod to accept the connection of
 * client @cfd to @dst, as @dst itself (no NAT) and from the client's own
 * address. Closes @cfd.
 */
static void expect_accepted(int cfd, const char *dst, int want)
{
	struct addr d, local, peer_of_client;
	int afd, got;

	got = accepted_on(pod.lfd, N_LSN, &afd);
	cr_expect_eq(got, want, "%s: accepted by %s, expected %s", dst,
		     got >= 0 ? lsn_addr[got] : "nobody", lsn_addr[want]);
	if (afd >= 0) {
		cr_assert_eq(addr_parse_ip_port(dst, &d), 0);
		local = sock_name(afd, false);
		expect_addr(&local, &d, "getsockname() of the accepted socket");
		local = sock_name(cfd, false);
		peer_of_client = sock_name(afd, true);
		expect_addr(&peer_of_client, &local, "getpeername() of the accepted socket");
		close(afd);
	}
	close(cfd);
}

/* Connect from netns @from to @dst; expect listener @want to accept it and
 * the counter @reason (MESH_R_MAX: none) to move by one, no other.
 */
static void expect_lands(const char *from, const char *dst, int want, enum mesh_reason reason)
{
	uint64_t before[MESH_R_MAX];
	int cfd;

	counters(before);
	cfd = tsock_connect(from, dst, WAIT_MS);
	cr_assert_geq(cfd, 0, "connect from %s to %s: %s", from, dst, strerror(-cfd));
	expect_accepted(cfd, dst, want);
	expect_moved(before, dst, &reason, reason == MESH_R_MAX ? 0 : 1);
}

/* Until the IPv6 local route exists (addrconf adds it from a work queue),
 * connections to the new address go nowhere: wait for one to the app.
 */
static void wait_reachable(const char *dst)
{
	struct timespec nap = { .tv_nsec = 20 * 1000 * 1000 };

	for (int tries = 0; tries < 100; tries++) {
		int afd, cfd = tsock_connect("c", dst, 200);

		if (cfd >= 0) {
			(void)accepted_on(pod.lfd, N_LSN, &afd);
			if (afd >= 0)
				close(afd);
			close(cfd);
			return;
		}
		nanosleep(&nap, NULL);
	}
	cr_assert_fail("%s never became reachable from the peer netns", dst);
}

static void setup(void)
{
	char p[64], c[64];

	fx_setup_dp();
	tns_name("p", p, sizeof(p));
	tns_name("c", c, sizeof(c));
	cr_assert(tns_add("p") == 0 && tns_add("c") == 0 && tns_link("p", "c") == 0,
		  "test namespaces");
	cr_assert_eq(tns_sh("ip -n %s addr add " POD_V4 "/24 dev p-c && "
			    "ip -n %s addr add " POD_V6 "/64 dev p-c nodad && "
			    "ip -n %s addr add " PEER_V4 "/24 dev c-p && "
			    "ip -n %s addr add " PEER_V6 "/64 dev c-p nodad",
			    p, p, c, c),
		     0, "addresses");
	for (int i = 0; i < N_LSN; i++) {
		pod.lfd[i] = listen_in("p", lsn_addr[i], false);
		cr_assert_geq(pod.lfd[i], 0, "listen on %s in the pod", lsn_addr[i]);
	}
	wait_reachable(POD_V4 ":" APP_PORT);
	wait_reachable("[" POD_V6 "]:" APP_PORT);
	pod.nsfd = open_netns("p");
	pod.cookie = netns_cookie_of("p");
	cr_assert_eq(dp_pod_upsert(fx.dp, pod.cookie, &pod_entry), 0);
}

static void setup_attached(void)
{
	int err;

	setup();
	err = dp_inbound_attach(fx.dp, pod.nsfd, pod.cookie, pod.lfd[IN4], pod.lfd[IN6]);
	cr_assert_eq(err, 0, "dp_inbound_attach: %s", strerror(-err));
}

static void teardown(void)
{
	fx_teardown();
	tns_del_all();
}

static void pin_of(uint64_t cookie, char *buf, size_t len)
{
	snprintf(buf, len, "%s/inbound/%016llx", fx.pin_dir, (unsigned long long)cookie);
}

/* The pinned link's info; fails the test when there is no pin. */
static struct bpf_link_info pinned_link(uint64_t cookie)
{
	struct bpf_link_info info = { 0 };
	__u32 len = sizeof(info);
	char pin[PATH_MAX];
	int fd;

	pin_of(cookie, pin, sizeof(pin));
	fd = bpf_obj_get(pin);
	cr_assert_geq(fd, 0, "open pinned link '%s': %s", pin, strerror(errno));
	cr_assert_eq(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	close(fd);
	return info;
}

static bool pin_exists(uint64_t cookie)
{
	char pin[PATH_MAX];
	struct stat st;

	pin_of(cookie, pin, sizeof(pin));
	return stat(pin, &st) == 0;
}

#define INBOUND .init = setup_attached, .fini = teardown, .timeout = 60

Test(inbound, hands_ipv4_and_ipv6_to_the_inbound_listener, INBOUND)
{
	struct bpf_link_info info = pinned_link(pod.cookie);
	struct stat st;
	unsigned int n = 0;
	bool attached = false;

	cr_expect_eq(info.type, BPF_LINK_TYPE_NETNS);
	cr_expect_eq(info.netns.attach_type, BPF_SK_LOOKUP);
	cr_assert_eq(fstat(pod.nsfd, &st), 0);
	cr_expect_eq(info.netns.netns_ino, (__u32)st.st_ino, "attached to the pod's netns");
	cr_assert_eq(dp_inbound_state(fx.dp, pod.cookie, &attached, &n), 0);
	cr_expect(attached);
	cr_expect_eq(n, 2);

	expect_lands("c", POD_V4 ":" APP_PORT, IN4, MESH_R_IN_CAPTURED);
	expect_lands("c", "[" POD_V6 "]:" APP_PORT, IN6, MESH_R_IN_CAPTURED);
	/* Any port of the pod, listened on or not. */
	expect_lands("c", POD_V4 ":443", IN4, MESH_R_IN_CAPTURED);
}

Test(inbound, loopback_is_not_captured, INBOUND)
{
	/* The pod dialling its own address goes over lo, as the agent's
	 * transparent connection to the application does.
	 */
	expect_lands("p", POD_V4 ":" APP_PORT, APP4, MESH_R_IN_LOOPBACK);
	expect_lands("p", "127.0.0.1:" APP_PORT, APP4, MESH_R_IN_LOOPBACK);
	expect_lands("p", "[" POD_V6 "]:" APP_PORT, APP6, MESH_R_IN_LOOPBACK);
}

Test(inbound, excluded_inbound_port_is_not_captured, INBOUND)
{
	expect_lands("c", POD_V4 ":" EXCL_PORT, EXCL4, MESH_R_IN_EXCL_PORT);
}

Test(inbound, listener_ports_are_not_captured, INBOUND)
{
	expect_lands("c", POD_V4 ":15006", IN4, MESH_R_IN_PROXY_PORT);
	expect_lands("c", POD_V4 ":15001", PROXY4, MESH_R_IN_PROXY_PORT);
}

Test(inbound, pod_not_enrolled_is_not_captured, INBOUND)
{
	struct dp_pod off = pod_entry;

	cr_assert_eq(dp_pod_del(fx.dp, pod.cookie), 0);
	expect_lands("c", POD_V4 ":" APP_PORT, APP4, MESH_R_IN_OFF);
	off.inbound_port = 0;
	cr_assert_eq(dp_pod_upsert(fx.dp, pod.cookie, &off), 0);
	expect_lands("c", POD_V4 ":" APP_PORT, APP4, MESH_R_IN_OFF);
	/* Settings live in mesh_pods: turning capture back on needs no attach. */
	cr_assert_eq(dp_pod_upsert(fx.dp, pod.cookie, &pod_entry), 0);
	expect_lands("c", POD_V4 ":" APP_PORT, IN4, MESH_R_IN_CAPTURED);
}

/* No listener for a connection that must be captured (the agent is down, or
 * has none of that family): refused, never handed to the application behind
 * the mesh's back.
 */
Test(inbound, family_without_listener_fails_closed, INBOUND)
{
	uint64_t before[MESH_R_MAX];
	enum mesh_reason reason = MESH_R_IN_NO_LISTENER;
	unsigned int n = 0;
	bool attached = false;
	int afd, cfd;

	cr_assert_eq(dp_inbound_attach(fx.dp, pod.nsfd, pod.cookie, -1, pod.lfd[IN6]), 0);
	cr_assert_eq(dp_inbound_state(fx.dp, pod.cookie, &attached, &n), 0);
	cr_expect(attached);
	cr_expect_eq(n, 1);
	counters(before);
	cfd = tsock_connect("c", POD_V4 ":" APP_PORT, WAIT_MS);
	cr_expect_eq(cfd, -ECONNREFUSED, "a SYN with no listener to take it was not refused: %d",
		     cfd);
	if (cfd >= 0)
		close(cfd);
	cr_expect_lt(accepted_on(pod.lfd, N_LSN, &afd), 0, "somebody accepted it");
	expect_moved(before, "a SYN to no listener", &reason, 1);
	expect_lands("c", "[" POD_V6 "]:" APP_PORT, IN6, MESH_R_IN_CAPTURED);
}

Test(inbound, detach_gives_the_app_its_connections_back, INBOUND)
{
	unsigned int n = 9;
	bool attached = true;

	cr_assert_eq(dp_inbound_detach(fx.dp, pod.cookie), 0);
	cr_expect_not(pin_exists(pod.cookie));
	cr_assert_eq(dp_inbound_state(fx.dp, pod.cookie, &attached, &n), 0);
	cr_expect_not(attached);
	cr_expect_eq(n, 0);
	expect_lands("c", POD_V4 ":" APP_PORT, APP4, MESH_R_MAX);
	expect_lands("c", "[" POD_V6 "]:" APP_PORT, APP6, MESH_R_MAX);
	cr_expect_eq(dp_inbound_detach(fx.dp, pod.cookie), 0, "detaching twice is fine");
}

Test(inbound, restart_adopts_the_pinned_link, INBOUND)
{
	struct bpf_link_info before = pinned_link(pod.cookie), after;
	int err;

	/* The old agent dies: its listeners close (and leave the map). */
	dp_close(fx.dp);
	fx.dp = NULL;
	close(pod.lfd[IN4]);
	close(pod.lfd[IN6]);
	pod.lfd[IN4] = listen_in("p", lsn_addr[IN4], false);
	pod.lfd[IN6] = listen_in("p", lsn_addr[IN6], false);
	cr_assert(pod.lfd[IN4] >= 0 && pod.lfd[IN6] >= 0);

	cr_assert_eq(dp_open(&fx.dp, &fx.opts), 0);
	/* Between the two, the link stays and refuses: no bypass. */
	{
		uint64_t before_gap[MESH_R_MAX];
		enum mesh_reason reason = MESH_R_IN_NO_LISTENER;

		counters(before_gap);
		cr_expect_eq(tsock_connect("c", POD_V4 ":" APP_PORT, WAIT_MS), -ECONNREFUSED);
		expect_moved(before_gap, "the gap between two agents", &reason, 1);
	}
	err = dp_inbound_attach(fx.dp, pod.nsfd, pod.cookie, pod.lfd[IN4], pod.lfd[IN6]);
	cr_assert_eq(err, 0, "attach again: %s", strerror(-err));
	after = pinned_link(pod.cookie);
	cr_expect_eq(after.id, before.id, "the same link, adopted");
	cr_expect_neq(after.prog_id, before.prog_id, "running the new agent's program");
	expect_lands("c", POD_V4 ":" APP_PORT, IN4, MESH_R_IN_CAPTURED);
	expect_lands("c", "[" POD_V6 "]:" APP_PORT, IN6, MESH_R_IN_CAPTURED);
	cr_expect_eq(dp_inbound_attach(fx.dp, pod.nsfd, pod.cookie, pod.lfd[IN4], pod.lfd[IN6]),
		     0, "attaching twice is fine");
	cr_expect_eq(pinned_link(pod.cookie).id, before.id);
}

Test(inbound, cleanup_removes_the_inbound_pins, INBOUND)
{
	char dir[PATH_MAX];
	struct stat st;

	dp_close(fx.dp);
	fx.dp = NULL;
	cr_assert_eq(dp_cleanup(&fx.opts), 0);
	snprintf(dir, sizeof(dir), "%s/inbound", fx.pin_dir);
	cr_expect_eq(stat(dir, &st), -1, "'%s' is gone", dir);
	cr_assert_eq(dp_open(&fx.dp, &fx.opts), 0, "a fresh datapath to count with");
	expect_lands("c", POD_V4 ":" APP_PORT, APP4, MESH_R_MAX);
}

Test(inbound, reuseport_group_shares_the_connections, INBOUND)
{
	int group[2], counts[2] = { 0 }, afd, got, cfd;

	/* Replace the single IPv4 listener by a group of two. */
	close(pod.lfd[IN4]);
	pod.lfd[IN4] = -1;
	for (int i = 0; i < 2; i++) {
		group[i] = listen_in("p", lsn_addr[IN4], true);
		cr_assert_geq(group[i], 0);
	}
	cr_assert_eq(dp_inbound_attach(fx.dp, pod.nsfd, pod.cookie, group[0], pod.lfd[IN6]), 0);
	/* The kernel hashes the 4-tuple over the group: with 32 client ports,
	 * all on one member has odds of 2^-31.
	 */
	for (int i = 0; i < 32; i++) {
		cfd = tsock_connect("c", POD_V4 ":" APP_PORT, WAIT_MS);
		cr_assert_geq(cfd, 0, "connect: %s", strerror(-cfd));
		got = accepted_on(group, 2, &afd);
		cr_assert_geq(got, 0, "connection %d went to no member of the group", i);
		counts[got]++;
		close(afd);
		close(cfd);
	}
	cr_expect(counts[0] > 0 && counts[1] > 0,
		  "SO_REUSEPORT selection runs after bpf_sk_assign: %d / %d", counts[0],
		  counts[1]);
	close(group[0]);
	close(group[1]);
}

Test(inbound, refuses_the_pin_of_another_netns, INBOUND)
{
	int other = open_netns("c");

	cr_expect_eq(dp_inbound_attach(fx.dp, other, pod.cookie, pod.lfd[IN4], pod.lfd[IN6]),
		     -EEXIST);
	close(other);
	expect_lands("c", POD_V4 ":" APP_PORT, IN4, MESH_R_IN_CAPTURED);
}

Test(inbound, stale_pin_of_a_gone_netns_breaks_nothing, INBOUND)
{
	struct timespec nap = { .tv_nsec = 50 * 1000 * 1000 };
	char q[64];
	unsigned int n = 0;
	bool attached = true;
	uint64_t cookie;
	int nsfd;

	cr_assert_eq(tns_add("q"), 0);
	nsfd = open_netns("q");
	cookie = netns_cookie_of("q");
	cr_assert_eq(dp_inbound_attach(fx.dp, nsfd, cookie, -1, -1), 0);
	close(nsfd);
	cr_assert_eq(tns_sh("ip netns del %s", tns_name("q", q, sizeof(q))), 0);
	/* The kernel detaches a dying netns' links from its cleanup work. */
	for (int tries = 0; tries < 100 && attached; tries++) {
		cr_assert_eq(dp_inbound_state(fx.dp, cookie, &attached, &n), 0);
		if (attached)
			nanosleep(&nap, NULL);
	}
	cr_expect_not(attached, "the link of a removed netns reads as detached");
	cr_expect(pin_exists(cookie), "its pin is still there");
	/* Other pods are not disturbed, and the stale pin goes away cleanly. */
	expect_lands("c", POD_V4 ":" APP_PORT, IN4, MESH_R_IN_CAPTURED);
	cr_expect_eq(dp_inbound_detach(fx.dp, cookie), 0);
	cr_expect_not(pin_exists(cookie));
}

/* Connect from the pod netns, from address @src (local there) and port
 * @sport (0: the kernel's choice), to @dst with SO_MARK @mark, from a task in cgroup @cgroup (NULL: where this process is,
 * outside the attach cgroup, so no cgroup program sees the socket). The task
 * that connects is what the programs check, as the agent's threads create and
 * connect their sockets. Returns the connected fd.
 */
static int connect_from(const char *src, uint16_t sport, const char *dst, uint32_t mark,
			const char *cgroup)
{
	char home[2 * FX_PATH_MAX], line[FX_PATH_MAX], root[FX_PATH_MAX];
	struct sockaddr_storage ss;
	struct addr s, d;
	socklen_t len;
	FILE *f;
	int fd, err = 0;

	cr_assert(addr_parse_ip(src, &s) == 0 && addr_parse_ip_port(dst, &d) == 0);
	s.port = sport;
	home[0] = '\0';
	if (cgroup) {
		/* Back to where this process was once connected: the test's
		 * own sockets must not meet the cgroup programs.
		 */
		f = fopen("/proc/self/cgroup", "re");
		cr_assert_not_null(f);
		while (fgets(line, sizeof(line), f) && strncmp(line, "0::", 3))
			;
		fclose(f);
		line[strcspn(line, "\n")] = '\0';
		cr_assert_eq(strncmp(line, "0::", 3), 0, "no cgroup v2 line in /proc/self/cgroup");
		cr_assert_eq(tcg_mount_point(root, sizeof(root)), 0);
		snprintf(home, sizeof(home), "%s%s", root, line + 3);
		cr_assert_eq(tcg_join(cgroup, 0), 0);
	}
	cr_assert_eq(tns_enter("p"), 0);
	fd = socket(s.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(tns_enter(NULL), 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)))
		err = errno;
	len = addr_to_sockaddr(&s, &ss);
	if (!err && bind(fd, (struct sockaddr *)&ss, len))
		err = errno;
	len = addr_to_sockaddr(&d, &ss);
	if (!err && connect(fd, (struct sockaddr *)&ss, len))
		err = errno;
	if (cgroup)
		cr_assert_eq(tcg_join(home, 0), 0, "back to '%s'", home);
	cr_assert_eq(err, 0, "socket, SO_MARK, bind %s, connect %s: %s", src, dst, strerror(err));
	return fd;
}

/* The agent's connection from client address @src to the pod's @dst is left
 * to the application (@app), while an ordinary socket's is captured (@in),
 * and so is a pod's socket carrying the agent's inbound mark.
 */
static void expect_agent_left_alone(const char *src, const char *dst, int in, int app)
{
	static const enum mesh_reason agent[] = { MESH_R_AGENT_CGROUP, MESH_R_IN_AGENT_RECORDED,
						  MESH_R_IN_AGENT };
	static const enum mesh_reason captured = MESH_R_IN_CAPTURED;
	static const enum mesh_reason forged[] = { MESH_R_EXCL_PORT, MESH_R_IN_CAPTURED };
	struct dp_pod entry = pod_entry;
	uint64_t before[MESH_R_MAX];
	int cfd;

	counters(before);
	cfd = connect_from(src, 0, dst, 0, NULL);
	expect_accepted(cfd, dst, in);
	expect_moved(before, "an ordinary socket", &captured, 1);

	/* A pod's socket with the inbound mark (CAP_NET_RAW is enough) to a
	 * port the pod excludes from outbound capture, so that connect4/6
	 * leave it alone: the mark proves nothing, sockops records nothing and
	 * sk_lookup captures it.
	 */
	entry.excl_ports[0] = (uint16_t)atoi(APP_PORT);
	cr_assert_eq(dp_pod_upsert(fx.dp, pod.cookie, &entry), 0);
	counters(before);
	cfd = connect_from(src, 0, dst, FX_INBOUND_MARK, fx.cgroup);
	expect_accepted(cfd, dst, in);
	expect_moved(before, "a pod's socket with the inbound mark", forged, 2);
	cr_assert_eq(dp_pod_upsert(fx.dp, pod.cookie, &pod_entry), 0);

	/* The agent's socket: its cgroup and its inbound mark make sockops
	 * record the flow, and sk_lookup leaves it to the application.
	 */
	counters(before);
	cfd = connect_from(src, 0, dst, FX_INBOUND_MARK, fx.agent_cgroup);
	expect_accepted(cfd, dst, app);
	expect_moved(before, "the agent's socket", agent, 3);
}

Test(inbound, agent_connection_to_the_app_is_not_captured, INBOUND)
{
	struct timespec nap = { .tv_nsec = 20 * 1000 * 1000 };
	int tries, afd;
	char p[64];

	/* Client addresses of the pod's own, but not its interface's: like
	 * the agent's transparent connection from a client's address, the SYN
	 * goes over lo while the kernel reports the pod interface as ingress.
	 */
	cr_assert_eq(tns_sh("ip -n %s addr add 198.18.6.9/32 dev lo && "
			    "ip -n %s addr add fd57:6566:7406::9/128 dev lo nodad",
			    tns_name("p", p, sizeof(p)), p),
		     0);
	expect_agent_left_alone("198.18.6.9", POD_V4 ":" APP_PORT, IN4, APP4);

	/* Replies to the IPv6 one need its local route, which addrconf adds
	 * from a work queue: connect until one gets through.
	 */
	for (tries = 0; tries < 100; tries++) {
		int fd = -1;
		struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 }, d6 = s6;

		inet_pton(AF_INET6, "fd57:6566:7406::9", &s6.sin6_addr);
		inet_pton(AF_INET6, POD_V6, &d6.sin6_addr);
		d6.sin6_port = htons(15006);
		if (tns_enter("p") == 0)
			fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		(void)tns_enter(NULL);
		if (fd >= 0 && bind(fd, (struct sockaddr *)&s6, sizeof(s6)) == 0 &&
		    (connect(fd, (struct sockaddr *)&d6, sizeof(d6)) == 0 || errno == EINPROGRESS) &&
		    accepted_on(&pod.lfd[IN6], 1, &afd) == 0) {
			close(afd);
			close(fd);
			break;
		}
		if (fd >= 0)
			close(fd);
		nanosleep(&nap, NULL);
	}
	cr_assert_lt(tries, 100, "fd57:6566:7406::9 never became usable");
	expect_agent_left_alone("fd57:6566:7406::9", "[" POD_V6 "]:" APP_PORT, IN6, APP6);
}

/* Entries of the pinned mesh_in_agent, counted key by key. */
static unsigned int in_agent_entries(void)
{
	struct mesh_flow_key key, next;
	char pin[2 * FX_PATH_MAX];
	unsigned int n = 0;
	void *prev = NULL;
	int fd;

	snprintf(pin, sizeof(pin), "%s/maps/mesh_in_agent", fx.pin_dir);
	fd = bpf_obj_get(pin);
	cr_assert_geq(fd, 0, "open '%s': %s", pin, strerror(errno));
	while (!bpf_map_get_next_key(fd, prev, &next) && n <= MESH_MAX_IN_AGENT) {
		key = next;
		prev = &key;
		n++;
	}
	close(fd);
	return n;
}

/* Wait (2 s at most) until mesh_in_agent holds @want entries; the count. */
static unsigned int in_agent_wait(unsigned int want)
{
	struct timespec nap = { .tv_nsec = 10 * 1000 * 1000 };
	unsigned int n = in_agent_entries();

	for (int i = 0; i < 200 && n != want; i++) {
		nanosleep(&nap, NULL);
		n = in_agent_entries();
	}
	return n;
}

/* The record of the agent's connection goes when the connection closes,
 * whichever way it ends (an orderly close, a reset), and a later client
 * connection from the same address and port is captured as any other: it
 * cannot ride on what the agent left behind. Before records were deleted the
 * last connection reached the application directly.
 */
Test(inbound, agent_record_goes_when_its_connection_closes, INBOUND)
{
	static const enum mesh_reason captured = MESH_R_IN_CAPTURED;
	const struct linger rst = { .l_onoff = 1, .l_linger = 0 };
	uint64_t before[MESH_R_MAX];
	char p[64];
	int cfd;

	cr_assert_eq(tns_sh("ip -n %s addr add 198.18.6.9/32 dev lo", tns_name("p", p, sizeof(p))),
		     0);
	cr_assert_eq(in_agent_entries(), 0, "mesh_in_agent is not empty at the start");

	/* Orderly: the application closes first, the agent's socket then
	 * goes CLOSE_WAIT, LAST_ACK, CLOSE.
	 */
	cfd = connect_from("198.18.6.9", 61000, POD_V4 ":" APP_PORT, FX_INBOUND_MARK,
			   fx.agent_cgroup);
	cr_assert_eq(in_agent_entries(), 1, "the agent's connection was not recorded");
	expect_accepted(cfd, POD_V4 ":" APP_PORT, APP4);
	cr_assert_eq(in_agent_wait(0), 0, "the record outlived an orderly close");

	/* The agent closes first: its socket goes through FIN_WAIT to
	 * TIME_WAIT, and the full socket reaches CLOSE when TIME_WAIT takes
	 * over.
	 */
	cfd = connect_from("198.18.6.9", 61002, POD_V4 ":" APP_PORT, FX_INBOUND_MARK,
			   fx.agent_cgroup);
	cr_assert_eq(in_agent_entries(), 1);
	{
		int afd, got = accepted_on(pod.lfd, N_LSN, &afd);

		cr_assert_eq(got, APP4, "the agent's connection was captured");
		close(cfd);
		cr_assert_eq(in_agent_wait(0), 0, "the record outlived the agent's close");
		close(afd);
	}

	/* A reset (SO_LINGER 0), as when the kernel closes a killed agent's
	 * sockets that still hold unread data.
	 */
	cfd = connect_from("198.18.6.9", 61001, POD_V4 ":" APP_PORT, FX_INBOUND_MARK,
			   fx.agent_cgroup);
	cr_assert_eq(in_agent_entries(), 1);
	cr_assert_eq(setsockopt(cfd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst)), 0);
	expect_accepted(cfd, POD_V4 ":" APP_PORT, APP4);
	cr_assert_eq(in_agent_wait(0), 0, "the record outlived a reset");

	/* A client of the pod on the very same address and port. */
	counters(before);
	cfd = connect_from("198.18.6.9", 61001, POD_V4 ":" APP_PORT, 0, NULL);
	expect_accepted(cfd, POD_V4 ":" APP_PORT, IN4);
	expect_moved(before, "a client on the agent's old source port", &captured, 1);
}
