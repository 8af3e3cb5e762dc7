/* SPDX-License-Identifier: GPL-2.0-only */
/* Proxied connections, internal to agent/proxy. A client connection (struct
 * conn) is first classified (protocol detection), then either relayed as
 * opaque bytes to one upstream (L4, tcp.c) or served request by request
 * (HTTP/1.x, http.c) over upstream connections (struct up, upstream.c) that
 * are pooled per endpoint and pod between requests. Attempts, retries and
 * circuit breaking are attempt.c's. A connection's buffers are taken when
 * bytes arrive and given back when they are gone (half_buf()), so an idle
 * one holds none.
 *
 * An inbound connection (a client outside the pod dialling the pod's
 * application, inbound.c) is relayed by relay_tcp to the original destination
 * inside the pod, from the client's own address (upstream.c), and watched on
 * the way (observe.c: HTTP/1.x requests and response classes per pod port).
 *
 * Calls go one way, down this list; a file never names a function of a file
 * above it, and reaches up only through the tables it is given (c->ops, the
 * relay serving a connection, and px->relays[]):
 *
 *   tcp.c, http.c  the relays (struct relay_ops); http.c hands a connection
 *                  over to relay_tcp (upgrades, bytes that are not HTTP)
 *   attempt.c      endpoint choice, connects, retries, outlier outcomes
 *   conn.c         client connections: accept to close, idle timeout,
 *                  protocol detection over px->relays[]
 *   fastpath.c     the opaque relay's kernel path (--opaque-fastpath
 *                  sockmap): which connections switch, their counts, the
 *                  wait that keeps a FIN behind the kernel's bytes
 *   upstream.c     upstream sockets (per-pod pools the broker fills) and
 *                  the idle pool
 *   observe.c      what an inbound connection's bytes say (HTTP/1.x), read
 *                  as tcp.c copies them
 *   tls_relay.c    mutual TLS to and from meshed pods (docs/mtls.md): called
 *                  by upstream.c (client side) and inbound.c (server side),
 *                  the relays read and write through its SSL (sock_*())
 *                  and it calls back up only through the delivery pointer
 *                  inbound.c gives it and the relay's watch callback;
 *                  mtls.c holds the table the main thread publishes,
 *                  tls_bio.c the BIO under each link's SSL (its socket)
 *
 * Above them, listener.c (outbound listeners, accept, struct proxy) calls
 * conn.c and upstream.c and is the one place that names the relay tables, to
 * fill px->relays[]; inbound.c (inbound listeners and accept) calls
 * listener.c and conn.c; workers.c calls both.
 *
 * Beside them: broker.c (the privileged socket maker and its thread, called
 * by upstream.c and workers.c) and sandbox.c (the workers' one-way drop,
 * called by workers.c); neither calls back into the proxy.
 */
#ifndef WEFT_CONN_H
#define WEFT_CONN_H

#include <errno.h>
#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "addr.h"
#include "loop.h"
#include "proxy.h"
#include "proxy/broker.h"
#include "proxy/counters.h"
#include "proxy/framing.h"
#include "proxy/pass.h"
#include "proxy/pipes.h"
#include "proxy/policy.h"
#include "proxy/state.h"
#include "proxy/workers.h"
#include "spiffe.h"

struct loop;

/* Bytes buffered per direction, while there are any. An HTTP request is
 * retryable only if it fits here whole.
 */
#define CONN_BUF_SIZE 16384
/* Empty buffers a worker keeps for the next taker rather than free(). */
#define BUF_SPARE 64
#define CONN_MAX_TRIES (1 + POLICY_RETRIES_MAX)
/* Idle upstream connections kept per endpoint: above the number of clients
 * a pod keeps busy at once, or a burst closes connections the next burst
 * reopens (32 made a keep-alive run with 50 clients connect for 6% of its
 * requests).
 */
#define POOL_IDLE_MAX 256
#define POOL_IDLE_MS 30000
/* A half-close on the fast path waits for the bytes the kernel holds ahead
 * of it (fp_drained()), looking every FP_FIN_POLL_MS, and gives up once
 * the kernel handed nothing over for FP_FIN_WAIT_MS.
 */
#define FP_FIN_WAIT_MS 2000
#define FP_FIN_POLL_MS 1
/* A connection goes on the fast path once the relay has read bytes this
 * many times: the switch costs a round trip to the broker and four map
 * writes, more than a short connection (a request and its response) would
 * ever win back.
 */
#define FP_AFTER_READS 8
/* Nor a connection that streams: a read this large says bytes keep coming,
 * and the switch puts one socket in after the other, so bytes arriving in
 * between would be passed up out of order (fp_try() then resets the
 * connection). Bulk transfers gain nothing on the fast path anyway
 * (docs/benchmarks.md).
 */
