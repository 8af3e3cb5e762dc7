// SPDX-License-Identifier: GPL-2.0-only
/* Upgrades and crashes under load (docs/lifecycle.md): a client in pod a
 * opening a few hundred new connections a second to the web VIP and a few
 * long-lived ECHO streams, while the agent is replaced again and again:
 *  - by a hand-over (a successor with --takeover, a different --workers each
 *    time): no new connection may fail and every stream must finish whole,
 *    each old agent drains and exits cleanly (no leak under ASan), and no fd
 *    or pin is left behind;
 *  - by hand-overs whose drain deadline is shorter than the streams: every
 *    opaque stream (one stalling, so bytes are in flight; one half-closed)
 *    is passed to each successor and checked byte for byte, an HTTP request
 *    in progress stays with the old agent, and a successor that does not
 *    take connections leaves them to drain;
 *  - by kill -9 and a successor started at once: new connections fail while
 *    no agent listens, fast (refused, never a hang) and never bypassing the
 *    mesh; the figures are printed.
 * Rounds: $WEFT_UPGRADE_ROUNDS (`make test` runs a few, `make
 * test-upgrade-long` the full 20).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/types.h>
#include <bpf/bpf.h>

#include <json-c/json.h>

#include "abi.h"
#include "fixture.h"
#include "proc.h"
#include "servers.h"
#include "sock.h"
#include "tns.h"

#define VIP "198.19.0.10:80"
#define STREAMS 4
#define STREAM_MS 1500		/* a stream's life: it outlives a hand-over */
#define STREAM_TICK_MS 50
#define ROUNDS_DEFAULT 4
#define ROUNDS_MAX 100
/* A failed connection must fail at once: refused, not left hanging. */
#define FAIL_FAST_MS 1000

/* --drain-seconds 5 (the tests' default) outlasts every stream. */
TestSuite(upgrade, .init = fixture_up_two_workers,
	  .fini = fixture_down_with_backends, .timeout = 600);
/* Pinned maps exist in eBPF mode only: once, in the first (eBPF) pass. */
TestSuite(maps_upgrade, .init = fixture_up_two_workers,
	  .fini = fixture_down_with_backends, .timeout = 120);

static int rounds(void)
{
	const char *v = getenv("WEFT_UPGRADE_ROUNDS");
	int n = v ? atoi(v) : ROUNDS_DEFAULT;

	return n < 1 ? 1 : n > ROUNDS_MAX ? ROUNDS_MAX : n;
}

/* ------------------------------------------------------------ the load */

struct report {
	long attempts, ok, failed, slow_failures, bypassed;
	long streams_ok, streams_failed;	/* failed: broken once established */
	long streams_unopened;			/* the connect itself failed */
	long max_fail_ms;
	int first_err;
};

