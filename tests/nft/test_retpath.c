// SPDX-License-Identifier: GPL-2.0-only
/* The inbound return path (agent/datapath/retpath.c) in test-created network
 * namespaces: rules and routes read back over netlink here, independently of
 * the module's reader; idempotence; removal that leaves every other rule and
 * route alone; a pod without IPv6; /proc/sys following the thread's netns;
 * and the point of it all: a connection accepted in the pod and carried on
 * to the application from the client's own address (IP_TRANSPARENT, the
 * inbound mark) works only with the return path in place.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "addr.h"
#include "cni.h"
#include "datapath/retpath.h"

#include "../helpers/require.h"
#include "../helpers/sock.h"
#include "../helpers/tns.h"

#define POD "p"			/* the pod netns */
#define CLIENT "c"		/* a client netns linked to it */
#define POD_V4 "198.18.21.1"
#define CLIENT_V4 "198.18.21.2"
#define POD_V6 "fd00:198:21::1"
#define CLIENT_V6 "fd00:198:21::2"
#define APP_PORT 8080		/* the application */
#define AGENT_PORT 15006	/* plays the agent's inbound listener */
#define MARK 0xef71
#define TABLE 100
#define FOREIGN_TABLE 77
#define FWMARK_ACCEPT "/proc/sys/net/ipv4/tcp_fwmark_accept"
#define FWMARK_REFLECT4 "/proc/sys/net/ipv4/fwmark_reflect"
#define FWMARK_REFLECT6 "/proc/sys/net/ipv6/fwmark_reflect"
#define WAIT_MS 2000
/* Longer than a SYN-ACK's trip, shorter than the SYN's first retransmission
 * (1 s): a connect still pending by then is not coming back. */
#define LEAK_WAIT_MS 900

static const struct retpath rp = { .mark = MARK, .table = TABLE,
				   .priority = RETPATH_PRIORITY_DEFAULT };
static int pod_fd = -1;

static void setup(void)
{
	char n[64], p[128];

	require_root();
	tns_del_all();
	cr_assert_eq(tns_add(POD), 0);
	cr_assert_eq(tns_add(CLIENT), 0);
	cr_assert_eq(tns_link(POD, CLIENT), 0);
	tns_name(POD, n, sizeof(n));
	cr_assert_eq(tns_sh("ip -n %s addr add " POD_V4 "/24 dev %s-%s && "
			    "ip -n %s addr add " POD_V6 "/64 dev %s-%s nodad",
			    n, POD, CLIENT, n, POD, CLIENT),
		     0);
	tns_name(CLIENT, n, sizeof(n));
	cr_assert_eq(tns_sh("ip -n %s addr add " CLIENT_V4 "/24 dev %s-%s && "
			    "ip -n %s addr add " CLIENT_V6 "/64 dev %s-%s nodad",
			    n, CLIENT, POD, n, CLIENT, POD),
		     0);
	pod_fd = open(tns_path(POD, p, sizeof(p)), O_RDONLY | O_CLOEXEC);
	cr_assert_geq(pod_fd, 0);
}

static void teardown(void)
{
	if (pod_fd >= 0)
		close(pod_fd);
	tns_del_all();
}

TestSuite(retpath, .init = setup, .fini = teardown, .timeout = 60);

/* ------------------------------------------------------------ netlink, test side */

/* What one dump found. */
struct count {
	int all;		/* every object of the dump */
	int ours;		/* rules: fwmark MARK lookup TABLE pref PRIORITY;
				 * routes: local default dev lo in TABLE */
	int in_table;		/* routes: any route in TABLE */
	int foreign;		/* in FOREIGN_TABLE */
};

