/* SPDX-License-Identifier: GPL-2.0-only */
/* The protocol between the CNI plugin and the agent on RUN_DIR/cni.sock:
 * the plugin connects, writes one JSON object and a newline, reads one JSON
 * object and a newline, and closes. Shared by cni/ and agent/.
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

#define CNI_PROTO_VERSION 1
#define CNI_PROTO_MAX_LINE 16384	/* request or response, newline included */
#define CNI_PROTO_MAX_IPS 8
#define CNI_PROTO_TIMEOUT_MS 10000	/* the plugin gives up on the agent after this */

/* Field lengths, NUL excluded: the plugin validates against them, the agent sizes with them. */
#define CNI_PROTO_MAX_CONTAINER_ID 127
#define CNI_PROTO_MAX_NAMESPACE 63	/* a DNS-1123 label */
#define CNI_PROTO_MAX_NAME 253		/* a DNS-1123 subdomain */
#define CNI_PROTO_MAX_UID 63

/* CNI spec 1.0.0 well-known error codes. */
#define CNI_ERR_INCOMPATIBLE_VERSION 1
#define CNI_ERR_UNSUPPORTED_FIELD 2
#define CNI_ERR_UNKNOWN_CONTAINER 3
#define CNI_ERR_INVALID_ENV 4
#define CNI_ERR_IO 5
#define CNI_ERR_DECODE 6
#define CNI_ERR_INVALID_CONFIG 7
#define CNI_ERR_TRY_AGAIN 11

#endif /* WEFT_CNI_PROTO_H */
