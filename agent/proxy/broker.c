// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of proxy/broker.h: the privileged socket maker, the broker
 * thread with its loop over the workers' channels, the table of pods it may
 * enter (key → netns fd, under a mutex the main thread takes to add and
 * remove a pod and the broker takes around one batch), and the wire format.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "netns.h"
#include "proxy/broker.h"
#include "proxy/proxy.h"

/* Both directions: a request (n: how many wanted) and a reply (n: how many
 * fds ride along in SCM_RIGHTS, or -errno).
 */
struct wire {
	uint64_t key;
	uint32_t kind;
	int32_t n;
};

/* wire.kind of a fast path request and its reply (no socket kind). */
#define WIRE_FASTPATH 0xfa57u
/* wire.kind of a request to drop a closed socket's fast path entry
 * (key: its cookie); not answered.
 */
#define WIRE_FASTPATH_FORGET 0xfa58u

struct broker_pod {
	uint64_t key;
	int netns_fd;
};

struct broker {
	struct broker_opts opts;
	struct loop *loop;
	pthread_t thread;
	bool started;
	int stop_fd;			/* eventfd: broker_free()'s knock */
	pthread_mutex_t mu;		/* pods, n_pods, cap_pods */
	struct broker_pod *pods;
	size_t n_pods, cap_pods;
	unsigned int n_chan;
	int chan[][2];			/* [0]: the broker's end, [1]: the worker's */
};

int sock_kind_family(enum sock_kind kind)
{
	return kind == SK_OUT4 || kind == SK_IN4 ? AF_INET : AF_INET6;
}

int broker_make(const struct broker_opts *o, int ns_fd, enum sock_kind kind, int *fds, int n)
{
	int family = sock_kind_family(kind);
	bool in = kind == SK_IN4 || kind == SK_IN6;
	uint32_t mark = in ? o->inbound_mark : o->mark;
	int one = 1, got, err = 0;

	if (kind >= SK_KINDS || n < 1)
		return -EINVAL;
	got = netns_sockets(ns_fd, o->home_netns_fd, family, SOCK_STREAM | SOCK_NONBLOCK, fds, n);
	if (got < 0)
		return got;
	for (int i = 0; !err && i < got; i++) {
		/* The mark tells capture that the socket is the agent's, and
		 * inbound the application's accepted socket inherits it
		 * (tcp_fwmark_accept), which routes replies back to the agent.
		 */
		if (setsockopt(fds[i], SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == -1)
			err = -errno;
		/* Transparent lets the worker bind the client's address later,
		 * with no capability of its own: only this setsockopt() checks.
		 */
		else if (in && family == AF_INET &&
			 setsockopt(fds[i], SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) == -1)
			err = -errno;
		else if (in && family == AF_INET6 &&
			 setsockopt(fds[i], SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) == -1)
			err = -errno;
	}
	if (err) {
		for (int i = 0; i < got; i++)
			close(fds[i]);
		return err;
	}
	return got;
}

/* ---------------------------------------------------------------- wire */

static int send_wire(int fd, const struct wire *m, const int *fds, int n, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * BROKER_BATCH)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;

	if (n > 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	}
	do
		r = sendmsg(fd, &msg, flags | MSG_NOSIGNAL);
	while (r == -1 && errno == EINTR);
	if (r == -1)
		return -errno;
	return 0;
}

int broker_ask(int chan, uint64_t key, enum sock_kind kind, unsigned int n, bool wait)
{
	struct wire m = { .key = key, .kind = kind, .n = (int32_t)n };

	return send_wire(chan, &m, NULL, 0, wait ? 0 : MSG_DONTWAIT);
}

int broker_ask_fastpath(int chan, int cfd, int ufd, uint32_t slot)
{
	struct wire m = { .key = slot, .kind = WIRE_FASTPATH, .n = 2 };
	int fds[2] = { cfd, ufd };

	return send_wire(chan, &m, fds, 2, 0);
}

int broker_forget_fastpath(int chan, uint64_t cookie)
{
	struct wire m = { .key = cookie, .kind = WIRE_FASTPATH_FORGET };

	return send_wire(chan, &m, NULL, 0, MSG_DONTWAIT);
}

