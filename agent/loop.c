// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/loop.h: level-triggered epoll plus one heap of
 * one-shot timers (lib/timer_heap.h). Handlers may add and delete fds and
 * timers, including their own, from inside a callback.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "loop.h"

#define LOOP_MAX_EVENTS 256

struct loop_fd {
	loop_fd_fn fn;
	void *ctx;
	uint64_t gen;		/* bumps on each add, so stale events are dropped */
	bool live;
};

struct loop {
	int epfd;
	bool stop;
	bool running;		/* inside loop_run(): @now_ms is fresh */
	uint64_t now_ms;
	struct loop_fd *fds;	/* indexed by fd */
	size_t n_fds;
	uint64_t next_gen;
	struct timer_heap timers;	/* of struct loop_timer */
};

struct loop *loop_new(void)
{
	struct loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd == -1) {
		int err = errno;

		free(loop);
		errno = err;
		return NULL;
	}
	loop->now_ms = mono_ms();
	timer_heap_init(&loop->timers);
	return loop;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop->fds);
	timer_heap_done(&loop->timers);
	free(loop);
}

static int grow_fds(struct loop *loop, int fd)
{
	size_t n = loop->n_fds ? loop->n_fds : 64;
	struct loop_fd *fds;

	while (n <= (size_t)fd)
		n *= 2;
	fds = realloc(loop->fds, n * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	for (size_t i = loop->n_fds; i < n; i++)
		fds[i] = (struct loop_fd){ 0 };
	loop->fds = fds;
	loop->n_fds = n;
	return 0;
}

int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_fn fn, void *ctx)
{
	struct epoll_event ev = { .events = events };
	int err;

	if (fd < 0)
		return -EBADF;
	if ((size_t)fd >= loop->n_fds) {
		err = grow_fds(loop, fd);
		if (err)
			return err;
	}
	/* The generation travels in the event so an event queued for an fd that
	 * was closed and reused within one epoll_wait batch is recognised as stale.
	 */
	loop->next_gen++;
	ev.data.u64 = ((uint64_t)(loop->next_gen & 0xffffffff) << 32) | (uint32_t)fd;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		return -errno;
	loop->fds[fd] = (struct loop_fd){ .fn = fn, .ctx = ctx, .gen = loop->next_gen & 0xffffffff,
					  .live = true };
	return 0;
}

int loop_mod_fd(struct loop *loop, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events };

	if (fd < 0 || (size_t)fd >= loop->n_fds || !loop->fds[fd].live)
		return -ENOENT;
	ev.data.u64 = (loop->fds[fd].gen << 32) | (uint32_t)fd;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) == -1)
		return -errno;
	return 0;
}

int loop_del_fd(struct loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->n_fds || !loop->fds[fd].live)
		return -ENOENT;
	loop->fds[fd].live = false;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) == -1)
		return -errno;
	return 0;
}

void loop_forget_fd(struct loop *loop, int fd)
{
	if (fd >= 0 && (size_t)fd < loop->n_fds)
		loop->fds[fd].live = false;
}

int loop_watch(struct loop *loop, struct loop_watch *w, int fd, uint32_t ev, loop_fd_fn fn,
	       void *ctx)
{
	int err = 0;

	if (!ev) {
		if (w->on)
			(void)loop_del_fd(loop, fd);
		*w = (struct loop_watch){ 0 };
		return 0;
	}
	if (!w->on)
		err = loop_add_fd(loop, fd, ev, fn, ctx);
	else if (w->ev != ev)
		err = loop_mod_fd(loop, fd, ev);
	if (err)
		return err;
	*w = (struct loop_watch){ .ev = ev, .on = true };
	return 0;
}

static struct loop_timer *timer_of(struct timer_node *n)
{
	return (struct loop_timer *)((char *)n - offsetof(struct loop_timer, node));
}

int loop_timer_set(struct loop *loop, struct loop_timer *t, uint64_t ms, loop_timer_fn fn)
{
	/* Outside loop_run() the cached time may be arbitrarily old. */
	uint64_t due = (loop->running ? loop->now_ms : mono_ms()) + ms;

	t->fn = fn;
	if (timer_node_queued(&t->node)) {
		timer_heap_move(&loop->timers, &t->node, due);
		return 0;
	}
	return timer_heap_add(&loop->timers, &t->node, due);
}

void loop_timer_del(struct loop *loop, struct loop_timer *t)
{
	timer_heap_del(&loop->timers, &t->node);
}

uint64_t loop_now_ms(const struct loop *loop)
{
	return loop->now_ms;
}

void loop_stop(struct loop *loop)
{
	loop->stop = true;
}

static int next_timeout(const struct loop *loop)
{
	uint64_t next = timer_heap_next(&loop->timers);

	if (next == UINT64_MAX)
		return -1;
	if (next <= loop->now_ms)
		return 0;
	return next - loop->now_ms > 60000 ? 60000 : (int)(next - loop->now_ms);
}

static void run_timers(struct loop *loop)
{
	/* At most as many expiries as there were timers: one that re-arms itself
	 * for "now" waits for the next iteration instead of spinning here.
	 */
	for (size_t budget = loop->timers.n; budget; budget--) {
		struct timer_node *n = timer_heap_pop(&loop->timers, loop->now_ms);
		struct loop_timer *t;

		if (!n)
			return;
		t = timer_of(n);
		t->fn(t, loop->now_ms);
	}
}

int loop_run(struct loop *loop)
{
	struct epoll_event events[LOOP_MAX_EVENTS];

	loop->stop = false;
	loop->running = true;
	while (!loop->stop) {
		int n;

		loop->now_ms = mono_ms();
		n = epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, next_timeout(loop));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			loop->running = false;
			return -errno;
		}
		loop->now_ms = mono_ms();
		for (int i = 0; i < n; i++) {
			int fd = (int)(uint32_t)events[i].data.u64;
			uint64_t gen = events[i].data.u64 >> 32;
			struct loop_fd *lf;

			if ((size_t)fd >= loop->n_fds)
				continue;
			lf = &loop->fds[fd];
			if (!lf->live || lf->gen != gen)
				continue;
			lf->fn(loop, fd, events[i].events, lf->ctx);
		}
		run_timers(loop);
	}
	loop->running = false;
	return 0;
}
