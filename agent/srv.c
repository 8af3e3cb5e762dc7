// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/srv.h: accept into a fixed slot table, read into
 * the client's fixed buffer, let the protocol parse, write its reply
 * (waiting for EPOLLOUT if the socket is full), then close or start over.
 * Every client lives under one deadline per request, so a slow or idle one
 * cannot hold a slot for long.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "srv.h"
#include "unix_sock.h"

struct srv {
	struct loop *loop;
	const struct srv_ops *ops;
	void *ctx;
	int fd;
	char path[108];		/* sizeof(sockaddr_un.sun_path); "" for TCP */
	unsigned int timeout_ms;
	size_t n_clients;
	struct srv_client *clients[];	/* ops->max_clients */
};

static void client_drop(struct srv_client *c)
{
	struct srv *s = c->srv;

	s->clients[c->slot] = NULL;
	s->n_clients--;
	loop_timer_del(s->loop, &c->deadline);
	(void)loop_del_fd(s->loop, c->fd);
	close(c->fd);
	if (s->ops->done)
		s->ops->done(c);
	free(c->out);
	free(c);
}

static void client_run(struct srv_client *c);

static void on_deadline(struct loop_timer *t, uint64_t now)
{
	struct srv_client *c = (struct srv_client *)((char *)t -
						     offsetof(struct srv_client, deadline));

	(void)now;
	log_debug("%s: client missed its %u ms deadline, closing", c->srv->ops->name,
		  c->srv->timeout_ms);
	client_drop(c);
}

static int arm_deadline(struct srv_client *c)
{
	return loop_timer_set(c->srv->loop, &c->deadline, c->srv->timeout_ms, on_deadline);
}

void srv_reply(struct srv_client *c, char *buf, size_t len)
{
	free(c->out);
	c->out = buf;
	c->out_len = len;
	c->out_off = 0;
}

void srv_defer(struct srv_client *c, unsigned int timeout_ms)
{
	c->deferred = true;
	/* A failure leaves the request's own deadline in force, which is
	 * shorter: the client is dropped sooner, never kept forever.
	 */
	(void)loop_timer_set(c->srv->loop, &c->deadline, timeout_ms, on_deadline);
}

void srv_reply_deferred(struct srv_client *c, char *buf, size_t len)
{
	c->deferred = false;
	srv_reply(c, buf, len);
	client_run(c);
}

static int watch(struct srv_client *c, bool out)
{
	if (c->want_out == out)
		return 0;
	c->want_out = out;
	return loop_mod_fd(c->srv->loop, c->fd, out ? EPOLLOUT : EPOLLIN);
}

