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
 * read and change any proxy as if it were that worker. Opening and closing a
 * pod's listeners, the hand-over and the admin reads of per-service,
 * per-endpoint, per-pod and per-connection state do so (/v1/services,
 * /v1/pods, /v1/conns, /v1/trace, /v1/identities' refusals, and /metrics
 * while it copies those rows, not while it writes the text); the hot path
 * takes no lock at all.
 *
 * Two reads do not park anyone: the node-wide counters (workers_stats():
 * /v1/status, the counter families of /metrics, the drain's count of open
 * connections) and the publish figures (workers_publish_stats()). Each
 * worker is the only writer of its own, through ctr_inc() and kin
 * (proxy/counters.h): relaxed atomic stores, plain moves on x86-64 and
 * arm64; the main thread reads each field whole, at some recent instant,
 * not all of them at one instant.
 *
 * Publishing a catalogue does not isolate (read-copy-update): the main thread
 * leaves a reference to the new snapshot in each worker's slot and knocks;
 * each worker swaps it in between two of its own events and binds only the
 * Services that changed (proxy/state.h), then drops the old snapshot, which
 * is freed when the last worker has moved past it. A worker never waits for
 * another, and an isolation first lets each worker take the latest snapshot,
 * so admin reads see every worker on the same one.
 *
 * With one worker and the sandbox off there is no thread: the proxy runs on
 * the main loop, exactly as before workers existed, and isolation is a
 * no-op. With the sandbox on (the default) each worker is a thread that
 * drops every privilege before its loop starts (proxy/sandbox.h) and takes
 * its upstream sockets from the broker thread (proxy/broker.h).
 */
#ifndef WEFT_PROXY_WORKERS_H
#define WEFT_PROXY_WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/pass.h"
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
/* Whether the workers dropped their privileges (proxy_opts.sandbox). */
bool workers_sandboxed(const struct workers *ws);
/* Worker @i's proxy. Outside workers_isolate() only worker 0 of a
 * single-worker set may be used by the main thread.
 */
struct proxy *workers_proxy(const struct workers *ws, unsigned int i);

/* Park every worker thread in its own loop and return once all are parked;
 * workers_release() lets them go. Not nested. No-op with one worker.
 */
void workers_isolate(struct workers *ws);
void workers_release(struct workers *ws);

/* Publish @c to every worker: each takes a reference and binds it at its
 * next pass through its loop (at once, with no worker thread).
 */
void workers_set_catalogue(struct workers *ws, struct catalogue *c);

/* What taking catalogues in cost the workers: a worker's other events wait
 * for its bind, so max_us is the longest a publish delayed a request.
 */
struct workers_publish_stats {
	uint64_t binds;		/* over every worker */
	uint64_t total_us;
	uint64_t max_us;	/* the longest single bind */
	uint64_t max_cpu_us;	/* the most CPU one bind used (the rest of a long
				 * one was waiting for a core) */
	uint64_t max_changes;	/* the most Services one bind took up
				 * (catalogue_changes(), snapshots it skipped
				 * included): what a bind's cost follows */
};

/* Whether a worker has not bound the snapshot published last yet (false
 * without worker threads: a publish is bound when it returns). Main thread.
 */
bool workers_binding(struct workers *ws);

/* Call @fn(@ctx) on @loop (the main thread's) each time the last worker
 * binds a published snapshot: workers_binding() turned false. Once per
 * workers; a no-op without worker threads. 0 or -errno.
 */
typedef void (*workers_bound_fn)(void *ctx);
int workers_on_bound(struct workers *ws, struct loop *loop, workers_bound_fn fn, void *ctx);

/* Summed over the workers (the maxima: the highest), read while they run:
 * never parks them, never blocks. Each field is exact, the fields are not
 * one snapshot.
 */
void workers_publish_stats(const struct workers *ws, struct workers_publish_stats *out);
/* Start them over. Under isolation (or with no worker thread): it writes
 * what the workers own.
 */
void workers_publish_stats_reset(struct workers *ws);

struct mtls_table;
/* Publish mTLS table @t (proxy/mtls.h; NULL: off) to every worker, under
 * isolation; each takes a reference.
 */
void workers_set_mtls(struct workers *ws, struct mtls_table *t);

/* ---- capture: where pods and the proxy meet */

