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
 *
 * Two requests carry no pod:
 *   {"version": 1, "command": "STATUS"}: ok once the agent can enroll pods
 *       (its registries have synced), else code 50;
 *   {"version": 1, "command": "GC", "valid": ["<container id>", ...]}: the
 *       agent forgets every enrolled pod whose container id is not listed.
 *
 * The node state file (RUN_DIR/mesh-state.json), written by the agent after
 * each publish and read by the plugin when the agent may be away:
 *   {"version": 1, "generation": 42, "synced": true, "meshed": ["demo", ...]}
 */
#ifndef WEFT_CNI_PROTO_H
#define WEFT_CNI_PROTO_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define CNI_PROTO_VERSION 1
#define CNI_PROTO_MAX_LINE 65536	/* request or response, newline included */
/* Container ids a GC request may list: they fit CNI_PROTO_MAX_LINE with room. */
#define CNI_PROTO_MAX_GC_IDS 480
#define CNI_PROTO_STATE_FILE "mesh-state.json"	/* under the agent's run dir */
#define CNI_PROTO_MAX_STATE (1024 * 1024)	/* bytes of the node state file */
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
#define CNI_ERR_NOT_AVAILABLE 50	/* spec 1.1.0: STATUS, plugin not ready */

enum cni_proto_cmd {
	CNI_PROTO_NONE,		/* the state file: no command */
	CNI_PROTO_ADD,
	CNI_PROTO_DEL,
	CNI_PROTO_CHECK,
	CNI_PROTO_STATUS,	/* no pod */
	CNI_PROTO_GC,		/* no pod; a list of valid container ids */
};
#define CNI_PROTO_CMD_LAST CNI_PROTO_GC

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
	/* State file only: the netns's identity at enrolment (its nsfs inode
	 * and its cookie), so a restarted agent re-identifies it; 0: unknown.
	 */
	uint64_t netns_dev, netns_ino, netns_cookie;
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

/* The node's meshing state as the agent last wrote it (the state file). */
struct cni_proto_state {
	unsigned long long generation;	/* the catalogue's */
	bool synced;		/* the agent had synced when it wrote @meshed */
	char (*meshed)[CNI_PROTO_MAX_NAMESPACE + 1];	/* malloc'd; meshed namespaces */
	size_t n_meshed;
};

/* "ADD", "DEL", "CHECK", "STATUS", "GC"; NULL for CNI_PROTO_NONE. */
const char *cni_proto_cmd_name(enum cni_proto_cmd cmd);

/* Encode @pod as one JSON line ending in '\n' (a request with @cmd, or the
 * state file with CNI_PROTO_NONE) into a malloc'd string, its length in
 * *@len. NULL with errno set (ENOMEM, EMSGSIZE past CNI_PROTO_MAX_LINE).
 */
char *cni_proto_req_encode(enum cni_proto_cmd cmd, const struct cni_proto_pod *pod, size_t *len);

/* Encode a request without a pod: STATUS, or GC listing @n container @ids
 * (at most CNI_PROTO_MAX_GC_IDS). A malloc'd line, or NULL with errno set
 * (EINVAL for another command, EMSGSIZE past the bounds).
 */
char *cni_proto_cmd_encode(enum cni_proto_cmd cmd, const char *const *ids, size_t n,
			   size_t *len);

/* The "valid" list of a GC request in @text: a malloc'd array of container
 * ids in *@ids (free() it), their number in *@n. 0, or -EINVAL with @err
 * naming what is wrong.
 */
int cni_proto_gc_decode(const char *text, char (**ids)[CNI_PROTO_MAX_CONTAINER_ID + 1],
			size_t *n, char *err, size_t errlen);

/* Decode a request (@want_cmd) or a state file (!@want_cmd) from @text.
 * STATUS and GC requests carry no pod: @pod is left zeroed.
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

/* Encode the node state file: a malloc'd NUL-terminated JSON text ending in
 * '\n', its length in *@len. NULL with errno set (EMSGSIZE past
 * CNI_PROTO_MAX_STATE).
 */
char *cni_proto_state_encode(const struct cni_proto_state *st, size_t *len);

/* Decode the node state file @text into @st (free with cni_proto_state_done()).
 * 0, or -EINVAL with @err saying what is wrong (@st is then empty).
 */
int cni_proto_state_decode(const char *text, struct cni_proto_state *st, char *err,
			   size_t errlen);

/* Whether @ns is in @st's meshed list. */
bool cni_proto_state_meshed(const struct cni_proto_state *st, const char *ns);

/* Release what cni_proto_state_decode() built. Accepts a zeroed @st. */
void cni_proto_state_done(struct cni_proto_state *st);

#endif /* WEFT_CNI_PROTO_H */
