/* SPDX-License-Identifier: GPL-2.0-only */
/* The integration topology: a router netns "r" and, behind it, pod netns
 * "a" and "b" (namespace "mesh", meshed), "c" (namespace "plain", not meshed)
 * and a backend netns "s" carrying four backend addresses. IPv4 from
 * 198.18.0.0/15 only; IPv6 from the unique-local fd00:198::/32, which no
 * namespace routes anywhere but between these namespaces.
 *
 *   a 198.18.1.2  fd00:198:1::2 ─┐
 *   b 198.18.3.2  fd00:198:3::2 ─┼─ r ── s 198.18.2.11-14, fd00:198:2::11-14
 *   c 198.18.4.2  fd00:198:4::2 ─┘
 *
 * Services (registry TOPO_REGISTRY): web 198.19.0.10:80 and [fd00:198:19::10]:80
 * → :8080 on .11 .12 .13 (and fd00:198:2::11 for IPv6); api 198.19.0.20:80 → .14:8080.
 */
#ifndef WEFT_TEST_TOPO_H
#define WEFT_TEST_TOPO_H

extern const char TOPO_REGISTRY[];

/* Build the namespaces, links, addresses and routes. 0 or -1. */
int ttopo_setup(void);

/* Remove them (also on failure paths; safe to call twice). */
void ttopo_teardown(void);

#endif /* WEFT_TEST_TOPO_H */
