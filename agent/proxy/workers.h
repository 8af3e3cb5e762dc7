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

#include <stddef.h>

#include "proxy/proxy.h"

struct loop;
struct pod;
struct catalogue;
struct workers;

/* @n workers (1..CFG_WORKERS_MAX); with 1, the proxy runs on @main_loop.
 * NULL with errno set.
 */
struct workers *workers_new(struct loop *main_loop, unsigned int n, const struct proxy_opts *opts);
/* Stop and join the threads, then free every proxy. Pods were closed first. Accepts NULL. */
void workers_free(struct workers *ws);

/* The number of online CPUs, clamped to 1..CFG_WORKERS_MAX: --workers 0. */
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

/* Give @pod one listener per worker (worker 0 uses @pod itself; the others
 * a shadow copy holding that worker's listeners and connections). 0 or
 * -errno, with nothing left open.
 */
int workers_pod_listen(struct workers *ws, struct pod *pod);
/* Close @pod's listeners and connections on every worker. */
void workers_pod_close(struct workers *ws, struct pod *pod);

/* @pod's share on worker @i (the pod itself for worker 0), or NULL. */
const struct pod *workers_pod_at(const struct workers *ws, const struct pod *pod, unsigned int i);

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