int broker_recv(int chan, bool wait, struct broker_reply *rep)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * BROKER_BATCH)];
		struct cmsghdr align;
	} u;
	struct wire m;
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm;
	ssize_t r;

	do
		r = recvmsg(chan, &msg, MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT));
	while (r == -1 && errno == EINTR);
	if (r == -1)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (r == 0)
		return -EPIPE;
	rep->n = 0;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (rep->n < BROKER_BATCH)
				rep->fds[rep->n++] = fd;
			else
				close(fd);
		}
	}
	rep->key = m.key;
	rep->fastpath = m.kind == WIRE_FASTPATH;
	rep->kind = m.kind < SK_KINDS ? (enum sock_kind)m.kind : SK_OUT4;
	rep->err = 0;
	if (rep->fastpath && (size_t)r == sizeof(m)) {
		/* Its outcome, with no descriptor. */
		rep->err = rep->n ? -EPROTO : m.n > 0 ? -EPROTO : m.n;
	} else if ((size_t)r != sizeof(m) || m.kind >= SK_KINDS || (msg.msg_flags & MSG_CTRUNC)) {
		rep->err = -EPROTO;
	} else if (m.n < 0) {
		rep->err = m.n;
	} else if (m.n != rep->n) {
		rep->err = -EPROTO;
	}
	if (rep->err) {
		while (rep->n)
			close(rep->fds[--rep->n]);
	}
	return 0;
}

/* ---------------------------------------------------------------- thread */

/* Read one request and the descriptors that came with it (a fast path
 * request's two sockets) into @in[0..*n_in). The request's size, or -1.
 */
static ssize_t recv_request(int fd, struct wire *m, int in[2], int *n_in)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 2)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm;
	ssize_t r;

	*n_in = 0;
	r = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (r == -1)
		return -1;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && *n_in < 2; i++)
			memcpy(&in[(*n_in)++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
	}
	return r;
}

/* A fast path request: the map writes the worker may not make itself. */
static int serve_fastpath(struct broker *br, const struct wire *m, const int in[2], int n_in)
{
	const struct px_fastpath *fp = br->opts.fastpath;

	if (!fp)
		return -EOPNOTSUPP;
	if (n_in != 2 || m->key >= fp->slots)
		return -EINVAL;
	return fp->add(fp->ctx, in[0], in[1], (uint32_t)m->key);
}

/* One request from a worker: make the sockets and send them back, or put a
 * connection on the fast path and say how it went.
 */
