/* SPDX-License-Identifier: GPL-2.0-only */
/* The agent's bounded stream-socket server core, on the loop: a listener (a
 * unix socket with a file mode, removed on free, or TCP), at most a fixed
 * number of clients, one bounded input buffer and one deadline per client,
 * one queued reply at a time. A protocol (the admin HTTP server, the CNI
 * socket) supplies only parsing and replies, through struct srv_ops.
 */
#ifndef WEFT_SRV_H
#define WEFT_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "loop.h"

struct addr;
struct srv;

/* One client. A protocol's client struct starts with it (see
 * srv_ops.client_size), so callbacks get back their own type by a cast.
 */
struct srv_client {
	void *ctx;		/* the server's ctx, for the protocol */
	int fd;
	bool close_after;	/* set by the protocol: close once the reply is out */
	char *in;		/* in_max + 1 bytes; in[in_len] is always '\0' */
	size_t in_len;		/* bytes received */
	size_t used;		/* bytes of @in the protocol has consumed */
	/* The core's own; the protocol does not touch these. */
	struct srv *srv;
	size_t slot;
	bool want_out;		/* registered for EPOLLOUT rather than EPOLLIN */
	bool deferred;		/* srv_defer(): the reply comes from elsewhere */
	char *out;		/* the reply being written; NULL = none */
	size_t out_len, out_off;
	struct loop_timer deadline;
};

struct srv_ops {
	const char *name;		/* for debug logs: "admin", "cni" */
	size_t client_size;		/* the protocol's client, from sizeof() */
	size_t in_max;			/* bytes of input a client may have buffered */
	unsigned int max_clients;
	int backlog;
	unsigned int timeout_ms;	/* default deadline, see srv_set_timeout() */
	/* A client arrived, or its previous request was answered and it stays:
	 * reset the per-request state. Optional.
	 */
	void (*start)(struct srv_client *c);
	/* Bytes in[used..in_len) are new or not yet consumed. Consume what is
	 * parsed (advance @used), queue at most one reply with srv_reply(), and
	 * return 0, or -errno to drop the client. A client whose buffer is full
	 * with no reply queued is dropped. Once a reply is out and the client
	 * stays, the consumed bytes leave @in, start() runs, the deadline
	 * restarts and input() is called again for what is left.
	 */
	int (*input)(struct srv_client *c);
	/* The client goes: free what the protocol allocated for it. Optional. */
	void (*done)(struct srv_client *c);
	/* Every slot is taken: tell @fd so, best effort, before it is closed.
	 * Optional; without it the client only sees the close.
	 */
	void (*refuse)(int fd);
};

/* Listen on @path (an existing socket file is replaced, anything else is
 * refused; the file never exists with a wider mode than @mode). Borrows
 * @loop, @ops and @ctx, which must outlive the server. NULL with errno set.
 */
struct srv *srv_new_unix(struct loop *loop, const char *path, mode_t mode,
			 const struct srv_ops *ops, void *ctx);

/* The same on TCP at @a, with SO_REUSEADDR (port 0: the kernel picks one;
 * see srv_local_addr()). NULL with errno set.
 */
struct srv *srv_new_tcp(struct loop *loop, const struct addr *a, const struct srv_ops *ops,
			void *ctx);

/* The address the server listens on, with its real port. 0 or -errno. */
int srv_local_addr(const struct srv *s, struct addr *out);

/* Deadline for clients accepted, or requests started, from now on: a client
 * must have its request answered within @timeout_ms of connecting or of its
 * previous reply.
 */
void srv_set_timeout(struct srv *s, unsigned int timeout_ms);

/* Queue the reply @buf of @len bytes for @c; takes ownership of @buf
 * (malloc'd). Only from ops->input, and only one per request.
 */
void srv_reply(struct srv_client *c, char *buf, size_t len);

/* From ops->input, instead of srv_reply(): the answer to this request
 * comes later, from another event, through srv_reply_deferred(). The
 * client's deadline becomes @timeout_ms from now (the protocol answers
 * before it, or the client is dropped); input it sends meanwhile is read and
 * discarded, only its close matters. If the client goes first, ops->done
 * runs as usual: the protocol must forget @c there.
 */
void srv_defer(struct srv_client *c, unsigned int timeout_ms);

/* Queue the reply @buf of @len bytes (malloc'd; taken) for @c, deferred by
 * srv_defer(), and send it; outside ops->input, on the loop's thread. @c
 * may be gone when this returns (closed after its reply, or on error).
 */
void srv_reply_deferred(struct srv_client *c, char *buf, size_t len);

/* Drop every client, close the listener and remove a unix socket file.
 * Accepts NULL.
 */
void srv_free(struct srv *s);

#endif /* WEFT_SRV_H */
