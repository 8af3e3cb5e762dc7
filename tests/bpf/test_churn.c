// SPDX-License-Identifier: GPL-2.0-only
/* The maps the datapath fills per pod or per connection under ten times their
 * capacity in churn (docs/datapath.md, "Maps under churn"): no connection and
 * no enrolment fails, and occupancy stays within the capacity. The real
 * programs, attached to the test's cgroup, with every such map shrunk to
 * CAP entries (dp_opts.map_capacity) so that ten times over takes seconds;
 * real connections in a test netns, from this process moved into the test's
 * cgroups (the pods', or the agent's below it).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>

#include <bpf/bpf.h>
#include <criterion/criterion.h>

#include "abi.h"
#include "addr.h"
#include "datapath/dp.h"

#include "../helpers/cgroup.h"
#include "../helpers/tns.h"
#include "fixture.h"

#define CAP 512		/* max_entries of every per-pod, per-connection map */
#define CHURN (10 * CAP)
#define APP_PORT 8080

static struct {
	char home[2 * FX_PATH_MAX];	/* this process's cgroup at the start */
	uint64_t cookie;		/* of netns "p" */
	int proxy;			/* 127.0.0.1:15001 in "p": the proxy's listener */
	int app;			/* 127.0.0.1:8080 in "p": an application */
} w;

/* A listener on 127.0.0.1:@port in netns "p"; -1 on failure. */
static int listen_in_pod(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd, one = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (tns_enter("p"))
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	(void)tns_enter(NULL);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 4096)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void teardown(void);

/* A failed precondition: undo what exists, then fail the test with @why. */
#define setup_check(cond, ...)                                                                     \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			teardown();                                                                \
			cr_assert_fail(__VA_ARGS__);                                               \
		}                                                                                  \
	} while (0)

static void setup(void)
{
	char line[FX_PATH_MAX], root[FX_PATH_MAX];
	socklen_t len = sizeof(w.cookie);
	struct rlimit rl;
	const struct dp_pod pod = {
		.pod_id = 9, .proxy_port = FX_PROXY_PORT, .capture = true,
	};
	FILE *f;
	int fd, err;

	memset(&w, 0, sizeof(w));
	fx_setup_env();
	fx.opts.map_capacity = CAP;
	err = dp_open(&fx.dp, &fx.opts);
	setup_check(!err, "dp_open: %s", strerror(-err));
	/* Ten times CAP connections held open at once, both ends. */
	setup_check(!getrlimit(RLIMIT_NOFILE, &rl), "RLIMIT_NOFILE: %s", strerror(errno));
	rl.rlim_cur = rl.rlim_max;
	setup_check(rl.rlim_cur >= 2 * CHURN + 64 && !setrlimit(RLIMIT_NOFILE, &rl),
		    "needs %d descriptors, RLIMIT_NOFILE allows %llu", 2 * CHURN + 64,
		    (unsigned long long)rl.rlim_max);
	setup_check(!tns_add("p"), "test netns");
	setup_check(!tns_enter("p"), "enter the test netns");
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	(void)tns_enter(NULL);
	setup_check(fd >= 0 && !getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &w.cookie, &len),
		    "SO_NETNS_COOKIE: %s", strerror(errno));
	close(fd);
	setup_check(!dp_pod_upsert(fx.dp, w.cookie, &pod), "enrol the test netns");

	f = fopen("/proc/self/cgroup", "re");
	setup_check(f, "/proc/self/cgroup: %s", strerror(errno));
	while (fgets(line, sizeof(line), f) && strncmp(line, "0::", 3))
		;
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	setup_check(!tcg_mount_point(root, sizeof(root)), "the cgroup v2 mount");
	snprintf(w.home, sizeof(w.home), "%s%s", root, line + 3);
	w.proxy = listen_in_pod(FX_PROXY_PORT);
	w.app = listen_in_pod(APP_PORT);
	setup_check(w.proxy >= 0 && w.app >= 0, "listeners in the test netns: %s",
		    strerror(errno));
}

static void teardown(void)
{
	/* Out of the test's cgroups, or they cannot be removed. */
	if (w.home[0])
		(void)tcg_join(w.home, 0);
	fx_teardown();
	tns_del_all();
}

#define CHURN_TEST .init = setup, .fini = teardown, .timeout = 120

static void counters(uint64_t out[MESH_R_MAX])
{
	cr_assert_eq(dp_counters(fx.dp, out, MESH_R_MAX), MESH_R_MAX);
}

/* Entries of map @name as the agent's /metrics counts them. */
static unsigned int entries(const char *name)
{
	struct dp_map_use use[8];
	int n = dp_map_usage(fx.dp, use, 8);

	cr_assert_gt(n, 0, "dp_map_usage: %s", strerror(-n));
	for (int i = 0; i < n; i++) {
		if (!strcmp(use[i].map, name)) {
			cr_assert_eq(use[i].capacity, CAP, "%s has %u entries of capacity", name,
				     use[i].capacity);
			return use[i].entries;
		}
	}
	cr_assert_fail("no map %s in dp_map_usage", name);
	return 0;
}

