// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/promtext.h. Line by line, no regexes: every
 * token is checked against the grammar of the exposition format document
 * (prometheus/docs content/docs/instrumenting/exposition_formats.md).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promtext.h"

#define NAME_MAX_LEN   200
#define LABELS_MAX_LEN 1024

struct sample {
	char name[NAME_MAX_LEN];
	char family[NAME_MAX_LEN];
	char labels[LABELS_MAX_LEN]; /* as written */
	char le[64];		     /* histogram buckets: the le label */
	char rest[LABELS_MAX_LEN];   /* labels without le */
	double value;
};

struct family {
	char name[NAME_MAX_LEN];
	char type[16];
	bool help, closed;
};

struct prom_doc {
	struct sample *s;
	size_t n, cap;
	struct family *f;
	size_t nf, capf;
};

static int fail(char *err, size_t len, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t len, int line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, len, "line %d: ", line);

	va_start(ap, fmt);
	vsnprintf(err + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool name_ok(const char *s, size_t n, bool label)
{
	if (!n || n >= NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = isalpha((unsigned char)c) || c == '_' || (!label && c == ':') ||
			  (i && isdigit((unsigned char)c));

		if (!ok)
			return false;
	}
	return !(label && n >= 2 && s[0] == '_' && s[1] == '_');
}

static struct family *find_family(struct prom_doc *d, const char *name)
{
	for (size_t i = 0; i < d->nf; i++)
		if (!strcmp(d->f[i].name, name))
			return &d->f[i];
	return NULL;
}

static struct family *add_family(struct prom_doc *d, const char *name)
{
	if (d->nf == d->capf) {
		size_t cap = d->capf ? 2 * d->capf : 64;
		struct family *g = realloc(d->f, cap * sizeof(*g));

		if (!g)
			return NULL;
		d->f = g;
		d->capf = cap;
	}
	memset(&d->f[d->nf], 0, sizeof(d->f[0]));
	snprintf(d->f[d->nf].name, NAME_MAX_LEN, "%.199s", name);
	return &d->f[d->nf++];
}

/* The family a sample name belongs to: histogram suffixes map to their base. */
static void family_of(struct prom_doc *d, const char *name, char *out)
{
	static const char *const sfx[] = { "_bucket", "_sum", "_count" };
	size_t n = strlen(name);

	for (size_t i = 0; i < 3; i++) {
		size_t k = strlen(sfx[i]);
		char base[NAME_MAX_LEN];
		struct family *f;

		if (n <= k || strcmp(name + n - k, sfx[i]))
			continue;
		snprintf(base, sizeof(base), "%.*s", (int)(n - k), name);
		f = find_family(d, base);
		if (f && (!strcmp(f->type, "histogram") || !strcmp(f->type, "summary"))) {
			strcpy(out, base);
			return;
		}
	}
	strcpy(out, name);
}

/* Parse '{a="x",b="y"}' at *p; fills labels (as written), le and the rest. */
static int parse_labels(const char **p, struct sample *s, char *err, size_t len, int line)
{
	const char *q = *p + 1, *start = q;
	char seen[32][NAME_MAX_LEN];
	size_t n_seen = 0, ro = 0;

	while (*q != '}') {
		const char *ln = q, *vs;
		size_t nl;
		char value[LABELS_MAX_LEN];
		size_t vo = 0;

		while (*q && *q != '=' && *q != '}' && *q != '\n')
			q++;
		nl = (size_t)(q - ln);
		if (*q != '=' || !name_ok(ln, nl, true))
			return fail(err, len, line, "bad label name '%.*s'", (int)nl, ln);
		for (size_t i = 0; i < n_seen; i++)
			if (strlen(seen[i]) == nl && !strncmp(seen[i], ln, nl))
				return fail(err, len, line, "label '%.*s' twice", (int)nl, ln);
		if (n_seen < 32)
			snprintf(seen[n_seen++], NAME_MAX_LEN, "%.*s", (int)nl, ln);
		if (*++q != '"')
			return fail(err, len, line, "label value not quoted");
		vs = ++q;
		while (*q != '"') {
			if (!*q || *q == '\n')
				return fail(err, len, line, "unterminated label value");
			if (*q == '\\') {
				q++;
				if (*q != '\\' && *q != '"' && *q != 'n')
					return fail(err, len, line, "bad escape '\\%c'", *q);
			}
			if (vo + 1 < sizeof(value))
				value[vo++] = *q;
			q++;
		}
		value[vo] = '\0';
		q++;
		if (nl == 2 && !strncmp(ln, "le", 2)) {
			snprintf(s->le, sizeof(s->le), "%.63s", value);
		} else {
			ro += (size_t)snprintf(s->rest + ro, sizeof(s->rest) - ro, "%s%.*s",
					       ro ? "," : "", (int)(q - ln), ln);
		}
		(void)vs;
		if (*q == ',') {
			q++;
			if (*q == '}')
				break; /* a trailing comma is allowed */
		} else if (*q != '}') {
			return fail(err, len, line, "expected ',' or '}' after a label");
		}
	}
	snprintf(s->labels, sizeof(s->labels), "%.*s", (int)(q - start), start);
	*p = q + 1;
	return 0;
}

static int parse_value(const char *v, double *out)
{
	char *end;

	if (!strcmp(v, "+Inf")) {
		*out = INFINITY;
		return 0;
	}
	if (!strcmp(v, "-Inf")) {
		*out = -INFINITY;
		return 0;
	}
	if (!strcmp(v, "NaN")) {
		*out = NAN;
		return 0;
	}
	errno = 0;
	*out = strtod(v, &end);
	return errno || end == v || *end ? -EINVAL : 0;
}

static int sample_line(struct prom_doc *d, const char *l, struct family **cur, char *err,
		       size_t len, int line)
{
	struct sample s = { 0 };
	const char *p = l;
	char value[64] = "", ts[32] = "";
	struct family *f;
	size_t n;

	while (*p && *p != '{' && *p != ' ')
		p++;
	n = (size_t)(p - l);
	if (!name_ok(l, n, false))
		return fail(err, len, line, "bad metric name '%.*s'", (int)n, l);
	snprintf(s.name, sizeof(s.name), "%.*s", (int)n, l);
	if (*p == '{' && parse_labels(&p, &s, err, len, line))
		return -EINVAL;
	if (*p != ' ')
		return fail(err, len, line, "expected one space before the value");
	p++;
	if (*p == ' ' || sscanf(p, "%63s %31s", value, ts) < 1 || strstr(p, "  "))
		return fail(err, len, line, "bad value");
	if (parse_value(value, &s.value))
		return fail(err, len, line, "value '%s' is not a float", value);
	if (ts[0] && strspn(ts, "-0123456789") != strlen(ts))
		return fail(err, len, line, "timestamp '%s' is not an integer", ts);
	family_of(d, s.name, s.family);
	f = find_family(d, s.family);
	if (!f)
		return fail(err, len, line, "sample %s before its # TYPE", s.name);
	if (f->closed || (*cur && *cur != f))
		return fail(err, len, line, "family %s is not written in one block", f->name);
	*cur = f;
	if (!strcmp(f->type, "counter")) {
		if (strlen(s.name) < 7 || strcmp(s.name + strlen(s.name) - 6, "_total"))
			return fail(err, len, line, "counter %s is not named *_total", s.name);
		if (!(s.value >= 0))
			return fail(err, len, line, "counter %s is negative or NaN", s.name);
	}
	if (!strcmp(f->type, "histogram") && !strcmp(s.name + strlen(s.family), "_bucket") &&
	    !s.le[0])
		return fail(err, len, line, "bucket without le");
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->s[i].name, s.name) && !strcmp(d->s[i].labels, s.labels))
			return fail(err, len, line, "duplicate series %s{%s}", s.name, s.labels);
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 256;
		struct sample *g = realloc(d->s, cap * sizeof(*g));

		if (!g)
			return -ENOMEM;
		d->s = g;
		d->cap = cap;
	}
	d->s[d->n++] = s;
	return 0;
}