static bool stop_asked(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* New connections, one IDENT each, about every 3 ms. */
static void churn(int stop_fd, struct report *r)
{
	char out[256];

	while (!stop_asked(stop_fd)) {
		uint64_t t0 = tproc_now_ms();
		int err = tsock_ident(NULL, VIP, out, sizeof(out));
		long ms = (long)(tproc_now_ms() - t0);

		r->attempts++;
		if (!err && !strncmp(out, "web-", 4)) {
			r->ok++;
		} else if (!err) {
			r->bypassed++;
		} else {
			r->failed++;
			if (!r->first_err)
				r->first_err = err;
			if (ms > r->max_fail_ms)
				r->max_fail_ms = ms;
			if (ms > FAIL_FAST_MS)
				r->slow_failures++;
		}
		usleep(3000);
	}
}

/* One ECHO stream: a byte every tick for STREAM_MS, each echoed, then the
 * server's "BYE <count>" after our half-close. 0 or -errno.
 */
static int stream_once(void)
{
	char buf[64];
	int fd = tsock_connect(NULL, VIP, 2000), sent = 0;
	uint64_t end;
	ssize_t n;

	if (fd < 0)
		return -ENOTCONN;
	if (write(fd, "ECHO\n", 5) != 5)
		goto fail;
	end = tproc_now_ms() + STREAM_MS;
	while (tproc_now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (write(fd, "x", 1) != 1)
			goto fail;
		sent++;
		if (poll(&p, 1, 2000) != 1 || read(fd, buf, 1) != 1 || buf[0] != 'x')
			goto fail;
		usleep(STREAM_TICK_MS * 1000);
	}
	shutdown(fd, SHUT_WR);
	n = tsock_request(fd, "", buf, sizeof(buf), 3000);
	close(fd);
	if (n <= 0)
		return -EPIPE;
	/* ECHO counts its own line's bytes or not: what matters is the BYE. */
	return strncmp(buf, "BYE ", 4) ? -EBADMSG : 0;
fail:
	close(fd);
	return -ECONNRESET;
}

static void streams(int stop_fd, struct report *r)
{
	while (!stop_asked(stop_fd)) {
		int err = stream_once();

		if (err == -ENOTCONN) {
			r->streams_unopened++;
			usleep(20000);
		} else if (err) {
			r->streams_failed++;
			if (!r->first_err)
				r->first_err = err;
		} else {
			r->streams_ok++;
		}
	}
}

struct load {
	pid_t pid[1 + STREAMS];
	int stop_w, report_r[1 + STREAMS];
};

static void load_start(struct load *l)
{
	int stop[2];

	cr_assert_eq(pipe2(stop, O_CLOEXEC), 0);
	for (int i = 0; i < 1 + STREAMS; i++) {
		int rep[2];

		cr_assert_eq(pipe2(rep, O_CLOEXEC), 0);
		l->pid[i] = fork();
		cr_assert_geq(l->pid[i], 0);
		if (l->pid[i] == 0) {
			struct report r = { 0 };

			close(stop[1]);
			close(rep[0]);
			if (tns_enter("a"))
				_exit(3);
			if (i == 0)
				churn(stop[0], &r);
			else
				streams(stop[0], &r);
			_exit(write(rep[1], &r, sizeof(r)) == sizeof(r) ? 0 : 2);
		}
		close(rep[1]);
		l->report_r[i] = rep[0];
	}
	close(stop[0]);
	l->stop_w = stop[1];
}

static struct report load_stop(struct load *l)
{
	struct report sum = { 0 };

	close(l->stop_w);
	for (int i = 0; i < 1 + STREAMS; i++) {
		struct report r;
		int status;

		cr_assert_eq(read(l->report_r[i], &r, sizeof(r)), (ssize_t)sizeof(r),
			     "load process %d reported nothing", i);
		close(l->report_r[i]);
		cr_assert_eq(waitpid(l->pid[i], &status, 0), l->pid[i]);
		sum.attempts += r.attempts;
		sum.ok += r.ok;
		sum.failed += r.failed;
		sum.slow_failures += r.slow_failures;
		sum.bypassed += r.bypassed;
		sum.streams_ok += r.streams_ok;
		sum.streams_failed += r.streams_failed;
		sum.streams_unopened += r.streams_unopened;
		if (r.max_fail_ms > sum.max_fail_ms)
			sum.max_fail_ms = r.max_fail_ms;
		if (!sum.first_err)
			sum.first_err = r.first_err;
	}
	return sum;
}

/* ------------------------------------------------------------ the agents */

/* Start a successor with @extra options and wait until it answers the admin
 * API itself (it binds admin.sock once its predecessor released it). The
 * previous agent's pid goes to *@prev.
 */
static void successor_start(const char *extra, pid_t *prev)
{
	uint64_t until;

	*prev = env.agent;
	env.agent = 0;
	snprintf(env.extra_args, sizeof(env.extra_args), "%s", extra);
	cr_assert_eq(tenv_agent_start(&env), 0, "successor did not start, see %s", env.agent_log);
	until = tproc_now_ms() + 15000;
	while (tenv_admin_pid(&env) != env.agent) {
		cr_assert_lt(tproc_now_ms(), until, "the successor never took over, see %s",
			     env.agent_log);
		usleep(20000);
	}
}

/* Reap agent @pid (draining, or already gone); assert a clean exit within
 * @within_ms.
 */
static void reap_clean(pid_t pid, unsigned int within_ms)
{
	uint64_t until = tproc_now_ms() + within_ms;
	int status;

	while (waitpid(pid, &status, WNOHANG) != pid) {
		if (tproc_now_ms() > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			cr_assert_fail("agent %d did not drain and exit in %u ms, see %s", pid,
				       within_ms, env.agent_log);
		}
		usleep(20000);
	}
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "old agent %d exited with status %#x (leaks?), see %s", pid, status,
		  env.agent_log);
}

static int count_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char sub[PATH_MAX + 256];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n++;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR)
			n += count_tree(sub);
	}
	closedir(d);
	return n;
}

static int agent_fds(pid_t pid)
{
	char dir[64];

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	return count_tree(dir);
}

static const char *const workers_of_round[] = { "1", "3", "2" };

