/* SPDX-License-Identifier: GPL-2.0-only */
/* The soak's samples of the agent (tests/integration/test_soak.c): resident
 * and anonymous memory and descriptors from /proc, the heap in use from the
 * admin API, and the figures a run is judged by: the peaks of the early and
 * the late half after the warm-up, and the least-squares slope.
 */
#ifndef WEFT_TEST_SOAK_SAMPLES_H
#define WEFT_TEST_SOAK_SAMPLES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum soak_field {
	SOAK_RSS,		/* VmRSS, KiB */
	SOAK_ANON,		/* RssAnon, KiB: rss less the pages of files */
	SOAK_HEAP,		/* heap in use, KiB (/v1/status heap_bytes) */
	SOAK_FDS,		/* open descriptors */
	SOAK_FIELDS,
};

struct soak_sample {
	double t;		/* s since the load started */
	long v[SOAK_FIELDS];	/* -1: not known */
};

/* "rss KiB", ... for the summary. */
extern const char *const soak_field_name[SOAK_FIELDS];

/* Fill @s's rss, anon and fds fields from /proc/@pid. 0, or -1 when the
 * process is gone.
 */
int soak_sample_proc(pid_t pid, struct soak_sample *s);

/* Where a run's samples split: [0, warm) warm-up, [warm, mid) the early
 * half, [mid, n) the late half.
 */
struct soak_window {
	size_t warm, mid, n;
};

/* Split @n samples after @warm_s seconds of warm-up. */
struct soak_window soak_window(const struct soak_sample *s, size_t n, double warm_s);

/* Over samples [@from, @to), ignoring unknown values: the peak, the least
 * (0 if none is known), and the least-squares slope per minute.
 */
long soak_peak(const struct soak_sample *s, size_t from, size_t to, enum soak_field f);
long soak_least(const struct soak_sample *s, size_t from, size_t to, enum soak_field f);
double soak_slope_per_min(const struct soak_sample *s, size_t from, size_t to, enum soak_field f);

/* Whether @f stayed flat: the late half's peak at most the early half's
 * plus the larger of @tol and @tol_pct percent of it (written to *@allowed).
 */
bool soak_flat(const struct soak_sample *s, const struct soak_window *w, enum soak_field f,
	       long tol, long tol_pct, long *allowed);

#endif /* WEFT_TEST_SOAK_SAMPLES_H */
