// SPDX-License-Identifier: GPL-2.0-only
/* YAML (libyaml events) and JSON (json_tokener) text -> json-c documents for
 * registry/decode.c. Scalars are typed as sigs.k8s.io/yaml (go-yaml v2, YAML
 * 1.1) would type them, so a manifest means here what it means to kubectl.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "registry/yaml.h"

#define TAG_PREFIX "tag:yaml.org,2002:"
#define NUM_MAX 128		/* longest scalar tried as a number */

/* One open mapping or sequence. */
struct frame {
	json_object *node;	/* borrowed: owned by its parent or by the root */
	char *key;		/* mapping only: the key waiting for its value, owned */
};

struct builder {
	struct frame stack[REG_DOC_DEPTH_MAX];
	size_t depth;
	json_object *root;	/* the document being built, owned */
	json_object *docs;	/* every finished document, owned */
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 4, 5))) static int fail_at(char *err, size_t errlen,
							 const yaml_mark_t *m, const char *fmt, ...)
{
	char msg[REG_PARSE_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "line %zu, column %zu: %s", m->line + 1, m->column + 1, msg);
	return -EINVAL;
}

static bool is_one_of(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (!strcmp(s, *words))
			return true;
	return false;
}

/* Copy @s without '_' into @out (go-yaml v2 drops them before parsing numbers). */
static bool strip_underscores(const char *s, size_t n, char *out, size_t size)
{
	size_t j = 0;

	if (n >= size)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '_')
			out[j++] = s[i];
	out[j] = '\0';
	return j > 0;
}

/* An integer in YAML 1.1 form: [-+]? then 0x.., 0o.., 0b.., 0[0-7]+ or decimal.
 * Returns true and the value, or false if @s is not one (or overflows int64,
 * in which case the caller tries it as a float, as go-yaml does).
 */
static bool parse_int(const char *s, size_t n, int64_t *out)
{
	char num[NUM_MAX];
	const char *digits;
	unsigned long long v;
	bool neg = false;
	char *end;
	int base = 10;

	if (!strip_underscores(s, n, num, sizeof(num)))
		return false;
	digits = num;
	if (*digits == '+' || *digits == '-')
		neg = *digits++ == '-';
	if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
		base = 16;
		digits += 2;
	} else if (digits[0] == '0' && digits[1] == 'b') {
		base = 2;
		digits += 2;
	} else if (digits[0] == '0' && digits[1] == 'o') {
		base = 8;
		digits += 2;
	} else if (digits[0] == '0' && digits[1]) {
		base = 8;
		digits += 1;
	}
	/* strtoull would accept a second sign or leading blanks: refuse them. */
	if (!isxdigit((unsigned char)*digits) || (base != 16 && !isdigit((unsigned char)*digits)))
		return false;
	errno = 0;
	v = strtoull(digits, &end, base);
	if (*end || errno == ERANGE)
		return false;
	if (!neg && v > (unsigned long long)INT64_MAX)
		return false;
	if (neg && v > (unsigned long long)INT64_MAX + 1)
		return false;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

/* A float in the YAML 1.1 sense, which go-yaml widens to what Go's
 * ParseFloat takes: digits with one optional dot and an optional exponent.
 */
static bool parse_float(const char *s, size_t n, double *out)
{
	char num[NUM_MAX];
	bool digit = false, dot = false, exp = false;
	char *end;
	size_t i = 0;

	if (!strip_underscores(s, n, num, sizeof(num)))
		return false;
	if (num[i] == '+' || num[i] == '-')
		i++;
	for (; num[i]; i++) {
		char c = num[i];

		if (c >= '0' && c <= '9') {
			digit = true;
		} else if (c == '.' && !dot && !exp) {
			dot = true;
		} else if ((c == 'e' || c == 'E') && digit && !exp) {
			exp = true;
			digit = false;
			if (num[i + 1] == '+' || num[i + 1] == '-')
				i++;
		} else {
			return false;
		}
	}
	if (!digit)
		return false;
	*out = strtod(num, &end);
	return *end == '\0';
}

/* Type a plain (unquoted, untagged) scalar. *out may be NULL (a YAML null). */
static int resolve_plain(const char *s, size_t n, json_object **out)
{
	static const char *const nulls[] = { "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", "yes", "Yes", "YES", "on",
					     "On", "ON", "y", "Y", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", "no", "No", "NO", "off",
					      "Off", "OFF", "n", "N", NULL };
	static const char *const specials[] = { ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
						"-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN",
						NULL };
	int64_t i;
	double d;

	*out = NULL;
	if (n == 0 || is_one_of(s, nulls))
		return 0;
	if (is_one_of(s, trues) || is_one_of(s, falses)) {
		*out = json_object_new_boolean(is_one_of(s, trues));
	} else if (is_one_of(s, specials)) {
		return -EDOM;
	} else if (parse_int(s, n, &i)) {
		*out = json_object_new_int64(i);
	} else if (parse_float(s, n, &d)) {
		*out = json_object_new_double(d);
	} else {
		*out = json_object_new_string_len(s, (int)n);
	}
	return *out ? 0 : -ENOMEM;
}