static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;

	if (mnl_attr_get_type(a) <= RTA_MAX + FRA_MAX && mnl_attr_validate(a, MNL_TYPE_U32) == 0)
		tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static uint32_t u32_or(const struct nlattr *a, uint32_t dflt)
{
	return a ? mnl_attr_get_u32(a) : dflt;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[RTA_MAX + FRA_MAX + 1] = { 0 };
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);
	struct count *c = data;
	uint32_t table;

	mnl_attr_parse(nlh, sizeof(*frh), attr_cb, tb);
	table = u32_or(tb[FRA_TABLE], frh->table);
	c->all++;
	c->foreign += table == FOREIGN_TABLE;
	c->ours += table == TABLE && u32_or(tb[FRA_FWMARK], 0) == MARK &&
		   u32_or(tb[FRA_FWMASK], 0) == 0xffffffff &&
		   u32_or(tb[FRA_PRIORITY], 0) == RETPATH_PRIORITY_DEFAULT &&
		   frh->action == FR_ACT_TO_TBL;
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[RTA_MAX + FRA_MAX + 1] = { 0 };
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct count *c = data;
	uint32_t table;

	mnl_attr_parse(nlh, sizeof(*rtm), attr_cb, tb);
	table = u32_or(tb[RTA_TABLE], rtm->rtm_table);
	c->all++;
	c->foreign += table == FOREIGN_TABLE;
	c->in_table += table == TABLE;
	c->ours += table == TABLE && rtm->rtm_type == RTN_LOCAL && rtm->rtm_dst_len == 0 &&
		   u32_or(tb[RTA_OIF], 0) == 1;
	return MNL_CB_OK;
}

/* Dump the rules (@rules) or routes of @family in netns @ns. */
static struct count dump(const char *ns, int family, bool rules)
{
	char buf[32768];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct count c = { 0 };
	struct mnl_socket *nl;
	uint8_t *fam;
	uint32_t seq = (uint32_t)time(NULL);
	int n;

	cr_assert_eq(tns_enter(ns), 0);
	nl = mnl_socket_open(NETLINK_ROUTE);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_not_null(nl);
	cr_assert_geq(mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID), 0);
	nlh->nlmsg_type = rules ? RTM_GETRULE : RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	fam = mnl_nlmsg_put_extra_header(nlh, rules ? sizeof(struct fib_rule_hdr)
						    : sizeof(struct rtmsg));
	*fam = (uint8_t)family;	/* the first byte of both headers */
	cr_assert_geq(mnl_socket_sendto(nl, nlh, nlh->nlmsg_len), 0);
	do {
		n = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf));
		cr_assert_gt(n, 0);
		n = mnl_cb_run(buf, (size_t)n, seq, mnl_socket_get_portid(nl),
			       rules ? rule_cb : route_cb, &c);
		cr_assert_geq(n, 0, "dump: %s", strerror(errno));
	} while (n > 0);
	mnl_socket_close(nl);
	return c;
}

/* ------------------------------------------------------------ /proc/sys, test side */

/* Read (@set < 0) or write sysctl file @path as seen by this thread, after
 * entering @ns (NULL: the test's own netns, read only). */
static int sysctl_in(const char *ns, const char *path, int set)
{
	char buf[16] = "";
	int fd, v;

	if (ns)
		cr_assert_eq(tns_enter(ns), 0);
	fd = open(path, set < 0 ? O_RDONLY : O_WRONLY);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	if (set >= 0) {
		cr_assert_not_null(ns, "never write the host's sysctls");
		cr_assert_eq(write(fd, set ? "1\n" : "0\n", 2), 2);
		v = set;
	} else {
		cr_assert_gt(read(fd, buf, sizeof(buf) - 1), 0);
		v = buf[0] - '0';
	}
	close(fd);
	if (ns)
		cr_assert_eq(tns_enter(NULL), 0);
	return v;
}

static ino_t thread_netns(void)
{
	struct stat st;

	cr_assert_eq(stat("/proc/thread-self/ns/net", &st), 0);
	return st.st_ino;
}

/* ------------------------------------------------------------ the pieces */

static void expect_applied(int family, bool present)
{
	struct count rules = dump(POD, family, true), routes = dump(POD, family, false);
	const char *fam = family == AF_INET ? "IPv4" : "IPv6";

	cr_assert_eq(rules.ours, present ? 1 : 0, "%s: %d fwmark rules", fam, rules.ours);
	cr_assert_eq(routes.ours, present ? 1 : 0, "%s: %d local default routes", fam, routes.ours);
}

