// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of soak_samples.h. */
#include <dirent.h>
#include <stdio.h>

#include "soak_samples.h"

const char *const soak_field_name[SOAK_FIELDS] = {
	[SOAK_RSS] = "rss KiB",
	[SOAK_ANON] = "rss anon KiB",
	[SOAK_HEAP] = "heap KiB",
	[SOAK_FDS] = "fds",
};

static long count_fds(pid_t pid)
{
	char path[64];
	struct dirent *d;
	long n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		if (d->d_name[0] != '.')
			n++;
	}
	closedir(dir);
	return n;
}

int soak_sample_proc(pid_t pid, struct soak_sample *s)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	s->v[SOAK_RSS] = s->v[SOAK_ANON] = -1;
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %ld kB", &s->v[SOAK_RSS]) != 1)
			(void)sscanf(line, "RssAnon: %ld kB", &s->v[SOAK_ANON]);
	}
	fclose(f);
	s->v[SOAK_FDS] = count_fds(pid);
	return s->v[SOAK_RSS] < 0 || s->v[SOAK_FDS] < 0 ? -1 : 0;
}

struct soak_window soak_window(const struct soak_sample *s, size_t n, double warm_s)
{
	struct soak_window w = { .n = n };

	while (w.warm + 2 < n && s[w.warm].t < warm_s)
		w.warm++;
	w.mid = w.warm + (n - w.warm) / 2;
	return w;
}

long soak_peak(const struct soak_sample *s, size_t from, size_t to, enum soak_field f)
{
	long m = 0;

	for (size_t i = from; i < to; i++) {
		if (s[i].v[f] > m)
			m = s[i].v[f];
	}
	return m;
}

long soak_least(const struct soak_sample *s, size_t from, size_t to, enum soak_field f)
{
	long m = -1;

	for (size_t i = from; i < to; i++) {
		if (s[i].v[f] >= 0 && (m < 0 || s[i].v[f] < m))
			m = s[i].v[f];
	}
	return m < 0 ? 0 : m;
}

double soak_slope_per_min(const struct soak_sample *s, size_t from, size_t to, enum soak_field f)
{
	double n = 0, st = 0, sv = 0, stt = 0, stv = 0, d;

	for (size_t i = from; i < to; i++) {
		if (s[i].v[f] < 0)
			continue;
		n++;
		st += s[i].t;
		sv += (double)s[i].v[f];
		stt += s[i].t * s[i].t;
		stv += s[i].t * (double)s[i].v[f];
	}
	d = n * stt - st * st;
	return n < 2 || d == 0 ? 0 : 60 * (n * stv - st * sv) / d;
}

bool soak_flat(const struct soak_sample *s, const struct soak_window *w, enum soak_field f,
	       long tol, long tol_pct, long *allowed)
{
	long early = soak_peak(s, w->warm, w->mid, f);

	*allowed = early * tol_pct / 100 > tol ? early * tol_pct / 100 : tol;
	return soak_peak(s, w->mid, w->n, f) <= early + *allowed;
}
