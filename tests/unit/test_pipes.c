// SPDX-License-Identifier: GPL-2.0-only
/* The relay's pipe pool (agent/proxy/pipes.c): its bound, spares reused
 * rather than made again, and every descriptor closed in the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "proxy/pipes.h"

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

Test(pipes, the_bound_turns_takers_away_and_a_given_back_pipe_is_lent_again)
{
	struct pipe_pool pp;
	int p[4][2], again[2];

	pipe_pool_init(&pp, 3);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pipe_take(&pp, p[i]), 0);
	cr_assert_eq(pipe_take(&pp, p[3]), -ENOSPC);
	cr_assert_eq(pp.exhausted, 1);
	cr_assert_eq(pp.lent, 3);
	/* An empty pipe given back is the next one lent: no pipe2(). */
	pipe_give(&pp, p[1]);
	cr_assert_eq(p[1][0], -1);
	cr_assert_eq(pp.lent, 2);
	cr_assert_eq(pp.n_spare, 1);
	cr_assert_eq(pipe_take(&pp, again), 0);
	cr_assert_eq(pp.made, 3, "a spare was there, yet a pipe was made");
	cr_assert(is_open(again[0]) && is_open(again[1]));
	/* Still at the bound. */
	cr_assert_eq(pipe_take(&pp, p[3]), -ENOSPC);
	pipe_give(&pp, again);
	pipe_give(&pp, p[0]);
	pipe_give(&pp, p[2]);
	cr_assert_eq(pp.lent, 0);
	cr_assert_leq(pp.n_spare, 3);
	pipe_pool_done(&pp);
	cr_assert_eq(pp.n_spare, 0);
}

Test(pipes, a_pipe_with_bytes_is_closed_not_kept_and_spares_stay_bounded)
{
	struct pipe_pool pp;
	int p[PIPES_SPARE + 4][2], kept[2], fd0;
	size_t n = sizeof(p) / sizeof(p[0]);

	pipe_pool_init(&pp, 0);
	cr_assert_eq(pp.max, PIPES_MAX);
	cr_assert_eq(pipe_take(&pp, kept), 0);
	cr_assert_eq(write(kept[1], "x", 1), 1);
	fd0 = kept[0];
	pipe_drop(&pp, kept);
	cr_assert_eq(kept[0], -1);
	cr_assert(!is_open(fd0), "a dropped pipe stayed open");
	cr_assert_eq(pp.lent, 0);
	cr_assert_eq(pp.n_spare, 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(pipe_take(&pp, p[i]), 0);
	fd0 = p[0][0];
	for (size_t i = 0; i < n; i++)
		pipe_give(&pp, p[i]);
	/* At most PIPES_SPARE kept; the rest closed (the first given back is a spare). */
	cr_assert_eq(pp.n_spare, PIPES_SPARE);
	cr_assert(is_open(fd0));
	pipe_pool_done(&pp);
	cr_assert(!is_open(fd0), "a spare outlived its pool");
	/* Nothing for a pipe that is not there. */
	pipe_give(&pp, kept);
	pipe_drop(&pp, kept);
	cr_assert_eq(pp.lent, 0);
}
