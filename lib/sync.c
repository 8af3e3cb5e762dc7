// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of lib/sync.h. */
#include <errno.h>
#include <time.h>

#include "clock.h"
#include "sync.h"

void sync_raise(pthread_mutex_t *lock, pthread_cond_t *cond, bool *flag)
{
	pthread_mutex_lock(lock);
	*flag = true;
	pthread_cond_broadcast(cond);
	pthread_mutex_unlock(lock);
}

void sync_init_mono(pthread_mutex_t *lock, pthread_cond_t *cond)
{
	pthread_condattr_t ca;

	pthread_mutex_init(lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
}

bool sync_flag(pthread_mutex_t *lock, const bool *flag)
{
	bool v;

	pthread_mutex_lock(lock);
	v = *flag;
	pthread_mutex_unlock(lock);
	return v;
}

bool sync_wait(pthread_mutex_t *lock, pthread_cond_t *cond, const bool *stop, const uint64_t *cur,
	       const uint64_t *seen, uint32_t ms)
{
	struct timespec until;
	bool stopping;

	mono_deadline(&until, ms);
	pthread_mutex_lock(lock);
	while (!*stop && (!seen || *seen == *cur)) {
		if (pthread_cond_timedwait(cond, lock, &until) == ETIMEDOUT)
			break;
	}
	stopping = *stop;
	pthread_mutex_unlock(lock);
	return stopping;
}
