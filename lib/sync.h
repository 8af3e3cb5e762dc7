/* SPDX-License-Identifier: GPL-2.0-only */
/* Small pthread hand-offs shared by the agent's threads. */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Set *@flag under @lock and wake every waiter on @cond: how a thread that
 * waits on @cond is told to stop.
 */
void sync_raise(pthread_mutex_t *lock, pthread_cond_t *cond, bool *flag);

/* Initialise @lock and @cond, @cond timing its waits on CLOCK_MONOTONIC (as
 * sync_wait() and mono_deadline() need).
 */
void sync_init_mono(pthread_mutex_t *lock, pthread_cond_t *cond);

/* *@flag read under @lock. */
bool sync_flag(pthread_mutex_t *lock, const bool *flag);

/* Sleep on @cond (see sync_init_mono()) up to @ms, waking early when *@stop
 * is set or, when @seen is not NULL, when *@cur (read under @lock) differs
 * from *@seen. Returns *@stop.
 */
bool sync_wait(pthread_mutex_t *lock, pthread_cond_t *cond, const bool *stop, const uint64_t *cur,
	       const uint64_t *seen, uint32_t ms);

#endif /* WEFT_SYNC_H */
