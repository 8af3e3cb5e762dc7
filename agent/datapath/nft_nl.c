// SPDX-License-Identifier: GPL-2.0-only
/* The netlink side of the nft mode: a NETLINK_NETFILTER socket opened inside
 * a pod's netns, and one GET request with its answers (nft_internal.h).
 */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "netns.h"
#include "nft_internal.h"

/* In the pod's netns (netns_run()): the socket, which keeps that netns. */
static int open_in(void *ctx)
{
	int *fd = ctx;

	*fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	return *fd == -1 ? -errno : 0;
}

int nft_nl_open(int netns_fd, struct mnl_socket **out)
{
	struct timeval tv = { .tv_sec = NFT_ACK_TIMEOUT_S };
	struct mnl_socket *nl;
	int fd = -1, err;

	/* -1: a new netns of its own (the probe), gone with the socket. */
	err = netns_run(netns_fd, open_in, &fd);
	if (err)
		return err;
	/* A kernel that never answers must not hang the control loop. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	nl = mnl_socket_fdopen(fd);
	if (!nl) {
		err = -errno;
		close(fd);
		return err;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		mnl_socket_close(nl);
		return err;
	}
	*out = nl;
	return 0;
}

int nft_nl_get(struct mnl_socket *nl, uint16_t type, uint16_t flags,
	       void (*payload)(struct nlmsghdr *, void *), void *obj, mnl_cb_t cb, void *data)
{
	uint32_t portid = mnl_socket_get_portid(nl), seq = (uint32_t)time(NULL);
	char *buf;
	struct nlmsghdr *nlh;
	ssize_t n;
	int err = 0;

	buf = malloc(NFT_RECV_BUF);
	if (!buf)
		return -ENOMEM;
	nlh = nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, flags, seq);
	if (payload)
		payload(nlh, obj);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		n = mnl_socket_recvfrom(nl, buf, NFT_RECV_BUF);
		if (n < 0) {
			err = errno == EAGAIN ? -ETIMEDOUT : -errno;
			break;
		}
		n = mnl_cb_run(buf, (size_t)n, seq, portid, cb, data);
		if (n < 0) {
			err = -errno;
			break;
		}
		if (n == MNL_CB_STOP)
			break;
	}
out:
	free(buf);
	return err;
}
