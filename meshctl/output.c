// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of meshctl/output.h. Tables buffer their rows so columns can
 * be sized to their widest cell before anything is printed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "output.h"

#define OUT_KEY_MAX 256		/* a flattened key ("bpf.counters.redirected") */
#define OUT_MSG_MAX 1024	/* one error message */

struct out_table {
	size_t n_cols;
	const char *const *headers;	/* borrowed; NULL = no header line */
	char **cells;			/* n_rows * n_cols, owned */
	size_t n_rows, cap_rows;
};

struct out_table *out_table_new(size_t n_cols, const char *const *headers)
{
	struct out_table *t;

	if (n_cols == 0 || n_cols > OUT_MAX_COLS) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->n_cols = n_cols;
	t->headers = headers;
	return t;
}

static char *clean_copy(const char *s)
{
	char *c = strdup(s ? s : "-");

	if (!c)
		return NULL;
	for (char *p = c; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}
	return c;
}

int out_table_add(struct out_table *t, const char *const *cells)
{
	char **row;

	if (t->n_rows == t->cap_rows) {
		size_t cap = t->cap_rows ? t->cap_rows * 2 : 16;
		char **grown = realloc(t->cells, cap * t->n_cols * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		t->cells = grown;
		t->cap_rows = cap;
	}
	row = t->cells + t->n_rows * t->n_cols;
	for (size_t i = 0; i < t->n_cols; i++) {
		row[i] = clean_copy(cells[i]);
		if (!row[i]) {
			while (i--)
				free(row[i]);
			return -ENOMEM;
		}
	}
	t->n_rows++;
	return 0;
}

/* Terminal columns of a UTF-8 string, counting one per code point. */
static size_t width_of(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void print_row(FILE *out, const char *const *cells, size_t n_cols, const size_t *widths)
{
	for (size_t i = 0; i < n_cols; i++) {
		fputs(cells[i], out);
		if (i + 1 == n_cols)
			break;
		fprintf(out, "%*s", (int)(widths[i] - width_of(cells[i]) + OUT_COL_GAP), "");
	}
	fputc('\n', out);
}

void out_table_print(const struct out_table *t, FILE *out)
{
	size_t widths[OUT_MAX_COLS] = { 0 };

	for (size_t i = 0; i < t->n_cols; i++) {
		if (t->headers)
			widths[i] = width_of(t->headers[i]);
		for (size_t r = 0; r < t->n_rows; r++) {
			size_t w = width_of(t->cells[r * t->n_cols + i]);

			if (w > widths[i])
				widths[i] = w;
		}
	}
	if (t->headers)
		print_row(out, t->headers, t->n_cols, widths);
	for (size_t r = 0; r < t->n_rows; r++)
		print_row(out, (const char *const *)t->cells + r * t->n_cols, t->n_cols, widths);
}

void out_table_free(struct out_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

int out_table_rows(FILE *out, size_t n_cols, const char *const *headers, struct json_object *arr,
		   int (*row)(struct out_table *t, struct json_object *e, void *ctx), void *ctx)
{
	struct out_table *t = out_table_new(n_cols, headers);
	size_t n = json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
	int err = 0;

	if (!t)
		return -errno;
	for (size_t i = 0; i < n && !err; i++)
		err = row(t, json_object_array_get_idx(arr, i), ctx);
	if (!err)
		out_table_print(t, out);
	out_table_free(t);
	return err;
}

void out_json(FILE *out, struct json_object *o)
{
	int flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		    JSON_C_TO_STRING_NOSLASHESCAPE;

	fprintf(out, "%s\n", json_object_to_json_string_ext(o, flags));
}

static bool is_scalar(struct json_object *v)
{
	return !json_object_is_type(v, json_type_object) &&
	       !json_object_is_type(v, json_type_array);
}

static const char *scalar_text(struct json_object *v)
{
	if (!v)
		return "-";
	if (json_object_is_type(v, json_type_string) && !json_object_get_string_len(v))
		return "-";
	return json_object_get_string(v);
}

char *out_join(struct json_object *arr)
{
	size_t n = json_object_array_length(arr), len = 1, off = 0;
	char *s;

	for (size_t i = 0; i < n; i++)
		len += strlen(scalar_text(json_object_array_get_idx(arr, i))) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, len - off, "%s%s", i ? "," : "",
					scalar_text(json_object_array_get_idx(arr, i)));
	return s;
}

static int kv_walk(struct out_table *t, const char *key, struct json_object *v)
{
	const char *cells[2] = { key, NULL };
	char sub[OUT_KEY_MAX];
	size_t n;
	int err = 0;

	if (json_object_is_type(v, json_type_object) && json_object_object_length(v)) {
		json_object_object_foreach(v, k, child) {
			snprintf(sub, sizeof(sub), "%s%s%s", key, key[0] ? "." : "", k);
			err = kv_walk(t, sub, child);
			if (err)
				return err;
		}
		return 0;
	}
	if (json_object_is_type(v, json_type_array) && (n = json_object_array_length(v))) {
		bool scalars = true;
		char *joined;

		for (size_t i = 0; i < n; i++)
			scalars = scalars && is_scalar(json_object_array_get_idx(v, i));
		if (scalars) {
			joined = out_join(v);
			if (!joined)
				return -ENOMEM;
			cells[1] = joined;
			err = out_table_add(t, cells);
			free(joined);
			return err;
		}
		for (size_t i = 0; i < n && !err; i++) {
			snprintf(sub, sizeof(sub), "%s[%zu]", key, i);
			err = kv_walk(t, sub, json_object_array_get_idx(v, i));
		}
		return err;
	}
	/* Scalars, and empty objects and arrays, which print "-". */
	cells[1] = is_scalar(v) ? scalar_text(v) : "-";
	return out_table_add(t, cells);
}

int out_kv(FILE *out, struct json_object *o)
{
	struct out_table *t = out_table_new(2, NULL);
	int err;

	if (!t)
		return -errno;
	err = kv_walk(t, "", o);
	if (!err)
		out_table_print(t, out);
	out_table_free(t);
	return err;
}

struct json_object *out_path(struct json_object *o, const char *path)
{
	char key[OUT_KEY_MAX];
	const char *p = path;

	while (o && *p) {
		size_t n = strcspn(p, ".");

		if (n >= sizeof(key) || !json_object_is_type(o, json_type_object))
			return NULL;
		memcpy(key, p, n);
		key[n] = '\0';
		if (!json_object_object_get_ex(o, key, &o))
			return NULL;
		p += n + (p[n] == '.');
	}
	return o;
}

const char *out_str(struct json_object *o, const char *path)
{
	struct json_object *v = out_path(o, path);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

unsigned long long out_u64(struct json_object *o, const char *path)
{
	struct json_object *v = out_path(o, path);

	return v && json_object_is_type(v, json_type_int) ? json_object_get_uint64(v) : 0;
}

int out_bool(struct json_object *o, const char *path)
{
	struct json_object *v = out_path(o, path);

	return v && json_object_get_boolean(v);
}

const char *out_bytes(char *buf, size_t len, unsigned long long n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;

	if (n < 1024) {
		snprintf(buf, len, "%lluB", n);
		return buf;
	}
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f%s", v, units[u]);
	return buf;
}

const char *out_ms(char *buf, size_t len, unsigned long long ms)
{
	unsigned long long s = ms / 1000;

	if (ms < 1000)
		snprintf(buf, len, "%llums", ms);
	else if (s < 60)
		snprintf(buf, len, "%llus", s);
	else if (s < 3600)
		snprintf(buf, len, "%llum%llus", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lluh%llum", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%llud%lluh", s / 86400, s % 86400 / 3600);
	return buf;
}

const char *out_us(char *buf, size_t len, unsigned long long us, int dash_zero)
{
	if (!us && dash_zero)
		snprintf(buf, len, "-");
	else if (us < 1000)
		snprintf(buf, len, "%lluus", us);
	else if (us < 1000000)
		snprintf(buf, len, "%.1fms", (double)us / 1000);
	else
		snprintf(buf, len, "%.2fs", (double)us / 1e6);
	return buf;
}

void out_err(FILE *err, enum out_format format, const char *fmt, ...)
{
	char msg[OUT_MSG_MAX];
	struct json_object *o;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (format != OUT_JSON) {
		fprintf(err, "meshctl: %s\n", msg);
		return;
	}
	o = json_object_new_object();
	if (o)
		json_object_object_add(o, "error", json_object_new_string(msg));
	fprintf(err, "%s\n",
		o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE) :
		    "{\"error\":\"out of memory\"}");
	json_object_put(o);
}
