/* SPDX-License-Identifier: GPL-2.0-only */
/* A packet capture in the test process itself (no tcpdump): an AF_PACKET
 * socket in a test netns receiving every frame that arrives on any of its
 * interfaces — on a bridge's ports, every frame that crosses the bridge,
 * once — kept by the kernel until read, then judged: TLS handshakes to and
 * from the mTLS port, TCP on any other port, and plaintext markers.
 */
#ifndef WEFT_TEST_SNIFF_H
#define WEFT_TEST_SNIFF_H

#include <stddef.h>
#include <stdint.h>

struct tsniff_report {
	unsigned int tcp;		/* IPv4 TCP frames */
	unsigned int client_hellos;	/* TLS ClientHello to @tls_port offering TLS 1.3 only */
	unsigned int server_hellos;	/* TLS ServerHello from @tls_port choosing TLS 1.3 */
	unsigned int other_port;	/* TCP frames with neither port @tls_port */
	unsigned int marked;		/* frames of any kind holding a marker */
};

/* Open a capture in test netns @ns (short name). The fd or -errno. */
int tsniff_open(const char *ns);

/* Read every frame captured so far on @fd (without blocking) and count into
 * @r (zeroed first) what it saw; @markers are @n strings that must not
 * appear in the clear. 0 or -errno.
 */
int tsniff_read(int fd, uint16_t tls_port, const char *const *markers, size_t n,
		struct tsniff_report *r);

#endif /* WEFT_TEST_SNIFF_H */
