/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to registry/zk*.c, the bottom of the ZooKeeper backend: its
 * state and the calls every part makes (zk_session.c). One worker thread of
 * ours (zk.c) owns the session and makes every call; the client library's
 * own threads only run the small callbacks that queue watch events and
 * complete calls, under zk.lock. Layered one way: zk.c → zk_tree.c (the
 * mirror into the sink) → zk_register.c (this node's ephemeral
 * EndpointSlices; the mirror tells it of this session's znodes it reads) →
 * zk_session.c.
 */
#ifndef WEFT_REG_ZK_SESSION_H
#define WEFT_REG_ZK_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <zookeeper/zookeeper.h>

#include "registry/etcd_zk_layout.h"
#include "registry/registry.h"

#define ZK_PATH_MAX (1024 + REG_KV_PATH_MAX)	/* root + "/" + relative path */
#define ZK_EVENTS_MAX 100000	/* queued watch events; beyond, a full resync */

/* One watch event queued by the client library's thread. */
struct zk_event {
	struct zk_event *next;
	int type;			/* ZOO_*_EVENT, never ZOO_SESSION_EVENT */
	char path[];
};

/* One asynchronous call the worker waits for. The completion copies what
 * it returns, so nothing of the library's outlives the callback.
 */
struct zk_req {
	struct zk *z;
	bool done;			/* under z->lock */
	int rc;				/* ZOK or a ZooKeeper error */
	char *data;			/* get: the value, NUL-terminated (owned) */
	int len;
	struct Stat stat;		/* get, exists */
	char **names;			/* get_children: sorted (owned) */
	size_t n_names;
};

/* A directory of the mirror and the children it had when last listed. */
struct zk_dir {
	struct zk_dir *next;
	char rel[REG_KV_PATH_MAX];	/* "services", "services/shop" */
	char **names;			/* sorted */
	size_t n_names;
};

/* An ephemeral znode this session created. */
struct zk_eph {
	char rel[REG_KV_PATH_MAX];
	char *manifest;
};

struct zk {
	char *source;			/* the --registry value: the sink's source */
	char *hosts;			/* "host:port,host:port" */
	char *root;			/* "/weft/registry"; "" for the tree's root */
	uint32_t session_timeout_ms;	/* asked for */
	bool registers;			/* a node name is set: self-registration on */
	struct reg_sink *sink;		/* borrowed; thread-safe */

	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* CLOCK_MONOTONIC: any change below */
	/* Under lock: */
	bool stopping;
	int session_state;		/* from the last session event */
	bool session_changed;
	struct zk_event *events, **events_tail;
	size_t n_events;
	bool events_lost;		/* the queue overflowed: resync */
	struct reg_local_want want;	/* what should be registered */
	bool passing;			/* stop by letting go of the session (zk_end) */
	bool held;			/* a predecessor hands over: register nothing yet */
	bool resume_posted;		/* resume() was called; the worker has not looked */
	clientid_t resume_id;		/* what the predecessor passed; client_id 0: nothing */
	uint64_t resume_posted_ms;	/* CLOCK_MONOTONIC ms of the resume() */

	/* The worker's own: */
	zhandle_t *zh;
	int64_t session_id;
	struct zk_dir *dirs;
	struct reg_local_want reg_want;	/* its copy of want */
	struct zk_eph *ephs;
	size_t n_ephs, cap_ephs;
	bool reg_failing;		/* the current failure was logged */
	int64_t resuming;		/* the predecessor's session, until it connects or expires */
	uint64_t resume_ms;		/* CLOCK_MONOTONIC ms of the resume() */
	clientid_t passed;		/* the session let go for a successor; client_id 0: none */
};

/* ---- zk_session.c: calls ---- */

/* Open z->zh (NULL before): a new session, or with @id the session of that
 * id (a predecessor's). What the previous handle recorded (session state,
 * queued watch events) is dropped: the new one lists everything. 0 or
 * -errno (z->zh stays NULL). Worker thread only.
 */
int zk_open(struct zk *z, const clientid_t *id);

/* Take over the predecessor's session @id (posted by resume() at
 * @posted_ms): z->zh becomes a handle on it, z->resuming and z->resume_ms
 * say so. The handle of this agent's own session, if any, is closed only
 * after the new one is made and connecting: closing it waits for the
 * server (a write, behind the server's log), and the passed session must
 * not wait behind it, its timeout runs. Own session registered nothing
 * (held), so closing it deletes nothing. Worker thread only; the caller
 * forgets what it knew of the old session (mirror, znodes).
 */
void zk_attach(struct zk *z, const clientid_t *id, uint64_t posted_ms);

/* Wait for the calls of @reqs, issued with zoo_a*() and the zk_*_done
 * completions below (an entry whose issue failed must be marked done). On
 * stop, ends the session's handle at once (zk_end(): z->zh becomes NULL;
 * pending calls end with it) and returns -ECANCELED. When resume() passes
 * a session meanwhile, attaches to it at once (zk_attach(); the pending
 * calls end with the old handle) and returns -EAGAIN: the caller starts
 * over on the new session. Else 0. Worker thread only.
 */
int zk_wait(struct zk *z, struct zk_req *reqs, size_t n);

/* End the worker's handle, if any (z->zh becomes NULL, pending calls end
 * with ZCLOSING). Normally the session is closed, which deletes its
 * ephemeral znodes. When z->passing, it is let go instead: the handle is
 * destroyed without ending the session, which then lives on on the server
 * for a whole session timeout, and z->passed holds its id and password for
 * a successor to resume (client_id 0 when that could not be done and the
 * session was closed after all). May block for one round trip (at most
 * ZK_LET_GO_PING_MS) and the close. Worker thread only.
 */
void zk_end(struct zk *z);
#define ZK_LET_GO_PING_MS 1000

/* Record what zoo_a*() returned for @r. On ZOK the completion owns r->rc
 * and r->done and may have run already, so they are left alone; otherwise
 * no completion will run and @r is done with @rc.
 */
void zk_req_issued(struct zk_req *r, int rc);

/* Completions for zoo_a*(): @data is the struct zk_req. */
void zk_data_done(int rc, const char *value, int len, const struct Stat *stat, const void *data);
void zk_strings_done(int rc, const struct String_vector *names, const void *data);
void zk_void_done(int rc, const void *data);
void zk_stat_done(int rc, const struct Stat *stat, const void *data);
void zk_string_done(int rc, const char *value, const void *data);

/* The library's watcher: queues node events, records session events. */
void zk_on_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx);

/* Free what a request returned (data, names); the request is reusable. */
void zk_req_clear(struct zk_req *r);

/* root + "/" + @rel into @buf. 0 or -ENAMETOOLONG. */
int zk_abs(const struct zk *z, const char *rel, char *buf, size_t len);

/* A ZooKeeper error code as -errno for callers that only branch on it. */
int zk_errno(int rc);

#endif /* WEFT_REG_ZK_SESSION_H */
