// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/unit/http_fixture.h. The loop thread owns the loop
 * and the server from creation to free, since a loop belongs to one thread;
 * the test stops it through a pipe the loop watches.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "admin/http.h"
#include "http_fixture.h"
#include "loop.h"

static void on_stop(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	(void)fd;
	(void)events;
	(void)ctx;
	loop_stop(loop);
}

static void *serve(void *arg)
{
	struct http_fixture *f = arg;
	struct http_server *s = NULL;
	struct loop *loop = loop_new();
	int err = loop ? 0 : -errno;

	if (!err)
		err = loop_add_fd(loop, f->stop[0], EPOLLIN, on_stop, NULL);
	if (!err) {
		s = http_server_new(loop, f->sock, 0600, f->routes, f->n_routes, f->ctx);
		err = s ? 0 : -errno;
	}
	if (s && f->timeout_ms)
		http_server_set_timeout(s, f->timeout_ms);
	if (write(f->ready[1], &err, sizeof(err)) != sizeof(err))
		err = -EIO;
	if (!err)
		(void)loop_run(loop);
	http_server_free(s);
	if (loop)
		(void)loop_del_fd(loop, f->stop[0]);
	loop_free(loop);
	return NULL;
}

void http_fixture_start(struct http_fixture *f, const struct http_route *routes, size_t n,
			void *ctx, unsigned int timeout_ms)
{
	int err = -1;

	memset(f, 0, sizeof(*f));
	f->routes = routes;
	f->n_routes = n;
	f->ctx = ctx;
	f->timeout_ms = timeout_ms;
	snprintf(f->dir, sizeof(f->dir), "/tmp/weft-http-XXXXXX");
	cr_assert_not_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/admin.sock", f->dir);
	cr_assert_eq(pipe2(f->ready, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(f->stop, O_CLOEXEC), 0);
	cr_assert_eq(pthread_create(&f->thread, NULL, serve, f), 0);
	cr_assert_eq(read(f->ready[0], &err, sizeof(err)), (ssize_t)sizeof(err));
	cr_assert_eq(err, 0, "http_server_new: %s", strerror(-err));
}

void http_fixture_stop(struct http_fixture *f)
{
	char b = 1;

	cr_assert_eq(write(f->stop[1], &b, 1), 1);
	pthread_join(f->thread, NULL);
	close(f->ready[0]);
	close(f->ready[1]);
	close(f->stop[0]);
	close(f->stop[1]);
	cr_expect_eq(access(f->sock, F_OK), -1, "the socket file outlived the server");
	rmdir(f->dir);
}

int http_fixture_connect(const struct http_fixture *f)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", f->sock);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0, "connect: %s",
		     strerror(errno));
	/* A broken server fails the test instead of hanging it. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}
