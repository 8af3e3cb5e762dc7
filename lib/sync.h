/* SPDX-License-Identifier: GPL-2.0-only */
/* Small pthread hand-offs shared by the agent's threads. */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <pthread.h>
#include <stdbool.h>

/* Set *@flag under @lock and wake every waiter on @cond: how a thread that
 * waits on @cond is told to stop.
 */
void sync_raise(pthread_mutex_t *lock, pthread_cond_t *cond, bool *flag);

#endif /* WEFT_SYNC_H */
