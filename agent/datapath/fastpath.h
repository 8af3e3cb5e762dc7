/* SPDX-License-Identifier: GPL-2.0-only */
/* The opaque-TCP fast path (--opaque-fastpath sockmap, docs/datapath.md): the
 * mesh_fastpath skeleton's stream verdict attached to its SOCKHASH, and the
 * verbs that put the two sockets of a relayed connection on it. Independent
 * of the capture mode: nothing attaches to a cgroup. The byte counters are
 * mapped once and read without a system call.
 */
#ifndef WEFT_DP_FASTPATH_H
#define WEFT_DP_FASTPATH_H

#include <stdbool.h>
#include <stdint.h>

struct dp_fastpath;

/* Load the program and attach the verdict to the socket map. With @pin_dir
 * (a folder on a bpffs, made if missing) the maps are pinned there, or
 * reused when a predecessor pinned them: its connections' sockets stay on
 * the path while a successor adopts them (dp_fastpath_adopt()). NULL, or a
 * folder that cannot hold pins (logged): the maps live with the process.
 * 0 and *@out, or -errno (logged once, naming the step). Needs CAP_BPF and
 * CAP_NET_ADMIN.
 */
int dp_fastpath_open(struct dp_fastpath **out, const char *pin_dir);

/* Whether the maps are pinned (connections on the path can be handed over). */
bool dp_fastpath_pinned(const struct dp_fastpath *fp);

/* Free everything. Unpinned maps go, and the sockets in them leave the
 * path; pinned ones stay, with the verdict attached, for a successor.
 * Accepts NULL.
 */
void dp_fastpath_close(struct dp_fastpath *fp);

/* Remove the pins under @pin_dir and the folder (--cleanup). Missing pins
 * are not errors. 0 or -errno.
 */
int dp_fastpath_cleanup(const char *pin_dir);

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

/* Drop the peer entry of the socket of cookie @cookie, whose connection
 * closed (the socket itself left the map as it closed). 0 or -errno.
 */
int dp_fastpath_forget(struct dp_fastpath *fp, uint64_t cookie);

/* Before a hand-over: note in the entries of @cfd and @ufd, for the
 * successor, each direction's @wr_off (bytes the destination's TCP took that
 * the relay's counts do not cover; [0] client to upstream). 0 or -errno.
 */
int dp_fastpath_note(struct dp_fastpath *fp, int cfd, int ufd, const uint64_t wr_off[2]);

/* A predecessor's connection of sockets @cfd and @ufd, on the path in the
 * pinned maps: count its bytes in @slot from now on (reset first), and
 * return the offsets its predecessor noted in @wr_off. 0, -ENOENT when the
 * sockets are not on this path, or -errno.
 */
int dp_fastpath_adopt(struct dp_fastpath *fp, int cfd, int ufd, uint32_t slot,
		      uint64_t wr_off[2]);

/* Take @cfd and @ufd off the path (either may be -1). Bytes the kernel queued
 * on a socket's path and not yet sent are lost: only for sockets about to be
 * closed or reset. 0 or -errno.
 */
int dp_fastpath_del(struct dp_fastpath *fp, int cfd, int ufd);

#endif /* WEFT_DP_FASTPATH_H */
