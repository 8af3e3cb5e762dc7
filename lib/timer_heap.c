// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of lib/timer_heap.h: a binary heap of node pointers in one
 * array that doubles as it fills. Sifting moves the hole rather than swapping,
 * so each level costs one store and one index update.
 */
#include <errno.h>
#include <stdlib.h>

#include "array.h"
#include "timer_heap.h"

#define TIMER_HEAP_MIN_CAP 64

void timer_heap_init(struct timer_heap *h)
{
	*h = (struct timer_heap){ 0 };
}

void timer_heap_done(struct timer_heap *h)
{
	free(h->slots);
	*h = (struct timer_heap){ 0 };
}

static void place(struct timer_heap *h, size_t i, struct timer_node *n)
{
	h->slots[i] = n;
	n->idx = i + 1;
}

static void sift_up(struct timer_heap *h, size_t i)
{
	struct timer_node *n = h->slots[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (h->slots[parent]->due_ms <= n->due_ms)
			break;
		place(h, i, h->slots[parent]);
		i = parent;
	}
	place(h, i, n);
}

static void sift_down(struct timer_heap *h, size_t i)
{
	struct timer_node *n = h->slots[i];

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = l;

		if (l >= h->n)
			break;
		if (r < h->n && h->slots[r]->due_ms < h->slots[l]->due_ms)
			min = r;
		if (h->slots[min]->due_ms >= n->due_ms)
			break;
		place(h, i, h->slots[min]);
		i = min;
	}
	place(h, i, n);
}

int timer_heap_add(struct timer_heap *h, struct timer_node *n, uint64_t due_ms)
{
	if (array_reserve(&h->slots, &h->cap, h->n, sizeof(*h->slots), TIMER_HEAP_MIN_CAP))
		return -ENOMEM;
	n->due_ms = due_ms;
	h->slots[h->n] = n;
	sift_up(h, h->n++);
	return 0;
}

void timer_heap_move(struct timer_heap *h, struct timer_node *n, uint64_t due_ms)
{
	uint64_t old = n->due_ms;

	n->due_ms = due_ms;
	if (due_ms < old)
		sift_up(h, n->idx - 1);
	else if (due_ms > old)
		sift_down(h, n->idx - 1);
}

void timer_heap_del(struct timer_heap *h, struct timer_node *n)
{
	struct timer_node *last;
	size_t i;

	if (!n->idx)
		return;
	i = n->idx - 1;
	n->idx = 0;
	last = h->slots[--h->n];
	if (i == h->n)
		return;
	place(h, i, last);
	/* The last node may belong above or below the hole it fills. */
	sift_down(h, i);
	sift_up(h, last->idx - 1);
}

uint64_t timer_heap_next(const struct timer_heap *h)
{
	return h->n ? h->slots[0]->due_ms : UINT64_MAX;
}

struct timer_node *timer_heap_pop(struct timer_heap *h, uint64_t now_ms)
{
	struct timer_node *n;

	if (!h->n || h->slots[0]->due_ms > now_ms)
		return NULL;
	n = h->slots[0];
	timer_heap_del(h, n);
	return n;
}
