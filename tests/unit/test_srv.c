// SPDX-License-Identifier: GPL-2.0-only
/* agent/srv.c over a real unix socket, with a line protocol of its own
 * ("PING" is answered "PONG" and the client stays, "BYE" is answered and
 * closed, "LATER" is answered "LATE" 100 ms later from a timer, "NEVER"
 * is deferred and never answered): the client bound, deferred replies, the
 * input bound, the deadline, pipelining, and the socket file's mode and
 * removal. A thread runs the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "loop.h"
#include "srv.h"
#include "unix_sock.h"

#define T_MAX_CLIENTS 2
#define T_IN_MAX 16
#define T_TIMEOUT_MS 200

struct line_client {
	struct srv_client base;
	unsigned int answered;	/* requests on this connection */
	struct loop_timer later;	/* answers a deferred "LATER" */
};

static int starts, dones;	/* touched on the loop's thread only */
static struct loop *the_loop;

/* The deferred reply of "LATER", from another event than the client's. */
static void on_later(struct loop_timer *t, uint64_t now)
{
	struct line_client *lc = (struct line_client *)((char *)t -
							offsetof(struct line_client, later));
	char *out = malloc(32);
	size_t len;

	(void)now;
	if (!out)
		return;
	len = (size_t)snprintf(out, 32, "LATE %u\n", ++lc->answered);
	srv_reply_deferred(&lc->base, out, len);
}

static void line_start(struct srv_client *c)
{
	starts++;
	c->close_after = false;
}

static int line_input(struct srv_client *c)
{
	struct line_client *lc = (struct line_client *)c;
	char *nl = memchr(c->in + c->used, '\n', c->in_len - c->used), *out;
	size_t len;

	if (!nl)
		return 0;	/* a full buffer without a line is the core's to drop */
	*nl = '\0';
	if (!strcmp(c->in + c->used, "LATER") || !strcmp(c->in + c->used, "NEVER")) {
		bool never = c->in[c->used] == 'N';

		c->used = (size_t)(nl - c->in) + 1;
		srv_defer(c, 400);
		return never ? 0 : loop_timer_set(the_loop, &lc->later, 100, on_later);
	}
	if (!strcmp(c->in + c->used, "BYE"))
		c->close_after = true;
	else if (strcmp(c->in + c->used, "PING"))
		return -EINVAL;
	c->used = (size_t)(nl - c->in) + 1;
	out = malloc(32);
	if (!out)
		return -ENOMEM;
	len = (size_t)snprintf(out, 32, "%s %u\n", c->close_after ? "BYE" : "PONG",
			       ++lc->answered);
	srv_reply(c, out, len);
	return 0;
}

static void line_done(struct srv_client *c)
{
	loop_timer_del(the_loop, &((struct line_client *)c)->later);
	dones++;
}