/* What the proxy needs to know of a pod to capture its connections. */
struct px_pod_info {
	uint32_t id;		/* the agent's pod id, for logs */
	const char *ns, *name;	/* for logs; borrowed for the call only */
	int netns_fd;		/* borrowed: must stay open until the capture is closed */
	bool inbound;		/* open inbound listeners too (needs opts.inbound_port) */
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
/* Whether every listener of @cap, inbound ones included, is a socket in
 * LISTEN state.
 */
bool workers_capture_listening(const struct px_capture *cap);
/* Under isolation: the pod's connections, open and ever accepted, summed
 * over the workers.
 */
void workers_capture_counts(const struct px_capture *cap, uint64_t *active, uint64_t *total);
/* One pod's outbound connections against its limit, summed over the workers. */
struct px_pod_load {
	uint64_t conns_out;	/* outbound client connections open */
	uint64_t limit;		/* what it may hold: the sum of each worker's limit */
	uint64_t refused;	/* connections reset by its limit or --max-conns */
	uint64_t local_errors;	/* failed for the agent's own resources (EMFILE...) */
};

/* Under isolation: @cap's load into @out. */
void workers_capture_load(const struct px_capture *cap, struct px_pod_load *out);
/* Under isolation: call @fn for each live connection of the pod, each
 * worker's share in turn, newest first within a worker. A non-zero return
 * stops the walk and is returned, else 0.
 */
int workers_capture_conns(const struct px_capture *cap, proxy_conn_fn fn, void *ctx);

/* Called with each listening socket of a capture and its pod's netns fd
 * (both borrowed).
 */
typedef void (*workers_listener_fn)(int fd, int netns_fd, void *ctx);
/* Under isolation (or before any worker runs): call @fn for every listener
 * of @cap, outbound and inbound, on every worker: what a hand-over passes.
 */
void workers_capture_listeners(const struct px_capture *cap, workers_listener_fn fn, void *ctx);
/* Stop accepting on every listener of @cap and drain (isolating the
 * workers): HTTP keep-alive connections close between requests, the others
 * go on until they end or the capture is closed.
 */
void workers_capture_stop_accepting(struct workers *ws, struct px_capture *cap);

/* ---- established connections at a hand-over (proxy/pass.h, docs/lifecycle.md) */

struct pass_batch;

/* Park the workers (workers_isolate()) and start passing connections to
 * @send, PASS_BATCH at a time. NULL with errno set (the workers released).
 */
struct pass_batch *workers_pass_begin(struct workers *ws, pass_send_fn send, void *ctx);
/* Add every connection of @cap that can be passed (opaque, outbound,
 * established, plaintext) to @b. 0, or the first -errno of a send: what
 * was not sent stays and drains.
 */
int workers_capture_pass(struct px_capture *cap, struct pass_batch *b);
/* Send the rest, free @b and release the workers. How many connections
 * went to the successor (0 or more), or the first -errno of a send.
 */
long workers_pass_end(struct workers *ws, struct pass_batch *b);

/* The identity (nsfs device and inode) of @cap's pod netns. 0 or -errno. */
int workers_capture_netns_id(const struct px_capture *cap, uint64_t *dev, uint64_t *ino);
/* Under isolation: relay the connection of record @r from now on, on the
 * next of @cap's workers in turn. Takes the pass_rec_fds(@r) descriptors
 * in @fds in every case (on failure both sockets are reset). 0 or -errno.
 */
int workers_capture_adopt(struct px_capture *cap, const struct px_pass_rec *r, int *fds);

/* Worker 0's inbound listeners of @cap (-1 when absent), for the datapath's
 * sk_lookup map: a socket assigned by bpf_sk_assign() that belongs to a
 * SO_REUSEPORT group still goes through the group's selection (unless the
 * program passes BPF_SK_LOOKUP_F_NO_REUSEPORT), so new connections spread
 * over every worker's listener. Borrowed; never blocks.
 */
void workers_capture_inbound_fds(const struct px_capture *cap, int *lfd4, int *lfd6);

/* One inbound port of a pod (the port the client dialled), summed over the
 * workers. Port 0 gathers the ports past INBOUND_PORTS_MAX of a worker.
 * bytes_in: client → application; bytes_out: application → client; live
 * connections' bytes included. requests/responses: HTTP/1.x only.
 */
struct px_inbound_port {
	uint16_t port;
	uint64_t conns_total, conns_active, bytes_in, bytes_out, requests,
		responses[PROXY_STATUS_CLASSES], connect_errors;
};

/* Under isolation: @cap's inbound ports, summed over the workers, in port
 * order, into @out[0..@n). Returns how many it filled, or more than @n when
 * there were more ports (the rest are left out).
 */
size_t workers_capture_inbound(const struct px_capture *cap, struct px_inbound_port *out, size_t n);

/* The stats of every worker, summed, read while they run: never parks
 * them, never blocks. Each field is exact at some recent instant; two
 * fields are not one snapshot (total may count a connection active does
 * not yet).
 */
void workers_stats(const struct workers *ws, struct proxy_stats *out);

struct svc_state;

/* Under isolation: the i-th service port as proxy_service_at() gives it,
 * merged over the workers: counters, gauges and latency histograms summed,
 * an endpoint shown ejected if any worker ejected it (the latest deadline,
 * the highest failure streak). Valid until workers_release(). With one
 * worker, that worker's own state.
 */
const struct svc_state *workers_service_at(struct workers *ws, size_t i);

/* Under isolation: make workers_service_at()'s view of every service port
 * and keep it past workers_release(), until workers_view_done(), so that a
 * long reader (the /metrics text) parks the workers only while the ports
 * they hold state for are merged. workers_service_at() then reads the kept
 * view without isolation; a port no worker had used is made on demand from
 * the snapshot the workers had bound (the view holds a reference on it).
 * With worker threads the view is copies no worker touches; without, it is
 * the proxy's own state, which runs on the caller's loop: call
 * workers_view_done() before returning to it. No isolation may start
 * before workers_view_done(). 0, or -ENOMEM with nothing kept.
 */
int workers_view_keep(struct workers *ws);
/* Free a kept view (or none). Never blocks. */
void workers_view_done(struct workers *ws);

#endif /* WEFT_PROXY_WORKERS_H */