#define FP_BULK_READ 16384	/* and for at most this long (or the idle timeout) */

/* Spare upstream sockets of one kind made in one pod's netns, each already
 * marked (and, inbound, transparent): what a connect takes (upstream.c).
 */
#define SOCK_POOL_MAX (2 * BROKER_BATCH)
struct sock_pool {
	int fd[SOCK_POOL_MAX];	/* fd[0..n): unused sockets, non-blocking */
	uint8_t n;
	bool asked;		/* a request to the broker is on its way */
};

/* A pod's share of one proxy (worker): the listeners this worker serves in
 * the pod's netns and the connections they accepted. Owned by the pod's
 * capture (workers.c); the pods module never sees it.
 */
struct px_pod {
	struct proxy *px;	/* serving the listeners */
	uint32_t id;		/* the agent's pod id, for logs */
	int netns_fd;		/* borrowed: the enrollment keeps it open */
	int lfd4, lfd6;		/* -1 when not listening */
	int ilfd4, ilfd6;	/* inbound listeners; -1 when not listening */
	struct conn *conns;	/* live client connections, newest first */
	uint64_t conns_active, conns_total;
	uint64_t conns_out;	/* outbound ones among conns_active: what the limit counts */
	uint64_t refused;	/* outbound connections reset by a limit (pod or node) */
	uint64_t local_errors;	/* connections or requests failed for the agent's resources */
	struct in_port *in_ports;	/* inbound counters per port, unordered */
	uint32_t n_in_ports;
	uint64_t key;		/* the capture's, as the broker knows the pod */
	struct px_pod *next_pod;	/* px->pods */
	struct sock_pool pools[SK_KINDS];
	/* The agent is draining (docs/lifecycle.md): an HTTP client connection
	 * is closed after its response instead of kept alive.
	 */
	bool draining;
	struct tls_link *tls_links;	/* mTLS connections of this share (tls_relay.c) */
};

/* Distinct inbound ports counted per pod and worker; the connections to
 * further ports are counted under port 0. Ports are what clients dial, so
 * anyone who can reach the pod could otherwise grow the list to 65535.
 */
#define INBOUND_PORTS_MAX 64

/* One inbound port's counters in one worker's share of a pod. Counters of
 * live connections' bytes are added when they close (workers.c adds the
 * live ones when asked).
 */
struct in_port {
	struct in_port *next;
	struct px_inbound_port ctr;
};

/* The relays, indexed in px->relays[] and named by relay_ops.kind. */
enum relay_kind {
	RELAY_TCP,
	RELAY_HTTP,
	RELAY_KINDS,
};

struct relay_ops;
struct mtls_table;
struct tls_link;

struct proxy {
	struct loop *loop;
	const struct relay_ops *relays[RELAY_KINDS];	/* by kind; set once by proxy_new */
	struct px_pod *pods;		/* the pods this proxy serves, for broker replies */
	int brk_chan;			/* this worker's channel to the broker; -1: none */
	struct pipe_pool pipes;		/* lent to relayed connections while bytes flow */
	uint32_t *fp_free;		/* free fast path slots (a stack); NULL: no fast path */
	uint32_t fp_n_free;
	char *buf_spare[BUF_SPARE];	/* empty CONN_BUF_SIZE buffers (half_buf()) */
	uint32_t n_buf_spare;
	struct proxy_opts opts;
	struct policy defaults;		/* services' defaults, from the agent's options */
	struct policy passthrough;	/* non-service destinations: no retries */
	struct catalogue *cat;
	struct state st;		/* bound to @cat */
	uint32_t n_pods;		/* pods this proxy serves (captures open) */
	uint64_t rng;
	uint32_t in_src_cursor;		/* next inbound source port (upstream.c) */
	struct mtls_table *mtls;	/* a reference; NULL: mTLS off (no --ca-cert) */
	struct mtls_denial *denials;	/* allow-from refusals by caller (tls_relay.c) */
	size_t n_denials;
	/* Written by this proxy's worker only, with ctr_inc() and kin: the
	 * main thread reads it without parking the worker (workers_stats()).
	 */
	struct proxy_stats stats;
};

/* One direction's bytes: pending ones are buf[off, off + len), then, in the
 * L4 relay, @piped more in the pipe (zero-copy: splice(2) moves page
 * references from the source socket into the pipe and from the pipe to the
 * destination). Buffered bytes always go before piped ones. The L4 relay
 * reads small messages into the buffer (one recv() and one send()) and
 * borrows a pipe from px->pipes only while a stream fills it (@bulk), and
 * only while bytes are in the pipe (pipes.h); HTTP connections never have
 * one.
 */
