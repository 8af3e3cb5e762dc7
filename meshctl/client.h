/* SPDX-License-Identifier: GPL-2.0-only */
/* meshctl's side of the admin API (docs/admin-api.md): one HTTP GET over the
 * agent's unix socket with libcurl, answered by a JSON object whose "api"
 * must equal CLIENT_API_VERSION. Failures come back as one sentence that says
 * what to do about them.
 */
#ifndef WEFT_MESHCTL_CLIENT_H
#define WEFT_MESHCTL_CLIENT_H

#include "admin_proto.h"
#include <stddef.h>

struct json_object;

/* The admin API version this meshctl speaks; the agent's is ADMIN_API_VERSION
 * in agent/admin/cmds.h. Both move together when a response changes shape.
 */
#define CLIENT_API_VERSION ADMIN_API_VERSION
#define CLIENT_DEFAULT_SOCKET ADMIN_DEFAULT_SOCKET
#define CLIENT_DEFAULT_TIMEOUT_MS 5000
#define CLIENT_MAX_RESPONSE (16u << 20)	/* bytes; a larger answer is an error */
#define CLIENT_ERR_MAX 512		/* room for an error sentence */

/* GET @path ("/v1/pods") from the agent on @sock within @timeout_ms. On
 * success returns 0 and a new reference in @out. On failure returns -errno
 * and a message in @err: -ENOENT/-ECONNREFUSED (agent not running), -EACCES,
 * -ETIMEDOUT, -EPROTO (not JSON, or an HTTP error status, with the agent's
 * {"error"} text), -EPROTONOSUPPORT (another API version). Blocks up to
 * @timeout_ms. curl_global_init() must have run.
 */
int client_get(const char *sock, const char *path, unsigned int timeout_ms,
	       struct json_object **out, char *err, size_t errlen);

#endif /* WEFT_MESHCTL_CLIENT_H */
