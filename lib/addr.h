/* SPDX-License-Identifier: GPL-2.0-only */
/* IP endpoint values shared by agent, cni and meshctl: one struct for IPv4 and
 * IPv6 with a port, parsing, formatting and sockaddr conversion. No I/O.
 */
#ifndef WEFT_ADDR_H
#define WEFT_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* "[ffff:...:ffff]:65535" plus NUL, rounded up. */
#define ADDR_STRLEN 64

struct addr {
	int family;		/* AF_INET or AF_INET6; 0 = unset */
	uint16_t port;		/* host order; 0 when only an IP is meant */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} ip;			/* network order */
};

/* An IP prefix. */
struct cidr {
	struct addr net;	/* host bits zero, port 0 */
	unsigned int prefix_len;
};

/* Parse an IP literal without port ("198.18.0.1", "fd00::1"). Returns 0 or -EINVAL. */
int addr_parse_ip(const char *s, struct addr *out);

/* Parse "IP:PORT" or "[IPv6]:PORT". Returns 0 or -EINVAL. */
int addr_parse_ip_port(const char *s, struct addr *out);

/* The same for an address to listen on, where port 0 (any) is allowed. */
int addr_parse_listen(const char *s, struct addr *out);

/* Parse "IP/LEN" into @out (host bits cleared) and @prefix_len. Returns 0 or -EINVAL. */
int addr_parse_cidr(const char *s, struct addr *out, unsigned int *prefix_len);

/* Convert from a sockaddr; IPv4-mapped IPv6 stays IPv6 (see addr_unmap()). 0 or -EAFNOSUPPORT. */
int addr_from_sockaddr(struct addr *out, const struct sockaddr *sa, socklen_t len);

/* Fill @ss from @a and return the length to pass to connect()/bind(). */
socklen_t addr_to_sockaddr(const struct addr *a, struct sockaddr_storage *ss);

/* Turn an IPv4-mapped IPv6 address (::ffff:a.b.c.d) into plain IPv4, in place. */
void addr_unmap(struct addr *a);

/* Format as "IP" (port 0) or "IP:PORT"/"[IPv6]:PORT" into @buf; returns @buf. */
const char *addr_fmt(const struct addr *a, char *buf, size_t len);

/* Parse a list of ports or CIDRs separated by commas and/or spaces into @out
 * (at most @max). Returns the count, -EINVAL (a bad item: @bad gets it) or
 * -E2BIG (more than @max).
 */
int addr_parse_port_list(const char *s, uint16_t *out, size_t max, char *bad, size_t badlen);
int addr_parse_cidr_list(const char *s, struct cidr *out, size_t max, char *bad, size_t badlen);

/* Format "IP/LEN". Returns @buf. */
const char *cidr_fmt(const struct cidr *c, char *buf, size_t len);

/* Format only the IP. Returns @buf. */
const char *addr_fmt_ip(const struct addr *a, char *buf, size_t len);

/* Same family and IP (ports ignored). */
bool addr_ip_equal(const struct addr *a, const struct addr *b);

/* Same family, IP and port. */
bool addr_equal(const struct addr *a, const struct addr *b);

/* Order by family (IPv4 first), then address bytes, then port: <0, 0, >0. */
int addr_cmp(const struct addr *a, const struct addr *b);

/* 127.0.0.0/8, ::1 and IPv4-mapped 127/8. */
bool addr_is_loopback(const struct addr *a);

/* A hash of family, IP and port, for tables. */
uint32_t addr_hash(const struct addr *a);

#endif /* WEFT_ADDR_H */
