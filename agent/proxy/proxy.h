/* SPDX-License-Identifier: GPL-2.0-only */
/* The L4 proxy core: in-pod listeners, original destination recovery,
 * destination → service → endpoint, and the byte relay between the pod's
 * connection and the upstream one, which is made inside the pod's netns and
 * carries the agent's mark.
 */
#ifndef WEFT_PROXY_H
#define WEFT_PROXY_H

#include <stdint.h>

struct loop;
struct pod;
struct catalogue;
struct proxy;

struct proxy_opts {
	uint16_t port;			/* in-pod listener port */
	uint32_t mark;			/* SO_MARK of upstream sockets */
	uint32_t connect_timeout_ms;
	uint32_t max_conns;
	int home_netns_fd;		/* the agent's own netns, to come back to */
};

struct proxy_stats {
	uint64_t active;
	uint64_t total;			/* accepted */
	uint64_t to_service;		/* resolved to a service endpoint */
	uint64_t passthrough;		/* destination is not a service */
	uint64_t no_endpoint;		/* a service with no ready endpoint: reset */
	uint64_t orig_dst_errors;	/* no original destination: reset */
	uint64_t connect_errors;	/* upstream refused/unreachable: reset */
	uint64_t connect_timeouts;
	uint64_t resets;		/* resets passed on during relay */
	uint64_t over_limit;		/* max-conns reached: reset */
};

/* NULL with errno set. Borrows @loop. */
struct proxy *proxy_new(struct loop *loop, const struct proxy_opts *opts);
/* Close every connection; listeners belong to pods (proxy_pod_close). Accepts NULL. */
void proxy_free(struct proxy *px);

/* Publish a new catalogue for new connections; takes a reference on @c. */
void proxy_set_catalogue(struct proxy *px, struct catalogue *c);

/* Create the pod's listeners (127.0.0.1:port, [::1]:port) inside its netns
 * and serve them; sets pod->lfd4/lfd6 and pod->netns_cookie. IPv6 is optional
 * (a pod netns without ::1 gets only the IPv4 listener). 0 or -errno.
 */
int proxy_pod_listen(struct proxy *px, struct pod *pod);

/* Stop listening for @pod and close its connections. */
void proxy_pod_close(struct proxy *px, struct pod *pod);

const struct proxy_stats *proxy_stats(const struct proxy *px);

#endif /* WEFT_PROXY_H */