Test(retpath, apply_adds_rules_routes_and_sysctl)
{
	struct retpath_state st;
	int before = -1;

	cr_assert_eq(sysctl_in(POD, FWMARK_ACCEPT, -1), 0, "a new netns starts with 0");
	expect_applied(AF_INET, false);
	expect_applied(AF_INET6, false);
	cr_assert_eq(retpath_apply(pod_fd, &rp, &before), 0);
	cr_assert_eq(before, 0);
	expect_applied(AF_INET, true);
	expect_applied(AF_INET6, true);
	cr_assert_eq(dump(POD, AF_INET, false).in_table, 1, "only the local default in the table");
	cr_assert_eq(sysctl_in(POD, FWMARK_ACCEPT, -1), 1);

	cr_assert_eq(retpath_read(pod_fd, &rp, &st), 0);
	cr_assert(st.rule4 && st.rule6 && st.route4 && st.route6);
	cr_assert_eq(st.fwmark_accept, 1);
	cr_assert_eq(st.fwmark_reflect4, 1);
	cr_assert_eq(st.fwmark_reflect6, 1);
}

Test(retpath, apply_twice_changes_nothing)
{
	struct count r4, r6, t4, t6;
	int before = -1;

	cr_assert_eq(retpath_apply(pod_fd, &rp, &before), 0);
	r4 = dump(POD, AF_INET, true);
	r6 = dump(POD, AF_INET6, true);
	t4 = dump(POD, AF_INET, false);
	t6 = dump(POD, AF_INET6, false);
	cr_assert_eq(retpath_apply(pod_fd, &rp, &before), 0);
	cr_assert_eq(before & 1, 1, "the second apply finds the first one's sysctl");
	cr_assert_eq(dump(POD, AF_INET, true).all, r4.all);
	cr_assert_eq(dump(POD, AF_INET6, true).all, r6.all);
	cr_assert_eq(dump(POD, AF_INET, false).all, t4.all);
	cr_assert_eq(dump(POD, AF_INET6, false).all, t6.all);
	expect_applied(AF_INET, true);
	expect_applied(AF_INET6, true);
}

Test(retpath, remove_takes_exactly_what_apply_added)
{
	struct count r4, r6, t4, t6;
	struct retpath_state st;
	char n[64];
	int before = -1;

	/* Other software's pieces: same mark and priority in another table,
	 * another mark in our table's neighbour, and a route in our table that
	 * apply does not write. */
	tns_name(POD, n, sizeof(n));
	cr_assert_eq(tns_sh("ip -n %s rule add fwmark 0x%x lookup %d pref %d && "
			    "ip -n %s -6 rule add fwmark 0x1234 lookup %d pref 31000 && "
			    "ip -n %s route add 198.18.99.0/24 dev lo table %d && "
			    "ip -n %s route add 198.18.98.0/24 dev lo table %d && "
			    "ip -n %s -6 route add fd00:198:99::/64 dev lo table %d",
			    n, MARK, FOREIGN_TABLE, RETPATH_PRIORITY_DEFAULT, n, FOREIGN_TABLE, n,
			    FOREIGN_TABLE, n, TABLE, n, FOREIGN_TABLE),
		     0);
	r4 = dump(POD, AF_INET, true);
	r6 = dump(POD, AF_INET6, true);
	t4 = dump(POD, AF_INET, false);
	t6 = dump(POD, AF_INET6, false);
	cr_assert_eq(r4.foreign + r6.foreign, 2);
	cr_assert_eq(t4.in_table, 1);

	cr_assert_eq(retpath_apply(pod_fd, &rp, &before), 0);
	cr_assert_eq(before, 0);
	cr_assert_eq(dump(POD, AF_INET, false).in_table, 2);
	cr_assert_eq(retpath_remove(pod_fd, &rp, before), 0);

	expect_applied(AF_INET, false);
	expect_applied(AF_INET6, false);
	cr_assert_eq(dump(POD, AF_INET, true).all, r4.all);
	cr_assert_eq(dump(POD, AF_INET6, true).all, r6.all);
	cr_assert_eq(dump(POD, AF_INET, true).foreign, r4.foreign);
	cr_assert_eq(dump(POD, AF_INET6, true).foreign, r6.foreign);
	cr_assert_eq(dump(POD, AF_INET, false).all, t4.all);
	cr_assert_eq(dump(POD, AF_INET6, false).all, t6.all);
	cr_assert_eq(dump(POD, AF_INET, false).in_table, 1, "the other route in our table stays");
	cr_assert_eq(dump(POD, AF_INET, false).foreign, t4.foreign);
	cr_assert_eq(sysctl_in(POD, FWMARK_ACCEPT, -1), 0, "restored");
	cr_assert_eq(sysctl_in(POD, FWMARK_REFLECT4, -1), 0, "restored");
	cr_assert_eq(sysctl_in(POD, FWMARK_REFLECT6, -1), 0, "restored");
	cr_assert_eq(retpath_read(pod_fd, &rp, &st), 0);
	cr_assert_not(st.rule4 || st.rule6 || st.route4 || st.route6);

	/* Again: nothing left to remove is not an error; -1 leaves the sysctl. */
	sysctl_in(POD, FWMARK_ACCEPT, 1);
	cr_assert_eq(retpath_remove(pod_fd, &rp, -1), 0);
	cr_assert_eq(sysctl_in(POD, FWMARK_ACCEPT, -1), 1);
	cr_assert_eq(dump(POD, AF_INET, true).all, r4.all);
}

