/* SPDX-License-Identifier: GPL-2.0-only */
/* The proxy's wait queue: an intrusive binary min-heap of deadlines (connect,
 * detection window, request, idle, retry backoff), one loop timer for the
 * earliest. Every connection has several deadlines and most are cancelled or
 * moved before they fire; the heap makes that O(log n) where the loop's own
 * timers are linear to cancel (haproxy's wait queue idea). Internal to agent/proxy.
 */
#ifndef WEFT_PROXY_TIMERS_H
#define WEFT_PROXY_TIMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tq_node;

/* Called once when @n expires; @n is already out of the queue and may be re-armed. */
typedef void (*tq_fn)(struct tq_node *n, uint64_t now_ms);

struct tq_node {
	uint64_t due_ms;
	size_t idx;		/* heap index + 1; 0 = not queued */
	tq_fn fn;
};

struct tq {
	struct tq_node **heap;
	size_t n, cap;
};

void tq_init(struct tq *q);
/* Free the heap; queued nodes are forgotten (their owners free them). */
void tq_done(struct tq *q);

/* Queue @n to fire at @due_ms, or move it there if queued. 0 or -ENOMEM. */
int tq_set(struct tq *q, struct tq_node *n, uint64_t due_ms, tq_fn fn);
/* Unqueue @n if queued. */
void tq_del(struct tq *q, struct tq_node *n);

static inline bool tq_queued(const struct tq_node *n)
{
	return n->idx != 0;
}

/* The earliest deadline, or UINT64_MAX when empty. */
uint64_t tq_next(const struct tq *q);

/* Fire every node due at or before @now_ms, earliest first. */
void tq_run(struct tq *q, uint64_t now_ms);

#endif /* WEFT_PROXY_TIMERS_H */
