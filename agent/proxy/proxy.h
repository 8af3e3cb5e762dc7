/* SPDX-License-Identifier: GPL-2.0-only */
/* The proxy core: in-pod listeners, original destination recovery,
 * destination → service → endpoint (balanced, with outlier ejection), the
 * upstream connection made inside the pod's netns with the agent's mark,
 * retries, circuit breaking, and the relay: opaque bytes, or HTTP/1.x request
 * by request when the client speaks it. See docs/resilience.md.
 */
#ifndef WEFT_PROXY_H
#define WEFT_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct catalogue;
struct proxy;
struct policy;
struct svc_state;

/* The opaque relay's kernel fast path (--opaque-fastpath sockmap), given by
 * the wiring (datapath/fastpath.h behind it): the proxy never names the
 * datapath.
 */
struct px_fastpath {
	/* Move @cfd's and @ufd's bytes in the kernel from now on, counted in
	 * @slot. Needs bpf(): called by the broker when workers are
	 * sandboxed. 0 or -errno with neither socket changed.
	 */
	int (*add)(void *ctx, int cfd, int ufd, uint32_t slot);
	/* A predecessor's connection, on the path in pinned maps: count it in
	 * @slot from now on; its noted offsets into @wr_off. Main thread only
	 * (a hand-over). 0 or -errno.
	 */
	int (*adopt)(void *ctx, int cfd, int ufd, uint32_t slot, uint64_t wr_off[2]);
	/* Before passing a connection on the path: leave its @wr_off in the
	 * maps for the successor (adopt returns them). Main thread only.
	 */
	int (*note)(void *ctx, int cfd, int ufd, const uint64_t wr_off[2]);
	/* The connection of the socket of cookie @cookie closed: drop its
	 * entry. Needs bpf(), like add. 0 or -errno.
	 */
	int (*forget)(void *ctx, uint64_t cookie);
	void *ctx;
	bool pinned;			/* connections on the path can be handed over */
	const volatile uint64_t *bytes;	/* [2 * slot + dir]: bytes the kernel moved */
	uint32_t slots;			/* slot < slots */
};

struct proxy_opts {
	uint16_t port;			/* in-pod listener port */
	uint32_t mark;			/* SO_MARK of upstream sockets */
	/* In-pod inbound listener port (15006), on every address of the pod;
	 * 0: no inbound side. See docs/inbound.md.
	 */
	uint16_t inbound_port;
	uint32_t inbound_mark;		/* SO_MARK of inbound sockets to the application */
	uint32_t max_conns;
	/* Outbound client connections one pod may hold at once (per worker, as
	 * max_conns); 0: a fair share of max_conns among the pods this worker
	 * serves, at least PX_POD_CONNS_FLOOR. See docs/resilience.md.
	 */
	uint32_t pod_max_conns;
	int home_netns_fd;		/* the agent's own netns, to come back to */
	bool reuseport;			/* listeners share the port with other workers' */
	/* Workers drop their privileges and take sockets from the broker
	 * (proxy/sandbox.h, proxy/broker.h); always threaded then.
	 */
	bool sandbox;
	/* Services' policy defaults (--lb, --retries...); NULL: the built-in ones. */
	const struct policy *defaults;
	/* NULL: opaque bytes are spliced. workers_new() gives each worker its
	 * own range of slots, [fp_first, fp_first + fp_count).
	 */
	const struct px_fastpath *fastpath;
	uint32_t fp_first, fp_count;
};

/* The least a pod's automatic connection limit falls to, however many pods
 * share --max-conns.
 */
#define PX_POD_CONNS_FLOOR 16

/* Status classes 1xx..5xx: index 0..4. */
#define PROXY_STATUS_CLASSES 5
/* Why a peer's certificate was refused in an mTLS handshake
 * (proxy_stats.mtls_fail_cert): expired, not yet valid, not from the trust
 * bundle (wrongly signed, unknown CA), anything else the verification
 * refused.
 */
enum mtls_cert_fail { MTLS_CERT_EXPIRED, MTLS_CERT_NOT_YET_VALID, MTLS_CERT_UNTRUSTED,
		      MTLS_CERT_OTHER, MTLS_CERT_FAILS };

