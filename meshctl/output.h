/* SPDX-License-Identifier: GPL-2.0-only */
/* meshctl's output: aligned tables, key/value listings and JSON on stdout,
 * errors on stderr (a JSON object under -o json). Commands render through
 * these only, so every command formats the same way.
 */
#ifndef WEFT_MESHCTL_OUTPUT_H
#define WEFT_MESHCTL_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

struct json_object;

enum out_format {
	OUT_TABLE = 0,
	OUT_JSON,
};

#define OUT_MAX_COLS 16
#define OUT_COL_GAP 3	/* spaces between columns, as kubectl */

struct out_table;

/* A table of @n_cols columns (1..OUT_MAX_COLS) with the given @headers
 * (borrowed; NULL for a table without a header line). NULL with errno set.
 */
struct out_table *out_table_new(size_t n_cols, const char *const *headers);

/* Append a row of n_cols cells (copied; NULL prints as "-"). Control
 * characters become '?', so an agent-supplied string cannot break the layout.
 * 0 or -ENOMEM.
 */
int out_table_add(struct out_table *t, const char *const *cells);

/* Print @t with every column padded to its widest cell, except the last. */
void out_table_print(const struct out_table *t, FILE *out);

/* Accepts NULL. */
void out_table_free(struct out_table *t);

/* Print a table of @n_cols columns under @headers with one row per element
 * of the JSON array @arr (none when @arr is NULL or not an array): @row adds
 * it to @t with out_table_add(). 0, -ENOMEM, or the first error of @row
 * (nothing printed then).
 */
int out_table_rows(FILE *out, size_t n_cols, const char *const *headers, struct json_object *arr,
		   int (*row)(struct out_table *t, struct json_object *e, void *ctx), void *ctx);

/* Print @o as indented JSON and a newline. */
void out_json(FILE *out, struct json_object *o);

/* Print every leaf of the object @o as one "key   value" line, keys joined
 * with '.' and array elements as key[i] ("bpf.counters.redirected 57",
 * "registries[0].name file:x"). Arrays of scalars are joined with ','; empty
 * strings and arrays print "-". 0 or -ENOMEM.
 */
int out_kv(FILE *out, struct json_object *o);

/* ---- reading agent answers */

/* The member at dotted @path ("connections.active") of @o, or NULL. */
struct json_object *out_path(struct json_object *o, const char *path);
/* Its string (NULL when absent or not a string), its integer (0 when absent). */
const char *out_str(struct json_object *o, const char *path);
unsigned long long out_u64(struct json_object *o, const char *path);
int out_bool(struct json_object *o, const char *path);
/* "a,b,c" from the array of scalars @arr (empty strings and nulls as "-");
 * malloc'd, NULL on ENOMEM.
 */
char *out_join(struct json_object *arr);

/* ---- human units; each returns @buf */

/* 1536 → "1.5KiB"; under 1024 bytes as is ("512B"). */
const char *out_bytes(char *buf, size_t len, unsigned long long n);
/* Milliseconds as "850ms", "12s", "3m12s", "2h5m", "3d4h". */
const char *out_ms(char *buf, size_t len, unsigned long long ms);
/* Microseconds as "180us", "2.5ms", "1.20s"; "-" for 0 when @dash_zero. */
const char *out_us(char *buf, size_t len, unsigned long long us, int dash_zero);

/* Print an error to @err: "meshctl: MESSAGE" for tables, {"error": MESSAGE}
 * under OUT_JSON.
 */
void out_err(FILE *err, enum out_format format, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* WEFT_MESHCTL_OUTPUT_H */
