/* SPDX-License-Identifier: GPL-2.0-only */
/* What the nft mode's files share: the netlink socket and GET request
 * (nft_nl.c) and the read-back and comparison (nft_read.c), used by the
 * table's writer (nft.c). Not for use outside agent/datapath/nft*.c.
 */
#ifndef WEFT_NFT_INTERNAL_H
#define WEFT_NFT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <libmnl/libmnl.h>

#include "nft.h"

#define NFT_RECV_BUF (64 * 1024)
#define NFT_ACK_TIMEOUT_S 5	/* a kernel that never answers must not hang the loop */

/* Open a NETLINK_NETFILTER socket inside @netns_fd (or, with -1, inside a
 * new netns that lives as long as the socket), bound, with a receive timeout
 * of NFT_ACK_TIMEOUT_S, leaving the calling thread in the netns it was in: a
 * netlink socket keeps its netns for life, so the thread is in the pod only
 * for the socket() call (and aborts if it cannot come back). 0 or -errno.
 */
int nft_nl_open(int netns_fd, struct mnl_socket **out);

/* Send one request of @type (family inet) with @flags (NLM_F_DUMP, or
 * NLM_F_ACK for a single object), its payload written by @payload(@obj)
 * when not NULL, and feed every answer to @cb(@data) until the dump ends or
 * the ACK comes. 0 or -errno (the kernel's, e.g. -ENOENT).
 */
int nft_nl_get(struct mnl_socket *nl, uint16_t type, uint16_t flags,
	       void (*payload)(struct nlmsghdr *, void *), void *obj, mnl_cb_t cb, void *data);

/* nft_pod_read() on a socket already in the netns. */
int nft_read_on(struct mnl_socket *nl, struct nft_pod_state *out);


#endif /* WEFT_NFT_INTERNAL_H */
