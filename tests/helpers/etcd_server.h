/* SPDX-License-Identifier: GPL-2.0-only */
/* A real etcd (the Debian etcd-server package, /usr/bin/etcd) for one test:
 * client and peer ports on 127.0.0.1 picked free (never the default 2379,
 * in case a packaged service runs), a private data dir under /tmp, the
 * server killed with the test process (PR_SET_PDEATHSIG) and at exit. Plus
 * the few client calls the tests make, over etcd's JSON gateway.
 */
#ifndef WEFT_TEST_ETCD_SERVER_H
#define WEFT_TEST_ETCD_SERVER_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proc.h"

struct tetcd {
	pid_t pid;			/* 0 while stopped */
	uint16_t client_port, peer_port;
	char dir[PATH_MAX];		/* /tmp/weft-etcd-<pid>-XXXXXX: data and log */
	char url[64];			/* http://127.0.0.1:<client_port> */
};

/* Start a fresh server; returns once it answers. 0 or -1 (log in s->dir). */
int tetcd_start(struct tetcd *s);
/* Start it again on the same ports and data (after tetcd_kill). 0 or -1. */
int tetcd_restart(struct tetcd *s);
/* SIGKILL and reap; data stays. Idempotent. */
void tetcd_kill(struct tetcd *s);
/* Kill and remove the data dir. Idempotent. */
void tetcd_stop(struct tetcd *s);

/* Put @value at @key (no lease). 0 or -1. */
int tetcd_put(struct tetcd *s, const char *key, const char *value);
/* Delete @key. 0 or -1. */
int tetcd_del(struct tetcd *s, const char *key);
/* Whether @key exists: 1, 0, or -1 on error. With @value, copy it there. */
int tetcd_get(struct tetcd *s, const char *key, char *value, size_t len);
/* The create_revision of @key: it changes when the key is deleted and
 * written again, and only then. 0 when absent, -1 on error.
 */
int64_t tetcd_create_revision(struct tetcd *s, const char *key);
/* The store's current revision, or -1. */
int64_t tetcd_revision(struct tetcd *s);
/* Compact the history up to @rev (physically). 0 or -1. */
int tetcd_compact(struct tetcd *s, int64_t rev);

/* A TCP gate on 127.0.0.1 in front of a server, which a test closes to cut
 * a client off (an outage, a partition) while it still talks to the server
 * itself: closing drops every relayed connection and refuses new ones.
 */
struct tgate {
	uint16_t port;			/* where clients connect */
	uint16_t target;		/* the server's port on 127.0.0.1 */
	int lfd;
	int wake[2];			/* test -> relay thread */
	pthread_t thread;
	atomic_bool open, stop;
};

/* Start a gate (open) to 127.0.0.1:@target. 0 or -1. */
int tgate_start(struct tgate *g, uint16_t target);
/* Open or close the gate; returns once closing has cut every connection. */
void tgate_set_open(struct tgate *g, bool open);
/* Stop the relay thread and close everything. Idempotent. */
void tgate_stop(struct tgate *g);

#endif /* WEFT_TEST_ETCD_SERVER_H */
