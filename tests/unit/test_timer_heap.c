// SPDX-License-Identifier: GPL-2.0-only
/* lib/timer_heap.c and the timers of agent/loop.c: order, cancel and move in
 * any slot, many timers, and the loop firing and re-arming them.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "loop.h"
#include "timer_heap.h"

/* Every node knows its slot, and no child is due before its parent. */
static void assert_heap(const struct timer_heap *h)
{
	for (size_t i = 0; i < h->n; i++) {
		cr_assert_eq(h->slots[i]->idx, i + 1, "slot %zu", i);
		if (i)
			cr_assert_leq(h->slots[(i - 1) / 2]->due_ms, h->slots[i]->due_ms,
				      "slot %zu", i);
	}
}

struct fired {
	struct timer_node n;
	int order;
	int *seq;
};

static void run(struct timer_heap *h, uint64_t now)
{
	struct timer_node *n;

	while ((n = timer_heap_pop(h, now))) {
		struct fired *f = (struct fired *)((char *)n - offsetof(struct fired, n));

		f->order = (*f->seq)++;
	}
}

static void set(struct timer_heap *h, struct timer_node *n, uint64_t due)
{
	if (timer_node_queued(n))
		timer_heap_move(h, n, due);
	else
		cr_assert_eq(timer_heap_add(h, n, due), 0);
}

Test(timer_heap, fire_in_order_and_can_be_moved_or_cancelled)
{
	struct fired f[6] = { 0 };
	uint64_t due[6] = { 50, 10, 40, 30, 20, 60 };
	struct timer_heap q;
	int seq = 0;

	timer_heap_init(&q);
	for (int i = 0; i < 6; i++) {
		f[i].seq = &seq;
		set(&q, &f[i].n, due[i]);
	}
	timer_heap_del(&q, &f[3].n);		/* 30: cancelled */
	set(&q, &f[5].n, 5);			/* 60 → 5 */
	set(&q, &f[1].n, 45);			/* 10 → 45 */
	assert_heap(&q);
	cr_assert_eq(timer_heap_next(&q), 5);
	run(&q, 44);
	cr_assert_eq(f[5].order, 0);
	cr_assert_eq(f[4].order, 1);
	cr_assert_eq(f[2].order, 2);
	cr_assert_eq(seq, 3);
	run(&q, 1000);
	cr_assert_eq(f[1].order, 3);
	cr_assert_eq(f[0].order, 4);
	cr_assert_not(timer_node_queued(&f[3].n));
	cr_assert_eq(seq, 5);
	cr_assert_eq(timer_heap_next(&q), UINT64_MAX);
	timer_heap_done(&q);
}

Test(timer_heap, pop_leaves_what_is_not_due)
{
	struct timer_node a = { 0 }, b = { 0 };
	struct timer_heap q;

	timer_heap_init(&q);
	cr_assert_null(timer_heap_pop(&q, UINT64_MAX));
	cr_assert_eq(timer_heap_add(&q, &a, 100), 0);
	cr_assert_eq(timer_heap_add(&q, &b, 100), 0);
	cr_assert_null(timer_heap_pop(&q, 99));
	cr_assert(timer_heap_pop(&q, 100) != NULL);
	cr_assert(timer_heap_pop(&q, 100) != NULL);
	cr_assert_null(timer_heap_pop(&q, 100));
	cr_assert_not(timer_node_queued(&a));
	cr_assert_not(timer_node_queued(&b));
	timer_heap_del(&q, &a);			/* not queued: ignored */
	cr_assert_eq(q.n, 0);
	timer_heap_done(&q);
}

Test(timer_heap, cancel_from_every_slot)
{
	enum { N = 31 };
	struct timer_node n[N];
	struct timer_heap q;

	/* A full heap of 5 levels; cancel each slot in turn from a fresh copy. */
	for (size_t victim = 0; victim < N; victim++) {
		struct timer_node *gone;
		uint64_t last = 0;
		size_t popped = 0;

		timer_heap_init(&q);
		memset(n, 0, sizeof(n));
		for (size_t i = 0; i < N; i++)
			cr_assert_eq(timer_heap_add(&q, &n[i], (i * 7919) % 101), 0);
		assert_heap(&q);
		gone = q.slots[victim];
		timer_heap_del(&q, gone);
		cr_assert_not(timer_node_queued(gone));
		assert_heap(&q);
		for (struct timer_node *p; (p = timer_heap_pop(&q, UINT64_MAX)); popped++) {
			cr_assert_neq(p, gone);
			cr_assert_geq(p->due_ms, last);
			last = p->due_ms;
		}
		cr_assert_eq(popped, N - 1);
		timer_heap_done(&q);
	}
}

Test(timer_heap, move_up_and_down_keeps_order)
{
	enum { N = 64 };
	struct timer_node n[N] = { 0 };
	struct timer_heap q;
	uint64_t last = 0;

	timer_heap_init(&q);
	for (size_t i = 0; i < N; i++)
		cr_assert_eq(timer_heap_add(&q, &n[i], 1000 + i * 10), 0);
	/* The latest becomes the earliest, the earliest the latest, one in the
	 * middle stays put, one moves a little either way.
	 */
	timer_heap_move(&q, &n[N - 1], 1);
	assert_heap(&q);
	timer_heap_move(&q, &n[0], 99999);
	assert_heap(&q);
	timer_heap_move(&q, &n[N / 2], n[N / 2].due_ms);
	assert_heap(&q);
	timer_heap_move(&q, &n[10], 1095);
	timer_heap_move(&q, &n[20], 1205);
	assert_heap(&q);
	cr_assert_eq(timer_heap_pop(&q, UINT64_MAX), &n[N - 1]);
	for (size_t k = 1; k < N; k++) {
		struct timer_node *p = timer_heap_pop(&q, UINT64_MAX);

		cr_assert_not_null(p);
		cr_assert_geq(p->due_ms, last);
		last = p->due_ms;
		if (k == N - 1)
			cr_assert_eq(p, &n[0]);
	}
	cr_assert_null(timer_heap_pop(&q, UINT64_MAX));
	timer_heap_done(&q);
}