Test(upgrade, handover_under_load_refuses_nothing_and_drains_streams)
{
	int n = rounds(), pins0 = count_tree(env.bpffs), fds0 = agent_fds(env.agent), fds1;
	struct load l;
	struct report r;

	if (tenv_mode_is("ebpf"))
		cr_assert_gt(pins0, 0, "nothing pinned under %s", env.bpffs);
	load_start(&l);
	usleep(500000);
	for (int i = 0; i < n; i++) {
		char extra[64];
		pid_t prev;

		/* The last round goes back to the first agent's 2 workers, so
		 * that fd counts compare.
		 */
		snprintf(extra, sizeof(extra), "--takeover --workers %s",
			 i == n - 1 ? "2" : workers_of_round[i % 3]);
		successor_start(extra, &prev);
		/* Let the old agent drain while the next round starts. */
		usleep(300000);
		reap_clean(prev, 8000);
	}
	usleep(500000);
	r = load_stop(&l);
	fprintf(stderr, "upgrade: %d hand-overs: %ld of %ld new connections failed; %ld of %ld streams broken\n",
		n, r.failed, r.attempts, r.streams_failed, r.streams_ok + r.streams_failed);
	cr_assert_gt(r.attempts, 100L * n, "the load made too few connections: %ld", r.attempts);
	cr_expect_eq(r.failed, 0, "%ld of %ld new connections failed across %d hand-overs (first %d: %s)",
		     r.failed, r.attempts, n, r.first_err, strerror(-r.first_err));
	cr_expect_eq(r.bypassed, 0, "answers from outside the mesh");
	cr_expect_eq(r.streams_failed + r.streams_unopened, 0,
		     "%ld streams broken, %ld not opened across %d hand-overs", r.streams_failed,
		     r.streams_unopened, n);
	cr_expect_geq(r.streams_ok, STREAMS, "no stream finished");
	/* Nothing accumulates: the last agent (--workers 1, 3 or 2) holds about
	 * what the first one did (±1 per listener share), plus what the load
	 * left warm and the first agent, measured before any, did not have:
	 * each of its 2 workers' ready sockets from the broker (BROKER_BATCH, 8,
	 * for the one kind used, IPv4 outbound). No pin is left.
	 */
	fds1 = agent_fds(env.agent);
	cr_expect_leq(fds1, fds0 + 16 + 2 * 8, "agent fds %d after %d hand-overs, %d before", fds1,
		      n, fds0);
	cr_expect_eq(count_tree(env.bpffs), pins0, "pins changed over the hand-overs");
}

/* ------------------------------------------------------------ passed streams */

/* Long-lived opaque streams that must outlive the old agents' drain
 * deadline: passed to each successor with their bytes in flight
 * (docs/lifecycle.md), never reset, not a byte lost or repeated.
 */
#define PASS_STREAMS 4
#define PASS_CHUNK 1400		/* bytes a stream writes per tick */
#define PASS_TICK_US 10000
#define DRIP_RATE 200		/* bytes per ms of the half-closed stream */

struct stream_report {
	uint64_t sent;		/* bytes the client sent (ECHO) or DRIP promised */
	uint64_t verified;	/* bytes received back, in order, compared */
	long resets;		/* the stream broke: an error, or EOF too early */
	long mismatches;	/* bytes that differed from the pattern */
	long count_wrong;	/* the server's BYE count, or DRIP's length, differed */
	int err;
};

/* Compare what arrived in @buf[0..@n) with the pattern at r->verified; past
 * r->sent (@limit true) the bytes go to @tail (the BYE line).
 */
static void check_bytes(struct stream_report *r, const char *buf, size_t n, bool limit,
			char *tail, size_t *tail_len, size_t tail_max)
{
	for (size_t i = 0; i < n; i++) {
		if (!limit || r->verified < r->sent) {
			if ((unsigned char)buf[i] != tsrv_pattern(r->verified))
				r->mismatches++;
			r->verified++;
		} else if (*tail_len + 1 < tail_max) {
			tail[(*tail_len)++] = buf[i];
		}
	}
}

/* An ECHO stream writing the pattern without pause (a chunk a tick) and
 * checking every byte echoed, until @stop_fd; then the half-close and the
 * server's count. A @stalling stream writes ten times faster and reads only
 * one period (STALL_MS) in two: the buffers and the proxy's pipes fill up
 * both ways, so hand-overs find bytes in flight.
 */