Test(retpath, remove_restores_a_sysctl_that_was_already_on)
{
	int before = -1;

	sysctl_in(POD, FWMARK_ACCEPT, 1);
	cr_assert_eq(retpath_apply(pod_fd, &rp, &before), 0);
	cr_assert_eq(before, 1);
	cr_assert_eq(retpath_remove(pod_fd, &rp, before), 0);
	cr_assert_eq(sysctl_in(POD, FWMARK_ACCEPT, -1), 1);
	expect_applied(AF_INET, false);
}

/* Add our exact rule to @ns without NLM_F_EXCL, which the kernel then lets
 * through as a second copy (what older iproute2 did on `ip rule add`). */
static void add_rule_copy(const char *ns)
{
	char buf[512];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct fib_rule_hdr *frh;
	struct mnl_socket *nl;
	int n;

	cr_assert_eq(tns_enter(ns), 0);
	nl = mnl_socket_open(NETLINK_ROUTE);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_not_null(nl);
	cr_assert_geq(mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID), 0);
	nlh->nlmsg_type = RTM_NEWRULE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
	nlh->nlmsg_seq = 1;
	frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	frh->family = AF_INET;
	frh->action = FR_ACT_TO_TBL;
	frh->table = TABLE;
	mnl_attr_put_u32(nlh, FRA_PRIORITY, RETPATH_PRIORITY_DEFAULT);
	mnl_attr_put_u32(nlh, FRA_FWMARK, MARK);
	mnl_attr_put_u32(nlh, FRA_FWMASK, 0xffffffff);
	cr_assert_geq(mnl_socket_sendto(nl, nlh, nlh->nlmsg_len), 0);
	n = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	cr_assert_geq(mnl_cb_run(buf, (size_t)n, 1, mnl_socket_get_portid(nl), NULL, NULL), 0,
		      "adding a rule: %s", strerror(errno));
	mnl_socket_close(nl);
}

Test(retpath, remove_deletes_copies_of_the_rule)
{
	int before = -1;

	add_rule_copy(POD);
	add_rule_copy(POD);
	cr_assert_eq(dump(POD, AF_INET, true).ours, 2);
	/* apply adds no third: the kernel compares every selector (EXCL). */
	cr_assert_eq(retpath_apply(pod_fd, &rp, &before), 0);
	cr_assert_eq(dump(POD, AF_INET, true).ours, 2);
	cr_assert_eq(retpath_remove(pod_fd, &rp, -1), 0);
	cr_assert_eq(dump(POD, AF_INET, true).ours, 0);
}

