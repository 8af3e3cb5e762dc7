/* SPDX-License-Identifier: GPL-2.0-only */
/* Incremental JSON for the Kubernetes watcher: bytes as libcurl delivers
 * them (a value may span chunks, a chunk may hold several values) in, one
 * callback per complete top-level value out. Wraps json-c's json_tokener;
 * no I/O, no threads of its own.
 */
#ifndef WEFT_REG_K8S_STREAM_H
#define WEFT_REG_K8S_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

/* Nesting accepted: Pods' managedFields nest deeper than json-c's default 32. */
#define K8S_STREAM_DEPTH 128

/* Called with each complete value (borrowed: take a reference to keep it).
 * Returns 0 to go on, or a negative errno that stops the feed and is
 * returned by k8s_stream_feed().
 */
typedef int (*k8s_stream_fn)(json_object *value, void *ctx);

struct k8s_stream {
	json_tokener *tok;
	size_t max;		/* bytes one value may take */
	size_t pending;		/* bytes of the value being parsed */
	k8s_stream_fn fn;
	void *ctx;
	char err[128];		/* why the last feed failed */
};

/* Prepare @s to cut values of at most @max bytes. 0 or -ENOMEM. */
int k8s_stream_init(struct k8s_stream *s, size_t max, k8s_stream_fn fn, void *ctx);

/* Free @s's parser. Accepts a zeroed or already freed @s. */
void k8s_stream_done(struct k8s_stream *s);

/* Forget any partial value (a new response starts). */
void k8s_stream_reset(struct k8s_stream *s);

/* Parse @len bytes, calling the callback for each value completed. 0, the
 * callback's error, -EINVAL (not JSON; s->err says why) or -E2BIG (a value
 * over max bytes). After an error, reset before feeding again. Does not block.
 */
int k8s_stream_feed(struct k8s_stream *s, const char *buf, size_t len);

/* Whether a value was started but not finished (a truncated response). */
bool k8s_stream_partial(const struct k8s_stream *s);

#endif /* WEFT_REG_K8S_STREAM_H */
