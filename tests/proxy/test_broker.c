// SPDX-License-Identifier: GPL-2.0-only
/* The socket broker and the workers' sandbox, in-process: the broker's
 * sockets carry the mark of their kind, the transparent flag inbound, and
 * live in the pod's netns; a pod it was not told of (or no longer knows)
 * gets -ENOENT. A thread that entered the sandbox holds no capability, is
 * refused socket(), SO_MARK, new files, executable memory and signals to
 * other processes, and can still bind a client's address on a socket the
 * broker made transparent (the kernel checks the capability at setsockopt()
 * time, not at bind()).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "netns.h"
#include "proxy/broker.h"
#include "proxy/sandbox.h"

#include "../helpers/require.h"
#include "../helpers/tns.h"

#define POD "b"
#define OUT_MARK 0xef70
#define IN_MARK 0xef71
#define KEY 42

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

static int pod_fd = -1, home_fd = -1;
static struct broker *br;

static void setup(void)
{
	struct broker_opts bo = { .mark = OUT_MARK, .inbound_mark = IN_MARK };
	char p[128];

	require_root();
	tns_del_all();
	cr_assert_eq(tns_add(POD), 0);
	pod_fd = open(tns_path(POD, p, sizeof(p)), O_RDONLY | O_CLOEXEC);
	cr_assert_geq(pod_fd, 0);
	home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(home_fd, 0);
	bo.home_netns_fd = home_fd;
	br = broker_new(&bo, 2);
	cr_assert_not_null(br, "broker: %s", strerror(errno));
	cr_assert_eq(broker_pod_add(br, KEY, pod_fd), 0);
}

static void teardown(void)
{
	broker_free(br);
	br = NULL;
	if (pod_fd >= 0)
		close(pod_fd);
	if (home_fd >= 0)
		close(home_fd);
	tns_del_all();
}

TestSuite(broker, .init = setup, .fini = teardown, .timeout = 60);

static int opt_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	cr_assert_eq(getsockopt(fd, level, name, &v, &len), 0, "getsockopt %d/%d: %s", level,
		     name, strerror(errno));
	return v;
}

static uint64_t cookie_of(int fd)
{
	uint64_t c = 0;

	cr_assert_eq(netns_cookie_of(fd, &c), 0);
	return c;
}

/* @n sockets of @kind through worker channel @chan; asserts the reply. */
static int take(unsigned int chan, enum sock_kind kind, int n, struct broker_reply *r)
{
	int fd = broker_chan_fd(br, chan);

	cr_assert_eq(broker_ask(fd, KEY, kind, (unsigned int)n, true), 0);
	cr_assert_eq(broker_recv(fd, true, r), 0);
	cr_assert_eq(r->key, KEY);
	cr_assert_eq(r->kind, kind);
	return r->err;
}

