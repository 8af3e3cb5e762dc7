/* SPDX-License-Identifier: GPL-2.0-only */
/* What every admin API handler shares (reply.c): JSON answers and errors,
 * query checks, "namespace/name" references. Never blocks.
 */
#ifndef WEFT_ADMIN_REPLY_H
#define WEFT_ADMIN_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "admin_proto.h"

struct http_request;
struct http_response;
struct agent;
struct pod;

/* Answer @o (adding "api") as the body of @resp. Takes ownership of @o.
 * 0 or -ENOMEM.
 */
int admin_json(struct http_response *resp, json_object *o);

/* Answer @status with {"error": MESSAGE}. 0 or -ENOMEM. */
int admin_error(struct http_response *resp, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Refuse a query naming a parameter outside @known (NULL-terminated): fills
 * @resp with a 400 and returns true; false when the query is fine.
 */
bool admin_bad_query(const struct http_request *req, struct http_response *resp,
		     const char *const *known);

/* Split "NAMESPACE/NAME" into @ns and @name (buffers of @ns_len and
 * @name_len bytes). 0 or -EINVAL (no slash, an empty part, too long).
 */
int admin_split_ref(const char *ref, char *ns, size_t ns_len, char *name, size_t name_len);

/* Read query parameter @key, "NAMESPACE/NAME", into @ns (OBJ_NS_MAX bytes)
 * and @name (OBJ_NAME_MAX). 1 when given, 0 when absent, or -1 after filling
 * @resp with a 400.
 */
int admin_query_ref(const struct http_request *req, struct http_response *resp, const char *key,
		    char *ns, char *name);

/* The first pod the agent knows as @ns/@name, or NULL. */
const struct pod *admin_find_pod(const struct agent *a, const char *ns, const char *name);

#endif /* WEFT_ADMIN_REPLY_H */