struct half {
	size_t len, off;
	size_t piped;		/* bytes in the pipe */
	int pipe[2];		/* read end, write end; -1: none now */
	bool eof;		/* the source sent FIN */
	bool shut;		/* FIN passed on to the destination */
	bool no_pipe;		/* pipe creation failed: copy through buf */
	bool copy;		/* copy through buf and show the bytes to observe.c */
	/* The L4 relay splices only while bytes stream: set when a read fills
	 * the buffer, cleared when a splice moves less than SPLICE_MIN (tcp.c).
	 */
	bool bulk;
	uint64_t bytes;		/* delivered to the destination, for the admin API */
	char *buf;		/* CONN_BUF_SIZE bytes while it holds any; else NULL */
};

/* Nothing waits to be written to the destination. */
static inline bool half_empty(const struct half *h)
{
	return !h->len && !h->piped;
}

/* What the first bytes of a client say about its protocol. */
enum detect {
	DETECT_YES,		/* the relay's protocol */
	DETECT_NO,
	DETECT_MORE,		/* a prefix of it: wait for more bytes */
};

/* Why an attempt failed. */
enum fail_kind {
	FAIL_CONNECT,		/* refused, unreachable, reset during connect */
	FAIL_TIMEOUT,		/* connect timeout */
	FAIL_STALE,		/* a pooled connection was closed before we sent anything */
	FAIL_RESET,		/* reset or closed before the response was complete */
	FAIL_STATUS,		/* a 502, 503 or 504 response */
	FAIL_INVALID,		/* a response framed ambiguously or malformed (framing.h) */
};

/* Failures decided locally, before any upstream attempt. */
enum local_fail {
	LOCAL_NO_ENDPOINT,
	LOCAL_OVERFLOW_CONNECTIONS,
	LOCAL_OVERFLOW_PENDING,
	LOCAL_OVERFLOW_REQUESTS,
	LOCAL_ERROR,		/* out of memory or sockets */
};

struct conn;

/* What a relay protocol does with a client connection, after haproxy's
 * mux_ops: conn.c, attempt.c and upstream.c drive connections through this
 * table and never name a protocol's functions. One table per protocol:
 * relay_tcp (tcp.c: opaque bytes, also HTTP upgrades and CONNECT) and
 * relay_http (http.c: HTTP/1.x, request by request). Functions that may close
 * @c say so.
 */
struct relay_ops {
	const char *name;	/* "tcp", "http": the admin API's protocol */
	enum relay_kind kind;	/* its index in px->relays[], and its detection counter */
	/* Classify the first bytes a client sent; NULL: never detected. */
	enum detect (*detect)(const char *buf, size_t len);
	/* Serve @c from now on; bytes already in c2u are the client's first. May close @c. */
	void (*start)(struct conn *c);
	/* Events on the client socket, or on the attached upstream's; while
	 * @c->up is connecting, on_upstream passes them to attempt_connected().
	 * May close @c.
	 */
	void (*on_client)(struct conn *c, uint32_t events);
	void (*on_upstream)(struct conn *c, uint32_t events);
	/* @c->up is connected or was taken from the pool. May close @c. */
	void (*ready)(struct conn *c);
	/* Recompute what both sockets are watched for; false if @c was closed. */
	bool (*update)(struct conn *c);
	/* Whether what the relay did so far allows another attempt after @kind. */
	bool (*may_retry)(const struct conn *c, enum fail_kind kind);
	/* Whether the next attempt may take a pooled upstream. */
	bool (*may_reuse)(const struct conn *c);
	/* The last attempt failed for good, or never started for @why: tell the
	 * client (a reset, or an HTTP error response). @c is closed on return or later.
	 */
	void (*fail)(struct conn *c, enum fail_kind kind);
	void (*fail_local)(struct conn *c, enum local_fail why);
	/* @c is closing: undo in-flight accounting. */
	void (*abandon)(struct conn *c);
	/* The admin API's state of @c while no upstream is attached. */
	const char *(*idle_state)(const struct conn *c);
};

extern const struct relay_ops relay_tcp, relay_http;

struct up {
	struct proxy *px;
	struct conn *c;		/* the client served; NULL while idle in the pool */
	struct ep_state *ep;	/* holds a reference; NULL for a passthrough */
	const struct px_pod *pod;	/* the socket lives in this pod's netns */
	struct up *pool_prev, *pool_next;	/* in ep->idle */
	int fd;
	struct tls_link *tls;	/* mTLS to a meshed pod: TLS on fd (tls_relay.c); else NULL */
	bool connecting;
	bool reused;		/* taken from the pool for this request */
	struct loop_watch w;	/* what fd is watched for */
	uint64_t connect_us;	/* lat_now_us() when the connect started */
	struct loop_timer t_conn;	/* connect timeout; idle deadline in the pool */
	http_parser rp;		/* response parser of the current request */
};

