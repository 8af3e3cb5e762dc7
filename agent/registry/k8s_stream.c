// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of registry/k8s_stream.h over json_tokener_parse_ex(). A
 * split value is read by a small state machine over the top-level object's
 * punctuation; every key, member value and item is still json-c's to parse.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/k8s_stream.h"

/* Where the stream is: between values, in a value read whole, or at a point
 * of a split object.
 */
enum stream_state {
	ST_IDLE,		/* between values */
	ST_WHOLE,		/* the tokener reads a value whole */
	ST_OPEN,		/* a split object: its '{' */
	ST_MEMBER_FIRST,	/* after '{': a key or '}' */
	ST_MEMBER,		/* after ',': a key */
	ST_KEY,			/* the tokener reads a key */
	ST_COLON,		/* after a key */
	ST_VALUE_START,		/* after ':': "items" array or another value */
	ST_VALUE,		/* the tokener reads a member's value */
	ST_AFTER_VALUE,		/* ',' or '}' */
	ST_ITEM_FIRST,		/* after "items": [ : an item or ']' */
	ST_ITEM,		/* the tokener reads an item */
	ST_AFTER_ITEM,		/* ',' or ']' */
};

int k8s_stream_init(struct k8s_stream *s, size_t max, k8s_stream_fn fn, void *ctx)
{
	*s = (struct k8s_stream){ .max = max, .fn = fn, .ctx = ctx };
	s->tok = json_tokener_new_ex(K8S_STREAM_DEPTH);
	return s->tok ? 0 : -ENOMEM;
}

static void forget_split(struct k8s_stream *s)
{
	json_object_put(s->head);
	s->head = NULL;
	free(s->key);
	s->key = NULL;
}

void k8s_stream_done(struct k8s_stream *s)
{
	forget_split(s);
	if (s->tok)
		json_tokener_free(s->tok);
	s->tok = NULL;
}

void k8s_stream_reset(struct k8s_stream *s)
{
	json_tokener_reset(s->tok);
	forget_split(s);
	s->state = ST_IDLE;
	s->pending = 0;
	s->err[0] = '\0';
}

void k8s_stream_split(struct k8s_stream *s, k8s_stream_item_fn fn)
{
	s->item_fn = fn;
}