Test(retpath, a_rule_with_more_selectors_is_not_ours)
{
	struct retpath_state st;
	char n[64];
	int before = -1;

	tns_name(POD, n, sizeof(n));
	cr_assert_eq(tns_sh("ip -n %s rule add fwmark 0x%x lookup %d pref %d iif lo", n, MARK,
			    TABLE, RETPATH_PRIORITY_DEFAULT),
		     0);
	cr_assert_eq(retpath_read(pod_fd, &rp, &st), 0);
	cr_assert_not(st.rule4, "a rule for lo only would not catch the replies");
	cr_assert_eq(retpath_apply(pod_fd, &rp, &before), 0);
	cr_assert_eq(retpath_read(pod_fd, &rp, &st), 0);
	cr_assert(st.rule4);
	cr_assert_eq(dump(POD, AF_INET, true).ours, 2, "ours beside the other one");
}

Test(retpath, pod_without_ipv6_gets_the_ipv4_half)
{
	struct retpath_state st;
	int before = -1;

	sysctl_in(POD, "/proc/sys/net/ipv6/conf/all/disable_ipv6", 1);
	sysctl_in(POD, "/proc/sys/net/ipv6/conf/default/disable_ipv6", 1);
	cr_assert_eq(sysctl_in(POD, "/proc/sys/net/ipv6/conf/lo/disable_ipv6", -1), 1);
	cr_assert_eq(retpath_apply(pod_fd, &rp, &before), 0);
	expect_applied(AF_INET, true);
	cr_assert_eq(dump(POD, AF_INET6, true).ours, 0, "no IPv6 rule pointing at nothing");
	cr_assert_eq(retpath_read(pod_fd, &rp, &st), 0);
	cr_assert(st.rule4 && st.route4);
	cr_assert_not(st.rule6 || st.route6);
	cr_assert_eq(st.fwmark_accept, 1);
	/* Idempotent there too, and removable. */
	cr_assert_eq(retpath_apply(pod_fd, &rp, &before), 0);
	expect_applied(AF_INET, true);
	cr_assert_eq(retpath_remove(pod_fd, &rp, 0), 0);
	expect_applied(AF_INET, false);
}

Test(retpath, invalid_input_is_refused)
{
	struct retpath bad = rp;
	int before = -1;

	bad.mark = 0;		/* would send every unmarked packet to lo */
	cr_assert_eq(retpath_apply(pod_fd, &bad, &before), -EINVAL);
	bad = rp;
	bad.table = RT_TABLE_MAIN;
	cr_assert_eq(retpath_apply(pod_fd, &bad, &before), -EINVAL);
	bad = rp;
	bad.priority = 32766;	/* after main: never consulted */
	cr_assert_eq(retpath_apply(pod_fd, &bad, &before), -EINVAL);
	cr_assert_eq(retpath_remove(pod_fd, &bad, -1), -EINVAL);
	expect_applied(AF_INET, false);
}

/* /proc/sys/net is the netns of the thread that looks, not of the process:
 * the agent can set a pod's sysctl from one thread while the others stay. */
Test(retpath, proc_sys_follows_the_thread)
{
	int home = sysctl_in(NULL, FWMARK_ACCEPT, -1), before = -1;
	ino_t self = thread_netns();

	sysctl_in(POD, FWMARK_ACCEPT, !home);
	cr_assert_eq(sysctl_in(POD, FWMARK_ACCEPT, -1), !home);
	cr_assert_eq(sysctl_in(NULL, FWMARK_ACCEPT, -1), home);
	/* And the module's calls leave the thread where it was. */
	cr_assert_eq(retpath_apply(pod_fd, &rp, &before), 0);
	cr_assert_eq(thread_netns(), self);
	cr_assert_eq(sysctl_in(NULL, FWMARK_ACCEPT, -1), home, "the agent's own netns untouched");
	cr_assert_eq(retpath_remove(pod_fd, &rp, before), 0);
	cr_assert_eq(thread_netns(), self);
	cr_assert_eq(sysctl_in(POD, FWMARK_ACCEPT, -1), !home);
}

/* ------------------------------------------------------------ real traffic */