/* The HTTP request in progress on a client connection. Offsets index c2u.buf. */
struct http_txn {
	http_parser qp;		/* request parser; .data = the conn */
	struct framing qf;	/* the request's strict framing, ahead of qp */
	struct framing rf;	/* the current attempt's response's, ahead of up->rp */
	size_t parsed;		/* bytes of this request the parser has consumed */
	size_t sent;		/* bytes of it sent to the current upstream */
	uint32_t n_requests;	/* requests completed on this connection */
	int status;		/* status of the current attempt's response */
	char hdr[16];		/* header name being read, lowercased, truncated */
	size_t hdr_len;
	bool hdr_value;		/* the last callback was a header value */
	bool head_done, complete, upgrade, keep_alive, expect_continue;
	bool idempotent, is_head;
	bool dispatched;	/* sent on its way (or answered locally) */
	bool counted;		/* in svc->requests */
	bool streaming;		/* sent as it arrives: not retryable */
	bool resp_head;		/* the current attempt's response head is parsed */
	bool resp_started;	/* a response byte was queued for the client: no retry */
	bool resp_done;		/* the final response is complete */
	bool close_after;	/* close the client once u2c is flushed */
	bool resp_keep_alive;	/* the upstream connection may serve another request */
	bool dirty;		/* the upstream sent bytes after the response */
	bool resp_close;	/* the response told the client its connection ends */
	bool resp_hold;		/* a final head follows an interim one passed on:
				 * u2c is flushed up to resp_at until it is rewritten */
	bool resp_rewritten;	/* the final response head's hop-by-hop fields are done */
	size_t resp_at;		/* u2c.buf index where the current response head starts */
	size_t interim_at;	/* response_parse(): where a head after an interim
				 * one starts in its input; SIZE_MAX: none */
	uint64_t start_us;	/* lat_now_us() at dispatch; 0 before */
};

struct conn {
	struct proxy *px;
	struct px_pod *pod;
	struct conn *prev, *next;	/* in pod->conns */
	struct svc_state *svc;		/* holds a reference; NULL for a passthrough */
	const struct policy *pol;	/* &svc->pol or &px->passthrough */
	struct addr target;		/* passthrough, inbound: the destination */
	struct in_port *in;		/* inbound: its port's counters; NULL: outbound */
	struct addr peer;		/* inbound: the client, the application's peer */
	struct observe *obs;		/* inbound: HTTP observer state; NULL: none (yet) */
	struct up *up;			/* the upstream in use, if any */
	int cfd;
	struct tls_link *tls;	/* inbound mTLS: TLS on cfd (tls_relay.c); else NULL */
	struct loop_watch cw;	/* what cfd is watched for */
	const struct relay_ops *ops;	/* NULL while detecting the protocol */
	bool judged;			/* the current attempt's outcome was recorded */
	uint64_t start_ms;		/* accepted, loop clock */
	uint64_t last_io_ms;
	struct loop_timer t_idle;	/* idle timeout */
	struct loop_timer t_deadline;	/* detection window, then request timeout */
	struct loop_timer t_retry;	/* retry backoff */
	struct loop_timer t_head;	/* HTTP: the request head's read deadline */
	uint32_t head_req;		/* h.n_requests when t_head was armed */
	struct ep_state *tried[CONN_MAX_TRIES];	/* compared, never dereferenced */
	uint8_t n_tried;		/* attempts for this connection or request */
	bool stale_retried;		/* a stale pooled upstream was replaced, once per request */
	struct http_txn h;
	struct half c2u, u2c;
	bool adopted;			/* passed by the previous agent at a hand-over */
	/* The kernel fast path (fastpath.c): both sockets are on it and the
	 * bytes it moves are counted in slot fp_slot, beyond c2u/u2c.bytes.
	 */
	bool fast;
	bool fp_tried;			/* asked once; never again for this connection */
	uint16_t fp_reads;		/* reads that relayed bytes, up to UINT16_MAX */
	bool fp_bulk;			/* a read of FP_BULK_READ or more: never switched */
	uint32_t fp_slot;
	uint64_t fp_cookie[2];		/* the client's and the upstream socket's (SO_COOKIE) */
	uint64_t fp_seen;		/* both directions' kernel bytes at the last idle check */
	/* Per direction: what the destination's TCP took that c2u/u2c.bytes
	 * and the slot do not count (written before the relay began).
	 */
	uint64_t fp_wr_off[2];
	uint64_t fp_fin_ms;		/* a half-close waits for the kernel's bytes since then */
	uint64_t fp_fin_written;	/* what the destination had taken at that time */
	struct loop_timer t_fin;	/* that wait's next look */
};

/* ---- conn.c */

