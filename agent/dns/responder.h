/* SPDX-License-Identifier: GPL-2.0-only */
/* The DNS responder of meshed pods (docs/dns.md, "Capture"): per pod netns,
 * a UDP socket and a TCP listener on the DNS port that capture sends the
 * pod's queries to (0.0.0.0, and with listen6 [::1] as well), and sockets forwarding what the agent does not own to
 * the resolver the pod asked. Runs on the main thread's loop; every socket
 * is made in the pod's netns by that thread (the proxy workers cannot make
 * sockets). How a query's resolver is found belongs to the capture mode,
 * reached through a callback of struct dnsr_deps.
 */
#ifndef WEFT_DNS_RESPONDER_H
#define WEFT_DNS_RESPONDER_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct catalogue;
struct loop;

#define DNSR_PORT_DEFAULT 15053
#define DNSR_PENDING_POD 128	/* UDP queries forwarded and not answered, per pod */
#define DNSR_PENDING_MAX 4096	/* the same, for the whole node */
#define DNSR_TCP_POD 16		/* TCP connections at once, per pod */
#define DNSR_TIMEOUT_MS 5000	/* for the resolver's answer (glibc's own timeout) */

/* What the responder uses of the rest of the agent; borrowed, outliving it. */
struct dnsr_deps {
	struct loop *loop;
	/* The catalogue in force, valid until the next publish. */
	const struct catalogue *(*catalogue)(void *ctx);
	const char *domain;		/* --cluster-domain */
	uint16_t port;			/* the responder's port in each pod netns */
	/* What a pod netns needs for @resolver (capture_dns_open()). */
	int (*open_ns)(void *ctx, int netns_fd, int *ct_fd);
	/* The resolver a query arriving on @fd at @local from @peer (both
	 * IPv4 or both IPv6) was sent to (capture_dns_resolver()): an IPv4
	 * (struct sockaddr_in) or IPv6 (struct sockaddr_in6) address and
	 * port. 0 or -errno.
	 */
	int (*resolver)(void *ctx, int ct_fd, bool tcp, int fd, const struct sockaddr *local,
			const struct sockaddr *peer, struct sockaddr_storage *out);
	/* Also listen on [::1]:port, for queries capture sends there (nft
	 * mode's redirect of a query to an IPv6 resolver). Skipped in a pod
	 * netns without IPv6.
	 */
	bool listen6;
	void *ctx;
};

/* Counters since start, for /v1/status and /metrics. */
struct dnsr_counters {
	uint64_t answered;	/* queries the agent answered from the catalogue */
	uint64_t forwarded;	/* answers relayed from a pod's resolver */
	uint64_t failed;	/* queries neither answered nor relayed: no resolver
				 * found, the bounds, the resolver silent or unreachable */
	uint64_t truncated;	/* of the answered and relayed over UDP, those with TC */
	uint64_t tcp;		/* TCP connections accepted */
	uint64_t pending;	/* UDP queries waiting for their resolver now */
	uint64_t pods;		/* pod netns with a responder now */
};

/* The counters, once: /v1/status ("dns") and /metrics (weft_dns_<name>)
 * both walk this table.
 */
struct dnsr_counter_def {
	const char *name;	/* JSON key; the metric is weft_dns_<name> */
	const char *type;	/* "counter" or "gauge" */
	const char *help;
	size_t offset;		/* in struct dnsr_counters */
};
extern const struct dnsr_counter_def dnsr_counter_defs[];
extern const size_t dnsr_n_counter_defs;

static inline uint64_t dnsr_counter_get(const struct dnsr_counters *n,
					const struct dnsr_counter_def *d)
{
	return *(const uint64_t *)((const char *)n + d->offset);
}

struct dnsr;
struct dnsr_pod;

/* NULL with errno set. @deps is copied. */
struct dnsr *dnsr_new(const struct dnsr_deps *deps);
/* Close every pod's sockets. Accepts NULL. */
void dnsr_free(struct dnsr *r);

/* Open the responder of the pod netns @netns_fd (borrowed; pod @pod_id for
 * the log): its sockets are made there now. NULL with errno set (EADDRINUSE:
 * the port is taken in the pod). May block briefly (setns, socket).
 */
struct dnsr_pod *dnsr_pod_open(struct dnsr *r, int netns_fd, uint32_t pod_id);
/* Close it: its sockets, pending queries and connections. Accepts NULL. */
void dnsr_pod_close(struct dnsr *r, struct dnsr_pod *rp);

void dnsr_counters(const struct dnsr *r, struct dnsr_counters *out);

#endif /* WEFT_DNS_RESPONDER_H */
