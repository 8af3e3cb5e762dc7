/* SPDX-License-Identifier: GPL-2.0-only */
/* Established opaque connections passed from one agent to its successor at
 * a hand-over (docs/lifecycle.md): the record that travels with the two
 * sockets and the bytes still in flight, both ends' state and what the
 * successor needs to account for the connection. The hand-over protocol
 * (agent/handover.c) carries the records; proxy/pass.c takes connections
 * out of the workers and puts them back into another agent's.
 */
#ifndef WEFT_PROXY_PASS_H
#define WEFT_PROXY_PASS_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "model/objects.h"

/* Directions of a record's arrays. */
#define PASS_C2U 0		/* client → upstream */
#define PASS_U2C 1		/* upstream → client */

/* Descriptors one connection travels with: the client socket, the upstream
 * socket, then, for each direction with bytes in flight, its pipe (read
 * end, write end) holding them.
 */
#define PASS_FDS_MAX 6
/* Records per hand-over message: their descriptors stay under SCM_MAX_FD
 * (253) and the message's buffer small.
 */
#define PASS_BATCH 10
/* A pipe passed holds at most its capacity; more is a malformed record. */
#define PASS_PENDING_MAX (1u << 20)

/* One connection on the wire. Both agents are on one node and one ABI; the
 * hand-over's HELLO flag says the successor reads this layout, so a change
 * to it takes a new flag.
 */
struct px_pass_rec {
	uint64_t ns_dev, ns_ino;	/* the pod's netns (struct netns_id) */
	char svc_ns[OBJ_NS_MAX];	/* "": a passthrough */
	char svc_name[OBJ_NAME_MAX];
	uint8_t pad0[2];
	struct addr vip;		/* the service's VIP:port */
	struct addr upstream;		/* the endpoint, or the passthrough's target */
	uint64_t age_ms;		/* since the client was accepted */
	uint64_t idle_ms;		/* since the last byte either way */
	uint64_t bytes[2];		/* delivered, by direction */
	uint32_t pending[2];		/* bytes in that direction's pipe */
	uint8_t eof[2];			/* the source sent FIN */
	uint8_t shut[2];		/* the FIN went on to the destination */
	uint8_t flags;			/* PASS_F_*; was padding, so the layout is unchanged */
	uint8_t pad1[3];
};

/* The sockets are on the kernel fast path, in the pinned maps
 * (--opaque-fastpath sockmap): they stay there, and their bytes never pass
 * through the successor.
 */
#define PASS_F_FAST 0x1

/* The descriptors @r travels with (2, 4 or 6). */
static inline size_t pass_rec_fds(const struct px_pass_rec *r)
{
	return 2 + (r->pending[PASS_C2U] ? 2 : 0) + (r->pending[PASS_U2C] ? 2 : 0);
}

/* Called with a batch of @n records and their @n_fds descriptors, in
 * order (borrowed): 0 once they went to the successor (the proxy then lets
 * go of those connections), or -errno (they stay, and drain).
 */
typedef int (*pass_send_fn)(const struct px_pass_rec *recs, size_t n, const int *fds,
			    size_t n_fds, void *ctx);

#endif /* WEFT_PROXY_PASS_H */