#define STALL_MS 400
static void echo_stream(int stop_fd, struct stream_report *r, bool stalling)
{
	char out[PASS_CHUNK * 10], in[65536], tail[64], want[64];
	size_t tail_len = 0, chunk = stalling ? sizeof(out) : PASS_CHUNK;
	uint64_t until;
	int fd = tsock_connect(NULL, VIP, 2000);
	ssize_t n;

	if (fd < 0 || write(fd, "ECHO\n", 5) != 5) {
		r->resets++;
		r->err = fd < 0 ? fd : -EIO;
		goto out;
	}
	if (stalling) {
		/* Small and fixed (no autotuning): the backlog stays in the proxy. */
		int sz = 16384;

		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	while (!stop_asked(stop_fd)) {
		for (size_t i = 0; i < chunk; i++)
			out[i] = (char)tsrv_pattern(r->sent + i);
		n = send(fd, out, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0)
			r->sent += (uint64_t)n;
		else if (n == -1 && errno != EAGAIN)
			goto broken;
		if (stalling && (tproc_now_ms() / STALL_MS) % 2) {
			usleep(PASS_TICK_US);
			continue;
		}
		while ((n = recv(fd, in, sizeof(in), MSG_DONTWAIT)) > 0)
			check_bytes(r, in, (size_t)n, true, tail, &tail_len, sizeof(tail));
		if (n == 0 || (n == -1 && errno != EAGAIN))
			goto broken;
		usleep(PASS_TICK_US);
	}
	shutdown(fd, SHUT_WR);
	until = tproc_now_ms() + 5000;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (tproc_now_ms() > until || poll(&p, 1, 1000) < 0)
			goto broken;
		n = recv(fd, in, sizeof(in), MSG_DONTWAIT);
		if (n == -1 && errno == EAGAIN)
			continue;
		if (n <= 0)
			break;
		check_bytes(r, in, (size_t)n, true, tail, &tail_len, sizeof(tail));
	}
	if (n < 0)
		goto broken;
	tail[tail_len] = '\0';
	snprintf(want, sizeof(want), "BYE %llu\n", (unsigned long long)r->sent);
	if (r->verified != r->sent || strcmp(tail, want))
		r->count_wrong++;
	goto out;
broken:
	r->resets++;
	r->err = -errno ?: -ECONNRESET;
out:
	if (fd >= 0)
		close(fd);
}

/* A DRIP stream the client half-closed at once: the server's bytes go on
 * arriving for @ms across hand-overs, checked to the last, then EOF.
 */
static void drip_stream(uint64_t ms, struct stream_report *r)
{
	char cmd[64], in[65536], tail[1];
	size_t tail_len = 0;
	int fd = tsock_connect(NULL, VIP, 2000), len;
	ssize_t n = -1;

	r->sent = ms * DRIP_RATE;
	len = snprintf(cmd, sizeof(cmd), "DRIP %llu %llu\n", (unsigned long long)r->sent,
		       (unsigned long long)ms);
	if (fd < 0 || write(fd, cmd, (size_t)len) != len || shutdown(fd, SHUT_WR)) {
		r->resets++;
		r->err = fd < 0 ? fd : -EIO;
		goto out;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		/* DRIP writes every 20 ms: 3 s of silence is a stall. */
		if (poll(&p, 1, 3000) != 1) {
			n = -1;
			errno = ETIMEDOUT;
			break;
		}
		n = recv(fd, in, sizeof(in), 0);
		if (n <= 0)
			break;
		check_bytes(r, in, (size_t)n, false, tail, &tail_len, sizeof(tail));
	}
	if (n < 0) {
		r->resets++;
		r->err = -errno;
	} else if (r->verified != r->sent) {
		r->count_wrong++;
	}
out:
	if (fd >= 0)
		close(fd);
}

struct pass_load {
	pid_t pid[PASS_STREAMS + 1];
	int stop_w, report_r[PASS_STREAMS + 1];
};

/* PASS_STREAMS ECHO streams and one DRIP stream of @drip_ms from pod a. */
static void pass_load_start(struct pass_load *l, uint64_t drip_ms)
{
	int stop[2];

	cr_assert_eq(pipe2(stop, O_CLOEXEC), 0);
	for (int i = 0; i <= PASS_STREAMS; i++) {
		int rep[2];

		cr_assert_eq(pipe2(rep, O_CLOEXEC), 0);
		l->pid[i] = fork();
		cr_assert_geq(l->pid[i], 0);
		if (l->pid[i] == 0) {
			struct stream_report r = { 0 };

			close(stop[1]);
			close(rep[0]);
			if (tns_enter("a"))
				_exit(3);
			if (i == PASS_STREAMS)
				drip_stream(drip_ms, &r);
			else
				echo_stream(stop[0], &r, i == 0);
			_exit(write(rep[1], &r, sizeof(r)) == sizeof(r) ? 0 : 2);
		}
		close(rep[1]);
		l->report_r[i] = rep[0];
	}
	close(stop[0]);
	l->stop_w = stop[1];
}