/* Connect from netns "p" to 127.0.0.1:@port or, when @vip, to a service
 * address connect4 rewrites to the proxy; SO_MARK @mark. Returns the fd;
 * fails the test on any error.
 */
static int dial(bool vip, uint16_t port, uint32_t mark)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd;

	sin.sin_addr.s_addr = vip ? htonl(0xc6130007) /* 198.19.0.7 */ : htonl(INADDR_LOOPBACK);
	cr_assert_eq(tns_enter("p"), 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(tns_enter(NULL), 0);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	if (mark)
		cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)), 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0,
		     "connect to %s:%u: %s", vip ? "198.19.0.7" : "127.0.0.1", port,
		     strerror(errno));
	return fd;
}

/* Accept one connection on @lfd; its fd. */
static int take(int lfd)
{
	int afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	cr_assert_geq(afd, 0, "accept: %s", strerror(errno));
	return afd;
}

/* A pod's redirected connections whose original destinations the proxy
 * never asks for (it died, or the client reset first): mesh_orig_dst is
 * LRU, so the oldest records make room and none is refused, and the newest
 * is there for its question.
 */
Test(churn, orig_dst_never_refuses_a_redirected_connection, CHURN_TEST)
{
	uint64_t before[MESH_R_MAX], after[MESH_R_MAX];
	struct mesh_conn_key key = { .netns_cookie = 0 };
	struct mesh_orig_dst orig;
	char pin[2 * FX_PATH_MAX];
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	int fd, afd, mfd;

	counters(before);
	cr_assert_eq(tcg_join(fx.cgroup, 0), 0);
	for (int i = 0; i < CHURN; i++) {
		fd = dial(true, 80, 0);
		afd = take(w.proxy);
		if (i == CHURN - 1)
			cr_assert_eq(getsockname(fd, (struct sockaddr *)&me, &len), 0);
		close(afd);
		close(fd);
	}
	cr_assert_eq(tcg_join(w.home, 0), 0);
	counters(after);
	cr_log_info("mesh_orig_dst: %d connections through %d entries, %u in use", CHURN, CAP,
		    entries("mesh_orig_dst"));
	cr_expect_eq(after[MESH_R_REDIRECTED] - before[MESH_R_REDIRECTED], CHURN);
	cr_expect_eq(after[MESH_R_ORIG_RECORDED] - before[MESH_R_ORIG_RECORDED], CHURN);
	cr_expect_eq(after[MESH_R_ORIG_MAP_FULL] - before[MESH_R_ORIG_MAP_FULL], 0);
	cr_expect_eq(after[MESH_R_STORAGE_FAIL] - before[MESH_R_STORAGE_FAIL], 0);
	cr_expect_leq(entries("mesh_orig_dst"), CAP);

	/* The newest record survived the evictions. */
	key.netns_cookie = w.cookie;
	key.addr.addr[0] = me.sin_addr.s_addr;
	key.port = ntohs(me.sin_port);
	key.family = MESH_AF_INET;
	snprintf(pin, sizeof(pin), "%s/maps/mesh_orig_dst", fx.pin_dir);
	mfd = bpf_obj_get(pin);
	cr_assert_geq(mfd, 0);
	cr_expect_eq(bpf_map_lookup_elem(mfd, &key, &orig), 0,
		     "the last connection's original destination is gone");
	cr_expect_eq(orig.addr.addr[0], htonl(0xc6130007));
	close(mfd);
}

/* The agent's connections to applications, one after another: each record
 * goes when its connection closes, so the map ends empty, none refused.
 */
Test(churn, in_agent_records_are_reclaimed_as_connections_close, CHURN_TEST)
{
	uint64_t before[MESH_R_MAX], after[MESH_R_MAX];
	unsigned int left = 1;
	struct timespec nap = { .tv_nsec = 10 * 1000 * 1000 };
	int fd, afd;

	counters(before);
	cr_assert_eq(tcg_join(fx.agent_cgroup, 0), 0);
	for (int i = 0; i < CHURN; i++) {
		fd = dial(false, APP_PORT, FX_INBOUND_MARK);
		afd = take(w.app);
		close(afd);
		close(fd);
	}
	cr_assert_eq(tcg_join(w.home, 0), 0);
	/* The last ones finish their close (LAST_ACK) asynchronously. */
	for (int i = 0; i < 200 && (left = entries("mesh_in_agent")); i++)
		nanosleep(&nap, NULL);
	counters(after);
	cr_log_info("mesh_in_agent: %d connections closed in turn, %u entries left", CHURN, left);
	cr_expect_eq(after[MESH_R_IN_AGENT_RECORDED] - before[MESH_R_IN_AGENT_RECORDED], CHURN);
	cr_expect_eq(after[MESH_R_IN_AGENT_MAP_FULL] - before[MESH_R_IN_AGENT_MAP_FULL], 0);
	cr_expect_eq(left, 0, "%u records outlived their connections", left);
}

/* Ten times as many of the agent's connections open at once as the map
 * holds: none refused, occupancy bounded (a record is needed only for its
 * connection's SYN, so evicting an older one breaks nothing), and all gone
 * once they close.
 */
