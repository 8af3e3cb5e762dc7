/* SPDX-License-Identifier: GPL-2.0-only */
/* The protocol between the CNI plugin and the agent on RUN_DIR/cni.sock:
 * the plugin connects, writes one JSON object and a newline, reads one JSON
 * object and a newline, and closes. Shared by cni/ and agent/: both ends
 * encode and decode with the functions below (cni_proto.c), and the agent's
 * per-pod state file is a request body without "command".
 *
 * Request:  {"version": 1, "command": "ADD"|"DEL"|"CHECK",
 *            "container_id": "...", "netns": "/proc/123/ns/net", "ifname": "eth0",
 *            "namespace": "default", "name": "web-0", "uid": "...",
 *            "ips": ["198.18.0.5", "fd00::5"]}
 *            ("uid" and "ips" may be empty; on DEL "netns", "namespace" and
 *            "name" may be "" too: the agent finds the pod by container_id)
 * Response: {"ok": true, "meshed": true|false, "reason": "namespace not meshed"}
 *       or  {"ok": false, "code": <CNI error code>, "msg": "...", "details": "..."}
 */
#ifndef WEFT_CNI_PROTO_H
#define WEFT_CNI_PROTO_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "addr.h"

#define CNI_PROTO_VERSION 1
#define CNI_PROTO_MAX_LINE 16384	/* request or response, newline included */
#define CNI_PROTO_MAX_IPS 8
#define CNI_PROTO_TIMEOUT_MS 10000	/* the plugin gives up on the agent after this */

/* Field lengths, NUL excluded: the plugin validates against them, the agent sizes with them. */
#define CNI_PROTO_MAX_CONTAINER_ID 127
#define CNI_PROTO_MAX_NAMESPACE 63	/* a DNS-1123 label */
#define CNI_PROTO_MAX_NAME 253		/* a DNS-1123 subdomain */
#define CNI_PROTO_MAX_UID 63
#define CNI_PROTO_MAX_IFNAME 31

/* CNI spec 1.0.0 well-known error codes. */
#define CNI_ERR_INCOMPATIBLE_VERSION 1
#define CNI_ERR_UNSUPPORTED_FIELD 2
#define CNI_ERR_UNKNOWN_CONTAINER 3
#define CNI_ERR_INVALID_ENV 4
#define CNI_ERR_IO 5
#define CNI_ERR_DECODE 6
#define CNI_ERR_INVALID_CONFIG 7
#define CNI_ERR_TRY_AGAIN 11

enum cni_proto_cmd {
	CNI_PROTO_NONE,		/* the state file: no command */
	CNI_PROTO_ADD,
	CNI_PROTO_DEL,
	CNI_PROTO_CHECK,
};

/* A pod as the protocol carries it: a request's body and the state file. */
struct cni_proto_pod {
	char container_id[CNI_PROTO_MAX_CONTAINER_ID + 1];
	char netns[PATH_MAX];
	char ifname[CNI_PROTO_MAX_IFNAME + 1];
	char ns[CNI_PROTO_MAX_NAMESPACE + 1];
	char name[CNI_PROTO_MAX_NAME + 1];
	char uid[CNI_PROTO_MAX_UID + 1];
	struct addr ips[CNI_PROTO_MAX_IPS];
	unsigned int n_ips;
	bool meshed_hint;	/* state file only: meshed when the agent last ran */
};

/* The agent's answer. */
struct cni_proto_reply {
	bool ok;
	bool has_pod;		/* ok: "meshed" and "reason" are present */
	bool meshed;
	char reason[256];
	int code;		/* !ok: CNI error code */
	char msg[256];
	char details[1024];
};

/* "ADD", "DEL", "CHECK"; NULL for CNI_PROTO_NONE. */
const char *cni_proto_cmd_name(enum cni_proto_cmd cmd);

/* Encode @pod as one JSON line ending in '\n' (a request with @cmd, or the
 * state file with CNI_PROTO_NONE) into a malloc'd string, its length in
 * *@len. NULL with errno set (ENOMEM, EMSGSIZE past CNI_PROTO_MAX_LINE).
 */
char *cni_proto_req_encode(enum cni_proto_cmd cmd, const struct cni_proto_pod *pod, size_t *len);

/* Decode a request (@want_cmd) or a state file (!@want_cmd) from @text.
 * Returns 0, or with @err saying what is wrong:
 *   -EBADMSG          not a JSON object
 *   -EPROTONOSUPPORT  a request of another protocol version
 *   -ENOMSG           a request without "command"
 *   -EINVAL           a field is missing or malformed; @err names it
 */
int cni_proto_req_decode(const char *text, bool want_cmd, enum cni_proto_cmd *cmd,
			 struct cni_proto_pod *pod, char *err, size_t errlen);

/* Encode @r as one JSON line ending in '\n', malloc'd. NULL with errno set. */
char *cni_proto_reply_encode(const struct cni_proto_reply *r, size_t *len);

/* Decode a reply line. An error reply without a usable code gets
 * CNI_ERR_IO and a generic message. 0 or -EPROTO.
 */
int cni_proto_reply_decode(const char *text, struct cni_proto_reply *r);

#endif /* WEFT_CNI_PROTO_H */
