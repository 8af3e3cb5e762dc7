// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/proxy/pipes.h: a counter of lent pipes and a
 * small stack of spare ones. One pool per proxy, used by its loop's thread
 * only: no locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "proxy/pipes.h"

void pipe_pool_init(struct pipe_pool *pp, uint32_t max)
{
	*pp = (struct pipe_pool){ .max = max ? max : PIPES_MAX };
}

void pipe_pool_done(struct pipe_pool *pp)
{
	while (pp->n_spare) {
		pp->n_spare--;
		close(pp->spare[pp->n_spare][0]);
		close(pp->spare[pp->n_spare][1]);
	}
}

int pipe_take(struct pipe_pool *pp, int fds[2])
{
	if (pp->n_spare) {
		pp->n_spare--;
		fds[0] = pp->spare[pp->n_spare][0];
		fds[1] = pp->spare[pp->n_spare][1];
		pp->lent++;
		return 0;
	}
	if (pp->lent >= pp->max) {
		pp->exhausted++;
		return -ENOSPC;
	}
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == -1) {
		fds[0] = fds[1] = -1;
		return -errno;
	}
	pp->made++;
	pp->lent++;
	return 0;
}

void pipe_give(struct pipe_pool *pp, int fds[2])
{
	if (fds[0] == -1)
		return;
	pp->lent--;
	/* Spares count against the bound too: keep one only below it. */
	if (pp->n_spare < PIPES_SPARE && pp->lent + pp->n_spare < pp->max) {
		pp->spare[pp->n_spare][0] = fds[0];
		pp->spare[pp->n_spare][1] = fds[1];
		pp->n_spare++;
	} else {
		close(fds[0]);
		close(fds[1]);
	}
	fds[0] = fds[1] = -1;
}

void pipe_adopt(struct pipe_pool *pp)
{
	pp->lent++;
}

void pipe_drop(struct pipe_pool *pp, int fds[2])
{
	if (fds[0] == -1)
		return;
	pp->lent--;
	close(fds[0]);
	close(fds[1]);
	fds[0] = fds[1] = -1;
}
