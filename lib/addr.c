// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of lib/addr.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "opt.h"

int addr_parse_ip(const char *s, struct addr *out)
{
	struct addr a = { 0 };

	if (inet_pton(AF_INET, s, &a.ip.v4) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, s, &a.ip.v6) == 1)
		a.family = AF_INET6;
	else
		return -EINVAL;
	*out = a;
	return 0;
}

/* The @n first bytes of @s as a string in @out of @len bytes. 0 or -EINVAL. */
static int copy_part(char *out, size_t len, const char *s, size_t n)
{
	if (n >= len)
		return -EINVAL;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* "IP:PORT" / "[IPv6]:PORT" with the port in [@min_port, 65535]. */
static int parse_ip_port(const char *s, uint32_t min_port, struct addr *out)
{
	char host[ADDR_STRLEN];
	const char *port;
	uint32_t p;
	int err;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':' ||
		    copy_part(host, sizeof(host), s + 1, (size_t)(end - s - 1)))
			return -EINVAL;
		port = end + 2;
	} else {
		const char *colon = strrchr(s, ':');

		if (!colon || copy_part(host, sizeof(host), s, (size_t)(colon - s)))
			return -EINVAL;
		port = colon + 1;
	}
	err = opt_parse_u32(port, min_port, 65535, &p);
	if (err)
		return -EINVAL;
	err = addr_parse_ip(host, out);
	if (err)
		return err;
	if (s[0] == '[' && out->family != AF_INET6)
		return -EINVAL;
	out->port = (uint16_t)p;
	return 0;
}

int addr_parse_ip_port(const char *s, struct addr *out)
{
	return parse_ip_port(s, 1, out);
}

int addr_parse_listen(const char *s, struct addr *out)
{
	return parse_ip_port(s, 0, out);
}

static void clear_host_bits(struct addr *a, unsigned int prefix_len)
{
	uint8_t *b = a->family == AF_INET ? (uint8_t *)&a->ip.v4 : a->ip.v6.s6_addr;
	unsigned int bytes = a->family == AF_INET ? 4 : 16;

	for (unsigned int i = 0; i < bytes; i++) {
		unsigned int bit = i * 8;

		if (bit >= prefix_len)
			b[i] = 0;
		else if (prefix_len - bit < 8)
			b[i] &= (uint8_t)(0xff << (8 - (prefix_len - bit)));
	}
}

int addr_parse_cidr(const char *s, struct addr *out, unsigned int *prefix_len)
{
	char ip[ADDR_STRLEN];
	const char *slash = strchr(s, '/');
	unsigned int max;
	uint32_t len;
	int err;

	if (!slash || copy_part(ip, sizeof(ip), s, (size_t)(slash - s)))
		return -EINVAL;
	err = addr_parse_ip(ip, out);
	if (err)
		return err;
	max = out->family == AF_INET ? 32 : 128;
	err = opt_parse_u32(slash + 1, 0, max, &len);
	if (err)
		return err;
	clear_host_bits(out, len);
	*prefix_len = len;
	return 0;
}

int addr_from_sockaddr(struct addr *out, const struct sockaddr *sa, socklen_t len)
{
	struct addr a = { 0 };

	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		a.family = AF_INET;
		a.ip.v4 = sin->sin_addr;
		a.port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		a.family = AF_INET6;
		a.ip.v6 = sin6->sin6_addr;
		a.port = ntohs(sin6->sin6_port);
	} else {
		return -EAFNOSUPPORT;
	}
	*out = a;
	return 0;
}

socklen_t addr_to_sockaddr(const struct addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr = a->ip.v4;
		sin->sin_port = htons(a->port);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = a->ip.v6;
	sin6->sin6_port = htons(a->port);
	return sizeof(*sin6);
}

void addr_unmap(struct addr *a)
{
	struct in_addr v4;

	if (a->family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a->ip.v6))
		return;
	memcpy(&v4, &a->ip.v6.s6_addr[12], sizeof(v4));
	a->family = AF_INET;
	memset(&a->ip, 0, sizeof(a->ip));
	a->ip.v4 = v4;
}

