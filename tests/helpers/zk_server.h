/* SPDX-License-Identifier: GPL-2.0-only */
/* A real ZooKeeper (the Debian zookeeper package's server classes, run by
 * java) for one test: a standalone server on 127.0.0.1 with a free port
 * (never the default 2181), no admin server, a private data dir under /tmp,
 * a short tick so short session timeouts are allowed, killed with the test
 * process (PR_SET_PDEATHSIG) and at exit. Plus a synchronous client for the
 * tests' own writes.
 */
#ifndef WEFT_TEST_ZK_SERVER_H
#define WEFT_TEST_ZK_SERVER_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <zookeeper/zookeeper.h>

/* The server's tick: sessions may be as short as TZK_MIN_SESSION_MS. */
#define TZK_TICK_MS 100
#define TZK_MIN_SESSION_MS 500

struct tzk {
	pid_t pid;			/* 0 while stopped */
	uint16_t port;
	char dir[PATH_MAX];		/* /tmp/weft-zk-<pid>-XXXXXX: config, data, log */
	char hosts[64];			/* 127.0.0.1:<port> */
	zhandle_t *zh;			/* the tests' client, once tzk_client() made it */
};

/* Start a fresh server; returns once it serves ("ruok"). 0 or -1. */
int tzk_start(struct tzk *s);
/* Start it again on the same port and data (after tzk_kill). 0 or -1. */
int tzk_restart(struct tzk *s);
/* SIGKILL and reap; data stays. Idempotent. */
void tzk_kill(struct tzk *s);
/* Freeze or thaw the server (SIGSTOP/SIGCONT): sessions time out meanwhile. */
void tzk_pause(struct tzk *s, bool paused);
/* Close the client, kill, remove the data dir. Idempotent. */
void tzk_stop(struct tzk *s);

/* The tests' client, connected (made on first use, again after a restart).
 * NULL on failure.
 */
zhandle_t *tzk_client(struct tzk *s);
/* Create or overwrite @path (parents created) with @value. 0 or a Z* error. */
int tzk_put(struct tzk *s, const char *path, const char *value);
/* Delete @path; absent is fine. 0 or a Z* error. */
int tzk_del(struct tzk *s, const char *path);
/* Whether @path exists: 1, 0, or -1 on error. */
int tzk_exists(struct tzk *s, const char *path);

/* The Stat of @path into @st. ZOK or a Z* error (ZNONODE when absent). */
int tzk_stat(struct tzk *s, const char *path, struct Stat *st);

/* A reader of one znode as a registry client sees it: a client (and
 * session) of its own with an exists watch on the znode, armed again after
 * every event, counting the events by type.
 */
struct tzk_watch {
	zhandle_t *zh;
	char path[256];
	pthread_mutex_t lock;
	unsigned int created, deleted, changed;	/* under lock */
	bool lost;			/* its session was disconnected: events may be missed */
};

/* Start watching @path on @s. 0 or -1. */
int tzk_watch_start(struct tzk *s, struct tzk_watch *w, const char *path);
/* The counts so far. */
void tzk_watch_counts(struct tzk_watch *w, unsigned int *created, unsigned int *deleted,
		      unsigned int *changed, bool *lost);
/* Stop and close its client. Idempotent. */
void tzk_watch_stop(struct tzk_watch *w);

#endif /* WEFT_TEST_ZK_SERVER_H */
