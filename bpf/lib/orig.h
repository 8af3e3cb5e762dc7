/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Original-destination bookkeeping: the mesh_orig_dst key both sides build
 * (sockops from the client socket, getsockopt from the proxy's accepted one),
 * and the record expressed in the family the asking socket wants. Pure, so
 * tests/unit runs it with the host cc.
 */
#ifndef WEFT_BPF_LIB_ORIG_H
#define WEFT_BPF_LIB_ORIG_H

#include "addr.h"

/* The uapi values; vmlinux.h carries no macros. */
#define MESH_SOL_IP 0
#define MESH_SOL_IPV6 41
#define MESH_SO_ORIGINAL_DST 80	/* SO_ORIGINAL_DST == IP6T_SO_ORIGINAL_DST */

static __always_inline bool mesh_is_orig_dst_query(int level, int optname)
{
	return optname == MESH_SO_ORIGINAL_DST && (level == MESH_SOL_IP || level == MESH_SOL_IPV6);
}

/* Fill @key for the client end @addr:@port (network-order address, host-order
 * port) of @family in netns @netns_cookie. An IPv4-mapped address becomes an
 * IPv4 key: the client may be a dual-stack AF_INET6 socket, but the proxy's
 * listener on 127.0.0.1 accepts an AF_INET socket whose peer is plain IPv4.
 * Every byte is written, padding included, since the map hashes all of them.
 */
static __always_inline void mesh_conn_key_set(struct mesh_conn_key *key, __u64 netns_cookie,
					      __u8 family, const struct mesh_addr *addr,
					      __u16 port)
{
	struct mesh_addr a = *addr;

	mesh_addr_unmap(&a, &family);
	if (family == MESH_AF_INET) {
		a.addr[1] = 0;
		a.addr[2] = 0;
		a.addr[3] = 0;
	}
	key->netns_cookie = netns_cookie;
	key->addr = a;
	key->port = port;
	key->family = family;
	for (int i = 0; i < (int)sizeof(key->pad); i++)
		key->pad[i] = 0;
}

/* The record as an IPv4 address (network order) for a SOL_IP asker: plain
 * IPv4 or IPv4-mapped. False for a real IPv6 destination, which an AF_INET
 * socket cannot express.
 */
static __always_inline bool mesh_orig_as_v4(const struct mesh_orig_dst *o, __u32 *ip4)
{
	if (o->family == MESH_AF_INET) {
		*ip4 = o->addr.addr[0];
		return true;
	}
	if (o->family == MESH_AF_INET6 && mesh_addr_is_v4mapped(&o->addr)) {
		*ip4 = o->addr.addr[3];
		return true;
	}
	return false;
}

/* The record as an IPv6 address for a SOL_IPV6 asker; IPv4 becomes mapped. */
static __always_inline bool mesh_orig_as_v6(const struct mesh_orig_dst *o, struct mesh_addr *ip6)
{
	if (o->family == MESH_AF_INET6) {
		*ip6 = o->addr;
		return true;
	}
	if (o->family == MESH_AF_INET) {
		ip6->addr[0] = 0;
		ip6->addr[1] = 0;
		ip6->addr[2] = bpf_htonl(0x0000ffff);
		ip6->addr[3] = o->addr.addr[0];
		return true;
	}
	return false;
}

#endif /* WEFT_BPF_LIB_ORIG_H */