/* Send what is queued. 0 when done, -EAGAIN when the socket is full, -errno. */
static int flush(struct srv_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		c->out_off += (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	return 0;
}

/* Answer requests until the client has to send more or take what is queued.
 * Drops @c on error and after a reply that closes the connection. A loop,
 * not recursion, so pipelined requests cannot deepen the stack.
 */
static void client_run(struct srv_client *c)
{
	const struct srv_ops *ops = c->srv->ops;
	int err = 0;

	for (;;) {
		if (c->out) {
			err = flush(c);
			if (err == -EAGAIN) {
				err = watch(c, true);
				if (err)
					break;
				return;
			}
			if (err || c->close_after)
				break;
			/* Kept: the next request starts from the unconsumed rest. */
			memmove(c->in, c->in + c->used, c->in_len - c->used);
			c->in_len -= c->used;
			c->in[c->in_len] = '\0';
			c->used = 0;
			if (ops->start)
				ops->start(c);
			err = arm_deadline(c);
			if (err)
				break;
			continue;
		}
		if (c->deferred || c->used == c->in_len) {
			/* Reading on while deferred notices a client that goes. */
			err = watch(c, false);
			if (err)
				break;
			return;
		}
		err = ops->input(c);
		if (err)
			break;
		if (c->deferred) {
			err = watch(c, false);
			if (err)
				break;
			return;
		}
		if (!c->out) {
			/* Nothing to answer and no room to read more: the protocol
			 * should have refused it; do not spin on a full buffer.
			 */
			if (c->in_len == ops->in_max) {
				err = -EMSGSIZE;
				break;
			}
			err = watch(c, false);
			if (err)
				break;
			return;
		}
	}
	if (err && err != -EPIPE && err != -ECONNRESET)
		log_debug("%s: dropping client: %s", ops->name, strerror(-err));
	client_drop(c);
}

static void on_client(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct srv_client *c = ctx;
	ssize_t n;

	(void)loop;
	if (events & EPOLLERR) {
		client_drop(c);
		return;
	}
	if (c->out) {
		client_run(c);
		return;
	}
	if (c->deferred) {
		char junk[256];

		/* Waiting for our answer: more input is not parsed (and may
		 * not fit), only an EOF or error matters.
		 */
		n = recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			client_drop(c);
		return;
	}
	n = recv(fd, c->in + c->in_len, c->srv->ops->in_max - c->in_len, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* EOF: a half-sent request is abandoned; nothing is owed. */
		client_drop(c);
		return;
	}
	c->in_len += (size_t)n;
	c->in[c->in_len] = '\0';
	client_run(c);
}

/* A new client in a free slot, watched and under its deadline. 0 or -errno;
 * on error @fd is closed.
 */
static int client_add(struct srv *s, int fd)
{
	const struct srv_ops *ops = s->ops;
	struct srv_client *c;
	size_t slot = 0;
	int err;

	while (s->clients[slot])
		slot++;
	c = calloc(1, ops->client_size + ops->in_max + 1);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->srv = s;
	c->ctx = s->ctx;
	c->fd = fd;
	c->slot = slot;
	c->in = (char *)c + ops->client_size;
	if (ops->start)
		ops->start(c);
	err = loop_add_fd(s->loop, fd, EPOLLIN, on_client, c);
	if (err) {
		close(fd);
		free(c);
		return err;
	}
	s->clients[slot] = c;
	s->n_clients++;
	err = arm_deadline(c);
	if (err)
		client_drop(c);
	return err;
}

static void on_accept(struct loop *loop, int lfd, uint32_t events, void *ctx)
{
	struct srv *s = ctx;

	(void)loop;
	(void)events;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR)
				log_debug("%s: accept: %s", s->ops->name, strerror(errno));
			return;
		}
		if (s->n_clients == s->ops->max_clients) {
			if (s->ops->refuse)
				s->ops->refuse(fd);
			close(fd);
			continue;
		}
		(void)client_add(s, fd);	/* a client that cannot be added sees the close */
	}
}

/* A server on the listening @fd; takes ownership of @fd (closed on error). */
static struct srv *srv_new_fd(struct loop *loop, int fd, const char *path,
			      const struct srv_ops *ops, void *ctx)
{
	struct srv *s = calloc(1, sizeof(*s) + ops->max_clients * sizeof(s->clients[0]));
	int err;

	if (!s) {
		err = -ENOMEM;
		goto out_close;
	}
	s->loop = loop;
	s->ops = ops;
	s->ctx = ctx;
	s->fd = fd;
	s->timeout_ms = ops->timeout_ms;
	if (path)
		memcpy(s->path, path, strlen(path) + 1);
	err = loop_add_fd(loop, fd, EPOLLIN, on_accept, s);
	if (err)
		goto out_free;
	return s;

out_free:
	free(s);
out_close:
	close(fd);
	if (path)
		(void)unlink(path);
	errno = -err;
	return NULL;
}

struct srv *srv_new_unix(struct loop *loop, const char *path, mode_t mode,
			 const struct srv_ops *ops, void *ctx)
{
	int fd;

	if (strlen(path) >= sizeof(((struct srv *)NULL)->path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	/* unix_listen() narrows the umask around bind(), so the socket file
	 * never exists with a wider mode than @mode.
	 */
	fd = unix_listen(path, mode, ops->backlog);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	return srv_new_fd(loop, fd, path, ops, ctx);
}

struct srv *srv_new_tcp(struct loop *loop, const struct addr *a, const struct srv_ops *ops,
			void *ctx)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_to_sockaddr(a, &ss);
	int one = 1, fd, err;

	fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return NULL;
	/* A restarted agent must not wait out TIME_WAIT of the last scrape. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, ops->backlog) == -1) {
		err = errno;
		close(fd);
		errno = err;
		return NULL;
	}
	return srv_new_fd(loop, fd, NULL, ops, ctx);
}

int srv_local_addr(const struct srv *s, struct addr *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(s->fd, (struct sockaddr *)&ss, &len) == -1)
		return -errno;
	return addr_from_sockaddr(out, (struct sockaddr *)&ss, len);
}

void srv_set_timeout(struct srv *s, unsigned int timeout_ms)
{
	s->timeout_ms = timeout_ms;
}

void srv_free(struct srv *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ops->max_clients; i++) {
		if (s->clients[i])
			client_drop(s->clients[i]);
	}
	(void)loop_del_fd(s->loop, s->fd);
	close(s->fd);
	if (s->path[0])
		(void)unlink(s->path);
	free(s);
}
