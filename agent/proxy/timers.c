// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/proxy/timers.h. */
#include <errno.h>
#include <stdlib.h>

#include "proxy/timers.h"

void tq_init(struct tq *q)
{
	*q = (struct tq){ 0 };
}

void tq_done(struct tq *q)
{
	for (size_t i = 0; i < q->n; i++)
		q->heap[i]->idx = 0;
	free(q->heap);
	*q = (struct tq){ 0 };
}

static void place(struct tq *q, size_t i, struct tq_node *n)
{
	q->heap[i] = n;
	n->idx = i + 1;
}

static void sift_up(struct tq *q, size_t i)
{
	struct tq_node *n = q->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (q->heap[parent]->due_ms <= n->due_ms)
			break;
		place(q, i, q->heap[parent]);
		i = parent;
	}
	place(q, i, n);
}

static void sift_down(struct tq *q, size_t i)
{
	struct tq_node *n = q->heap[i];

	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = l;

		if (l >= q->n)
			break;
		if (r < q->n && q->heap[r]->due_ms < q->heap[l]->due_ms)
			min = r;
		if (q->heap[min]->due_ms >= n->due_ms)
			break;
		place(q, i, q->heap[min]);
		i = min;
	}
	place(q, i, n);
}

int tq_set(struct tq *q, struct tq_node *n, uint64_t due_ms, tq_fn fn)
{
	n->fn = fn;
	if (n->idx) {
		uint64_t old = n->due_ms;

		n->due_ms = due_ms;
		if (due_ms < old)
			sift_up(q, n->idx - 1);
		else
			sift_down(q, n->idx - 1);
		return 0;
	}
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 256;
		struct tq_node **heap = reallocarray(q->heap, cap, sizeof(*heap));

		if (!heap)
			return -ENOMEM;
		q->heap = heap;
		q->cap = cap;
	}
	n->due_ms = due_ms;
	q->heap[q->n] = n;
	sift_up(q, q->n++);
	return 0;
}

void tq_del(struct tq *q, struct tq_node *n)
{
	struct tq_node *m;
	size_t i;

	if (!n->idx)
		return;
	i = n->idx - 1;
	n->idx = 0;
	if (i == --q->n)
		return;
	m = q->heap[q->n];
	place(q, i, m);
	/* The moved node may belong above or below its new slot. */
	sift_down(q, i);
	sift_up(q, m->idx - 1);
}

uint64_t tq_next(const struct tq *q)
{
	return q->n ? q->heap[0]->due_ms : UINT64_MAX;
}

void tq_run(struct tq *q, uint64_t now_ms)
{
	while (q->n && q->heap[0]->due_ms <= now_ms) {
		struct tq_node *n = q->heap[0];

		tq_del(q, n);
		n->fn(n, now_ms);
	}
}