/* The json value of a scalar event. */
static int scalar_value(struct builder *b, const yaml_event_t *ev, json_object **out)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	int err;

	if (n > INT_MAX)
		return fail_at(b->err, b->errlen, &ev->start_mark, "scalar too long");
	if (tag && strcmp(tag, "!")) {
		if (!strcmp(tag, TAG_PREFIX "str"))
			plain = false;
		else if (strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)))
			return fail_at(b->err, b->errlen, &ev->start_mark,
				       "unsupported tag '%.64s'", tag);
		else
			plain = true;	/* !!int "80" is an int, as in go-yaml */
	} else if (tag) {
		plain = false;		/* the non-specific "!" tag means string */
	}
	if (!plain) {
		*out = json_object_new_string_len(s, (int)n);
		return *out ? 0 : -ENOMEM;
	}
	err = resolve_plain(s, n, out);
	if (err == -EDOM)
		return fail_at(b->err, b->errlen, &ev->start_mark,
			       "'%s' cannot be represented in JSON", s);
	return err;
}

/* Attach @v (owned; may be NULL for null) to the open container or make it
 * the document root.
 */
static int add_value(struct builder *b, json_object *v, const yaml_mark_t *m)
{
	struct frame *f;
	int err = 0;

	if (b->depth == 0) {
		b->root = v;
		return 0;
	}
	f = &b->stack[b->depth - 1];
	if (json_object_is_type(f->node, json_type_array)) {
		if (json_object_array_add(f->node, v))
			err = -ENOMEM;
	} else if (!f->key) {
		err = fail_at(b->err, b->errlen, m, "mapping keys must be scalars");
	} else if (json_object_object_get_ex(f->node, f->key, NULL)) {
		/* go-yaml v2 rejects this too; silently taking one would hide a mistake. */
		err = fail_at(b->err, b->errlen, m, "duplicate key '%.64s'", f->key);
	} else if (json_object_object_add(f->node, f->key, v)) {
		err = -ENOMEM;
	}
	if (err) {
		json_object_put(v);
		return err;
	}
	if (f->key) {
		free(f->key);
		f->key = NULL;
	}
	return 0;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	struct frame *f = b->depth ? &b->stack[b->depth - 1] : NULL;
	json_object *v;
	int err;

	/* A scalar in key position stays text, whatever it looks like. */
	if (f && json_object_is_type(f->node, json_type_object) && !f->key) {
		if (!strcmp(s, "<<") && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			return fail_at(b->err, b->errlen, &ev->start_mark,
				       "merge keys ('<<') are not supported");
		if (strlen(s) != ev->data.scalar.length)
			return fail_at(b->err, b->errlen, &ev->start_mark,
				       "keys must not contain NUL characters");
		f->key = strdup(s);
		return f->key ? 0 : -ENOMEM;
	}
	err = scalar_value(b, ev, &v);
	if (err)
		return err;
	return add_value(b, v, &ev->start_mark);
}

static int on_open(struct builder *b, const yaml_event_t *ev, bool mapping)
{
	json_object *node;
	int err;

	if (b->depth == REG_DOC_DEPTH_MAX)
		return fail_at(b->err, b->errlen, &ev->start_mark,
			       "nested deeper than %d levels", REG_DOC_DEPTH_MAX);
	node = mapping ? json_object_new_object() : json_object_new_array();
	if (!node)
		return -ENOMEM;
	err = add_value(b, node, &ev->start_mark);
	if (err)
		return err;
	/* The parent (or the root) owns @node; the frame borrows it. */
	b->stack[b->depth++] = (struct frame){ .node = node };
	return 0;
}

static void on_close(struct builder *b)
{
	struct frame *f = &b->stack[--b->depth];

	free(f->key);
	f->key = NULL;
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		b->root = NULL;
		return 0;
	case YAML_DOCUMENT_END_EVENT:
		if (json_object_array_add(b->docs, b->root))
			return -ENOMEM;
		b->root = NULL;
		return 0;
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_MAPPING_START_EVENT:
		return on_open(b, ev, true);
	case YAML_SEQUENCE_START_EVENT:
		return on_open(b, ev, false);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		on_close(b);
		return 0;
	case YAML_ALIAS_EVENT:
		/* Aliases make documents that expand without bound ("billion
		 * laughs") and Kubernetes manifests do not need them.
		 */
		return fail_at(b->err, b->errlen, &ev->start_mark, "aliases are not supported");
	case YAML_NO_EVENT:
	case YAML_STREAM_START_EVENT:
	case YAML_STREAM_END_EVENT:
		return 0;
	}
	return 0;
}