const char *addr_fmt_ip(const struct addr *a, char *buf, size_t len)
{
	if (!a->family || !inet_ntop(a->family, &a->ip, buf, (socklen_t)len))
		snprintf(buf, len, "-");
	return buf;
}

const char *addr_fmt(const struct addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	addr_fmt_ip(a, ip, sizeof(ip));
	if (!a->port)
		snprintf(buf, len, "%s", ip);
	else if (a->family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", ip, a->port);
	else
		snprintf(buf, len, "%s:%u", ip, a->port);
	return buf;
}

bool addr_ip_equal(const struct addr *a, const struct addr *b)
{
	if (a->family != b->family)
		return false;
	if (a->family == AF_INET)
		return a->ip.v4.s_addr == b->ip.v4.s_addr;
	return !memcmp(&a->ip.v6, &b->ip.v6, sizeof(a->ip.v6));
}

bool addr_equal(const struct addr *a, const struct addr *b)
{
	return a->port == b->port && addr_ip_equal(a, b);
}

int addr_cmp(const struct addr *a, const struct addr *b)
{
	int c;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	c = memcmp(&a->ip, &b->ip, a->family == AF_INET ? sizeof(a->ip.v4) : sizeof(a->ip.v6));
	if (c)
		return c;
	return (a->port > b->port) - (a->port < b->port);
}

bool addr_is_loopback(const struct addr *a)
{
	struct addr u = *a;

	addr_unmap(&u);
	if (u.family == AF_INET)
		return (ntohl(u.ip.v4.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&u.ip.v6);
}

uint32_t addr_hash(const struct addr *a)
{
	/* FNV-1a over the bytes that matter: cheap and good enough for our tables. */
	const uint8_t *p = (const uint8_t *)&a->ip;
	unsigned int n = a->family == AF_INET ? 4 : 16;
	uint32_t h = 2166136261u;

	for (unsigned int i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	h = (h ^ (a->port & 0xff)) * 16777619u;
	h = (h ^ (a->port >> 8)) * 16777619u;
	h = (h ^ (uint32_t)a->family) * 16777619u;
	return h;
}

/* Walk the items of a comma/space separated list; @one parses one item. */
static int parse_list(const char *s, size_t max, char *bad, size_t badlen,
		      int (*one)(const char *item, size_t i, void *out), void *out)
{
	size_t n = 0;

	while (*s) {
		char item[ADDR_STRLEN];
		size_t len = strcspn(s, ", ");

		if (!len) {
			s++;
			continue;
		}
		if (len >= sizeof(item)) {
			snprintf(bad, badlen, "%.*s", (int)len, s);
			return -EINVAL;
		}
		memcpy(item, s, len);
		item[len] = '\0';
		if (n < max && one(item, n, out)) {
			snprintf(bad, badlen, "%s", item);
			return -EINVAL;
		}
		if (++n > max)
			return -E2BIG;
		s += len;
	}
	return (int)n;
}

static int one_port(const char *item, size_t i, void *out)
{
	return opt_parse_u16(item, &((uint16_t *)out)[i]);
}

static int one_cidr(const char *item, size_t i, void *out)
{
	struct cidr *c = &((struct cidr *)out)[i];

	return addr_parse_cidr(item, &c->net, &c->prefix_len);
}

int addr_parse_port_list(const char *s, uint16_t *out, size_t max, char *bad, size_t badlen)
{
	return parse_list(s, max, bad, badlen, one_port, out);
}

int addr_parse_cidr_list(const char *s, struct cidr *out, size_t max, char *bad, size_t badlen)
{
	return parse_list(s, max, bad, badlen, one_cidr, out);
}

const char *cidr_fmt(const struct cidr *c, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	snprintf(buf, len, "%s/%u", addr_fmt_ip(&c->net, ip, sizeof(ip)), c->prefix_len);
	return buf;
}
