/* SPDX-License-Identifier: GPL-2.0-only */
/* A strict parser of the Prometheus text exposition format 0.0.4, for the
 * tests of GET /metrics (Debian 12's promtool is used too when installed,
 * but this one also checks what promtool lets pass: families written in one
 * block, no duplicate series, HELP/TYPE before samples, counters named
 * *_total and never negative, histogram buckets cumulative and ending with
 * +Inf equal to _count, and the weft_ prefix).
 */
#ifndef WEFT_TEST_PROMTEXT_H
#define WEFT_TEST_PROMTEXT_H

#include <stddef.h>

struct prom_doc;

/* Parse @text. Returns a document, or NULL with the first violation and its
 * line number in @err.
 */
struct prom_doc *promtext_parse(const char *text, char *err, size_t errlen);
void promtext_free(struct prom_doc *d);

/* Number of families and samples. */
size_t promtext_families(const struct prom_doc *d);
size_t promtext_samples(const struct prom_doc *d);

/* The value of series @name{@labels}, @labels written as in the text
 * ('a="x",b="y"', "" for none); -1 when absent.
 */
double promtext_value(const struct prom_doc *d, const char *name, const char *labels);

/* The TYPE of family @name, or NULL. */
const char *promtext_type(const struct prom_doc *d, const char *name);

#endif /* WEFT_TEST_PROMTEXT_H */
