/* SPDX-License-Identifier: GPL-2.0-only */
/* Manifest text -> json-c documents: YAML streams through libyaml's event
 * parser (scalars typed the YAML 1.1 way Kubernetes uses), JSON through
 * json-c. The documents then go to registry/decode.c. No I/O.
 */
#ifndef WEFT_REG_YAML_H
#define WEFT_REG_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

/* Deepest nesting of mappings/sequences accepted (Kubernetes objects need ~10). */
#define REG_DOC_DEPTH_MAX 64

/* Room for any message these parsers write. */
#define REG_PARSE_ERR_MAX 512

/* Parse a YAML stream of @len bytes (not necessarily NUL-terminated), one or
 * more documents separated by `---`. On success returns 0 and stores in @docs
 * a new json array (the caller json_object_put()s it) with one element per
 * document, in order; an empty document is a JSON null.
 * Typing of unquoted scalars: null/Null/NULL/~/empty -> null; true/false,
 * yes/no, on/off, y/n (all in lower, Title and UPPER case) -> bool; decimal,
 * 0x hex, 0o or leading-0 octal and 0b binary integers (underscores allowed)
 * -> int; decimal floats -> double; everything else, every quoted or block
 * scalar and anything tagged !!str -> string. Aliases and merge keys (<<) are
 * rejected, and so are duplicate keys and non-scalar keys.
 * Returns -EINVAL with "line L, column C: <problem>" in @err, or -ENOMEM.
 */
int reg_yaml_parse(const char *buf, size_t len, json_object **docs, char *err, size_t errlen);

/* Parse JSON: one value, or several concatenated (whitespace between them),
 * each a document. Same returns and @docs as reg_yaml_parse().
 */
int reg_json_parse(const char *buf, size_t len, json_object **docs, char *err, size_t errlen);

/* Whether reg_docs_parse() reads @buf as JSON. */
bool reg_docs_is_json(const char *buf, size_t len);

/* Parse @buf as JSON if its first character after a UTF-8 BOM and white space
 * is '{' or '[', otherwise as YAML. Same returns as reg_yaml_parse().
 */
int reg_docs_parse(const char *buf, size_t len, json_object **docs, char *err, size_t errlen);

#endif /* WEFT_REG_YAML_H */