Test(churn, in_agent_held_connections_past_capacity_are_never_refused, CHURN_TEST)
{
	uint64_t before[MESH_R_MAX], after[MESH_R_MAX];
	struct timespec nap = { .tv_nsec = 10 * 1000 * 1000 };
	static int fds[CHURN], afds[CHURN];
	unsigned int held, left = 1;

	counters(before);
	cr_assert_eq(tcg_join(fx.agent_cgroup, 0), 0);
	for (int i = 0; i < CHURN; i++) {
		fds[i] = dial(false, APP_PORT, FX_INBOUND_MARK);
		afds[i] = take(w.app);
	}
	cr_assert_eq(tcg_join(w.home, 0), 0);
	held = entries("mesh_in_agent");
	counters(after);
	cr_log_info("mesh_in_agent: %d connections open, %u entries (capacity %d)", CHURN, held,
		    CAP);
	cr_expect_eq(after[MESH_R_IN_AGENT_RECORDED] - before[MESH_R_IN_AGENT_RECORDED], CHURN);
	cr_expect_eq(after[MESH_R_IN_AGENT_MAP_FULL] - before[MESH_R_IN_AGENT_MAP_FULL], 0);
	cr_expect_leq(held, CAP);
	cr_expect_gt(held, 0);
	for (int i = 0; i < CHURN; i++) {
		close(afds[i]);
		close(fds[i]);
	}
	for (int i = 0; i < 300 && (left = entries("mesh_in_agent")); i++)
		nanosleep(&nap, NULL);
	cr_expect_eq(left, 0, "%u records outlived their connections", left);
}

/* Pods come and go ten times the map's capacity over: mesh_pods is a plain
 * hash (evicting an enrolled pod would unmesh it silently), reclaimed at
 * every release, so no enrolment fails; and a full map refuses the next
 * enrolment loudly, never by dropping another pod.
 */
Test(churn, pods_come_and_go_ten_times_the_capacity, CHURN_TEST)
{
	const struct dp_pod pod = { .pod_id = 1, .proxy_port = FX_PROXY_PORT, .capture = true };
	unsigned int base = entries("mesh_pods");	/* netns "p" */
	uint64_t cookie = 1u << 30;
	int err;

	for (int i = 0; i < CHURN; i++) {
		/* A few alive at once, as on a busy node. */
		err = dp_pod_upsert(fx.dp, cookie + (uint64_t)i, &pod);
		cr_assert_eq(err, 0, "enrolment %d: %s", i, strerror(-err));
		if (i >= 8) {
			err = dp_pod_del(fx.dp, cookie + (uint64_t)i - 8);
			cr_assert_eq(err, 0, "release %d: %s", i - 8, strerror(-err));
		}
		cr_assert_leq(entries("mesh_pods"), base + 9);
	}
	for (int i = CHURN - 8; i < CHURN; i++)
		cr_assert_eq(dp_pod_del(fx.dp, cookie + (uint64_t)i), 0);
	cr_expect_eq(entries("mesh_pods"), base);

	/* Full: the next one is refused and every enrolled pod stays. */
	for (unsigned int i = base; i < CAP; i++)
		cr_assert_eq(dp_pod_upsert(fx.dp, cookie + i, &pod), 0);
	err = dp_pod_upsert(fx.dp, cookie + CAP, &pod);
	cr_expect_lt(err, 0, "an enrolment past the capacity was accepted");
	cr_log_info("mesh_pods full at %d: the next enrolment fails with %s", CAP,
		    strerror(-err));
	cr_expect_eq(entries("mesh_pods"), CAP);
	cr_expect_eq(dp_pod_lookup(fx.dp, w.cookie, &(struct dp_pod){ 0 }), 0);
}

/* Inbound listeners come and go ten times the capacity of mesh_inbound
 * over: a closed listener leaves the SOCKHASH by itself, so no insertion
 * fails and the map ends as it began.
 */
Test(churn, inbound_listeners_leave_the_map_as_they_close, CHURN_TEST)
{
	struct mesh_listener_key key = { .family = MESH_AF_INET };
	char pin[2 * FX_PATH_MAX];
	unsigned int base = entries("mesh_inbound");
	int mfd, lfd;
	__u64 val;

	snprintf(pin, sizeof(pin), "%s/maps/mesh_inbound", fx.pin_dir);
	mfd = bpf_obj_get(pin);
	cr_assert_geq(mfd, 0, "open '%s': %s", pin, strerror(errno));
	for (int i = 0; i < CHURN; i++) {
		lfd = listen_in_pod((uint16_t)(20000 + i % 8));
		cr_assert_geq(lfd, 0, "listener %d: %s", i, strerror(errno));
		key.netns_cookie = (1ull << 31) + (uint64_t)i;
		val = (__u64)lfd;
		cr_assert_eq(bpf_map_update_elem(mfd, &key, &val, BPF_ANY), 0,
			     "listener %d: %s", i, strerror(errno));
		close(lfd);
	}
	close(mfd);
	cr_log_info("mesh_inbound: %d listeners through %d entries, %u left", CHURN, CAP,
		    entries("mesh_inbound"));
	cr_expect_eq(entries("mesh_inbound"), base);
}
