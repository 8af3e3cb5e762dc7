/* SPDX-License-Identifier: GPL-2.0-only */
/* An intrusive binary min-heap of deadlines: the node lives in its owner and
 * remembers its slot, so add, cancel and move are O(log n) and need no lookup.
 * agent/loop.c keeps its timers in one; it is plain data, with no clock.
 */
#ifndef WEFT_TIMER_HEAP_H
#define WEFT_TIMER_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct timer_node {
	uint64_t due_ms;	/* the deadline; read-only while queued */
	size_t idx;		/* heap slot + 1; 0 = not queued */
};

struct timer_heap {
	struct timer_node **slots;
	size_t n, cap;
};

/* An empty heap. */
void timer_heap_init(struct timer_heap *h);
/* Free the slot array. Queued nodes are forgotten, not touched: their owners
 * may already be gone, and must not hand them to @h again.
 */
void timer_heap_done(struct timer_heap *h);

/* Queue @n, which is not queued, to expire at @due_ms. 0 or -ENOMEM. */
int timer_heap_add(struct timer_heap *h, struct timer_node *n, uint64_t due_ms);
/* Move the queued @n to @due_ms, earlier or later. */
void timer_heap_move(struct timer_heap *h, struct timer_node *n, uint64_t due_ms);
/* Unqueue @n; a node that is not queued is ignored. */
void timer_heap_del(struct timer_heap *h, struct timer_node *n);

static inline bool timer_node_queued(const struct timer_node *n)
{
	return n->idx != 0;
}

/* The earliest deadline, or UINT64_MAX when empty. */
uint64_t timer_heap_next(const struct timer_heap *h);
/* Unqueue and return the earliest node if it is due at or before @now_ms;
 * NULL otherwise. Nodes due at the same time come out in no set order.
 */
struct timer_node *timer_heap_pop(struct timer_heap *h, uint64_t now_ms);

#endif /* WEFT_TIMER_HEAP_H */
