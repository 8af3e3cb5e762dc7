/* SPDX-License-Identifier: GPL-2.0-only */
/* weft-cni, the chained CNI plugin: everything except reading stdin and the
 * environment lives behind this header so the unit tests can drive it. The
 * plugin validates its input, tells the agent about the pod over the protocol
 * of lib/cni_proto.h and maps the reply to a CNI result or error (spec 1.1.0,
 * also 1.0.0, 0.4.0 and 0.3.x). It holds no policy: the agent decides.
 */
#ifndef WEFT_CNI_H
#define WEFT_CNI_H

#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/un.h>

#include "cni_proto.h"
#include "log.h"

struct json_object;

#define CNI_DEFAULT_SOCKET "/run/weft/cni.sock"
#define CNI_VERSION_LATEST "1.1.0"
#define CNI_MAX_STDIN (1024 * 1024)	/* network config on stdin, bytes */
#define CNI_NS_MAX CNI_PROTO_MAX_NAMESPACE
#define CNI_NAME_MAX CNI_PROTO_MAX_NAME
#define CNI_ID_MAX CNI_PROTO_MAX_CONTAINER_ID	/* <= CNI_NAME_MAX: names a standalone pod */
#define CNI_UID_MAX CNI_PROTO_MAX_UID
#define CNI_STATUS_PROBE_MS 2000	/* STATUS gives up on the agent after this */
/* ADD of a pod the state file says is not meshed waits no longer than this
 * for the agent: it only enrolls the pod so a later namespace label meshes it.
 */
#define CNI_UNMESHED_WAIT_MS 2000
#define CNI_MAX_EXCLUDE 64		/* entries of exclude_namespaces */
#define CNI_DEFAULT_EXCLUDE "kube-system"
#define CNI_MAX_GC_IDS CNI_PROTO_MAX_GC_IDS


enum cni_cmd {
	CNI_CMD_ADD = 1,
	CNI_CMD_DEL,
	CNI_CMD_CHECK,
	CNI_CMD_VERSION,
	CNI_CMD_GC,
	CNI_CMD_STATUS,
};

/* The CNI_* environment; borrowed strings, NULL when unset. */
struct cni_env {
	const char *command;
	const char *container_id;
	const char *netns;
	const char *ifname;
	const char *args;
	const char *path;
};

/* A CNI error as printed on stdout: {"cniVersion", "code", "msg", "details"}. */
struct cni_error {
	int code;		/* spec code (cni_proto.h); 0 = no error */
	char msg[256];
	char details[1024];	/* "" = omitted */
};

/* The network config read from stdin. */
struct cni_conf {
	struct json_object *root;	/* the whole document; owned */
	char version[16];		/* cniVersion once known supported; kept by _done() */
	const char *name;		/* network name; points into @root */
	char agent_socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
	bool standalone;		/* pods need no K8S_POD_* keys (see cni_req_build) */
	/* Namespaces whose pods never wait for the agent; default kube-system. */
	char exclude[CNI_MAX_EXCLUDE][CNI_NS_MAX + 1];
	size_t n_exclude;
	/* The agent's node state file; default: next to agent_socket. */
	char state_file[PATH_MAX];
	bool fail_open;			/* fail_open_without_agent */
	bool has_log_level;
	enum log_level log_level;
	struct json_object *prev_result;	/* borrowed from @root; NULL if absent */
};

/* One request to the agent, as lib/cni_proto.h defines it. */
struct cni_req {
	enum cni_cmd cmd;		/* ADD, DEL or CHECK */
	const char *container_id;	/* borrowed from the env */
	const char *netns;		/* borrowed; "" allowed on DEL */
	const char *ifname;		/* borrowed */
	char ns[CNI_NS_MAX + 1];
	char name[CNI_NAME_MAX + 1];
	char uid[CNI_UID_MAX + 1];	/* "" if unknown */
	char ips[CNI_PROTO_MAX_IPS][INET6_ADDRSTRLEN];	/* pod IPs without prefix length */
	size_t n_ips;
};

/* The agent's answer. */
struct cni_reply {
	bool ok;
	bool meshed;
	char reason[256];
	struct cni_error err;	/* filled when !ok */
};

/* ---- versions and commands (conf.c) */

/* "ADD", "DEL", "CHECK", "VERSION", "GC" or "STATUS" (exact case). 0 or -EINVAL. */
int cni_cmd_parse(const char *s, enum cni_cmd *out);
/* The verb's name ("ADD"), for messages and the agent protocol. */
const char *cni_cmd_name(enum cni_cmd cmd);
/* Whether this plugin speaks CNI version @v ("1.0.0"). */
bool cni_version_supported(const char *v);
/* The i-th supported version, oldest first; NULL past the last. */
const char *cni_version_at(size_t i);
/* Whether @v has the form MAJOR.MINOR.PATCH. */
bool cni_version_valid(const char *v);
/* Compare two "MAJOR.MINOR.PATCH" versions like strcmp; malformed sorts first. */
int cni_version_cmp(const char *a, const char *b);

