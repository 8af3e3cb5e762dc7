/* SPDX-License-Identifier: GPL-2.0-only */
/* The soak's load (tests/integration/test_soak.c): processes inside meshed
 * pods that make traffic through service VIPs until told to stop, counting
 * into memory shared with the test process: new connections (one IDENT
 * each), HTTP/1.1 keep-alive requests on a few reused connections, and ECHO
 * streams, some for the whole run and some a few seconds each.
 */
#ifndef WEFT_TEST_SOAK_LOAD_H
#define WEFT_TEST_SOAK_LOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The services the load uses (test_soak.c declares them). */
#define SOAK_WEB_VIP "198.19.0.10:80"	/* line servers: IDENT */
#define SOAK_KV_VIP "198.19.0.60:80"	/* HTTP/1.1 keep-alive servers */
#define SOAK_ECHO_VIP "198.19.0.80:80"	/* line servers: ECHO streams */

enum soak_kind {
	SOAK_CONNS,		/* a new connection per IDENT to the web VIP */
	SOAK_HTTP,		/* GET after GET on kept-alive connections to the kv VIP */
	SOAK_STREAM,		/* ECHO streams of a few seconds, one after the other */
	SOAK_LONG,		/* one ECHO stream for the whole run */
	SOAK_KINDS,
};

/* What one kind of load did, summed over its processes. */
struct soak_counts {
	atomic_long ok;		/* IDENTs, HTTP 200s, streams ended whole (BYE) */
	atomic_long bytes;	/* stream bytes sent and echoed back */
	atomic_long opened;	/* client connections made */
	atomic_long failed;	/* unexpected failures, see test_soak.c */
	atomic_long expected;	/* failures the test's definition allows */
	atomic_long bypassed;	/* answered by something not of the service */
};

/* Shared between the test process and the load (MAP_SHARED). */
struct soak_shared {
	atomic_bool stop;
	/* Odd while a listed web backend is down on purpose (a crash the
	 * registry has not been told about yet); bumped at both ends.
	 */
	atomic_long crash_epoch;
	uint64_t t0_ms;		/* the run's start, for the processes' log lines */
	struct soak_counts c[SOAK_KINDS];
};

/* Map the shared block (zeroed). NULL with errno set. */
struct soak_shared *soak_shared_new(void);
/* Unmap it; NULL is fine. */
void soak_shared_free(struct soak_shared *sh);

/* Fork one load process of @kind inside test netns @ns. The pid, or -1. */
pid_t soak_load_start(struct soak_shared *sh, enum soak_kind kind, const char *ns);

/* The kinds' names, for the summary. */
extern const char *const soak_kind_name[SOAK_KINDS];

#endif /* WEFT_TEST_SOAK_LOAD_H */
