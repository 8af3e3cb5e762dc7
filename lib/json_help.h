/* SPDX-License-Identifier: GPL-2.0-only */
/* The json-c accessors and builders weft uses everywhere, once: reading a
 * member that may be absent, null or of another type, and building documents
 * with a flat list of calls. No I/O, no logging.
 */
#ifndef WEFT_JSON_HELP_H
#define WEFT_JSON_HELP_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

/* Member @key of @o; NULL when @o is not an object, or @key is absent or null. */
json_object *json_member(json_object *o, const char *key);

/* String member @key of @o, or NULL when absent, null or not a string.
 * Borrowed from @o.
 */
const char *json_member_str(json_object *o, const char *key);

/* Copy string member @key of @o into @out (@len bytes, truncating); leaves
 * @out unchanged when the member is absent or not a string.
 */
void json_copy_str(json_object *o, const char *key, char *out, size_t len);

/* Builders. Each takes ownership of @v even on failure and accepts a NULL @v
 * (a failed constructor), so building a document is a flat list of calls
 * whose errors can be OR-ed together. 0 or -ENOMEM.
 */
int json_add(json_object *o, const char *key, json_object *v);
int json_add_str(json_object *o, const char *key, const char *val);
int json_append(json_object *arr, json_object *v);

#endif /* WEFT_JSON_HELP_H */
