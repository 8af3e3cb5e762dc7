/* SPDX-License-Identifier: GPL-2.0-only */
/* Proxy workers (issue #6): N threads, each running its own loop and its own
 * proxy (connections, service and endpoint state, counters), the HAProxy /
 * Envoy model. Each meshed pod gets one listener per worker and family, bound
 * to the same port with SO_REUSEPORT, so the kernel spreads new connections
 * across workers; a connection lives and dies on the worker that accepted it.
 * The main thread keeps the control loop (registries, CNI, admin, signals).
 *
 * The main thread touches workers' state only while they are isolated
 * (workers_isolate(), HAProxy's thread_isolate()): every worker is parked in
 * a callback of its own loop, between two events, so the main thread may
 * read and change any proxy as if it were that worker. Publishing a catalogue,
 * opening and closing a pod's listeners, and every admin read that looks at
 * proxy state do so; the hot path takes no lock at all.
 *
 * With one worker there is no thread: the proxy runs on the main loop,
 * exactly as before workers existed, and isolation is a no-op.
 */
#ifndef WEFT_PROXY_WORKERS_H
#define WEFT_PROXY_WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/proxy.h"

/* The most worker threads (--workers); the option table takes its bound from here. */
#define WORKERS_MAX 64

struct loop;
struct catalogue;
struct workers;

/* @n workers (1..WORKERS_MAX); with 1, the proxy runs on @main_loop.
 * NULL with errno set.
 */
struct workers *workers_new(struct loop *main_loop, unsigned int n, const struct proxy_opts *opts);
/* Stop and join the threads, then free every proxy. Pods were closed first. Accepts NULL. */
void workers_free(struct workers *ws);

/* The number of online CPUs, clamped to 1..WORKERS_MAX: --workers 0. */
unsigned int workers_default(void);

unsigned int workers_count(const struct workers *ws);
/* Worker @i's proxy. Outside workers_isolate() only worker 0 of a
 * single-worker set may be used by the main thread.
 */
struct proxy *workers_proxy(const struct workers *ws, unsigned int i);

/* Park every worker thread in its own loop and return once all are parked;
 * workers_release() lets them go. Not nested. No-op with one worker.
 */
void workers_isolate(struct workers *ws);
void workers_release(struct workers *ws);

/* Publish @c to every worker (under isolation). */
void workers_set_catalogue(struct workers *ws, struct catalogue *c);

/* ---- capture: where pods and the proxy meet */

/* What the proxy needs to know of a pod to capture its connections. */
struct px_pod_info {
	uint32_t id;		/* the agent's pod id, for logs */
	const char *ns, *name;	/* for logs; borrowed for the call only */
	int netns_fd;		/* borrowed: must stay open until the capture is closed */
};

/* A pod's capture state, owned by the proxy: one listener per worker and
 * family, bound to the same port with SO_REUSEPORT, and each worker's
 * connections of the pod. Opaque to the pods module.
 */
struct px_capture;

/* Open @info's listeners on every worker (isolating them). Returns the
 * capture, or NULL with errno set and nothing left open. May block briefly
 * (setns, socket), never on the network.
 */
struct px_capture *workers_capture_open(struct workers *ws, const struct px_pod_info *info);
/* Close @cap's listeners and connections on every worker, pooled upstream
 * connections made in the pod's netns included, and free it. Accepts NULL.
 */
void workers_capture_close(struct workers *ws, struct px_capture *cap);

/* The cookie of the pod's netns, read from its listener. */
uint64_t workers_capture_netns_cookie(const struct px_capture *cap);
/* Whether @cap has a listener of @family (AF_INET, AF_INET6). */
bool workers_capture_has_listener(const struct px_capture *cap, int family);
/* Whether every listener of @cap is a socket in LISTEN state. */
bool workers_capture_listening(const struct px_capture *cap);
/* Under isolation: the pod's connections, open and ever accepted, summed
 * over the workers.
 */
void workers_capture_counts(const struct px_capture *cap, uint64_t *active, uint64_t *total);
/* Under isolation: call @fn for each live connection of the pod, each
 * worker's share in turn, newest first within a worker. A non-zero return
 * stops the walk and is returned, else 0.
 */
int workers_capture_conns(const struct px_capture *cap, proxy_conn_fn fn, void *ctx);

/* Under isolation: the stats of every worker, summed. */
void workers_stats(const struct workers *ws, struct proxy_stats *out);

struct svc_state;

/* Under isolation: the i-th service port as proxy_service_at() gives it,
 * merged over the workers: counters, gauges and latency histograms summed,
 * an endpoint shown ejected if any worker ejected it (the latest deadline,
 * the highest failure streak). Valid until workers_release(). With one
 * worker, that worker's own state.
 */
const struct svc_state *workers_service_at(struct workers *ws, size_t i);

#endif /* WEFT_PROXY_WORKERS_H */