Test(broker, sockets_carry_their_kinds_mark_and_transparent_flag_in_the_pods_netns)
{
	uint64_t pod_cookie, home_cookie;
	int s;

	s = socket(AF_INET, SOCK_STREAM, 0);
	home_cookie = cookie_of(s);
	close(s);
	cr_assert_eq(netns_cookie(pod_fd, &pod_cookie), 0);
	cr_assert_neq(pod_cookie, home_cookie);
	for (int k = 0; k < SK_KINDS; k++) {
		bool in = k == SK_IN4 || k == SK_IN6;
		int family = sock_kind_family(k);
		struct broker_reply r;

		cr_assert_eq(take(k % 2, k, 3, &r), 0, "kind %d: %s", k, strerror(-r.err));
		cr_assert_eq(r.n, 3, "kind %d: %d sockets", k, r.n);
		for (int i = 0; i < r.n; i++) {
			int fd = r.fds[i];

			cr_assert_eq(opt_int(fd, SOL_SOCKET, SO_DOMAIN), family);
			cr_assert_eq(opt_int(fd, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
			cr_assert_eq((uint32_t)opt_int(fd, SOL_SOCKET, SO_MARK),
				     in ? IN_MARK : OUT_MARK, "kind %d", k);
			if (family == AF_INET)
				cr_assert_eq(opt_int(fd, SOL_IP, IP_TRANSPARENT), in, "kind %d", k);
			else
				cr_assert_eq(opt_int(fd, SOL_IPV6, IPV6_TRANSPARENT), in,
					     "kind %d", k);
			cr_assert_eq(cookie_of(fd), pod_cookie, "kind %d: not in the pod's netns", k);
			cr_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
			cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
			close(fd);
		}
	}
}

Test(broker, more_than_a_batch_is_cut_to_a_batch)
{
	struct broker_reply r;

	cr_assert_eq(take(0, SK_OUT4, 100, &r), 0);
	cr_assert_eq(r.n, BROKER_BATCH);
	while (r.n)
		close(r.fds[--r.n]);
}

Test(broker, a_pod_it_does_not_know_gets_enoent)
{
	struct broker_reply r;
	int chan = broker_chan_fd(br, 1);

	cr_assert_eq(broker_ask(chan, KEY + 1, SK_OUT4, 2, true), 0);
	cr_assert_eq(broker_recv(chan, true, &r), 0);
	cr_assert_eq(r.err, -ENOENT);
	cr_assert_eq(r.n, 0);
	broker_pod_del(br, KEY);
	cr_assert_eq(take(1, SK_OUT4, 2, &r), -ENOENT);
	cr_assert_eq(r.n, 0);
}

/* ---------------------------------------------------------------- sandbox */

struct jail {
	int in_fd, out_fd;	/* broker sockets: SK_IN4, SK_OUT4 */
	pid_t tid;
	int entered;
	int sock_errno, open_errno, mark_errno, exec_errno, bind_in, bind_out_errno;
	int signal_errno;	/* a signal to another process (0: none sent) */
	pthread_barrier_t looked;	/* the test read our /proc status */
	pthread_barrier_t done;
};

static void *jailed(void *arg)
{
	struct jail *j = arg;
	struct sockaddr_in client = { .sin_family = AF_INET, .sin_port = htons(61001) };
	uint32_t mark = 1;
	void *p;
	int fd;

	j->tid = (pid_t)syscall(SYS_gettid);
	j->entered = sandbox_enter_worker();
	pthread_barrier_wait(&j->done);
	if (j->entered)
		return NULL;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	j->sock_errno = fd == -1 ? errno : 0;
	if (fd >= 0)
		close(fd);
	fd = open("/proc/self/status", O_RDONLY);
	j->open_errno = fd == -1 ? errno : 0;
	if (fd >= 0)
		close(fd);
	j->mark_errno = setsockopt(j->in_fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) ? errno : 0;
	p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	j->exec_errno = p == MAP_FAILED ? errno : 0;
	if (p != MAP_FAILED)
		munmap(p, 4096);
	j->signal_errno = syscall(SYS_tgkill, getppid(), getppid(), 0) ? errno : 0;
	/* A client's address, not the pod's. */
	inet_pton(AF_INET, "198.18.77.7", &client.sin_addr);
	j->bind_in = bind(j->in_fd, (struct sockaddr *)&client, sizeof(client)) ? errno : 0;
	j->bind_out_errno =
		bind(j->out_fd, (struct sockaddr *)&client, sizeof(client)) ? errno : 0;
	pthread_barrier_wait(&j->looked);
	return NULL;
}

static void status_line(pid_t tid, const char *key, char *out, size_t len)
{
	char path[96], line[256];
	size_t kl = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	out[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			snprintf(out, len, "%s", line + kl + 1 + strspn(line + kl + 1, " \t"));
			out[strcspn(out, "\n")] = 0;
		}
	}
	fclose(f);
	cr_assert_neq(out[0], 0, "no %s in %s", key, path);
}

Test(broker, a_sandboxed_thread_holds_nothing_yet_binds_a_clients_address_on_a_broker_socket)
{
	static const char *const zero[] = { "CapEff", "CapPrm", "CapInh", "CapAmb" };
	struct jail j = { 0 };
	struct broker_reply r;
	pthread_t t;
	char v[64];

	cr_assert_eq(take(0, SK_IN4, 1, &r), 0);
	j.in_fd = r.fds[0];
	cr_assert_eq(take(0, SK_OUT4, 1, &r), 0);
	j.out_fd = r.fds[0];
	pthread_barrier_init(&j.done, NULL, 2);
	pthread_barrier_init(&j.looked, NULL, 2);
	cr_assert_eq(pthread_create(&t, NULL, jailed, &j), 0);
	pthread_barrier_wait(&j.done);
	cr_assert_eq(j.entered, 0, "sandbox_enter_worker: %s", strerror(-j.entered));
	for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++) {
		status_line(j.tid, zero[i], v, sizeof(v));
		cr_expect_str_eq(v, "0000000000000000", "%s", zero[i]);
	}
	status_line(j.tid, "NoNewPrivs", v, sizeof(v));
	cr_expect_str_eq(v, "1");
	status_line(j.tid, "Seccomp", v, sizeof(v));
	cr_expect_str_eq(v, "2");
	/* This thread is untouched. */
	status_line((pid_t)syscall(SYS_gettid), "Seccomp", v, sizeof(v));
	cr_expect_str_eq(v, "0");
	status_line((pid_t)syscall(SYS_gettid), "CapEff", v, sizeof(v));
	cr_expect_str_neq(v, "0000000000000000");
	pthread_barrier_wait(&j.looked);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&j.done);
	pthread_barrier_destroy(&j.looked);
	cr_expect_eq(j.sock_errno, EPERM, "socket(): %s", strerror(j.sock_errno));
	cr_expect_eq(j.open_errno, EPERM, "open(): %s", strerror(j.open_errno));
	cr_expect_eq(j.mark_errno, EPERM, "SO_MARK: %s", strerror(j.mark_errno));
	cr_expect_eq(j.exec_errno, EPERM, "mmap(PROT_EXEC): %s", strerror(j.exec_errno));
	cr_expect_eq(j.signal_errno, EPERM, "tgkill(parent): %s", strerror(j.signal_errno));
	cr_expect_eq(j.bind_in, 0, "bind of a client's address on a transparent socket: %s",
		     strerror(j.bind_in));
	/* Without the flag the same bind is refused: the flag is what allows it. */
	cr_expect_eq(j.bind_out_errno, EADDRNOTAVAIL, "bind on a plain socket: %s",
		     strerror(j.bind_out_errno));
	close(j.in_fd);
	close(j.out_fd);
}
