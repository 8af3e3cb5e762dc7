/* SPDX-License-Identifier: GPL-2.0-only */
/* The C side of the fake Kubernetes API server (apiserver.py next to this
 * file), shared by the unit and integration tests: make a CA and
 * certificates with the openssl CLI, start the server on 127.0.0.1 (a free
 * port), write a kubeconfig and a token file for the agent, and steer the
 * server through its /_control/ calls. Run the tests from the top of the
 * tree (the script is found at tests/k8s-apiserver/apiserver.py).
 */
#ifndef WEFT_TEST_K8S_FAKE_H
#define WEFT_TEST_K8S_FAKE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

enum kfake_auth {
	KFAKE_AUTH_TOKEN_FILE,	/* kubeconfig user: tokenFile (relative path), CA file */
	KFAKE_AUTH_CLIENT_CERT,	/* client-certificate-data + key-data, CA inline */
};

struct kfake_opts {
	enum kfake_auth auth;
	const char *gone;	/* "event" (default) or "http" */
	double bookmarks;	/* seconds between bookmarks; 0 = the server's default 1 s */
	int history;		/* events kept; 0 = the server's default */
};

struct kfake {
	char dir[PATH_MAX];		/* temp folder with everything below */
	char kubeconfig[PATH_MAX + 16];
	char token_file[PATH_MAX + 16];
	char ca[PATH_MAX + 16];
	char url[64];			/* https://127.0.0.1:PORT */
	uint16_t port;
	pid_t pid;			/* the server, 0 when not running */
	struct kfake_opts opts;
};

/* The token the server accepts at start (also in the token file). */
#define KFAKE_TOKEN "weft-test-token"

/* Make the folder, the certificates, the kubeconfig and the token file,
 * start the server and wait until it listens. 0 or -1 (message on stderr).
 */
int kfake_start(struct kfake *f, const struct kfake_opts *opts);

/* Kill the server (a crash: connections are refused from now on); the files
 * stay. Idempotent.
 */
void kfake_kill(struct kfake *f);

/* Kill the server and remove the folder. Idempotent. */
void kfake_stop(struct kfake *f);

/* POST @json to /_control/@what. 0 or -1. */
int kfake_control(struct kfake *f, const char *what, const char *json);

/* Create or replace objects: @json is a JSON array of Kubernetes objects. */
int kfake_apply(struct kfake *f, const char *json);

/* kfake_apply(), and the resourceVersion the server was at after it (the
 * last object's) in @rv. 0 or -1.
 */
int kfake_apply_rv(struct kfake *f, const char *json, long long *rv);

/* When each event after resourceVersion @since was recorded by the server
 * and first written to a watch stream: {"events": [{"rv", "recorded",
 * "written"}]}, CLOCK_MONOTONIC seconds ("written" null: not yet). Caller
 * puts it. NULL on error.
 */
json_object *kfake_event_times(struct kfake *f, long long since);

/* Delete one object. 0 or -1. */
int kfake_delete(struct kfake *f, const char *kind, const char *ns, const char *name);

/* The server's counters (GET /_control/stats); caller puts it. NULL on error. */
json_object *kfake_stats(struct kfake *f);

/* One counter of kfake_stats(), e.g. ("lists", "services"); -1 on error. */
long long kfake_stat(struct kfake *f, const char *group, const char *key);

/* The resourceVersion the last watch of @plural asked for, in @buf ("" for
 * none). 0 or -1.
 */
int kfake_last_watch_rv(struct kfake *f, const char *plural, char *buf, size_t len);

/* Replace the token file atomically (as kubelet does). 0 or -1. */
int kfake_write_token(struct kfake *f, const char *token);

/* GET @path ("/api/v1/namespaces/x/configmaps/y") with the server's
 * token; the parsed object (caller puts) or NULL (not 200, not JSON).
 */
json_object *kfake_get(struct kfake *f, const char *path);

/* Make TokenReview know @token: user @username (groups of a
 * ServiceAccount), with extra node-name @node and pod-name @pod (NULL:
 * none), issued for @audience. 0 or -1.
 */
int kfake_add_token(struct kfake *f, const char *token, const char *username, const char *node,
		    const char *pod, const char *audience);

#endif /* WEFT_TEST_K8S_FAKE_H */