static struct stream_report pass_load_stop(struct pass_load *l)
{
	struct stream_report sum = { 0 };

	close(l->stop_w);
	for (int i = 0; i <= PASS_STREAMS; i++) {
		struct stream_report r;
		int status;

		cr_assert_eq(read(l->report_r[i], &r, sizeof(r)), (ssize_t)sizeof(r),
			     "stream %d reported nothing", i);
		close(l->report_r[i]);
		cr_assert_eq(waitpid(l->pid[i], &status, 0), l->pid[i]);
		sum.sent += r.sent;
		sum.verified += r.verified;
		sum.resets += r.resets;
		sum.mismatches += r.mismatches;
		sum.count_wrong += r.count_wrong;
		if (!sum.err)
			sum.err = r.err;
	}
	return sum;
}

/* The current agent's connections that a predecessor passed (/v1/conns),
 * and how many of them are half-closed and how many HTTP.
 */
static int handed_over_conns(int *half_closed, int *http)
{
	/* The most the API lists: the idle connections of the long run too. */
	json_object *o = tenv_admin_get(&env, "/v1/conns?limit=10000"), *arr, *c, *v;
	int n = 0;

	cr_assert_not_null(o, "GET /v1/conns failed");
	cr_assert(json_object_object_get_ex(o, "truncated", &v) && !json_object_get_boolean(v),
		  "/v1/conns truncated its list");
	if (half_closed)
		*half_closed = 0;
	if (http)
		*http = 0;
	cr_assert(json_object_object_get_ex(o, "conns", &arr));
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		c = json_object_array_get_idx(arr, i);
		if (!json_object_object_get_ex(c, "handed_over", &v) || !json_object_get_boolean(v))
			continue;
		n++;
		if (half_closed && json_object_object_get_ex(c, "state", &v) &&
		    !strcmp(json_object_get_string(v), "half-closed"))
			(*half_closed)++;
		if (http && json_object_object_get_ex(c, "protocol", &v) &&
		    !strcmp(json_object_get_string(v), "http"))
			(*http)++;
	}
	json_object_put(o);
	return n;
}

/* Idle ECHO connections held open across the hand-overs of the passed
 * streams test, each checked with one byte at the end: how long passing
 * many takes. $WEFT_UPGRADE_IDLE_CONNS (`make test-upgrade-long`: 1000;
 * default none).
 */
#define IDLE_CONNS_MAX 4000
static int idle_conns(void)
{
	const char *v = getenv("WEFT_UPGRADE_IDLE_CONNS");
	int n = v ? atoi(v) : 0;

	return n < 0 ? 0 : n > IDLE_CONNS_MAX ? IDLE_CONNS_MAX : n;
}

struct idle_report {
	long opened, ok;
};

struct idle_load {
	pid_t pid;
	int stop_w, report_r;
};

static void idle_hold(int n, int stop_fd, int rep_fd)
{
	struct rlimit rl;
	struct idle_report r = { 0 };
	int *fds = calloc((size_t)n, sizeof(int));
	char c = 1;

	if (!fds || getrlimit(RLIMIT_NOFILE, &rl) || (rl.rlim_cur = rl.rlim_max, 0) ||
	    setrlimit(RLIMIT_NOFILE, &rl) || tns_enter("a"))
		_exit(3);
	for (int i = 0; i < n; i++) {
		fds[i] = tsock_connect(NULL, VIP, 2000);
		if (fds[i] >= 0 && write(fds[i], "ECHO\n", 5) == 5)
			r.opened++;
	}
	/* Open: the hand-overs may begin. */
	if (write(rep_fd, &c, 1) != 1)
		_exit(2);
	while (!stop_asked(stop_fd))
		usleep(20000);
	for (int i = 0; i < n; i++) {
		char b[2] = "";

		if (fds[i] < 0)
			continue;
		if (tsock_request(fds[i], "z", b, sizeof(b), 2000) == 1 && b[0] == 'z')
			r.ok++;
		close(fds[i]);
	}
	_exit(write(rep_fd, &r, sizeof(r)) == sizeof(r) ? 0 : 2);
}