/* A new connection for client socket @cfd of @pod (taken in every case),
 * bound for service port state @svc (NULL: none) and, inbound, counted in
 * @in: counted and linked, its idle timer armed and the client watched for
 * input, with no relay yet. NULL (the client reset and counted) on failure.
 */
struct conn *conn_new(struct proxy *px, struct px_pod *pod, int cfd, struct svc_state *svc,
		      struct in_port *in);

/* Take ownership of accepted client socket @cfd of @pod, bound for service
 * port state @svc (NULL: pass through to @target). On failure the client is
 * reset and counted.
 */
void conn_start(struct proxy *px, struct px_pod *pod, int cfd, struct svc_state *svc,
		const struct addr *target);

/* Take ownership of accepted inbound socket @cfd of @pod from client @peer
 * for the application at @dst, counted in @port: relayed at once (no
 * detection window), watched by observe.c. On failure the client is reset.
 */
void conn_start_inbound(struct proxy *px, struct px_pod *pod, int cfd, struct tls_link *tls,
			struct in_port *port, const struct addr *dst, const struct addr *peer);

/* Whether @pod may have one more outbound client connection: under
 * --max-conns and under its own limit (px_pod_limit()). Counts a refusal in
 * the node's and the pod's counters; the caller resets the client.
 */
bool conn_admit(struct proxy *px, struct px_pod *pod);

/* The outbound connections one pod may hold on @px at once. */
uint32_t px_pod_limit(const struct proxy *px);

/* Whether -@err from socket() or connect() is the agent's own shortage (file
 * descriptors, memory, buffers, local ports), which says nothing about the
 * endpoint.
 */
bool err_is_local(int err);

/* Close @c at once, sending a reset to both sides if @reset. Releases its
 * upstream (never to the pool), its references and timers, unlinks it from
 * its pod and frees it.
 */
void conn_close(struct conn *c, bool reset);

/* Let go of @c, whose sockets and pipes a successor now holds too (a
 * hand-over, pass.c): out of the loop's epoll set explicitly (closing this
 * agent's descriptors does not release the files), then freed as
 * conn_close() does, without a reset and without a FIN.
 */
void conn_forget(struct conn *c);

/* Close a socket so the peer gets a RST rather than a FIN. */
void sock_close_reset(int fd);

/* Watch the client socket for @ev (0: stop watching). 0 or -errno. */
int conn_watch(struct conn *c, uint32_t ev);

/* Hand @c to relay @ops from now on (@ops->start). May close @c. */
void conn_relay(struct conn *c, const struct relay_ops *ops);

/* Give back (or close, if bytes are left in it) the pipe of @h, if any,
 * and its buffer.
 */
void half_done(struct proxy *px, struct half *h);

/* Make sure @h has its buffer (a spare of the worker's, or a new one). False
 * when out of memory.
 */
bool half_buf(struct proxy *px, struct half *h);

/* Give @h's buffer back if it holds no bytes (len 0): an idle connection
 * keeps none.
 */
void half_buf_put(struct proxy *px, struct half *h);

/* Free the worker's spare buffers. */
void px_buf_flush(struct proxy *px);

/* (Re)arm @n to fire @ms from now on the proxy's loop: O(log n). 0 or -ENOMEM. */
static inline int px_timer_set(struct proxy *px, struct loop_timer *n, uint64_t ms,
			       loop_timer_fn fn)
{
	return loop_timer_set(px->loop, n, ms, fn);
}

/* Disarm @n if armed. */
static inline void px_timer_del(struct proxy *px, struct loop_timer *n)
{
	loop_timer_del(px->loop, n);
}

/* ---- fastpath.c: the kernel path of opaque relays (--opaque-fastpath sockmap) */

/* The worker's slots, from px->opts (no fast path: nothing). 0 or -ENOMEM. */
int fp_init(struct proxy *px);
void fp_done(struct proxy *px);
/* Put relayed connection @c on the kernel path if it may go (opaque,
 * plaintext, connected, FP_AFTER_READS reads relayed and none of them
 * FP_BULK_READ or more, nothing buffered,
 * piped or unread, no EOF yet) and was never tried. Blocks for a round
 * trip to the broker when sandboxed. On success both halves read instead
 * of splicing from then on (what reaches user space is an EOF). 0, or
 * -EPROTO when bytes arrived in the instant between the two sockets' going
 * in, whose order with the bytes after them the relay cannot keep: the
 * caller resets @c. Never closes @c.
 */
int fp_try(struct conn *c);
/* @c was passed by a predecessor with its sockets on the fast path (pinned
 * maps): count it in a slot of this worker, or, without a fast path here,
 * relay it as one (reading, never splicing). Main thread, workers
 * isolated. Never closes @c.
 */
