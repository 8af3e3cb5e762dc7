/* SPDX-License-Identifier: GPL-2.0-only */
/* The opaque-TCP fast path (--opaque-fastpath sockmap, docs/datapath.md): the
 * mesh_fastpath skeleton's stream verdict attached to its SOCKHASH, and the
 * verbs that put the two sockets of a relayed connection on it. Independent
 * of the capture mode: nothing attaches to a cgroup. The byte counters are
 * mapped once and read without a system call.
 */
#ifndef WEFT_DP_FASTPATH_H
#define WEFT_DP_FASTPATH_H

#include <stdint.h>

struct dp_fastpath;

/* Load the program and its maps (not pinned: they live with the process)
 * and attach the verdict to the socket map. 0 and *@out, or -errno (logged
 * once, naming the step). Needs CAP_BPF and CAP_NET_ADMIN.
 */
int dp_fastpath_open(struct dp_fastpath **out);

/* Detach and free everything; sockets still in the map leave it. Accepts NULL. */
void dp_fastpath_close(struct dp_fastpath *fp);

/* Slots, and the counters: bytes[2 * slot + dir] (dir 0 client to upstream,
 * 1 upstream to client), mapped read-only, valid until dp_fastpath_close().
 */
uint32_t dp_fastpath_slots(const struct dp_fastpath *fp);
const volatile uint64_t *dp_fastpath_bytes(const struct dp_fastpath *fp);

/* Redirect in the kernel from now on: bytes arriving on @cfd go out of @ufd
 * and the other way round, counted in @slot (whose counters are reset
 * first). Both must be established TCP sockets. Bytes already queued on
 * either socket go the same way once that socket is read or receives more.
 * 0, or -errno with neither socket on the path.
 */
int dp_fastpath_add(struct dp_fastpath *fp, int cfd, int ufd, uint32_t slot);

/* Take @cfd and @ufd off the path (either may be -1). Bytes the kernel queued
 * on a socket's path and not yet sent are lost: only for sockets about to be
 * closed or reset. 0 or -errno.
 */
int dp_fastpath_del(struct dp_fastpath *fp, int cfd, int ufd);

#endif /* WEFT_DP_FASTPATH_H */
