// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of tests/helpers/sniff.h: Ethernet, IPv4, TCP, and of TLS
 * just enough to find the supported_versions extension (RFC 8446 4.1.2,
 * 4.1.3, 4.2.1) of a ClientHello or ServerHello at the start of a segment.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sniff.h"
#include "tns.h"

/* Frames the kernel keeps for the reader: a test's few hundred. */
#define SNIFF_RCVBUF (8 << 20)
#define TLS_HANDSHAKE 0x16
#define TLS_CLIENT_HELLO 1
#define TLS_SERVER_HELLO 2
#define TLS_EXT_SUPPORTED_VERSIONS 0x002b
#define TLS_1_3 0x0304

int tsniff_open(const char *ns)
{
	int fd, err = tns_enter(ns), size = SNIFF_RCVBUF;

	if (err)
		return err;
	/* Unbound: every interface of @ns, the bridge's ports included. */
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd == -1)
		err = -errno;
	(void)tns_enter(NULL);
	if (err)
		return err;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) == -1) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static unsigned int be16(const uint8_t *p)
{
	return (unsigned int)p[0] << 8 | p[1];
}

/* Whether the hello body @b (@len bytes, after the 4-byte handshake header)
 * says TLS 1.3 and nothing else: a ClientHello whose supported_versions
 * lists 1.3 alone, a ServerHello whose supported_versions is 1.3.
 */
static bool hello_is_tls13(const uint8_t *b, size_t len, bool client)
{
	size_t off = 2 + 32, end;	/* legacy_version, random */

	if (off >= len)
		return false;
	off += 1 + b[off];		/* legacy_session_id */
	if (client) {
		if (off + 2 > len)
			return false;
		off += 2 + be16(b + off);	/* cipher_suites */
		if (off >= len)
			return false;
		off += 1 + b[off];		/* legacy_compression_methods */
	} else {
		off += 2 + 1;			/* cipher_suite, legacy_compression_method */
	}
	if (off + 2 > len)
		return false;
	end = off + 2 + be16(b + off);
	if (end > len)
		end = len;
	for (off += 2; off + 4 <= end; off += 4 + be16(b + off + 2)) {
		const uint8_t *v = b + off + 4;
		size_t vlen = be16(b + off + 2);

		if (be16(b + off) != TLS_EXT_SUPPORTED_VERSIONS || off + 4 + vlen > end)
			continue;
		if (client)
			return vlen == 3 && v[0] == 2 && be16(v + 1) == TLS_1_3;
		return vlen == 2 && be16(v) == TLS_1_3;
	}
	return false;
}

/* Count what the IPv4 packet @ip (@len bytes, from the frame) holds. */
static void judge_ipv4(const uint8_t *ip, size_t len, uint16_t tls_port, struct tsniff_report *r)
{
	size_t ihl, doff, tot;
	const uint8_t *tcp, *p;
	unsigned int sport, dport;
	size_t plen;

	if (len < 20 || ip[9] != IPPROTO_TCP)
		return;
	ihl = (size_t)(ip[0] & 15) * 4;
	tot = be16(ip + 2);
	if (tot < len)
		len = tot;	/* Ethernet pads short frames */
	if (ihl < 20 || ihl + 20 > len)
		return;
	tcp = ip + ihl;
	doff = (size_t)(tcp[12] >> 4) * 4;
	if (doff < 20 || ihl + doff > len)
		return;
	r->tcp++;
	sport = be16(tcp);
	dport = be16(tcp + 2);
	if (sport != tls_port && dport != tls_port) {
		r->other_port++;
		return;
	}
	p = tcp + doff;
	plen = len - ihl - doff;
	/* A handshake record (type, version 3.x, length), then the message's
	 * type and 3-byte length.
	 */
	if (plen < 9 || p[0] != TLS_HANDSHAKE || p[1] != 3)
		return;
	if (dport == tls_port && p[5] == TLS_CLIENT_HELLO && hello_is_tls13(p + 9, plen - 9, true))
		r->client_hellos++;
	if (sport == tls_port && p[5] == TLS_SERVER_HELLO && hello_is_tls13(p + 9, plen - 9, false))
		r->server_hellos++;
}

int tsniff_read(int fd, uint16_t tls_port, const char *const *markers, size_t n,
		struct tsniff_report *r)
{
	uint8_t frame[65536];

	memset(r, 0, sizeof(*r));
	for (;;) {
		struct sockaddr_ll from;
		socklen_t flen = sizeof(from);
		ssize_t got = recvfrom(fd, frame, sizeof(frame), MSG_DONTWAIT,
				       (struct sockaddr *)&from, &flen);

		if (got == -1) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* The same frame leaving by another port: counted once, where
		 * it came in.
		 */
		if (from.sll_pkttype == PACKET_OUTGOING)
			continue;
		for (size_t i = 0; i < n; i++) {
			if (memmem(frame, (size_t)got, markers[i], strlen(markers[i]))) {
				r->marked++;
				break;
			}
		}
		if ((size_t)got > ETH_HLEN && be16(frame + 12) == ETH_P_IP)
			judge_ipv4(frame + ETH_HLEN, (size_t)got - ETH_HLEN, tls_port, r);
	}
}
