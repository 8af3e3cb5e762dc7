/* SPDX-License-Identifier: GPL-2.0-only */
/* Incremental JSON for the Kubernetes watcher: bytes as libcurl delivers
 * them (a value may span chunks, a chunk may hold several values) in, one
 * callback per complete top-level value out. Wraps json-c's json_tokener;
 * no I/O, no threads of its own.
 *
 * A list page can also be split: each element of the top-level object's
 * "items" array is handed on as soon as it is complete, so a page of
 * thousands of objects is never one json-c tree (a tree costs about 700
 * bytes per JSON object: a whole page's is megabytes, built and freed for
 * every page, where one item's stays in the cache).
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

/* With splitting on, called with each element of "items" (@item: the
 * caller's if it returns 0) and the members of the object read so far
 * (@head, borrowed). Returns 0 (consumed), K8S_STREAM_KEEP to leave the
 * item in @head's "items" array for the value callback, or a negative errno
 * that stops the feed as the value callback's does.
 */
typedef int (*k8s_stream_item_fn)(json_object *head, json_object *item, void *ctx);
#define K8S_STREAM_KEEP 1

struct k8s_stream {
	json_tokener *tok;
	size_t max;		/* bytes one value may take */
	size_t pending;		/* bytes of the value being parsed */
	k8s_stream_fn fn;
	k8s_stream_item_fn item_fn;	/* NULL: whole values only */
	void *ctx;
	int state;		/* where a split value is (k8s_stream.c) */
	json_object *head;	/* a split value's members other than streamed items */
	char *key;		/* the member whose value is being read */
	char err[128];		/* why the last feed failed */
};

/* Prepare @s to cut values of at most @max bytes. 0 or -ENOMEM. */
int k8s_stream_init(struct k8s_stream *s, size_t max, k8s_stream_fn fn, void *ctx);

/* Free @s's parser. Accepts a zeroed or already freed @s. */
void k8s_stream_done(struct k8s_stream *s);

/* Forget any partial value (a new response starts). */
void k8s_stream_reset(struct k8s_stream *s);

/* Split the next values (@fn) or not (NULL): a top-level object is then
 * read member by member, the elements of its "items" array go to @fn one by
 * one, and the value callback gets the object without the items @fn
 * consumed. Any other value (an array, a string) is read whole. Call between
 * values (after init or reset).
 */
void k8s_stream_split(struct k8s_stream *s, k8s_stream_item_fn fn);

/* Parse @len bytes, calling the callback for each value completed. 0, the
 * callback's error, -EINVAL (not JSON; s->err says why) or -E2BIG (a value
 * over max bytes). After an error, reset before feeding again. Does not block.
 */
int k8s_stream_feed(struct k8s_stream *s, const char *buf, size_t len);

/* Whether a value was started but not finished (a truncated response). */
bool k8s_stream_partial(const struct k8s_stream *s);

#endif /* WEFT_REG_K8S_STREAM_H */