/* A listening socket on @ip_port inside the pod. */
static int listen_in_pod(const char *ip_port)
{
	struct sockaddr_storage ss;
	struct addr a;
	socklen_t len;
	int fd, one = 1;

	cr_assert_eq(addr_parse_ip_port(ip_port, &a), 0);
	len = addr_to_sockaddr(&a, &ss);
	cr_assert_eq(tns_enter(POD), 0);
	fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(fd, (struct sockaddr *)&ss, len), 0, "bind %s: %s", ip_port,
		     strerror(errno));
	cr_assert_eq(listen(fd, 8), 0);
	return fd;
}

static int accept_within(int lfd, int ms)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	int fd;

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(fd, 0);
	return fd;
}

/* Read exactly @len bytes from @fd within WAIT_MS. */
static void read_exact(int fd, char *buf, size_t len, const char *who)
{
	size_t have = 0;

	while (have < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		cr_assert_eq(poll(&pfd, 1, WAIT_MS), 1, "%s: nothing within %d ms", who, WAIT_MS);
		n = recv(fd, buf + have, len - have, 0);
		cr_assert_gt(n, 0, "%s: %s", who, n ? strerror(errno) : "EOF");
		have += (size_t)n;
	}
}

static void pass(int from, int to, const char *what, const char *who)
{
	char buf[64];
	size_t len = strlen(what);

	cr_assert_eq(send(from, what, len, MSG_NOSIGNAL), (ssize_t)len);
	read_exact(to, buf, len, who);
	cr_assert_eq(memcmp(buf, what, len), 0, "%s", who);
}

/* What the agent does for one inbound connection, in the pod: accept it on
 * AGENT_PORT, then connect to the application from the client's address
 * (IP_TRANSPARENT) with the inbound mark. Returns true when that connection
 * came up and carried bytes both ways with the client's address as the
 * application's peer; false when the connect never completed (the
 * application's SYN-ACK went elsewhere). */
static bool relay_as_agent(int family)
{
	const char *pod = family == AF_INET ? POD_V4 : POD_V6;
	const char *client_ip = family == AF_INET ? CLIENT_V4 : CLIENT_V6;
	char agent_at[64], app_at[64], peer[ADDR_STRLEN];
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct pollfd pfd;
	struct addr a;
	int agent_l, app_l, c, in, up, app = -1, one = 1, mark = MARK, so_err = 0, got_mark = 0;
	socklen_t so_len = sizeof(so_err), mark_len = sizeof(got_mark);
	bool ok;

	snprintf(agent_at, sizeof(agent_at), family == AF_INET ? "%s:%d" : "[%s]:%d", pod,
		 AGENT_PORT);
	snprintf(app_at, sizeof(app_at), family == AF_INET ? "%s:%d" : "[%s]:%d", pod, APP_PORT);
	agent_l = listen_in_pod(agent_at);
	app_l = listen_in_pod(app_at);

	/* The client connects to the pod; the agent accepts. */
	c = tsock_connect(CLIENT, agent_at, WAIT_MS);
	cr_assert_geq(c, 0, "client -> %s: %s", agent_at, strerror(-c));
	in = accept_within(agent_l, WAIT_MS);
	cr_assert_geq(in, 0);
	cr_assert_eq(getpeername(in, (struct sockaddr *)&ss, &len), 0);
	cr_assert_eq(addr_from_sockaddr(&a, (struct sockaddr *)&ss, len), 0);
	cr_assert_str_eq(addr_fmt_ip(&a, peer, sizeof(peer)), client_ip);

	/* The agent's upstream: the client's address, port chosen by the kernel. */
	a.port = 0;
	len = addr_to_sockaddr(&a, &ss);
	cr_assert_eq(tns_enter(POD), 0);
	up = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_geq(up, 0);
	cr_assert_eq(setsockopt(up, family == AF_INET ? SOL_IP : SOL_IPV6,
				family == AF_INET ? IP_TRANSPARENT : IPV6_TRANSPARENT, &one,
				sizeof(one)),
		     0);
	cr_assert_eq(setsockopt(up, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)), 0);
	cr_assert_eq(bind(up, (struct sockaddr *)&ss, len), 0, "bind %s: %s", client_ip,
		     strerror(errno));
	cr_assert_eq(addr_parse_ip_port(app_at, &a), 0);
	len = addr_to_sockaddr(&a, &ss);
	cr_assert(connect(up, (struct sockaddr *)&ss, len) == -1 && errno == EINPROGRESS);
	pfd = (struct pollfd){ .fd = up, .events = POLLOUT };
	ok = poll(&pfd, 1, LEAK_WAIT_MS) == 1;
	if (ok) {
		cr_assert_eq(getsockopt(up, SOL_SOCKET, SO_ERROR, &so_err, &so_len), 0);
		cr_assert_eq(so_err, 0, "connect to the app: %s", strerror(so_err));
		app = accept_within(app_l, WAIT_MS);
		cr_assert_geq(app, 0, "the app accepted nothing");
		/* The application sees the real client... */
		len = sizeof(ss);
		cr_assert_eq(getpeername(app, (struct sockaddr *)&ss, &len), 0);
		cr_assert_eq(addr_from_sockaddr(&a, (struct sockaddr *)&ss, len), 0);
		cr_assert_str_eq(addr_fmt_ip(&a, peer, sizeof(peer)), client_ip);
		/* ...and its socket took the mark of the agent's SYN, which
		 * therefore crossed lo with it (tcp_fwmark_accept). */
		cr_assert_eq(getsockopt(app, SOL_SOCKET, SO_MARK, &got_mark, &mark_len), 0);
		cr_assert_eq(got_mark, MARK);
		/* Bytes both ways: client -> agent -> app -> agent -> client. */
		pass(c, in, "hello from the client", "agent from the client");
		pass(up, app, "hello from the client", "app from the agent");
		pass(app, up, "echo: hello", "agent from the app");
		pass(in, c, "echo: hello", "client from the agent");
		close(app);
	} else {
		/* Nothing reached the agent: the app's SYN-ACK left the pod. */
		cr_assert_eq(accept_within(app_l, 0), -1, "the app accepted a half-open connection");
	}
	close(up);
	close(in);
	close(c);
	close(app_l);
	close(agent_l);
	return ok;
}