static int comment_line(struct prom_doc *d, const char *l, struct family **cur, char *err,
			size_t len, int line)
{
	char kw[8], name[NAME_MAX_LEN + 1], type[32];
	struct family *f;
	bool help;

	if (sscanf(l, "# %7s %200s", kw, name) != 2 || (strcmp(kw, "HELP") && strcmp(kw, "TYPE")))
		return 0; /* any other comment is allowed */
	if (!name_ok(name, strlen(name), false))
		return fail(err, len, line, "bad metric name '%s' in # %s", name, kw);
	help = !strcmp(kw, "HELP");
	f = find_family(d, name);
	if (f && *cur != f && (f->help || f->type[0]))
		return fail(err, len, line, "# %s for %s, a family already written", kw, name);
	if (!f) {
		/* add_family() may move the array *cur points into. */
		size_t ci = *cur ? (size_t)(*cur - d->f) : 0;

		if (!(f = add_family(d, name)))
			return -ENOMEM;
		if (*cur)
			*cur = &d->f[ci];
	}
	if (*cur && *cur != f)
		(*cur)->closed = true;
	*cur = f;
	if (help) {
		if (f->help)
			return fail(err, len, line, "second # HELP for %s", name);
		f->help = true;
		return 0;
	}
	if (f->type[0])
		return fail(err, len, line, "second # TYPE for %s", name);
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->s[i].family, name))
			return fail(err, len, line, "# TYPE for %s after its samples", name);
	if (sscanf(l, "# TYPE %*s %31s", type) != 1 ||
	    (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram") &&
	     strcmp(type, "summary") && strcmp(type, "untyped")))
		return fail(err, len, line, "bad type in '%s'", l);
	snprintf(f->type, sizeof(f->type), "%.15s", type);
	return 0;
}