/* Line and column (1-based) of byte @off of @buf. */
static void position(const char *buf, size_t off, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int parser_error(const yaml_parser_t *p, const char *buf, size_t len, char *err,
			size_t errlen)
{
	yaml_mark_t m = p->problem_mark;
	const char *problem = p->problem ? p->problem : "syntax error";

	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	/* The reader (encoding errors) reports a byte offset, not a mark. */
	if (p->error == YAML_READER_ERROR) {
		size_t line, col;

		position(buf, p->problem_offset < len ? p->problem_offset : len, &line, &col);
		m.line = line - 1;
		m.column = col - 1;
	}
	if (p->context)
		return fail_at(err, errlen, &m, "%s (%s at line %zu, column %zu)", problem,
			       p->context, p->context_mark.line + 1, p->context_mark.column + 1);
	return fail_at(err, errlen, &m, "%s", problem);
}

int reg_yaml_parse(const char *buf, size_t len, json_object **docs, char *err, size_t errlen)
{
	struct builder b = { .err = err, .errlen = errlen };
	yaml_parser_t parser;
	bool done = false;
	int ret = 0;

	*docs = NULL;
	b.docs = json_object_new_array();
	if (!b.docs)
		return -ENOMEM;
	if (!yaml_parser_initialize(&parser)) {
		ret = -ENOMEM;
		goto out_put_docs;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done && !ret) {
		yaml_event_t ev;

		if (!yaml_parser_parse(&parser, &ev)) {
			ret = parser_error(&parser, buf, len, err, errlen);
			break;
		}
		ret = on_event(&b, &ev);
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	while (b.depth)
		on_close(&b);
	json_object_put(b.root);
	yaml_parser_delete(&parser);
	if (!ret) {
		*docs = b.docs;
		return 0;
	}
out_put_docs:
	if (ret == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	json_object_put(b.docs);
	return ret;
}

static size_t skip_space(const char *buf, size_t off, size_t len)
{
	while (off < len && (buf[off] == ' ' || buf[off] == '\t' || buf[off] == '\r' ||
			     buf[off] == '\n'))
		off++;
	return off;
}

/* Where the text starts: after a UTF-8 byte order mark, if any. */
static size_t skip_bom(const char *buf, size_t len)
{
	return len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3) ? 3 : 0;
}

int reg_json_parse(const char *buf, size_t len, json_object **docs, char *err, size_t errlen)
{
	struct json_tokener *tok;
	json_object *arr;
	size_t off, line, col;
	int ret = 0;

	*docs = NULL;
	if (len > INT_MAX) {
		snprintf(err, errlen, "input larger than %d bytes", INT_MAX);
		return -EINVAL;
	}
	arr = json_object_new_array();
	if (!arr)
		return -ENOMEM;
	tok = json_tokener_new_ex(REG_DOC_DEPTH_MAX);
	if (!tok) {
		ret = -ENOMEM;
		goto out_put_arr;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
					  JSON_TOKENER_VALIDATE_UTF8);
	off = skip_space(buf, skip_bom(buf, len), len);
	while (off < len && !ret) {
		json_object *v = json_tokener_parse_ex(tok, buf + off, (int)(len - off));
		enum json_tokener_error jerr = json_tokener_get_error(tok);
		size_t end = off + json_tokener_get_parse_end(tok);

		/* A bare number at the very end may go on: a space ends it. */
		if (jerr == json_tokener_continue && end == len) {
			v = json_tokener_parse_ex(tok, " ", 1);
			jerr = json_tokener_get_error(tok);
		}
		if (jerr != json_tokener_success) {
			position(buf, end, &line, &col);
			snprintf(err, errlen, "line %zu, column %zu: %s", line, col,
				 jerr == json_tokener_continue ? "unexpected end of input"
							       : json_tokener_error_desc(jerr));
			json_object_put(v);
			ret = -EINVAL;
			break;
		}
		if (json_object_array_add(arr, v)) {
			json_object_put(v);
			ret = -ENOMEM;
			break;
		}
		off = skip_space(buf, end, len);
		json_tokener_reset(tok);
	}
	json_tokener_free(tok);
	if (!ret) {
		*docs = arr;
		return 0;
	}
out_put_arr:
	if (ret == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	json_object_put(arr);
	return ret;
}

bool reg_docs_is_json(const char *buf, size_t len)
{
	size_t off = skip_space(buf, skip_bom(buf, len), len);

	return off < len && (buf[off] == '{' || buf[off] == '[');
}

int reg_docs_parse(const char *buf, size_t len, json_object **docs, char *err, size_t errlen)
{
	if (reg_docs_is_json(buf, len))
		return reg_json_parse(buf, len, docs, err, errlen);
	return reg_yaml_parse(buf, len, docs, err, errlen);
}