static void line_refuse(int fd)
{
	(void)send(fd, "BUSY\n", 5, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static const struct srv_ops line_ops = {
	.name = "test",
	.client_size = sizeof(struct line_client),
	.in_max = T_IN_MAX,
	.max_clients = T_MAX_CLIENTS,
	.backlog = 8,
	.timeout_ms = T_TIMEOUT_MS,
	.start = line_start,
	.input = line_input,
	.done = line_done,
	.refuse = line_refuse,
};

static struct {
	char dir[64], sock[96];
	struct loop *loop;
	struct srv *srv;
	int stop[2];
	pthread_t thread;
} fx;

static void on_stop(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	(void)fd;
	(void)events;
	(void)ctx;
	loop_stop(loop);
}

static void *run(void *arg)
{
	(void)arg;
	(void)loop_run(fx.loop);
	return NULL;
}

static void setup(void)
{
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/weft-srv-XXXXXX");
	cr_assert_not_null(mkdtemp(fx.dir));
	snprintf(fx.sock, sizeof(fx.sock), "%s/t.sock", fx.dir);
	fx.loop = loop_new();
	cr_assert_not_null(fx.loop);
	the_loop = fx.loop;
	fx.srv = srv_new_unix(fx.loop, fx.sock, 0600, &line_ops, NULL);
	cr_assert_not_null(fx.srv, "srv_new_unix: %s", strerror(errno));
	cr_assert_eq(pipe2(fx.stop, O_CLOEXEC), 0);
	cr_assert_eq(loop_add_fd(fx.loop, fx.stop[0], EPOLLIN, on_stop, NULL), 0);
	cr_assert_eq(pthread_create(&fx.thread, NULL, run, NULL), 0);
}

/* Stop the loop, then free the server with whatever clients remain. */
static void stop_loop(void)
{
	cr_assert_eq(write(fx.stop[1], "x", 1), 1);
	pthread_join(fx.thread, NULL);
}

static void teardown(void)
{
	srv_free(fx.srv);
	(void)loop_del_fd(fx.loop, fx.stop[0]);
	close(fx.stop[0]);
	close(fx.stop[1]);
	loop_free(fx.loop);
	rmdir(fx.dir);
}

static int client(void)
{
	struct timeval tv = { .tv_sec = 5 };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", fx.sock);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0, "connect: %s",
		     strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void say(int fd, const char *s)
{
	cr_assert_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* One line, without its newline; "" at EOF. */
static const char *hear(int fd)
{
	static char line[64];
	size_t n = 0;

	while (n < sizeof(line) - 1) {
		ssize_t r = recv(fd, line + n, 1, 0);

		cr_assert_geq(r, 0, "recv: %s", strerror(errno));
		if (r == 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	return line;
}

static void expect_eof(int fd)
{
	char c;

	cr_expect_eq(recv(fd, &c, 1, 0), 0, "still open");
}

TestSuite(srv, .init = setup, .timeout = 30);

Test(srv, socket_file_has_its_mode_and_goes_with_the_server)
{
	struct stat st;

	cr_assert_eq(stat(fx.sock, &st), 0);
	cr_expect(S_ISSOCK(st.st_mode));
	cr_expect_eq(st.st_mode & 0777, 0600);
	stop_loop();
	teardown();
	cr_expect_neq(stat(fx.sock, &st), 0, "socket file left behind");
}

Test(srv, keeps_a_client_answers_pipelined_requests_then_closes)
{
	int fd = client();

	say(fd, "PING\n");
	cr_expect_str_eq(hear(fd), "PONG 1");
	/* Three at once: each answered in turn from the buffer's rest. */
	say(fd, "PING\nPING\nBYE\n");
	cr_expect_str_eq(hear(fd), "PONG 2");
	cr_expect_str_eq(hear(fd), "PONG 3");
	cr_expect_str_eq(hear(fd), "BYE 4");
	expect_eof(fd);
	close(fd);
	stop_loop();
	cr_expect_eq(starts, 4, "start() once on accept, once per kept reply");
	cr_expect_eq(dones, 1);
	teardown();
}

Test(srv, bounded_clients_are_refused_and_slots_come_back)
{
	int a = client(), b = client(), c;

	say(a, "PING\n");
	cr_assert_str_eq(hear(a), "PONG 1");
	say(b, "PING\n");
	cr_assert_str_eq(hear(b), "PONG 1");
	c = client();
	cr_expect_str_eq(hear(c), "BUSY");
	expect_eof(c);
	close(c);
	close(a);
	for (int tries = 0;; tries++) {
		c = client();
		say(c, "PING\n");
		if (!strcmp(hear(c), "PONG 1"))
			break;
		close(c);
		cr_assert_lt(tries, 100, "slot never freed");
		usleep(10000);
	}
	close(c);
	close(b);
	stop_loop();
	teardown();
}

Test(srv, full_buffer_without_a_request_is_dropped)
{
	int fd = client();

	say(fd, "0123456789abcdef");	/* T_IN_MAX bytes, no newline */
	expect_eof(fd);
	close(fd);
	fd = client();
	say(fd, "NOPE\n");		/* the protocol refuses it */
	expect_eof(fd);
	close(fd);
	stop_loop();
	teardown();
}

Test(srv, idle_client_closed_at_its_deadline_which_restarts_per_request)
{
	int fd = client();
	struct timespec t0, t1;
	double dt;

	/* Three requests 120 ms apart outlive one 200 ms deadline. */
	for (int i = 1; i <= 3; i++) {
		char want[32];

		usleep(120000);
		say(fd, "PING\n");
		snprintf(want, sizeof(want), "PONG %d", i);
		cr_assert_str_eq(hear(fd), want);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	expect_eof(fd);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_expect_geq(dt, 0.1, "closed %.3f s after the last reply", dt);
	cr_expect_lt(dt, 2.0, "closed %.3f s after the last reply", dt);
	close(fd);
	stop_loop();
	teardown();
}

Test(srv, a_deferred_reply_comes_from_another_event_under_its_own_deadline)
{
	int fd = client(), late = client();
	struct timespec t0, t1;
	double dt;

	/* Answered later by a timer; the client stays and goes on. */
	say(fd, "LATER\n");
	cr_assert_str_eq(hear(fd), "LATE 1");
	say(fd, "PING\n");
	cr_assert_str_eq(hear(fd), "PONG 2");
	close(fd);
	/* Never answered: dropped at the deferral's deadline (400 ms), not
	 * the request's (200 ms); what it sends meanwhile is ignored.
	 */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	say(late, "NEVER\n");
	usleep(100000);
	say(late, "PING\n");
	expect_eof(late);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_expect_geq(dt, 0.35, "dropped %.3f s after deferring", dt);
	cr_expect_lt(dt, 2.0, "dropped %.3f s after deferring", dt);
	close(late);
	/* A client that goes while its reply is deferred: the timer is
	 * disarmed by done(), nothing is sent to a freed client.
	 */
	fd = client();
	say(fd, "LATER\n");
	close(fd);
	usleep(200000);
	stop_loop();
	teardown();
}

Test(srv, free_drops_connected_clients)
{
	int a = client(), b = client();

	say(a, "PING\n");
	cr_assert_str_eq(hear(a), "PONG 1");
	say(b, "PI");			/* half a request */
	stop_loop();
	teardown();
	expect_eof(a);
	expect_eof(b);
	close(a);
	close(b);
	cr_expect_eq(dones, 2);
}

Test(srv, refuses_to_replace_a_non_socket_file)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/plain", fx.dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fclose(f);
	cr_expect_null(srv_new_unix(fx.loop, path, 0600, &line_ops, NULL));
	cr_expect_eq(errno, EEXIST);
	unlink(path);
	stop_loop();
	teardown();
}
