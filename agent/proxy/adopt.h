/* SPDX-License-Identifier: GPL-2.0-only */
/* Listening sockets a predecessor agent handed over (agent/handover.c). While
 * a hand-over is under way the pool holds them; each in-pod listener the
 * proxy opens (px_listener()) first takes a pooled socket of the same pod
 * netns, family and port instead of binding a new one, so the accept queue,
 * and the connections waiting in it, carry over. Used by the main thread
 * only (or under workers_isolate()).
 */
#ifndef WEFT_PROXY_ADOPT_H
#define WEFT_PROXY_ADOPT_H

#include <stddef.h>
#include <stdint.h>

#include "netns.h"

/* One handed-over listening socket and what identifies it. */
struct px_adopted {
	int fd;			/* owned by the pool once offered */
	struct netns_id ns;	/* the pod netns it was made in */
	int family;		/* AF_INET, AF_INET6 */
	uint16_t port;		/* its local port (outbound or inbound listener) */
};

/* Add @a to the pool, which owns its fd from now on (closed on failure).
 * 0 or -ENOMEM.
 */
int px_adopt_offer(const struct px_adopted *a);

/* Take a pooled socket made in the netns @netns_fd refers to, of @family
 * and @port: its fd (the caller owns it), or -1 when the pool has none.
 */
int px_adopt_take(int netns_fd, int family, uint16_t port);

/* Close every pooled socket no listener took (a pod the successor does not
 * serve, or more sockets in a pod than it has workers). Before closing, the
 * socket's netns gets net.ipv4.tcp_migrate_req = 1, so the connections in its
 * accept queue move to the sockets of its SO_REUSEPORT group that stay
 * instead of being reset. Returns how many it closed.
 */
size_t px_adopt_close_rest(void);

/* How many sockets the pool holds. */
size_t px_adopt_pending(void);

#endif /* WEFT_PROXY_ADOPT_H */