/* Open @n idle connections from pod a (none for 0) and wait until they are. */
static void idle_start(struct idle_load *l, int n)
{
	int stop[2], rep[2];
	char c;

	l->pid = 0;
	if (!n)
		return;
	cr_assert_eq(pipe2(stop, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(rep, O_CLOEXEC), 0);
	l->pid = fork();
	cr_assert_geq(l->pid, 0);
	if (l->pid == 0) {
		close(stop[1]);
		close(rep[0]);
		idle_hold(n, stop[0], rep[1]);
	}
	close(stop[0]);
	close(rep[1]);
	l->stop_w = stop[1];
	l->report_r = rep[0];
	cr_assert_eq(read(l->report_r, &c, 1), 1, "the idle connections did not open");
}

static struct idle_report idle_stop(struct idle_load *l)
{
	struct idle_report r = { 0 };
	int status;

	if (!l->pid)
		return r;
	close(l->stop_w);
	cr_assert_eq(read(l->report_r, &r, sizeof(r)), (ssize_t)sizeof(r),
		     "the idle connections reported nothing");
	close(l->report_r);
	cr_assert_eq(waitpid(l->pid, &status, 0), l->pid);
	return r;
}

/* Small TCP buffers in pod a's netns (the client's sockets and the
 * proxy's there), so the backlog of a stalling stream fills the proxy's
 * pipes instead of socket buffers autotuned to megabytes. Only in this
 * test's own netns.
 */
static void pod_a_small_buffers(void)
{
	static const char *const files[] = { "/proc/sys/net/ipv4/tcp_wmem",
					     "/proc/sys/net/ipv4/tcp_rmem" };
	int status;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (tns_enter("a"))
			_exit(3);
		for (size_t i = 0; i < 2; i++) {
			FILE *f = fopen(files[i], "w");

			if (!f || fputs("4096 16384 65536\n", f) < 0 || fclose(f))
				_exit(4);
		}
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status), "set pod a's TCP buffers: %#x",
		  status);
}

/* Besides the streams, an HTTP request whose head is half read at the
 * first hand-over: HTTP-aware, so the old agent keeps it and serves it to
 * its end while it drains.
 */
Test(upgrade, handover_passes_established_streams_whole)
{
	static const char head[] = "GET / HTTP/1.1\r\nHost: web\r\n";
	int n = rounds(), half = 0, http = 0, listed, hfd;
	ssize_t hn;
	/* Alive through (nearly) every hand-over: a sanitizer agent takes
	 * about a second to start and take over, two with a thousand idle
	 * connections to adopt.
	 */
	uint64_t drip_ms = 2000 + (idle_conns() ? 2000 : 1000) * (uint64_t)n, drip_end, t0;
	char out[4096];
	struct pass_load l;
	struct stream_report r;
	struct idle_load il;
	struct idle_report ir;

	pod_a_small_buffers();
	idle_start(&il, idle_conns());
	pass_load_start(&l, drip_ms);
	t0 = tproc_now_ms();
	drip_end = t0 + drip_ms;
	hfd = tsock_connect("a", VIP, 2000);
	cr_assert_geq(hfd, 0, "connect: %s", strerror(-hfd));
	cr_assert_eq(write(hfd, head, sizeof(head) - 1), (ssize_t)sizeof(head) - 1);
	usleep(300000);
	for (int i = 0; i < n; i++) {
		char extra[96];
		pid_t prev;

		/* --drain-seconds 1: a stream not passed would be reset at the
		 * next hand-over's deadline, long before it ends.
		 */
		snprintf(extra, sizeof(extra), "--takeover --drain-seconds 1 --workers %s",
			 workers_of_round[i % 3]);
		successor_start(extra, &prev);
		listed = handed_over_conns(&half, &http);
		cr_expect_geq(listed, PASS_STREAMS, "round %d: the successor lists %d passed connections",
			      i, listed);
		cr_expect_eq(http, 0, "round %d: an HTTP connection was passed", i);
		if (tproc_now_ms() + 500 < drip_end)
			cr_expect_geq(half, 1, "round %d: the half-closed stream is not listed", i);
		if (i == 0) {
			hn = tsock_request(hfd, "\r\n", out, sizeof(out), 3000);
			close(hfd);
			cr_expect_gt(hn, 0, "no response from the draining agent");
			cr_expect(hn > 0 && !strncmp(out, "HTTP/1.1 200", 12), "got '%.40s'", out);
		}
		/* Nothing is left to drain: the old agent exits at once. */
		reap_clean(prev, 3000);
		usleep(200000);
	}
	cr_expect_geq(tenv_status_counter(&env, "connections.passed_in"), PASS_STREAMS);
	t0 = tproc_now_ms() - t0;
	r = pass_load_stop(&l);
	ir = idle_stop(&il);
	cr_expect_eq(ir.ok, idle_conns(), "%ld of %d idle connections (%ld opened) answered after the hand-overs",
		     ir.ok, idle_conns(), ir.opened);
	fprintf(stderr, "upgrade: %d hand-overs in %llu ms with --drain-seconds 1: %d streams of %llu bytes (%llu verified): %ld reset, %ld bytes wrong, %ld counts wrong\n",
		n, (unsigned long long)t0, PASS_STREAMS + 1, (unsigned long long)r.sent,
		(unsigned long long)r.verified, r.resets, r.mismatches, r.count_wrong);
	/* The figures of each hand-over, from the old agents' logs. */
	out[0] = '\0';
	(void)tenv_capture(out, sizeof(out),
			   "grep -oE '(passed [0-9]* established connection\\(s\\) to the successor in [0-9]* us \\([0-9]* bytes in flight)|(relaying [0-9]* established .* in [0-9]* us)' %s",
			   env.agent_log);
	fprintf(stderr, "%s", out);
	cr_expect_eq(r.resets, 0, "%ld streams broke (first error %d: %s)", r.resets, r.err,
		     strerror(-r.err));
	cr_expect_eq(r.mismatches, 0, "%ld bytes differed", r.mismatches);
	cr_expect_eq(r.count_wrong, 0, "%ld streams ended with a wrong count", r.count_wrong);
	cr_expect_eq(r.verified, r.sent, "%llu bytes sent, %llu came back",
		     (unsigned long long)r.sent, (unsigned long long)r.verified);
	cr_expect_gt(r.sent, 0);
}

