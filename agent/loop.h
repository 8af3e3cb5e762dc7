/* SPDX-License-Identifier: GPL-2.0-only */
/* The event loop: epoll over fds plus one-shot millisecond timers, the size of
 * redis' ae. Every module of the agent registers its fds here; none blocks.
 * A loop is used by one thread only: the main thread's control loop, and one
 * per proxy worker (proxy/workers.h).
 */
#ifndef WEFT_LOOP_H
#define WEFT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "timer_heap.h"

struct loop;
struct loop_timer;

/* Called with the epoll events (EPOLLIN, EPOLLOUT, EPOLLHUP, EPOLLERR...) of @fd. */
typedef void (*loop_fd_fn)(struct loop *loop, int fd, uint32_t events, void *ctx);
/* Called once when @t expires, with the loop's time; @t is disarmed by then
 * and may be armed again. The owner finds itself with container_of-style
 * arithmetic on @t.
 */
typedef void (*loop_timer_fn)(struct loop_timer *t, uint64_t now_ms);

/* A one-shot timer embedded in its owner (zero-initialised = disarmed). An
 * owner that frees it must disarm it first.
 */
struct loop_timer {
	struct timer_node node;	/* the loop's while armed */
	loop_timer_fn fn;
};

/* A new loop, or NULL with errno set. */
struct loop *loop_new(void);
/* Frees the loop; registered fds are not closed (their owners close them) and
 * armed timers are forgotten without being touched. Accepts NULL.
 */
void loop_free(struct loop *loop);

/* Watch @fd for @events (EPOLLIN/EPOLLOUT, level-triggered). 0 or -errno. */
int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_fn fn, void *ctx);
/* Change the events watched on @fd. 0 or -errno. */
int loop_mod_fd(struct loop *loop, int fd, uint32_t events);
/* Stop watching @fd and keep it open. 0 or -errno. */
int loop_del_fd(struct loop *loop, int fd);
/* Stop watching @fd, which the caller closes right after: only the slot is
 * marked dead, no epoll_ctl (the kernel drops a closed file from the epoll
 * set by itself when no duplicate of the fd exists, which is the case for
 * every socket the proxy owns). One syscall fewer per closed socket.
 */
void loop_forget_fd(struct loop *loop, int fd);

/* What a loop_watch() caller has registered for one fd: embed it next to
 * the fd, zeroed. Readable by the owner (is the fd watched, for what).
 */
struct loop_watch {
	uint32_t ev;	/* the events registered; 0 when not watched */
	bool on;	/* @fd is in the epoll set */
};

/* Watch @fd for exactly @ev, as recorded in @w: the first non-zero @ev adds
 * @fd (with @fn and @ctx), a different one modifies it, 0 removes it, and an
 * unchanged set costs no system call — so a relay can say what it wants
 * after every event. 0 or -errno (@w unchanged).
 */
int loop_watch(struct loop *loop, struct loop_watch *w, int fd, uint32_t ev, loop_fd_fn fn,
	       void *ctx);

/* Arm @t to call @fn @ms from now, or move it there (and to @fn) if armed:
 * O(log n), for deadlines that are armed and moved per connection. "Now" is
 * loop_now_ms() inside loop_run(), the clock outside it. 0, or -ENOMEM when a
 * disarmed @t cannot be queued.
 */
int loop_timer_set(struct loop *loop, struct loop_timer *t, uint64_t ms, loop_timer_fn fn);
/* Disarm @t; a disarmed timer is ignored. */
void loop_timer_del(struct loop *loop, struct loop_timer *t);

static inline bool loop_timer_armed(const struct loop_timer *t)
{
	return timer_node_queued(&t->node);
}

/* Monotonic milliseconds, cached once per iteration. */
uint64_t loop_now_ms(const struct loop *loop);

/* Run until loop_stop(). Returns 0, or -errno if epoll itself failed. */
int loop_run(struct loop *loop);
/* Make loop_run() return after the current iteration. Async-signal-unsafe:
 * signals reach the loop through a signalfd.
 */
void loop_stop(struct loop *loop);

#endif /* WEFT_LOOP_H */
