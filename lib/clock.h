/* SPDX-License-Identifier: GPL-2.0-only */
/* The monotonic clock, as the timeouts, backoffs and waits use it. */
#ifndef WEFT_CLOCK_H
#define WEFT_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC now, in milliseconds. */
uint64_t mono_ms(void);

/* CLOCK_MONOTONIC @ms milliseconds from now into @until, for
 * pthread_cond_timedwait() on a condition variable set to that clock.
 */
void mono_deadline(struct timespec *until, uint32_t ms);

#endif /* WEFT_CLOCK_H */