static void relay_needs_the_return_path(int family)
{
	int before = -1;

	cr_assert_not(relay_as_agent(family), "connected without the return path");
	cr_assert_eq(retpath_apply(pod_fd, &rp, &before), 0);
	cr_assert(relay_as_agent(family), "no connection with the return path");
	/* The rules and routes alone are not enough: the SYN-ACK of an
	 * unmarked request socket takes the main table. */
	sysctl_in(POD, FWMARK_ACCEPT, 0);
	cr_assert_not(relay_as_agent(family), "connected without tcp_fwmark_accept");
	sysctl_in(POD, FWMARK_ACCEPT, 1);
	cr_assert(relay_as_agent(family));
	/* Removed, the replies leak again. */
	cr_assert_eq(retpath_remove(pod_fd, &rp, before), 0);
	cr_assert_not(relay_as_agent(family), "connected after remove");
}

/* The agent's transparent connect to a port nothing listens on in the pod:
 * how long until it is refused (ms), or -1 when it never is within
 * LEAK_WAIT_MS.
 */
static int refused_after_ms(int family)
{
	const char *pod = family == AF_INET ? POD_V4 : POD_V6;
	const char *client_ip = family == AF_INET ? CLIENT_V4 : CLIENT_V6;
	char at[64];
	struct sockaddr_storage ss;
	struct pollfd pfd;
	struct timespec t0, t1;
	struct addr a;
	socklen_t len, so_len = sizeof(int);
	int up, one = 1, mark = MARK, so_err = 0, ms = -1;

	cr_assert_eq(addr_parse_ip(client_ip, &a), 0);
	len = addr_to_sockaddr(&a, &ss);
	cr_assert_eq(tns_enter(POD), 0);
	up = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_geq(up, 0);
	cr_assert_eq(setsockopt(up, family == AF_INET ? SOL_IP : SOL_IPV6,
				family == AF_INET ? IP_TRANSPARENT : IPV6_TRANSPARENT, &one,
				sizeof(one)),
		     0);
	cr_assert_eq(setsockopt(up, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)), 0);
	cr_assert_eq(bind(up, (struct sockaddr *)&ss, len), 0);
	snprintf(at, sizeof(at), family == AF_INET ? "%s:%d" : "[%s]:%d", pod, APP_PORT + 1);
	cr_assert_eq(addr_parse_ip_port(at, &a), 0);
	len = addr_to_sockaddr(&a, &ss);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert(connect(up, (struct sockaddr *)&ss, len) == -1 && errno == EINPROGRESS);
	pfd = (struct pollfd){ .fd = up, .events = POLLOUT };
	if (poll(&pfd, 1, LEAK_WAIT_MS) == 1 &&
	    !getsockopt(up, SOL_SOCKET, SO_ERROR, &so_err, &so_len) && so_err == ECONNREFUSED) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms = (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
	}
	close(up);
	return ms;
}

