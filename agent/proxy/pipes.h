/* SPDX-License-Identifier: GPL-2.0-only */
/* The pipes the opaque relay splices through, after haproxy's pipe pool: a
 * connection holds one only while bytes are in it, so an idle relayed
 * connection costs its two sockets and nothing more. Each proxy (worker)
 * has one pool, bounded: past the bound a connection copies through its
 * buffer instead, slower but never refused. Empty pipes are kept for the
 * next taker, up to PIPES_SPARE, rather than closed and made again.
 */
#ifndef WEFT_PROXY_PIPES_H
#define WEFT_PROXY_PIPES_H

#include <stdint.h>

/* Pipes open at once per worker, lent and spare: 2 descriptors and up to
 * 64 KiB of page references in flight each. Bulk flows beyond this many at
 * once per worker copy instead.
 */
#define PIPES_MAX 256
/* Empty pipes kept open between lendings. */
#define PIPES_SPARE 16

struct pipe_pool {
	uint32_t max;		/* open at once: lent + n_spare <= max */
	uint32_t lent;		/* held by connections */
	uint32_t n_spare;
	int spare[PIPES_SPARE][2];
	uint64_t made;		/* pipe2() calls that succeeded */
	uint64_t exhausted;	/* a taker turned away at the bound */
};

/* An empty pool of at most @max pipes (0: PIPES_MAX). */
void pipe_pool_init(struct pipe_pool *pp, uint32_t max);

/* Close every spare pipe; the caller gave back or dropped every lent one. */
void pipe_pool_done(struct pipe_pool *pp);

/* Lend an empty pipe into @fds (read end, write end; non-blocking). 0,
 * -ENOSPC at the bound, or -errno of pipe2() (-EMFILE...).
 */
int pipe_take(struct pipe_pool *pp, int fds[2]);

/* Give back the pipe in @fds, which must be empty, and set @fds to -1.
 * Kept as a spare if there is room, else closed. Nothing for -1.
 */
void pipe_give(struct pipe_pool *pp, int fds[2]);

/* Count a pipe another agent passed (a hand-over) as lent from @pp: it is
 * given back or dropped like any other, and may take the pool past its
 * bound until then.
 */
void pipe_adopt(struct pipe_pool *pp);

/* Close the pipe in @fds, which may hold bytes nobody will read, and set
 * @fds to -1. Nothing for -1.
 */
void pipe_drop(struct pipe_pool *pp, int fds[2]);

#endif /* WEFT_PROXY_PIPES_H */