void fp_adopt(struct conn *c);
/* The bytes the kernel moved for @c in direction @dir (0: c2u, 1: u2c). */
uint64_t fp_bytes(const struct conn *c, int dir);
/* Whether the kernel moved bytes of @c since the last call: the idle clock. */
bool fp_moved(struct conn *c);
/* Whether every byte the kernel moved toward @dst (direction @dir) has been
 * handed to @dst's TCP, so a FIN written now comes after them. True too
 * once nothing moved for FP_FIN_WAIT_MS, or when @dst cannot tell.
 */
bool fp_drained(struct conn *c, int dir, int dst);
/* @c closes: fold the kernel's counts into c2u/u2c.bytes, free the slot,
 * drop the sockets' entries (through the broker when sandboxed).
 */
void fp_release(struct conn *c);
/* @c is about to go to a successor with its sockets on the path: leave
 * what it needs in the maps (main thread). 0 or -errno (then it stays).
 */
int fp_hand_over(struct conn *c);
/* @c went to a successor with its sockets on the path: free the slot,
 * keep the entries (the successor counts them in a slot of its own).
 */
void fp_handed_over(struct conn *c);

/* ---- upstream.c */

/* Watch upstream @u for @ev (0: stop watching). Its events go to
 * @u->c->ops->on_upstream while attached; an idle pooled one is closed on
 * any event. 0 or -errno.
 */
int up_watch(struct up *u, uint32_t ev);

/* A new upstream socket for @c in its pod's netns, connecting to @target for
 * endpoint @e (NULL: a passthrough), counted in @e and attached to @c; not
 * watched and without a connect timeout yet. 0 or -errno (nothing attached).
 */
int up_connect(struct conn *c, struct ep_state *e, const struct addr *target);

/* Attach to @c connected upstream socket @fd (taken), which a previous
 * agent opened to endpoint @e (NULL: a passthrough or an endpoint this
 * agent does not know), counted as up_connect() counts a new one. 0 or
 * -ENOMEM (@fd is then still the caller's).
 */
int up_adopt(struct conn *c, struct ep_state *e, int fd);

/* Attach to @c an idle upstream of @e made in @c's pod's netns, marked
 * reused. NULL if the pool has none.
 */
struct up *pool_take(struct conn *c, struct ep_state *e);

/* Close one idle upstream of @s to make room under max-connections. False
 * if there was none.
 */
bool pool_evict(struct svc_state *s);

/* Release @c's upstream: to its endpoint's pool if @reuse, else closed. */
void up_release(struct conn *c, bool reuse);

/* Join @pod to its proxy's pods (broker replies find their pool there),
 * with empty socket pools.
 */
void px_pod_link(struct px_pod *pod);
/* Leave the list and close the spare sockets. */
void px_pod_unlink(struct px_pod *pod);
/* Close the spare upstream sockets made in @pod's netns. */
void sock_pools_flush(struct px_pod *pod);
/* Take upstream sockets from the broker at the other end of @chan (a
 * worker's end, broker_chan_fd()) instead of making them. 0 or -errno.
 */
int proxy_set_broker(struct proxy *px, int chan);

/* Close the pooled connections made in @pod's netns (the pod is going away),
 * or those of endpoints that left the catalogue (@pod NULL), or all (@all).
 */
void pool_flush(struct proxy *px, const struct px_pod *pod, bool all);
/* The same, for the endpoints of service port @s only; @s stays (the caller
 * holds a reference).
 */
void pool_flush_svc(struct proxy *px, struct svc_state *s, const struct px_pod *pod, bool all);

/* Have the broker put @cfd and @ufd on the kernel fast path with @slot and
 * wait for its answer (filing the socket replies met on the way). 0, the
 * broker's -errno, or -EAGAIN when no answer came in BROKER_WAIT_MS (the
 * switch may still happen).
 */
int up_broker_fastpath(struct proxy *px, int cfd, int ufd, uint32_t slot);

/* ---- attempt.c */

/* Pick an endpoint and get an upstream for @c: a pooled idle one (HTTP) or a
 * new connect, within the circuit-breaker limits. Every outcome is handled
 * here (a local failure answers the client); @c may be closed on return, so
 * the caller must not touch it afterwards.
 */
void attempt_start(struct conn *c);

/* @c->up, connecting, reported @events: on success hand it to the relay
 * (@c->ops->ready), else fail the attempt. @c may be closed on return.
 */
void attempt_connected(struct conn *c, uint32_t events);

/* The attempt on @c->up failed for @kind: record it, release the upstream,
 * and retry (after a jittered backoff) if the policy, the request and the
 * budget allow; else fail the client. @c may be closed on return.
 */
void attempt_failed(struct conn *c, enum fail_kind kind);