/* Fill @e and return -EINVAL, so a validation failure is one statement:
 * `return cni_error_set(e, CNI_ERR_INVALID_ENV, "invalid CNI_IFNAME", "'%s'", s)`.
 * @details_fmt is printf-like; a result of "" leaves details out.
 */
int cni_error_set(struct cni_error *e, int code, const char *msg, const char *details_fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- input (conf.c) */

/* Parse the network config in @buf (@len bytes, not NUL-terminated) for @cmd:
 * JSON (code 6), cniVersion supported and allowing @cmd (code 1), name and
 * weft's own fields (code 7). On success @conf owns the document; release it
 * with cni_conf_done(). Returns 0 or -EINVAL with @e filled. Does not block.
 */
int cni_conf_parse(const char *buf, size_t len, enum cni_cmd cmd, struct cni_conf *conf,
		   struct cni_error *e);
/* Whether @conf's exclude_namespaces lists @ns. */
bool cni_conf_excluded(const struct cni_conf *conf, const char *ns);

/* Release what cni_conf_parse() built. Accepts a zeroed or a freed @conf. */
void cni_conf_done(struct cni_conf *conf);

/* Find @key in a CNI_ARGS string ("K1=V1;K2=V2") and copy its value into @out.
 * Returns 0, -ENOENT if absent, -EINVAL if @args is malformed, -ENAMETOOLONG
 * if the value does not fit @len.
 */
int cni_args_get(const char *args, const char *key, char *out, size_t len);

/* Validate the environment for @cmd and build the agent request from it, the
 * CNI_ARGS keys and the IPs of @conf->prev_result. ADD and CHECK need
 * K8S_POD_NAMESPACE and K8S_POD_NAME unless @conf->standalone; DEL never fails
 * on CNI_ARGS or prevResult, so a pod can always be deleted. Returns 0 or
 * -EINVAL with @e filled (code 4 for the env, 7 for prevResult). @req borrows
 * strings from @env.
 */
int cni_req_build(const struct cni_env *env, const struct cni_conf *conf, enum cni_cmd cmd,
		  struct cni_req *req, struct cni_error *e);

/* Append the pod IPs of a CNI result (@prev.ips[].address, "IP/LEN") to @req,
 * skipping addresses of host-side interfaces. Returns 0 or -EINVAL with @e
 * filled (code 7, naming the bad element).
 */
int cni_prev_ips(struct json_object *prev, struct cni_req *req, struct cni_error *e);

/* ---- result (result.c) */

/* The result to print after a successful ADD: @prev as it came when its
 * cniVersion is @version or absent, else converted to @version (the 0.x
 * results carry ips[].version, 1.x ones do not). Returns a new reference, or
 * NULL with @e filled (code 1) when @prev has a version this plugin lacks.
 */
struct json_object *cni_result_for(struct json_object *prev, const char *version,
				   struct cni_error *e);

/* ---- the agent (agent.c) */

/* Encode @req as one protocol line (JSON + "\n"). Returns a malloc'd string
 * and its length in @len, or NULL with errno set (EMSGSIZE past
 * CNI_PROTO_MAX_LINE).
 */
char *cni_req_encode(const struct cni_req *req, size_t *len);

/* Decode one reply line (NUL-terminated, newline optional). 0 or -EPROTO. */
int cni_reply_decode(const char *line, struct cni_reply *rep);

/* Send @req (@req_len bytes) to the agent on @sock_path and read one reply
 * line into @reply (NUL-terminated, newline stripped). Blocks at most
 * @timeout_ms in total. Returns 0, or -errno: -ENOENT/-ECONNREFUSED when no
 * agent listens, -ETIMEDOUT, -ECONNRESET when it hangs up without a reply,
 * -EMSGSIZE when the reply does not fit @reply_size.
 */
int cni_agent_call(const char *sock_path, const char *req, size_t req_len,
		   unsigned int timeout_ms, char *reply, size_t reply_size);

/* Whether an agent accepts connections on @sock_path within @timeout_ms:
 * connects and closes without a request. 0 or -errno as cni_agent_call().
 */
int cni_agent_probe(const char *sock_path, unsigned int timeout_ms);

/* ---- the plugin (cni.c) */

/* Run one CNI invocation: @env from the environment, @in/@in_len from stdin.
 * Prints the result or the error JSON on @out and returns the process exit
 * status (0 or 1). Blocks up to CNI_PROTO_TIMEOUT_MS talking to the agent,
 * whose socket comes from the config's "agent_socket".
 */
int cni_run(const struct cni_env *env, const char *in, size_t in_len, FILE *out);

/* Set, in the pod's netns @netns_path, the sysctls weft's inbound return path
 * needs (tcp_fwmark_accept, fwmark_reflect; cni/sysctl.c says why the plugin
 * does it). 0, or -errno with @why saying which step failed.
 */
int cni_pod_sysctls(const char *netns_path, char *why, size_t len);

#endif /* WEFT_CNI_H */
