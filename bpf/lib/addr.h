/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Predicates on struct mesh_addr (abi.h): IPv4-mapped, loopback, CIDR match.
 * Pure functions with no BPF helper calls, so tests/unit compiles them with the
 * host cc; the includer provides __u8..__u32, bool, bpf_htonl and abi.h.
 */
#ifndef WEFT_BPF_LIB_ADDR_H
#define WEFT_BPF_LIB_ADDR_H

/* ::ffff:a.b.c.d (RFC 4291 2.5.5.2), the form a dual-stack socket gives IPv4. */
static __always_inline bool mesh_addr_is_v4mapped(const struct mesh_addr *a)
{
	return a->addr[0] == 0 && a->addr[1] == 0 && a->addr[2] == bpf_htonl(0x0000ffff);
}

/* Rewrite an IPv4-mapped address as plain IPv4 (addr[0], family
 * MESH_AF_INET), in place; other addresses are left as they are. Decisions
 * are taken on this form so one IPv4 rule covers both kinds of socket.
 */
static __always_inline void mesh_addr_unmap(struct mesh_addr *a, __u8 *family)
{
	if (*family != MESH_AF_INET6 || !mesh_addr_is_v4mapped(a))
		return;
	a->addr[0] = a->addr[3];
	a->addr[1] = 0;
	a->addr[2] = 0;
	a->addr[3] = 0;
	*family = MESH_AF_INET;
}

/* 127.0.0.0/8 (RFC 1122 3.2.1.3) or ::1; expects an unmapped address. */
static __always_inline bool mesh_addr_is_loopback(const struct mesh_addr *a, __u8 family)
{
	if (family == MESH_AF_INET)
		return (a->addr[0] & bpf_htonl(0xff000000)) == bpf_htonl(0x7f000000);
	return a->addr[0] == 0 && a->addr[1] == 0 && a->addr[2] == 0 &&
	       a->addr[3] == bpf_htonl(1);
}

/* Network-order mask of the first @bits (clamped to 0..32) bits of a word. */
static __always_inline __u32 mesh_word_mask(int bits)
{
	if (bits <= 0)
		return 0;
	if (bits >= 32)
		return 0xffffffff;
	return bpf_htonl(0xffffffffu << (32 - bits));
}

/* Whether @a (unmapped, of @family) lies in @c. An unused slot (family 0),
 * another family or an impossible prefix length never matches.
 */
static __always_inline bool mesh_addr_in_cidr(const struct mesh_addr *a, __u8 family,
					      const struct mesh_cidr *c)
{
	int words = family == MESH_AF_INET ? 1 : 4;

	if (!c->family || c->family != family || c->prefix_len > words * 32)
		return false;
	for (int i = 0; i < 4; i++) {
		if (i >= words)
			break;
		if ((a->addr[i] ^ c->addr.addr[i]) & mesh_word_mask(c->prefix_len - 32 * i))
			return false;
	}
	return true;
}

#endif /* WEFT_BPF_LIB_ADDR_H */
