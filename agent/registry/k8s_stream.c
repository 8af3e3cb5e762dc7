// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of registry/k8s_stream.h over json_tokener_parse_ex(). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "registry/k8s_stream.h"

int k8s_stream_init(struct k8s_stream *s, size_t max, k8s_stream_fn fn, void *ctx)
{
	*s = (struct k8s_stream){ .max = max, .fn = fn, .ctx = ctx };
	s->tok = json_tokener_new_ex(K8S_STREAM_DEPTH);
	return s->tok ? 0 : -ENOMEM;
}

void k8s_stream_done(struct k8s_stream *s)
{
	if (s->tok)
		json_tokener_free(s->tok);
	s->tok = NULL;
}

void k8s_stream_reset(struct k8s_stream *s)
{
	json_tokener_reset(s->tok);
	s->pending = 0;
	s->err[0] = '\0';
}

bool k8s_stream_partial(const struct k8s_stream *s)
{
	return s->pending > 0;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

int k8s_stream_feed(struct k8s_stream *s, const char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		enum json_tokener_error jerr;
		json_object *v;
		size_t used;
		int err;

		/* Between values (the newline after each watch event) there is
		 * nothing to parse; skipping it keeps "pending" meaning "inside a
		 * value", which is how a truncated response is told apart.
		 */
		if (!s->pending) {
			while (off < len && is_ws(buf[off]))
				off++;
			if (off == len)
				break;
		}
		if (len - off > (size_t)INT32_MAX) {
			snprintf(s->err, sizeof(s->err), "chunk too large");
			return -E2BIG;
		}
		v = json_tokener_parse_ex(s->tok, buf + off, (int)(len - off));
		jerr = json_tokener_get_error(s->tok);
		used = json_tokener_get_parse_end(s->tok);
		if (jerr == json_tokener_continue) {
			s->pending += len - off;
			if (s->pending > s->max) {
				snprintf(s->err, sizeof(s->err), "a value exceeds %zu bytes",
					 s->max);
				return -E2BIG;
			}
			return 0;
		}
		if (jerr != json_tokener_success) {
			snprintf(s->err, sizeof(s->err), "%s at byte %zu of a value",
				 json_tokener_error_desc(jerr), s->pending + used);
			return -EINVAL;
		}
		if (s->pending + used > s->max) {
			json_object_put(v);
			snprintf(s->err, sizeof(s->err), "a value exceeds %zu bytes", s->max);
			return -E2BIG;
		}
		off += used;
		s->pending = 0;
		json_tokener_reset(s->tok);
		if (!v)		/* a JSON null: no object to hand on */
			continue;
		err = s->fn(v, s->ctx);
		json_object_put(v);
		if (err)
			return err;
	}
	return 0;
}
