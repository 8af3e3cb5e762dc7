/* SPDX-License-Identifier: GPL-2.0-only */
/* The socket broker: the privileged part of the proxy (README "Security
 * model"). Worker threads drop every capability and run under a seccomp
 * filter (proxy/sandbox.h), so they cannot enter a pod's netns, make a
 * socket, set SO_MARK or IP_TRANSPARENT. The broker is one thread that keeps
 * the agent's capabilities and does exactly that: it makes upstream sockets
 * inside a pod's netns, marked and (inbound) transparent, and hands them to a
 * worker over that worker's channel (an AF_UNIX SOCK_SEQPACKET pair,
 * SCM_RIGHTS), as OpenSSH's monitor hands descriptors to its unprivileged
 * child.
 *
 * A worker names a pod by a key the broker was told at capture open
 * (broker_pod_add()); it never passes a netns fd, so it cannot make the
 * broker enter anything else. The protocol is one fixed-size message each
 * way: a request (key, kind, how many) and a reply (key, kind, how many fds
 * came with it, or -errno).
 *
 * Without a broker (the sandbox off, in-process tests) the proxy calls
 * broker_make() itself: the same code, in the worker's thread.
 */
#ifndef WEFT_PROXY_BROKER_H
#define WEFT_PROXY_BROKER_H

#include <stdbool.h>
#include <stdint.h>

/* What a socket is for; a pool per pod, worker and kind. */
enum sock_kind {
	SK_OUT4,	/* outbound upstream, IPv4: the agent's mark */
	SK_OUT6,
	SK_IN4,		/* inbound, to the application: the inbound mark, IP_TRANSPARENT */
	SK_IN6,		/* IPV6_TRANSPARENT */
	SK_KINDS,
};

/* Sockets handed over per request, at most. */
#define BROKER_BATCH 8
/* How long a worker waits for a synchronous reply before failing the connect. */
#define BROKER_WAIT_MS 2000

struct px_fastpath;

struct broker_opts {
	int home_netns_fd;	/* the agent's own netns, to come back to (borrowed) */
	/* Puts a worker's relayed connection on the kernel fast path for it
	 * (broker_fastpath()); NULL: such requests are refused.
	 */
	const struct px_fastpath *fastpath;
	uint32_t mark;		/* SO_MARK of outbound upstream sockets */
	uint32_t inbound_mark;	/* SO_MARK of inbound sockets */
};

/* The privileged step itself: up to @n non-blocking, close-on-exec TCP
 * sockets of @kind made in the netns @ns_fd, each with its mark and, for the
 * inbound kinds, IP_TRANSPARENT / IPV6_TRANSPARENT set (a later bind() of the
 * client's address needs no capability: the kernel checks at setsockopt()
 * time). Fills @fds[0..ret) and returns how many (at least 1) or -errno with
 * nothing left open. Needs CAP_SYS_ADMIN (setns) and CAP_NET_ADMIN.
 */
int broker_make(const struct broker_opts *o, int ns_fd, enum sock_kind kind, int *fds, int n);

/* The family of @kind's sockets. */
int sock_kind_family(enum sock_kind kind);

struct broker;

/* Start the broker thread ("weft-broker") with @n_chan channels, one per
 * worker. NULL with errno set.
 */
struct broker *broker_new(const struct broker_opts *o, unsigned int n_chan);
/* Stop and join the thread, close every channel and pod. Accepts NULL. */
void broker_free(struct broker *br);

/* Worker @i's end of its channel (blocking, with a BROKER_WAIT_MS receive
 * timeout); owned by the broker.
 */
int broker_chan_fd(const struct broker *br, unsigned int i);

/* Let workers ask for sockets of the pod @key, made in @netns_fd (dup'ed).
 * 0 or -errno. Called by the main thread when a capture opens.
 */
int broker_pod_add(struct broker *br, uint64_t key, int netns_fd);
/* Forget @key and close its netns fd: later requests get -ENOENT. */
void broker_pod_del(struct broker *br, uint64_t key);

/* ---- a worker's side of its channel */

/* Ask for @n sockets of @kind for @key. @wait: block until the request is
 * queued, else -EAGAIN when the channel is full. 0 or -errno.
 */
int broker_ask(int chan, uint64_t key, enum sock_kind kind, unsigned int n, bool wait);

/* Ask the broker to put sockets @cfd and @ufd (passed, borrowed) on the
 * kernel fast path with counter slot @slot; its reply comes with
 * fastpath set and key == @slot. Blocks until the request is queued.
 * 0 or -errno.
 */
int broker_ask_fastpath(int chan, int cfd, int ufd, uint32_t slot);

/* Ask the broker to drop the fast path entry of the socket of cookie
 * @cookie; no reply. Never blocks: -EAGAIN when the channel is full (the
 * entry stays, and takes room until the agent stops). 0 or -errno.
 */
int broker_forget_fastpath(int chan, uint64_t cookie);

/* A reply: @n fds of @kind for @key, or the broker's @err (-errno, n 0);
 * or, with @fastpath, the outcome of broker_ask_fastpath() for slot @key.
 */
struct broker_reply {
	uint64_t key;
	bool fastpath;
	enum sock_kind kind;
	int err;
	int n;
	int fds[BROKER_BATCH];	/* close-on-exec; the caller owns them */
};

/* Read one reply into @rep. 0, or -EAGAIN when nothing is queued (!@wait)
 * or nothing came in BROKER_WAIT_MS (@wait), -EPIPE when the broker is
 * gone, another -errno of recvmsg().
 */
int broker_recv(int chan, bool wait, struct broker_reply *rep);

#endif /* WEFT_PROXY_BROKER_H */
