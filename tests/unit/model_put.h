/* SPDX-License-Identifier: GPL-2.0-only */
/* Filling a model from YAML in the unit tests, through the file registry's
 * own parser and decoder, so a test's objects are what a registry would give.
 */
#ifndef WEFT_TEST_MODEL_PUT_H
#define WEFT_TEST_MODEL_PUT_H

struct model;

/* Upsert every object of the YAML stream @yaml into @m as @source; a parse,
 * decode or upsert error fails the test.
 */
void tmodel_put(struct model *m, const char *source, const char *yaml);

#endif