struct proxy_stats {
	uint64_t active;
	uint64_t total;			/* accepted */
	uint64_t to_service;		/* resolved to a service endpoint */
	uint64_t passthrough;		/* destination is not a service */
	uint64_t no_endpoint;		/* no ready endpoint: reset or 503 */
	uint64_t orig_dst_errors;	/* no original destination: reset */
	uint64_t connect_errors;	/* upstream connects refused/unreachable */
	uint64_t connect_timeouts;
	uint64_t resets;		/* client connections ended with a reset */
	uint64_t over_limit;		/* --max-conns reached: reset */
	uint64_t over_pod_limit;	/* the pod's own limit reached: reset */
	uint64_t local_errors;		/* the agent's own resources ran out (EMFILE...) */
	uint64_t header_timeouts;	/* an HTTP request head not read in time: closed */
	uint64_t detected_http;		/* protocol detection: HTTP/1.x */
	uint64_t detected_tcp;		/* other bytes, or declared tcp */
	uint64_t detect_timeouts;	/* the client said nothing in the window: tcp */
	uint64_t idle_timeouts;
	uint64_t requests;		/* HTTP requests from clients */
	uint64_t responses[PROXY_STATUS_CLASSES];	/* to clients, by class */
	uint64_t local_replies;		/* responses the proxy made itself */
	uint64_t request_timeouts;
	uint64_t invalid_requests;	/* refused with 400: ambiguous or malformed framing */
	uint64_t invalid_responses;	/* refused with 502 (or a reset): the same from upstream */
	uint64_t retries;
	uint64_t retry_budget_exhausted;
	uint64_t overflow_connections;	/* circuit breaker: max-connections */
	uint64_t overflow_pending;	/* max-pending */
	uint64_t overflow_requests;	/* max-requests */
	uint64_t preempted;		/* max-connections: a pod over its share lost one */
	uint64_t ejections;
	uint64_t panic;			/* picks made with every ready endpoint ejected */
	uint64_t upstream_active;	/* upstream connections open, pooled included */
	uint64_t upstream_reused;	/* requests sent on a pooled connection */
	uint64_t inbound_accepted;	/* inbound connections accepted (in total too) */
	uint64_t inbound_orig_dst_errors;	/* inbound: no destination: reset */
	uint64_t inbound_loops;		/* inbound to a listener port itself: reset */
	uint64_t inbound_transparent_fallbacks;	/* the application saw the pod's
						 * address, not the client's */
	uint64_t broker_waits;		/* connects that waited for the socket broker */
	uint64_t fastpath;		/* opaque connections put on the kernel path */
	uint64_t fastpath_errors;	/* the kernel path refused them */
	uint64_t fastpath_full;		/* no counter slot left */
	uint64_t fastpath_races;	/* reset: bytes arrived while the sockets went in */
	uint64_t fastpath_fin_late;	/* a half-close gave up waiting for the kernel's bytes */
	uint64_t conns_passed_out;	/* established connections passed to a successor */
	uint64_t conns_passed_in;	/* established connections a predecessor passed */
	/* Mutual TLS (docs/mtls.md), tls_relay.c. */
	uint64_t mtls_out;		/* client handshakes completed, server identity right */
	uint64_t mtls_in;		/* server handshakes completed, client certificate good */
	uint64_t mtls_resumed_out;	/* client handshakes that resumed a session */
	uint64_t mtls_resumed_in;	/* server handshakes that resumed one (before allow-from) */
	uint64_t mtls_active;		/* mTLS connections open, both sides */
	uint64_t mtls_fail_connect;	/* client: the destination's mTLS port refused or timed out */
	uint64_t mtls_fail_handshake;	/* TLS failed: a certificate not from the bundle, expired... */
	/* of those, the peer's certificate refused, by reason */
	uint64_t mtls_fail_cert[MTLS_CERT_FAILS];
	uint64_t mtls_fail_identity;	/* client: the server presented another identity */
	uint64_t mtls_no_svid;		/* no certificate for the pod (yet): refused */
	uint64_t mtls_bad_preamble;	/* server: no valid preamble after the handshake */
	uint64_t mtls_denied;		/* server: the caller's identity is not allowed (allow-from) */
	uint64_t mtls_plaintext_refused;	/* strict: a plaintext inbound connection reset */
};

/* NULL with errno set. Borrows @loop; copies opts->defaults. */
struct proxy *proxy_new(struct loop *loop, const struct proxy_opts *opts);
/* Close every pooled connection and spare socket; the pods' listeners and
 * client connections belong to their captures (workers_capture_close()),
 * closed first. Accepts NULL.
 */
void proxy_free(struct proxy *px);

/* Publish a new catalogue for new connections; takes a reference on @c.
 * Each Service's policy override applies to the defaults here, once per
 * snapshot; per-endpoint state carries over by address.
 */
void proxy_set_catalogue(struct proxy *px, struct catalogue *c);