/* Fail @c locally for @why (counted per service): reset an L4 client, answer
 * 503 with a header saying why to an HTTP one. @c may be closed on return.
 */
void attempt_local_fail(struct conn *c, enum local_fail why);

/* Whether a retry is allowed for @kind now; takes a budget token if so. */
bool attempt_may_retry(struct conn *c, enum fail_kind kind);
/* Schedule the next attempt of @c after a backoff. */
void attempt_retry(struct conn *c);

/* Record the outcome of an attempt on @e for outlier detection. */
void ep_outcome(struct proxy *px, struct ep_state *e, bool ok);

/* ---- listener.c */

/* Create @pod's listeners (127.0.0.1:port, [::1]:port) inside its netns on
 * @pod->px and serve them; the IPv6 one is optional (a pod netns without
 * ::1 gets only the IPv4 listener). Sets *@cookie to the netns cookie when
 * not NULL. 0 or -errno, with nothing left open.
 */
int px_pod_listen(struct px_pod *pod, uint64_t *cookie);
/* Stop listening for @pod and close its connections, pooled ones included. */
void px_pod_close(struct px_pod *pod);
/* Stop accepting on @pod's listeners (outbound and inbound) and close this
 * proxy's fds of them; its connections go on. The sockets themselves live on
 * if a successor holds them (a hand-over).
 */
void px_pod_stop_accepting(struct px_pod *pod);
/* Stop accepting (px_pod_stop_accepting()) and drain @pod: HTTP client
 * connections idle between requests close now, the others after their
 * current response; opaque connections run until they end.
 */
void px_pod_drain(struct px_pod *pod);

/* A listening socket of @pod on @a (SO_REUSEPORT across workers, IPv6
 * ones IPV6_V6ONLY), made inside the pod's netns and served by @fn with
 * @pod as its context. The fd or -errno.
 */
int px_listener(struct px_pod *pod, const struct addr *a, loop_fd_fn fn);

/* The original destination of accepted socket @fd of @family, as
 * SO_ORIGINAL_DST answers it (mesh_getsockopt in eBPF mode, conntrack after
 * a REDIRECT). 0 or -errno.
 */
int px_orig_dst(int fd, int family, struct addr *out);

/* ---- pass.c: established connections to and from another agent */

struct pass_batch;

/* A batch that hands connections to @send (proxy/pass.h) PASS_BATCH at a
 * time. NULL with errno set.
 */
struct pass_batch *pass_batch_new(pass_send_fn send, void *ctx);
/* Under isolation: add every connection of @pod that can be passed (an
 * opaque relay, outbound, established, plaintext: docs/lifecycle.md) to
 * @b, sending full batches. 0, or the first -errno of a send: the
 * connections not sent stay and drain, and @b passes nothing more.
 */
int px_pod_pass(struct px_pod *pod, struct pass_batch *b);
/* Under isolation: send what @b holds, free it, and return how many
 * connections went in all (0 or more), or the first -errno of a send.
 */
long pass_batch_finish(struct pass_batch *b);
/* Under isolation: relay the connection of record @r on @pod from now on,
 * writing its bytes in flight first. Takes the pass_rec_fds(@r)
 * descriptors in @fds in every case (on failure both sockets are reset).
 * 0 or -errno.
 */
int px_pod_adopt(struct px_pod *pod, const struct px_pass_rec *r, int *fds);

/* ---- inbound.c */

/* Create @pod's inbound listeners (0.0.0.0 and [::] on the proxy's
 * inbound_port; the IPv6 one optional) on @pod->px and serve them. 0 or
 * -errno with nothing left open. px_pod_close() closes them.
 */
int px_pod_listen_inbound(struct px_pod *pod);

/* ---- tls_relay.c: mutual TLS between meshed pods (docs/mtls.md)
 *
 * An mTLS connection is a struct tls_link holding the SSL of a TCP socket
 * that a relay (tcp.c, http.c) reads and writes through sock_recv(),
 * sock_send() and sock_shut() below, which go through the SSL: the client
 * side's is the upstream socket of a connection to a meshed endpoint
 * (c->up->tls), the server side's the accepted socket of an inbound
 * connection (c->tls). The socket is the relay's; the link owns it only on
 * the server side until the handshake, preamble and authorization are done.
 */

/* Deliver server-side mTLS connection @fd (TLS on it, @tls) of @pod,
 * authenticated and authorized, to the application at @dst from @peer, as
 * an inbound connection, which takes @fd and @tls. inbound.c's, passed down
 * as a pointer.
 */
typedef void (*tls_deliver_fn)(struct proxy *px, struct px_pod *pod, int fd,
			       struct tls_link *tls, const struct addr *dst,
			       const struct addr *peer);

