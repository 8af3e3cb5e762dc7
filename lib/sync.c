// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of lib/sync.h. */
#include "sync.h"

void sync_raise(pthread_mutex_t *lock, pthread_cond_t *cond, bool *flag)
{
	pthread_mutex_lock(lock);
	*flag = true;
	pthread_cond_broadcast(cond);
	pthread_mutex_unlock(lock);
}