struct mtls_table;
/* Use mTLS table @t (proxy/mtls.h) for new connections from now on; takes a
 * reference (NULL: mTLS off). Connections keep what they started with.
 */
void proxy_set_mtls(struct proxy *px, struct mtls_table *t);

/* @px's counters, which its worker keeps changing: read each field with
 * ctr_read() or counter_get() (proxy/counters.h) from another thread.
 */
const struct proxy_stats *proxy_stats(const struct proxy *px);

/* Called per caller identity the proxy refused by weft.io/allow-from, with
 * the count; "other" sums callers beyond PROXY_DENIALS_MAX distinct ones.
 */
#define PROXY_DENIALS_MAX 32
typedef void (*proxy_denial_fn)(const char *id, uint64_t n, void *ctx);
void proxy_mtls_denials(const struct proxy *px, proxy_denial_fn fn, void *ctx);

/* The state of the i-th service port of the published catalogue (same order
 * as catalogue_svc_port_at()), or NULL: past the end, or no connection here
 * has used the port yet (states are created on first use). Read-only, for
 * the admin API. See proxy/state.h for its fields.
 */
const struct svc_state *proxy_service_at(const struct proxy *px, size_t i);
/* How many service ports the published catalogue has: proxy_service_at()
 * is NULL below this for a port no connection here has used yet.
 */
size_t proxy_n_service_ports(const struct proxy *px);
/* A detached zero-counter state of the i-th service port (state_blank()),
 * for showing a port this proxy holds no state for; NULL past the end or
 * on ENOMEM. Free with state_blank_free().
 */
struct svc_state *proxy_service_blank(const struct proxy *px, size_t i);

/* The proxy's clock (the loop's), for rendering ejection deadlines. */
uint64_t proxy_now_ms(const struct proxy *px);

/* ---- inspection, for the admin API (inspect.c); read-only, never blocks */

#include <stdbool.h>

#include "addr.h"
#include "spiffe.h"

struct ep_state;

/* One live client connection. Pointers borrow the proxy's state and are
 * valid until the loop runs again.
 */
struct proxy_conn_info {
	struct addr client;		/* the application's socket, as the pod sees it: the
					 * rewrite to 127.0.0.1 makes it a loopback address */
	struct addr dst;		/* what it connected to: the VIP:port, or the target */
	const struct svc_state *svc;	/* NULL: not a service, passed through */
	struct addr upstream;		/* the endpoint or target in use; family 0: none now */
	struct addr source;		/* the upstream socket's address: the pod's IP, what
					 * the endpoint sees; family 0: no upstream now */
	uint64_t age_ms;
	uint64_t bytes_out;		/* client → upstream, delivered */
	uint64_t bytes_in;		/* upstream → client, delivered */
	const char *protocol;		/* "detecting", "tcp", "http" */
	const char *state;		/* "detecting", "connecting", "established",
					 * "retry-wait", "idle" (HTTP between requests),
					 * "half-closed" */
	uint32_t attempts;		/* of the current connection or request */
	uint32_t requests;		/* HTTP requests completed on it */
	/* mTLS (docs/mtls.md): "client" (to a meshed endpoint), "server" (from
	 * another meshed pod), NULL: plaintext; and the peer's SPIFFE ID.
	 */
	const char *mtls;
	char mtls_peer[SPIFFE_ID_MAX];
	bool mtls_resumed;		/* its handshake resumed a session */
	bool handed_over;		/* relayed by the previous agent before a hand-over */
};

/* Called per connection by workers_capture_conns(); must not close connections. */
typedef int (*proxy_conn_fn)(const struct proxy_conn_info *ci, void *ctx);

/* The state of the service port whose VIP:port is @dst (IPv4-mapped already
 * unmapped) in the published catalogue, or NULL when @dst is not a service.
 */
const struct svc_state *proxy_service_for(const struct proxy *px, const struct addr *dst);
/* proxy_service_for()'s zero-counter stand-in (state_blank()) for a service
 * port no connection here has used yet; NULL when @dst is not a service.
 */
struct svc_state *proxy_service_blank_for(const struct proxy *px, const struct addr *dst);

/* The endpoint the balancer would choose for the next connection or request
 * to @s if nothing else happened first: the real balancer_pick() run on
 * copies of the round-robin cursor and of the random state, so the answer
 * cannot drift from the proxy's behaviour. Sets *@panic as balancer_pick()
 * does. NULL when @s has no ready endpoint.
 */
const struct ep_state *proxy_preview_pick(const struct proxy *px, const struct svc_state *s,
					  bool *panic);

#endif /* WEFT_PROXY_H */