/* A successor that does not take connections (an earlier version, or
 * --no-pass-connections) gets none: the old agent drains them as before.
 */
Test(upgrade, a_successor_that_takes_no_connections_leaves_them_to_drain)
{
	char out[64];
	pid_t prev;
	int fd;

	fd = tsock_connect("a", VIP, 2000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(write(fd, "ECHO\nabc", 8), 8);
	cr_assert_eq(tsock_request(fd, "", out, 4, 2000), 3);
	successor_start("--takeover --no-pass-connections", &prev);
	cr_expect_eq(handed_over_conns(NULL, NULL), 0, "a connection was passed");
	usleep(300000);
	cr_assert_eq(kill(prev, 0), 0, "the old agent did not drain the stream");
	cr_assert_eq(tsock_request(fd, "def", out, 4, 2000), 3, "the stream broke");
	cr_expect_eq(memcmp(out, "def", 3), 0);
	shutdown(fd, SHUT_WR);
	cr_assert_gt(tsock_request(fd, "", out, sizeof(out), 3000), 0);
	cr_expect(!strncmp(out, "BYE 6", 5), "got '%s'", out);
	close(fd);
	reap_clean(prev, 3000);
}

Test(upgrade, sigterm_drains_established_streams)
{
	pid_t prev = env.agent;
	char out[256];
	int fd, err;

	fd = tsock_connect("a", VIP, 2000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(write(fd, "ECHO\n", 5), 5);
	kill(prev, SIGTERM);
	usleep(300000);
	/* The stream goes on while the agent drains... */
	cr_assert_eq(write(fd, "abc", 3), 3);
	cr_assert_eq(tsock_request(fd, "", out, 4, 2000), 3, "the stream broke at SIGTERM");
	cr_assert_eq(memcmp(out, "abc", 3), 0);
	/* ...and a new connection is refused at once: no listener, no bypass. */
	err = tsock_ident("a", VIP, out, sizeof(out));
	cr_assert_eq(err, -ECONNREFUSED, "a new connection while draining got %d", err);
	shutdown(fd, SHUT_WR);
	cr_assert_gt(tsock_request(fd, "", out, sizeof(out), 3000), 0);
	cr_assert(!strncmp(out, "BYE", 3), "got '%s'", out);
	close(fd);
	/* Its last connection ended: the agent exits long before the deadline. */
	env.agent = 0;
	reap_clean(prev, 3000);
	cr_assert_eq(tenv_agent_start(&env), 0, "restart, see %s", env.agent_log);
}

Test(upgrade, kill9_with_a_successor_fails_fast_and_never_bypasses)
{
	int n = rounds(), pins0 = count_tree(env.bpffs);
	struct load l;
	struct report r;

	load_start(&l);
	usleep(500000);
	for (int i = 0; i < n; i++) {
		tproc_kill(env.agent);
		env.agent = 0;
		snprintf(env.extra_args, sizeof(env.extra_args), "--workers %s",
			 workers_of_round[i % 3]);
		cr_assert_eq(tenv_agent_start(&env), 0, "restart %d, see %s", i, env.agent_log);
		usleep(300000);
	}
	usleep(500000);
	r = load_stop(&l);
	fprintf(stderr, "upgrade: kill -9 x%d: %ld of %ld new connections failed, slowest failure %ld ms; %ld of %ld streams broken\n",
		n, r.failed, r.attempts, r.max_fail_ms, r.streams_failed,
		r.streams_ok + r.streams_failed);
	cr_expect_eq(r.slow_failures, 0, "%ld failures took over %d ms (slowest %ld)",
		     r.slow_failures, FAIL_FAST_MS, r.max_fail_ms);
	cr_expect_eq(r.bypassed, 0, "answers from outside the mesh");
	cr_expect_gt(r.ok, 0);
	cr_expect_eq(count_tree(env.bpffs), pins0, "pins changed over the restarts");
}

/* ------------------------------------------------------------ map layouts */

/* An agent of an older version pinned mesh_pods with the value of before
 * inbound capture (20 bytes shorter). The agent migrates it instead of
 * refusing to start: a new map of today's layout, the entries copied over
 * (their common prefix, the new fields zero), the programs swapped, the old
 * pin gone, the pods' traffic captured as before.
 */
Test(maps_upgrade, a_pinned_map_of_an_older_layout_is_migrated)
{
	const uint32_t old_vsize = sizeof(struct mesh_pod) - 20;
	char pin[PATH_MAX + 32], old_pin[PATH_MAX + 40], out[256], cmd_out[256];
	unsigned char key[8], next[8], val[sizeof(struct mesh_pod)];
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	int cur, old, n = 0, rc;
	void *prev = NULL;

	cr_assert_eq(tenv_agent_stop(&env), 0, "see %s", env.agent_log);
	snprintf(pin, sizeof(pin), "%s/maps/mesh_pods", env.bpffs);
	snprintf(old_pin, sizeof(old_pin), "%s_old", pin);
	cur = bpf_obj_get(pin);
	cr_assert_geq(cur, 0, "no pinned mesh_pods: %s", strerror(-cur));
	old = bpf_map_create(BPF_MAP_TYPE_HASH, "mesh_pods", 8, old_vsize, MESH_MAX_PODS, NULL);
	cr_assert_geq(old, 0, "bpf_map_create: %s", strerror(-old));
	while (!bpf_map_get_next_key(cur, prev, next)) {
		cr_assert_eq(bpf_map_lookup_elem(cur, next, val), 0);
		cr_assert_eq(bpf_map_update_elem(old, next, val, BPF_ANY), 0);
		memcpy(key, next, sizeof(key));
		prev = key;
		n++;
	}
	cr_assert_gt(n, 0, "no pod in mesh_pods");
	close(cur);
	cr_assert_eq(unlink(pin), 0);
	cr_assert_eq(bpf_obj_pin(old, pin), 0, "pin the old layout: %s", strerror(errno));
	close(old);

	cr_assert_eq(tenv_agent_start(&env), 0, "the agent refused the old layout, see %s",
		     env.agent_log);
	cur = bpf_obj_get(pin);
	cr_assert_geq(cur, 0);
	cr_assert_eq(bpf_obj_get_info_by_fd(cur, &info, &len), 0);
	close(cur);
	cr_assert_eq(info.value_size, sizeof(struct mesh_pod), "value size %u after the start",
		     info.value_size);
	cr_assert_eq(access(old_pin, F_OK), -1, "the old map's pin is still there");
	rc = tenv_capture(cmd_out, sizeof(cmd_out), "grep -c 'migrated map mesh_pods: %d of %d' %s",
			  n, n, env.agent_log);
	cr_assert_eq(rc, 0, "the log does not say the %d entries were copied, see %s", n,
		     env.agent_log);
	rc = tsock_ident("a", VIP, out, sizeof(out));
	cr_assert_eq(rc, 0, "pod a after the migration: %s", strerror(-rc));
	cr_assert(!strncmp(out, "web-", 4), "got '%s'", out);
}