static double le_value(const char *le)
{
	double v;

	return parse_value(le, &v) ? NAN : v;
}

/* Every histogram series: cumulative buckets in increasing le, +Inf last and
 * equal to _count.
 */
static int check_histograms(const struct prom_doc *d, char *err, size_t len)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct sample *s = &d->s[i];
		char count_name[NAME_MAX_LEN + 8];
		double prev_le = -INFINITY, prev = 0, count = -1;
		bool inf = false;

		if (strcmp(s->name + strlen(s->family), "_count") ||
		    strcmp(promtext_type(d, s->family) ?: "", "histogram"))
			continue;
		count = s->value;
		snprintf(count_name, sizeof(count_name), "%s_bucket", s->family);
		for (size_t j = 0; j < d->n; j++) {
			const struct sample *b = &d->s[j];
			double le;

			if (strcmp(b->name, count_name) || strcmp(b->rest, s->labels))
				continue;
			le = le_value(b->le);
			if (isnan(le) || le <= prev_le)
				return fail(err, len, 0, "%s{%s}: le '%s' not increasing", b->name,
					    b->rest, b->le);
			if (b->value < prev)
				return fail(err, len, 0, "%s{%s}: buckets not cumulative at le %s",
					    b->name, b->rest, b->le);
			prev_le = le;
			prev = b->value;
			inf = isinf(le);
		}
		if (!inf)
			return fail(err, len, 0, "%s{%s}: no +Inf bucket", count_name, s->labels);
		if (prev != count)
			return fail(err, len, 0, "%s{%s}: +Inf bucket %g != _count %g", count_name,
				    s->labels, prev, count);
	}
	return 0;
}

struct prom_doc *promtext_parse(const char *text, char *err, size_t errlen)
{
	struct prom_doc *d = calloc(1, sizeof(*d));
	struct family *cur = NULL;
	const char *p = text;
	int line = 0, rc = 0;

	if (!d)
		return NULL;
	if (*text && text[strlen(text) - 1] != '\n') {
		fail(err, errlen, 0, "the text does not end with a newline");
		goto out_free;
	}
	while (*p && !rc) {
		const char *nl = strchr(p, '\n');
		char l[LABELS_MAX_LEN * 2];

		line++;
		if ((size_t)(nl - p) >= sizeof(l)) {
			rc = fail(err, errlen, line, "line too long");
			break;
		}
		snprintf(l, sizeof(l), "%.*s", (int)(nl - p), p);
		p = nl + 1;
		if (!l[0] || strchr(l, '\r') || l[0] == ' ')
			rc = fail(err, errlen, line, "empty line, CR or leading space");
		else if (l[0] == '#')
			rc = comment_line(d, l, &cur, err, errlen, line);
		else
			rc = sample_line(d, l, &cur, err, errlen, line);
	}
	for (size_t i = 0; !rc && i < d->nf; i++)
		if (!d->f[i].type[0] || strncmp(d->f[i].name, "weft_", 5))
			rc = fail(err, errlen, 0,
				  "family %s has no # TYPE or lacks the weft_ prefix",
				  d->f[i].name);
	if (!rc)
		rc = check_histograms(d, err, errlen);
	if (!rc)
		return d;
out_free:
	promtext_free(d);
	return NULL;
}

void promtext_free(struct prom_doc *d)
{
	if (!d)
		return;
	free(d->s);
	free(d->f);
	free(d);
}

size_t promtext_families(const struct prom_doc *d)
{
	return d->nf;
}

size_t promtext_samples(const struct prom_doc *d)
{
	return d->n;
}

double promtext_value(const struct prom_doc *d, const char *name, const char *labels)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->s[i].name, name) && !strcmp(d->s[i].labels, labels))
			return d->s[i].value;
	return -1;
}

const char *promtext_type(const struct prom_doc *d, const char *name)
{
	for (size_t i = 0; i < d->nf; i++)
		if (!strcmp(d->f[i].name, name))
			return d->f[i].type[0] ? d->f[i].type : NULL;
	return NULL;
}
