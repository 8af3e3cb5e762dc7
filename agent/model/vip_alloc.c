// SPDX-License-Identifier: GPL-2.0-only
/* VIP allocation (vip_alloc.h): addresses of a range numbered by their offset
 * from the range's first address, a hash set of the offsets in use, and the
 * two passes (homes, then probing) that make the result independent of the
 * order services arrived in.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fnv.h"
#include "model/vip_alloc.h"

/* The usable offsets of a range: first .. first + count - 1. */
struct span {
	const struct cidr *range;
	unsigned int host_bits;	/* capped at 63 for IPv6 */
	uint64_t first;
	uint64_t count;
};

/* Offsets in use; open addressing, slot = offset + 1, 0 = free. */
struct offset_set {
	uint64_t *slots;
	size_t mask;
};

uint64_t vip_name_hash(const char *ns, const char *name)
{
	uint64_t h = fnv1a64_str(FNV1A64_OFFSET, ns);

	return fnv1a64_str(fnv1a64_byte(h, '/'), name);
}

static void span_init(struct span *s, const struct cidr *range)
{
	bool v4 = range->net.family == AF_INET;
	unsigned int bits = (v4 ? 32 : 128) - range->prefix_len;

	s->range = range;
	s->host_bits = bits > 63 ? 63 : bits;
	/* IPv4: not the network and broadcast addresses, which some stacks
	 * refuse to connect to; IPv6: not the subnet-router anycast address.
	 */
	if (v4 && bits >= 2) {
		s->first = 1;
		s->count = (1ull << bits) - 2;
	} else if (!v4 && bits >= 1) {
		s->first = 1;
		s->count = (1ull << s->host_bits) - 1;
	} else {
		s->first = 0;
		s->count = 1ull << bits;
	}
}

static uint64_t low64(const struct in6_addr *a)
{
	uint64_t v = 0;

	for (int i = 8; i < 16; i++)
		v = v << 8 | a->s6_addr[i];
	return v;
}

static void span_addr(const struct span *s, uint64_t off, struct addr *out)
{
	*out = s->range->net;
	out->port = 0;
	if (out->family == AF_INET) {
		out->ip.v4.s_addr = htonl(ntohl(out->ip.v4.s_addr) + (uint32_t)off);
		return;
	}
	off += low64(&out->ip.v6);	/* host bits are zero: no carry out */
	for (int i = 15; i >= 8; i--, off >>= 8)
		out->ip.v6.s6_addr[i] = (uint8_t)off;
}

/* The offset of @a in @s, false when @a is outside the usable offsets. */
static bool span_offset(const struct span *s, const struct addr *a, uint64_t *off)
{
	const struct addr *net = &s->range->net;
	unsigned int plen = s->range->prefix_len;

	if (a->family != net->family)
		return false;
	if (a->family == AF_INET) {
		uint32_t x = ntohl(a->ip.v4.s_addr), n = ntohl(net->ip.v4.s_addr);
		uint32_t mask = plen ? ~0u << (32 - plen) : 0;

		if ((x & mask) != n)
			return false;
		*off = x - n;
	} else {
		/* Same first 64 bits, and the same bits above the window below. */
		if (memcmp(a->ip.v6.s6_addr, net->ip.v6.s6_addr, 8))
			return false;
		*off = low64(&a->ip.v6) - low64(&net->ip.v6);
		if (*off >> s->host_bits)
			return false;
	}
	return *off >= s->first && *off - s->first < s->count;
}

static int set_init(struct offset_set *set, size_t n)
{
	size_t size = 16;

	while (size < 2 * n)
		size *= 2;
	set->slots = calloc(size, sizeof(*set->slots));
	set->mask = size - 1;
	return set->slots ? 0 : -ENOMEM;
}

static size_t set_pos(const struct offset_set *set, uint64_t off)
{
	/* A multiplicative mix: the low bits of nearby offsets differ anyway,
	 * but hashed homes are spread over all 64 bits.
	 */
	return (size_t)((off * 0x9e3779b97f4a7c15ull) >> 32) & set->mask;
}

static bool set_has(const struct offset_set *set, uint64_t off)
{
	for (size_t h = set_pos(set, off); set->slots[h]; h = (h + 1) & set->mask)
		if (set->slots[h] == off + 1)
			return true;
	return false;
}

/* The caller sized the set for every insertion it makes. */
static void set_add(struct offset_set *set, uint64_t off)
{
	size_t h = set_pos(set, off);

	while (set->slots[h] && set->slots[h] != off + 1)
		h = (h + 1) & set->mask;
	set->slots[h] = off + 1;
}

static uint64_t home_of(const struct span *s, const struct vip_req *r)
{
	return s->first + vip_name_hash(r->ns, r->name) % s->count;
}

int vip_alloc(const struct cidr *range, const struct addr *taken, size_t n_taken,
	      struct vip_req *reqs, size_t n)
{
	struct offset_set used;
	struct span s;
	uint64_t off;
	int err;

	span_init(&s, range);
	err = set_init(&used, n_taken + n);
	if (err)
		return err;
	for (size_t i = 0; i < n_taken; i++)
		if (span_offset(&s, &taken[i], &off))
			set_add(&used, off);
	/* Pass 1: homes. A service whose home nobody else hashes to gets it
	 * whatever else the catalogue holds.
	 */
	for (size_t i = 0; i < n; i++) {
		off = home_of(&s, &reqs[i]);
		reqs[i].outcome = VIP_NONE;
		if (set_has(&used, off))
			continue;
		set_add(&used, off);
		span_addr(&s, off, &reqs[i].out);
		reqs[i].outcome = VIP_HOME;
	}
	/* Pass 2: the losers of a contested home, in name order, probe forward.
	 * At most n_taken + n offsets are used, so a free one is at most that
	 * many steps away unless the range is smaller.
	 */
	for (size_t i = 0; i < n; i++) {
		uint64_t home, k;

		if (reqs[i].outcome == VIP_HOME)
			continue;
		home = home_of(&s, &reqs[i]) - s.first;
		for (k = 1; k < s.count; k++) {
			off = s.first + (home + k) % s.count;
			if (!set_has(&used, off))
				break;
		}
		if (k >= s.count) {
			reqs[i].outcome = VIP_EXHAUSTED;
			continue;
		}
		set_add(&used, off);
		span_addr(&s, off, &reqs[i].out);
		reqs[i].outcome = VIP_PROBED;
	}
	free(used.slots);
	return 0;
}
