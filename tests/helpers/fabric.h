/* SPDX-License-Identifier: GPL-2.0-only */
/* The network of the multi-node tests (tests/integration/nodes.h): a netns
 * "f", the fabric, holding a Linux bridge, and pod netns attached to it by
 * one veth each, all on one segment, 198.18.20.0/24, as the pods of two
 * nodes on a flat cluster network. A pod's only routes are its subnet and
 * the service VIPs (198.19.0.0/16, on-link, so a connect to a VIP reaches
 * the capture in nft mode as in eBPF mode); the fabric has no address and
 * no uplink, so nothing leaves these namespaces.
 */
#ifndef WEFT_TEST_FABRIC_H
#define WEFT_TEST_FABRIC_H

/* The fabric's short netns name and its bridge. */
#define FABRIC_NS "f"
#define FABRIC_BRIDGE "br0"

/* Create the fabric netns with the bridge up. 0 or -1. */
int tfabric_setup(void);

/* Create pod netns @pod (a short name of at most 6 characters) and attach
 * it to the bridge with @ip/24 (an address of 198.18.20.0/24). 0 or -1.
 */
int tfabric_attach(const char *pod, const char *ip);

/* Remove the fabric and every pod netns (every test netns of this process). */
void tfabric_teardown(void);

#endif /* WEFT_TEST_FABRIC_H */