static void serve(struct broker *br, int fd)
{
	struct wire m;
	int fds[BROKER_BATCH], n = 0, err, in[2], n_in;
	ssize_t r;

	r = recv_request(fd, &m, in, &n_in);
	if (r != (ssize_t)sizeof(m)) {
		while (n_in)
			close(in[--n_in]);
		return;		/* EAGAIN, or a worker gone at shutdown */
	}
	if (m.kind == WIRE_FASTPATH_FORGET) {
		if (br->opts.fastpath)
			(void)br->opts.fastpath->forget(br->opts.fastpath->ctx, m.key);
		while (n_in)
			close(in[--n_in]);
		return;
	}
	if (m.kind == WIRE_FASTPATH) {
		m.n = serve_fastpath(br, &m, in, n_in);
	} else if (m.kind >= SK_KINDS || m.n < 1) {
		m.n = -EINVAL;
	} else {
		int want = m.n > BROKER_BATCH ? BROKER_BATCH : m.n;

		m.n = -ENOENT;	/* the pod left since the worker asked */
		pthread_mutex_lock(&br->mu);
		for (size_t i = 0; i < br->n_pods; i++) {
			if (br->pods[i].key == m.key) {
				m.n = broker_make(&br->opts, br->pods[i].netns_fd,
						  (enum sock_kind)m.kind, fds, want);
				break;
			}
		}
		pthread_mutex_unlock(&br->mu);
		if (m.n > 0)
			n = m.n;
	}
	while (n_in)
		close(in[--n_in]);
	/* Never block on a worker that does not read (parked while the main
	 * thread holds every worker): its request fails, and it asks again.
	 */
	err = send_wire(fd, &m, fds, n, MSG_DONTWAIT);
	if (err)
		log_warn("broker: cannot answer a worker: %s", strerror(-err));
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static void on_chan(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct broker *br = ctx;

	(void)loop;
	if (events & (EPOLLHUP | EPOLLERR)) {
		loop_del_fd(br->loop, fd);
		return;
	}
	/* A batch per wake-up and channel: one busy worker cannot starve the others. */
	for (int i = 0; i < 4; i++)
		serve(br, fd);
}

static void on_stop(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	(void)fd;
	(void)events;
	(void)ctx;
	loop_stop(loop);
}

static void *broker_main(void *arg)
{
	struct broker *br = arg;
	int err = loop_run(br->loop);

	if (err)
		log_err("broker: loop failed: %s", strerror(-err));
	return NULL;
}

struct broker *broker_new(const struct broker_opts *o, unsigned int n_chan)
{
	struct broker *br = calloc(1, sizeof(*br) + n_chan * sizeof(br->chan[0]));
	struct timeval tv = { .tv_sec = BROKER_WAIT_MS / 1000,
			      .tv_usec = (BROKER_WAIT_MS % 1000) * 1000 };
	int sndbuf = 4 << 20, err;

	if (!br)
		return NULL;
	br->opts = *o;
	br->stop_fd = -1;
	br->n_chan = n_chan;
	pthread_mutex_init(&br->mu, NULL);
	for (unsigned int i = 0; i < n_chan; i++)
		br->chan[i][0] = br->chan[i][1] = -1;
	br->loop = loop_new();
	if (!br->loop)
		goto fail;
	br->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (br->stop_fd == -1)
		goto fail;
	err = loop_add_fd(br->loop, br->stop_fd, EPOLLIN, on_stop, br);
	if (err)
		goto fail_err;
	for (unsigned int i = 0; i < n_chan; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, br->chan[i]) == -1)
			goto fail;
		if (setsockopt(br->chan[i][1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1)
			goto fail;
		/* Room for a reply to every pool of a few thousand pods while
		 * their worker is parked: a reply that does not fit is dropped
		 * (serve()). Best effort: needs CAP_NET_ADMIN past wmem_max.
		 */
		(void)setsockopt(br->chan[i][0], SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf,
				 sizeof(sndbuf));
		err = loop_add_fd(br->loop, br->chan[i][0], EPOLLIN, on_chan, br);
		if (err)
			goto fail_err;
	}
	err = pthread_create(&br->thread, NULL, broker_main, br);
	if (err) {
		errno = err;
		goto fail;
	}
	br->started = true;
	pthread_setname_np(br->thread, "weft-broker");
	return br;
fail_err:
	errno = -err;
fail:
	err = errno;
	broker_free(br);
	errno = err;
	return NULL;
}

void broker_free(struct broker *br)
{
	uint64_t one = 1;

	if (!br)
		return;
	if (br->started) {
		(void)!write(br->stop_fd, &one, sizeof(one));
		pthread_join(br->thread, NULL);
	}
	for (unsigned int i = 0; i < br->n_chan; i++) {
		for (int k = 0; k < 2; k++)
			if (br->chan[i][k] != -1)
				close(br->chan[i][k]);
	}
	if (br->stop_fd != -1)
		close(br->stop_fd);
	loop_free(br->loop);
	for (size_t i = 0; i < br->n_pods; i++)
		close(br->pods[i].netns_fd);
	free(br->pods);
	pthread_mutex_destroy(&br->mu);
	free(br);
}

int broker_chan_fd(const struct broker *br, unsigned int i)
{
	return i < br->n_chan ? br->chan[i][1] : -1;
}

int broker_pod_add(struct broker *br, uint64_t key, int netns_fd)
{
	int fd = fcntl(netns_fd, F_DUPFD_CLOEXEC, 0);
	int err = 0;

	if (fd == -1)
		return -errno;
	pthread_mutex_lock(&br->mu);
	if (br->n_pods == br->cap_pods) {
		size_t cap = br->cap_pods ? 2 * br->cap_pods : 16;
		struct broker_pod *p = realloc(br->pods, cap * sizeof(*p));

		if (!p) {
			err = -ENOMEM;
			goto out;
		}
		br->pods = p;
		br->cap_pods = cap;
	}
	br->pods[br->n_pods++] = (struct broker_pod){ .key = key, .netns_fd = fd };
out:
	pthread_mutex_unlock(&br->mu);
	if (err)
		close(fd);
	return err;
}

void broker_pod_del(struct broker *br, uint64_t key)
{
	int fd = -1;

	pthread_mutex_lock(&br->mu);
	for (size_t i = 0; i < br->n_pods; i++) {
		if (br->pods[i].key == key) {
			fd = br->pods[i].netns_fd;
			br->pods[i] = br->pods[--br->n_pods];
			break;
		}
	}
	pthread_mutex_unlock(&br->mu);
	if (fd != -1)
		close(fd);
}