Test(timer_heap, many_timers_random_operations)
{
	enum { N = 20000 };
	struct timer_node *n = calloc(N, sizeof(*n));
	struct timer_heap q;
	unsigned int seed = 42;
	size_t queued = 0, popped = 0;
	uint64_t last = 0;

	cr_assert_not_null(n);
	timer_heap_init(&q);
	for (size_t i = 0; i < N; i++, queued++)
		cr_assert_eq(timer_heap_add(&q, &n[i], (uint64_t)rand_r(&seed) % 100000), 0);
	/* Connections re-arm, move and cancel deadlines all the time. */
	for (size_t round = 0; round < 4 * N; round++) {
		struct timer_node *p = &n[(size_t)rand_r(&seed) % N];
		uint64_t due = (uint64_t)rand_r(&seed) % 100000;

		switch (rand_r(&seed) % 3) {
		case 0:
			if (timer_node_queued(p)) {
				timer_heap_del(&q, p);
				queued--;
			}
			break;
		case 1:
			if (!timer_node_queued(p)) {
				cr_assert_eq(timer_heap_add(&q, p, due), 0);
				queued++;
			}
			break;
		default:
			if (timer_node_queued(p))
				timer_heap_move(&q, p, due);
		}
	}
	cr_assert_eq(q.n, queued);
	assert_heap(&q);
	for (struct timer_node *p; (p = timer_heap_pop(&q, UINT64_MAX)); popped++) {
		cr_assert_geq(p->due_ms, last);
		last = p->due_ms;
	}
	cr_assert_eq(popped, queued);
	for (size_t i = 0; i < N; i++)
		cr_assert_not(timer_node_queued(&n[i]));
	timer_heap_done(&q);
	free(n);
}

/* ---------------------------------------------------------------- the loop's timers */

struct ord {
	struct loop_timer t;
	int order;
	int *seq;
};

struct tick {
	struct loop *loop;
	struct loop_timer again, stop, never;
	int fired;
};

static void on_again(struct loop_timer *t, uint64_t now)
{
	struct tick *k = (struct tick *)((char *)t - offsetof(struct tick, again));

	(void)now;
	/* Re-armed for "now" from its own callback: the loop runs it once per
	 * iteration instead of spinning on it.
	 */
	if (++k->fired < 5)
		cr_assert_eq(loop_timer_set(k->loop, t, 0, on_again), 0);
}

static void on_stop(struct loop_timer *t, uint64_t now)
{
	struct tick *k = (struct tick *)((char *)t - offsetof(struct tick, stop));

	(void)now;
	loop_stop(k->loop);
}

static void on_never(struct loop_timer *t, uint64_t now)
{
	(void)t;
	(void)now;
	cr_assert_fail("a cancelled timer fired");
}

static void on_ordered(struct loop_timer *t, uint64_t now)
{
	struct ord *o = (struct ord *)((char *)t - offsetof(struct ord, t));

	(void)now;
	o->order = (*o->seq)++;
}

Test(loop_timer, fire_in_order_rearm_and_cancel)
{
	struct tick k = { .loop = loop_new() };
	struct ord o[3] = { 0 };
	int seq = 0;

	cr_assert_not_null(k.loop);
	for (int i = 0; i < 3; i++)
		o[i].seq = &seq;
	cr_assert_eq(loop_timer_set(k.loop, &o[0].t, 30, on_ordered), 0);
	cr_assert_eq(loop_timer_set(k.loop, &o[1].t, 10, on_ordered), 0);
	cr_assert_eq(loop_timer_set(k.loop, &o[2].t, 60, on_ordered), 0);
	/* Moved later, then earlier than the others. */
	cr_assert_eq(loop_timer_set(k.loop, &o[1].t, 90, on_ordered), 0);
	cr_assert_eq(loop_timer_set(k.loop, &o[2].t, 5, on_ordered), 0);
	cr_assert_eq(loop_timer_set(k.loop, &k.again, 0, on_again), 0);
	cr_assert_eq(loop_timer_set(k.loop, &k.never, 20, on_never), 0);
	cr_assert(loop_timer_armed(&k.never));
	loop_timer_del(k.loop, &k.never);
	cr_assert_not(loop_timer_armed(&k.never));
	loop_timer_del(k.loop, &k.never);	/* twice: ignored */
	cr_assert_eq(loop_timer_set(k.loop, &k.stop, 150, on_stop), 0);
	cr_assert_eq(loop_run(k.loop), 0);
	cr_assert_eq(k.fired, 5);
	cr_assert_eq(o[2].order, 0);
	cr_assert_eq(o[0].order, 1);
	cr_assert_eq(o[1].order, 2);
	cr_assert_eq(seq, 3);
	for (int i = 0; i < 3; i++)
		cr_assert_not(loop_timer_armed(&o[i].t));
	cr_assert_not(loop_timer_armed(&k.stop));
	loop_free(k.loop);
}
