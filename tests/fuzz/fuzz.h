/* SPDX-License-Identifier: GPL-2.0-only */
/* What the libFuzzer targets of tests/fuzz/ share: the entry point's
 * prototype, a NUL-terminated copy of an input, and a registry sink over a
 * fresh model for the targets whose parser feeds one. Static functions only:
 * every target is its own program.
 */
#ifndef WEFT_FUZZ_H
#define WEFT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "model/model.h"
#include "registry/registry.h"

/* libFuzzer's entry point, one per target: run @size bytes of @data through
 * the parser. Returns 0; a finding is a crash or a sanitizer report, and
 * nothing allocated for one input may outlive it (leaks are findings too).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* @data as a C string (a NUL inside it ends the string early, as it would
 * for the parser's real caller); aborts when memory runs out, which libFuzzer
 * reports rather than hides.
 */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* A sink applying to a model of its own, as the agent wires its backends. */
struct fuzz_sink {
	struct loop *loop;
	struct model *model;
	struct reg_sink *sink;
};

static void fuzz_changed(void *ctx)
{
	(void)ctx;
}

static inline void fuzz_sink_new(struct fuzz_sink *f)
{
	f->loop = loop_new();
	f->model = model_new();
	f->sink = f->loop && f->model ? reg_sink_new(f->loop, f->model, fuzz_changed, NULL) : NULL;
	if (!f->sink)
		abort();
}

/* Apply what the parser queued (so the model sees it too), then free all. */
static inline void fuzz_sink_free(struct fuzz_sink *f)
{
	reg_sink_drain(f->sink);
	reg_sink_free(f->sink);
	model_free(f->model);
	loop_free(f->loop);
}

#endif /* WEFT_FUZZ_H */