bool k8s_stream_partial(const struct k8s_stream *s)
{
	return s->state != ST_IDLE;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Take @n more bytes of the current value: -E2BIG past the limit. */
static int consume(struct k8s_stream *s, size_t *off, size_t n)
{
	*off += n;
	s->pending += n;
	if (s->pending > s->max) {
		snprintf(s->err, sizeof(s->err), "a value exceeds %zu bytes", s->max);
		return -E2BIG;
	}
	return 0;
}

/* Let the tokener read one value from @buf + *off: 1 with *out (NULL for a
 * JSON null) when it is complete, 0 when every byte was taken and more are
 * needed, or -EINVAL / -E2BIG.
 */
static int tok_read(struct k8s_stream *s, const char *buf, size_t len, size_t *off,
		    json_object **out)
{
	enum json_tokener_error jerr;
	json_object *v;
	size_t used;
	int err;

	if (len - *off > (size_t)INT32_MAX) {
		snprintf(s->err, sizeof(s->err), "chunk too large");
		return -E2BIG;
	}
	v = json_tokener_parse_ex(s->tok, buf + *off, (int)(len - *off));
	jerr = json_tokener_get_error(s->tok);
	used = json_tokener_get_parse_end(s->tok);
	if (jerr == json_tokener_continue)
		return consume(s, off, len - *off);
	if (jerr != json_tokener_success) {
		snprintf(s->err, sizeof(s->err), "%s at byte %zu of a value",
			 json_tokener_error_desc(jerr), s->pending + used);
		return -EINVAL;
	}
	json_tokener_reset(s->tok);
	err = consume(s, off, used);
	if (err) {
		json_object_put(v);
		return err;
	}
	*out = v;
	return 1;
}

/* The value ended: hand it to the value callback, which may take a reference. */
static int finish(struct k8s_stream *s, json_object *v)
{
	int err = 0;

	s->state = ST_IDLE;
	s->pending = 0;
	if (v)
		err = s->fn(v, s->ctx);
	json_object_put(v);
	return err;
}

static int unexpected(struct k8s_stream *s, char c, const char *want)
{
	if (c > 0x20 && c < 0x7f)
		snprintf(s->err, sizeof(s->err), "expected %s at byte %zu of a value, got '%c'",
			 want, s->pending, c);
	else
		snprintf(s->err, sizeof(s->err), "expected %s at byte %zu of a value, got 0x%02x",
			 want, s->pending, (unsigned char)c);
	return -EINVAL;
}

/* An item the callback leaves to the value callback: into head's "items". */
static int keep_item(struct k8s_stream *s, json_object *item)
{
	json_object *arr = NULL;

	if (!json_object_object_get_ex(s->head, "items", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		arr = json_object_new_array();
		if (!arr || json_object_object_add(s->head, "items", arr)) {
			json_object_put(arr);
			json_object_put(item);
			return -ENOMEM;
		}
	}
	if (json_object_array_add(arr, item)) {
		json_object_put(item);
		return -ENOMEM;
	}
	return 0;
}

static int take_item(struct k8s_stream *s, json_object *item)
{
	int rc = s->item_fn(s->head, item, s->ctx);

	if (rc == K8S_STREAM_KEEP)
		return keep_item(s, item);
	json_object_put(item);
	return rc < 0 ? rc : 0;
}

static int take_member(struct k8s_stream *s, json_object *v)
{
	if (json_object_object_add(s->head, s->key, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

/* One step of a split object from @buf + *off (at least one byte taken,
 * unless the value ends). 0 or a negative errno.
 */
static int split_step(struct k8s_stream *s, const char *buf, size_t len, size_t *off)
{
	char c = buf[*off];
	json_object *v = NULL;
	int rc;

	switch (s->state) {
	case ST_OPEN:
		s->head = json_object_new_object();
		if (!s->head)
			return -ENOMEM;
		s->state = ST_MEMBER_FIRST;
		return consume(s, off, 1);
	case ST_KEY:
		rc = tok_read(s, buf, len, off, &v);
		if (rc <= 0)
			return rc;
		free(s->key);
		s->key = strdup(json_object_get_string(v));
		json_object_put(v);
		if (!s->key)
			return -ENOMEM;
		s->state = ST_COLON;
		return 0;
	case ST_VALUE:
		rc = tok_read(s, buf, len, off, &v);
		if (rc <= 0)
			return rc;
		s->state = ST_AFTER_VALUE;
		return take_member(s, v);
	case ST_ITEM:
		rc = tok_read(s, buf, len, off, &v);
		if (rc <= 0)
			return rc;
		s->state = ST_AFTER_ITEM;
		return take_item(s, v);
	default:
		break;
	}
	/* The other states read punctuation, with whitespace around it. */
	if (is_ws(c))
		return consume(s, off, 1);
	switch (s->state) {
	case ST_MEMBER_FIRST:
	case ST_MEMBER:
		if (c == '}' && s->state == ST_MEMBER_FIRST)
			break;
		if (c != '"')
			return unexpected(s, c, s->state == ST_MEMBER ? "a key" : "a key or '}'");
		s->state = ST_KEY;	/* the tokener reads the key from its quote */
		return 0;
	case ST_COLON:
		if (c != ':')
			return unexpected(s, c, "':'");
		s->state = ST_VALUE_START;
		return consume(s, off, 1);
	case ST_VALUE_START:
		if (c == '[' && !strcmp(s->key, "items")) {
			s->state = ST_ITEM_FIRST;
			return consume(s, off, 1);
		}
		s->state = ST_VALUE;
		return 0;
	case ST_AFTER_VALUE:
		if (c == ',') {
			s->state = ST_MEMBER;
			return consume(s, off, 1);
		}
		if (c != '}')
			return unexpected(s, c, "',' or '}'");
		break;
	case ST_ITEM_FIRST:
		if (c == ']') {
			s->state = ST_AFTER_VALUE;
			return consume(s, off, 1);
		}
		s->state = ST_ITEM;
		return 0;
	case ST_AFTER_ITEM:
		if (c == ',') {
			s->state = ST_ITEM;
			return consume(s, off, 1);
		}
		if (c != ']')
			return unexpected(s, c, "',' or ']'");
		s->state = ST_AFTER_VALUE;
		return consume(s, off, 1);
	default:
		return -EINVAL;
	}
	/* The object's closing '}'. */
	rc = consume(s, off, 1);
	if (rc)
		return rc;
	v = s->head;
	s->head = NULL;
	return finish(s, v);
}

static int whole_step(struct k8s_stream *s, const char *buf, size_t len, size_t *off)
{
	json_object *v = NULL;
	int rc = tok_read(s, buf, len, off, &v);

	if (rc <= 0)
		return rc;
	return finish(s, v);
}

int k8s_stream_feed(struct k8s_stream *s, const char *buf, size_t len)
{
	size_t off = 0;
	int err;

	while (off < len) {
		if (s->state == ST_IDLE) {
			/* Between values (the newline after each watch event) there
			 * is nothing to parse; skipping it keeps "partial" meaning
			 * "inside a value", which is how a truncated response is
			 * told apart.
			 */
			while (off < len && is_ws(buf[off]))
				off++;
			if (off == len)
				break;
			s->state = s->item_fn && buf[off] == '{' ? ST_OPEN : ST_WHOLE;
		}
		if (s->state == ST_WHOLE)
			err = whole_step(s, buf, len, &off);
		else
			err = split_step(s, buf, len, &off);
		if (err)
			return err;
	}
	return 0;
}