/* Whether @pod has a certificate to dial with (counted and logged when not):
 * asked before the upstream socket exists, so that a pod still waiting for
 * its first certificate sends no SYN the server side would only see closed
 * mid-handshake and count as a failed one.
 */
bool tls_pod_has_svid(struct px_pod *pod);

/* Client side: TCP socket @tcp_fd of @pod, connecting to a meshed pod's mTLS
 * port @ep, becomes an mTLS connection presenting @pod's SVID, expecting the
 * server to be @expect and carrying @dst_port: *@link, for the upstream,
 * which keeps @tcp_fd. It offers the TLS session last made with @ep and
 * @expect, if any (resume.c). The handshake runs once the connect is done,
 * from tls_service() and the relay's calls. 0 or -errno (@tcp_fd closed,
 * counted).
 */
int tls_dial(struct px_pod *pod, int tcp_fd, const struct addr *ep, const struct spiffe_id *expect,
	     uint16_t dst_port, struct tls_link **link);

/* Server side: accepted socket @cfd of @pod came to its mTLS port at @dst
 * from @peer. Handshake, preamble and authorization run on the loop; then
 * @deliver gets the socket. Takes @cfd in every case.
 */
void tls_accept(struct px_pod *pod, int cfd, const struct addr *dst, const struct addr *peer,
		tls_deliver_fn deliver);

/* Close @pod's mTLS connections still in their handshake (the pod is going away). */
void tls_links_close(struct px_pod *pod);

/* Move @l's handshake on (client side), after an event on its socket. */
void tls_service(struct tls_link *l);
/* What to watch @l's socket for when the relay wants @ev there, with @fn
 * and @ctx: @ev and what TLS waits for. Plaintext already inside the SSL
 * gets @fn called from a timer, since epoll cannot tell of it.
 */
uint32_t tls_watch_ev(struct tls_link *l, uint32_t ev, loop_fd_fn fn, void *ctx);
/* recv(), send() and shutdown(SHUT_WR) through @l: -1 and errno (EAGAIN;
 * ECONNRESET for a failed handshake, a truncation or an alert) or, for
 * tls_shut(), -errno. tls_shut() sends close_notify then FIN.
 */
ssize_t tls_recv(struct tls_link *l, void *buf, size_t len);
ssize_t tls_send(struct tls_link *l, const void *buf, size_t len);
int tls_shut(struct tls_link *l);
/* The TCP connect of client link @l failed: count it. */
void tls_connect_failed(struct tls_link *l);
/* @l's socket is about to be reset: no close_notify when it is freed. A
 * client link that read nothing yet counts a server's refusal (an alert)
 * still queued on it.
 */
void tls_abandon(struct tls_link *l);
/* Free @l (NULL: nothing), with a close_notify unless it is shut, failed
 * or abandoned; the caller closes the socket.
 */
void tls_free(struct tls_link *l);

/* The peer identity of @l ("" before the handshake) and whether @l is
 * the server side.
 */
const char *tls_link_peer(const struct tls_link *l, char *buf, size_t len);
bool tls_link_server(const struct tls_link *l);
/* Whether open link @l's handshake resumed a session (a ticket). */
bool tls_link_resumed(const struct tls_link *l);

/* A relay's socket I/O: plain, or through TLS when @tls is set. */
static inline ssize_t sock_recv(int fd, struct tls_link *tls, void *buf, size_t len)
{
	return tls ? tls_recv(tls, buf, len) : recv(fd, buf, len, MSG_DONTWAIT);
}

static inline ssize_t sock_send(int fd, struct tls_link *tls, const void *buf, size_t len)
{
	return tls ? tls_send(tls, buf, len) : send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* 0 or -errno. */
static inline int sock_shut(int fd, struct tls_link *tls)
{
	if (tls)
		return tls_shut(tls);
	return shutdown(fd, SHUT_WR) == -1 && errno != ENOTCONN ? -errno : 0;
}

/* ---- observe.c */

/* Watch inbound connection @c: both directions are copied (never spliced)
 * until the client's first bytes are classified; HTTP/1.x stays copied and
 * observed, anything else is spliced from then on.
 */
void observe_start(struct conn *c);
/* @n bytes (@n == 0: EOF) just read into @h (c->c2u or c->u2c) for the
 * other side. May turn copying off (h->copy); never closes @c.
 */
void observe_bytes(struct conn *c, const struct half *h, const char *buf, size_t n);
/* Stop watching @c and free what it held. */
void observe_done(struct conn *c);

/* ---- inspect.c */

/* Call @fn for each live connection of @pod, newest first; a non-zero return
 * stops the walk and is returned, else 0.
 */
int px_pod_conns(const struct px_pod *pod, proxy_conn_fn fn, void *ctx);

#endif /* WEFT_CONN_H */