/* The kernel's RST for a closed port answers no socket: without
 * fwmark_reflect it carries no mark, takes the main table toward the real
 * client, and the agent's connect hangs until its timeout.
 */
static void closed_port_is_refused_at_once(int family)
{
	int before = -1, ms;

	cr_assert_eq(retpath_apply(pod_fd, &rp, &before), 0);
	ms = refused_after_ms(family);
	cr_assert(ms >= 0 && ms < 500, "a closed port was refused after %d ms", ms);
	sysctl_in(POD, family == AF_INET ? FWMARK_REFLECT4 : FWMARK_REFLECT6, 0);
	cr_assert_eq(refused_after_ms(family), -1,
		     "refused without fwmark_reflect: the test proves nothing");
}

Test(retpath, closed_port_is_refused_at_once_ipv4)
{
	closed_port_is_refused_at_once(AF_INET);
}

Test(retpath, closed_port_is_refused_at_once_ipv6)
{
	closed_port_is_refused_at_once(AF_INET6);
}

Test(retpath, transparent_relay_ipv4)
{
	relay_needs_the_return_path(AF_INET);
}

Test(retpath, transparent_relay_ipv6)
{
	relay_needs_the_return_path(AF_INET6);
}

Test(retpath, transparent_relay_ipv4_without_ipv6)
{
	int before = -1;

	sysctl_in(POD, "/proc/sys/net/ipv6/conf/all/disable_ipv6", 1);
	cr_assert_eq(retpath_apply(pod_fd, &rp, &before), 0);
	cr_assert(relay_as_agent(AF_INET));
}

/* weft-cni sets the return path's sysctls at ADD, for an agent that runs
 * where /proc/sys is read-only (cni/sysctl.c).
 */
Test(retpath, the_plugin_sets_the_sysctls_in_the_pod_and_never_in_its_own_netns)
{
	int host[3] = { sysctl_in(NULL, FWMARK_ACCEPT, -1), sysctl_in(NULL, FWMARK_REFLECT4, -1),
			sysctl_in(NULL, FWMARK_REFLECT6, -1) };
	char path[128], why[256] = "";
	ino_t home = thread_netns();

	cr_assert_eq(sysctl_in(POD, FWMARK_ACCEPT, -1), 0);
	cr_assert_eq(cni_pod_sysctls(tns_path(POD, path, sizeof(path)), why, sizeof(why)), 0,
		     "%s", why);
	cr_assert_eq(sysctl_in(POD, FWMARK_ACCEPT, -1), 1);
	cr_assert_eq(sysctl_in(POD, FWMARK_REFLECT4, -1), 1);
	cr_assert_eq(sysctl_in(POD, FWMARK_REFLECT6, -1), 1);
	cr_assert_eq(thread_netns(), home, "the plugin did not come back home");
	/* The plugin's own netns is refused, and left as it was. */
	cr_assert_eq(cni_pod_sysctls("/proc/self/ns/net", why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "plugin's own") != NULL, "%s", why);
	cr_assert_eq(sysctl_in(NULL, FWMARK_ACCEPT, -1), host[0]);
	cr_assert_eq(sysctl_in(NULL, FWMARK_REFLECT4, -1), host[1]);
	cr_assert_eq(sysctl_in(NULL, FWMARK_REFLECT6, -1), host[2]);
}
