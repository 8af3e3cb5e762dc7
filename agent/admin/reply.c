// SPDX-License-Identifier: GPL-2.0-only
/* What every admin API handler shares: JSON answers and errors, query
 * checks, "namespace/name" references. Called by cmds.c, conns.c and
 * trace.c; calls nothing of theirs.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "http.h"
#include "pods.h"
#include "reply.h"

#define ADMIN_REF_MAX 256	/* "namespace/name" in a query */

/* Render @o as @resp's body and drop it. 0 or -ENOMEM. */
static int set_body(struct http_response *resp, json_object *o)
{
	const char *text = json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	resp->body = text ? strdup(text) : NULL;
	json_object_put(o);
	if (!resp->body)
		return -ENOMEM;
	resp->body_len = strlen(resp->body);
	return 0;
}

int admin_json(struct http_response *resp, json_object *o)
{
	json_object_object_add(o, "api", json_object_new_int(ADMIN_API_VERSION));
	return set_body(resp, o);
}

int admin_error(struct http_response *resp, int status, const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[512];
	va_list ap;
	int err;

	if (!o)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(msg));
	err = set_body(resp, o);
	if (err)
		return err;
	resp->status = status;
	return 0;
}

bool admin_bad_query(const struct http_request *req, struct http_response *resp,
		     const char *const *known)
{
	char name[80], list[160] = "";
	size_t off = 0;

	if (!http_query_unknown(req->query, known, name, sizeof(name)))
		return false;
	for (const char *const *k = known; *k && off < sizeof(list); k++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", off ? ", " : "",
					*k);
	/* A failed allocation leaves a body-less 400, which is still a refusal. */
	if (admin_error(resp, 400, "unknown query parameter '%s' on %s (known: %s)", name,
			req->path, off ? list : "none"))
		resp->status = 400;
	return true;
}

int admin_split_ref(const char *ref, char *ns, size_t ns_len, char *name, size_t name_len)
{
	const char *slash = strchr(ref, '/');
	size_t nl;

	if (!slash || slash == ref || !slash[1] || strchr(slash + 1, '/'))
		return -EINVAL;
	nl = (size_t)(slash - ref);
	if (nl >= ns_len || strlen(slash + 1) >= name_len)
		return -EINVAL;
	memcpy(ns, ref, nl);
	ns[nl] = '\0';
	memcpy(name, slash + 1, strlen(slash + 1) + 1);
	return 0;
}

int admin_query_ref(const struct http_request *req, struct http_response *resp, const char *key,
		    char *ns, char *name)
{
	char ref[ADMIN_REF_MAX];
	int rc = http_query_get(req->query, key, ref, sizeof(ref));

	if (rc == 0)
		return 0;
	if (rc < 0 || admin_split_ref(ref, ns, OBJ_NS_MAX, name, OBJ_NAME_MAX)) {
		if (admin_error(resp, 400, "query parameter '%s' must be NAMESPACE/NAME", key))
			resp->status = 400;
		return -1;
	}
	return 1;
}

const struct pod *admin_find_pod(const struct agent *a, const char *ns, const char *name)
{
	for (const struct pod *pod = pods_first(a->pods); pod; pod = pod->next) {
		if (!strcmp(pod->spec.ns, ns) && !strcmp(pod->spec.name, name))
			return pod;
	}
	return NULL;
}
