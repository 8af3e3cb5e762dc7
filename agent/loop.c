// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/loop.h: level-triggered epoll plus a small binary
 * heap of one-shot timers. Handlers may add and delete fds and timers,
 * including their own, from inside a callback.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define LOOP_MAX_EVENTS 256

struct loop_fd {
	loop_fd_fn fn;
	void *ctx;
	uint64_t gen;		/* bumps on each add, so stale events are dropped */
	bool live;
};

struct loop_timer {
	uint64_t due_ms;
	int64_t id;
	loop_timer_fn fn;
	void *ctx;
};

struct loop {
	int epfd;
	bool stop;
	uint64_t now_ms;
	struct loop_fd *fds;	/* indexed by fd */
	size_t n_fds;
	uint64_t next_gen;
	struct loop_timer *heap;	/* min-heap on due_ms */
	size_t n_timers, cap_timers;
	int64_t next_timer_id;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

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
	loop->next_timer_id = 1;
	return loop;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop->fds);
	free(loop->heap);
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

static void heap_swap(struct loop *loop, size_t a, size_t b)
{
	struct loop_timer t = loop->heap[a];

	loop->heap[a] = loop->heap[b];
	loop->heap[b] = t;
}

static void heap_up(struct loop *loop, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (loop->heap[parent].due_ms <= loop->heap[i].due_ms)
			break;
		heap_swap(loop, parent, i);
		i = parent;
	}
}

static void heap_down(struct loop *loop, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;

		if (l < loop->n_timers && loop->heap[l].due_ms < loop->heap[min].due_ms)
			min = l;
		if (r < loop->n_timers && loop->heap[r].due_ms < loop->heap[min].due_ms)
			min = r;
		if (min == i)
			return;
		heap_swap(loop, i, min);
		i = min;
	}
}

static void heap_remove_at(struct loop *loop, size_t i)
{
	loop->n_timers--;
	if (i == loop->n_timers)
		return;
	loop->heap[i] = loop->heap[loop->n_timers];
	heap_down(loop, i);
	heap_up(loop, i);
}

int64_t loop_add_timer(struct loop *loop, uint64_t ms, loop_timer_fn fn, void *ctx)
{
	if (loop->n_timers == loop->cap_timers) {
		size_t cap = loop->cap_timers ? loop->cap_timers * 2 : 64;
		struct loop_timer *heap = realloc(loop->heap, cap * sizeof(*heap));

		if (!heap)
			return -ENOMEM;
		loop->heap = heap;
		loop->cap_timers = cap;
	}
	loop->heap[loop->n_timers] = (struct loop_timer){
		.due_ms = mono_ms() + ms, .id = loop->next_timer_id++, .fn = fn, .ctx = ctx,
	};
	heap_up(loop, loop->n_timers++);
	return loop->next_timer_id - 1;
}

void loop_del_timer(struct loop *loop, int64_t id)
{
	/* Linear: timers are few (one per pending client deadline), and cancel is rare. */
	for (size_t i = 0; i < loop->n_timers; i++) {
		if (loop->heap[i].id == id) {
			heap_remove_at(loop, i);
			return;
		}
	}
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
	if (!loop->n_timers)
		return -1;
	if (loop->heap[0].due_ms <= loop->now_ms)
		return 0;
	uint64_t wait = loop->heap[0].due_ms - loop->now_ms;

	return wait > 60000 ? 60000 : (int)wait;
}

static void run_timers(struct loop *loop)
{
	while (loop->n_timers && loop->heap[0].due_ms <= loop->now_ms) {
		struct loop_timer t = loop->heap[0];

		heap_remove_at(loop, 0);
		t.fn(loop, t.ctx);
	}
}

int loop_run(struct loop *loop)
{
	struct epoll_event events[LOOP_MAX_EVENTS];

	loop->stop = false;
	while (!loop->stop) {
		int n;

		loop->now_ms = mono_ms();
		n = epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, next_timeout(loop));
		if (n == -1) {
			if (errno == EINTR)
				continue;
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
	return 0;
}
