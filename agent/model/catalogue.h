/* SPDX-License-Identifier: GPL-2.0-only */
/* The catalogue: an immutable snapshot of what the registries say (services,
 * their VIP:ports and endpoints, namespaces, pods), built by model_build() and
 * read by the proxy and the enrollment code without locks. Reference counted so
 * a reader keeps the snapshot it started with while a newer one is published.
 *
 * Consecutive snapshots share what did not change: a Service whose object,
 * EndpointSlices, VIPs and pods did not change is the same cat_service (same
 * address, same ports and endpoints) in both, so a reader finds what changed
 * between two snapshots it holds by comparing pointers.
 */
#ifndef WEFT_CATALOGUE_H
#define WEFT_CATALOGUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "model/objects.h"

#define CAT_NAME_MAX 254	/* DNS-1123 subdomain (253) + NUL */

struct cat_pod;

struct cat_endpoint {
	struct addr addr;	/* endpoint IP and target port */
	bool ready;
	const char *node;	/* spec nodeName, "" if unknown */
	const char *zone;	/* "" if unknown */
	/* The meshed Pod (catalogue_pod_meshed()) whose IP this endpoint is, in
	 * this snapshot's pod array: its identity is what a client's agent
	 * expects the endpoint to present (docs/mtls.md). NULL: not a meshed
	 * pod the registry knows, reached in plaintext.
	 */
	const struct cat_pod *pod;
};

/* How a service got its VIPs. */
enum cat_vip_source {
	CAT_VIP_REGISTRY = 0,	/* the registry's cluster IPs (or none: headless) */
	CAT_VIP_ALLOCATED,	/* from --vip-range: the address its name hashes to */
	CAT_VIP_PROBED,		/* from --vip-range, after a collision: see vip_alloc.h */
	CAT_VIP_EXHAUSTED,	/* wanted one, the range was full: none */
};

/* A service's strings (namespace, name, allow-from, port names) live in
 * the service's own block, sized to what they hold: 10,000 services with
 * fixed-size name fields would carry megabytes of padding.
 */
struct cat_service {
	const char *ns;			/* < OBJ_NS_MAX with its NUL */
	const char *name;		/* < CAT_NAME_MAX with its NUL */
	const struct policy_override *policy;	/* its weft.io/ settings; NULL: none */
	struct addr vips[OBJ_SVC_IPS_MAX];	/* port 0, ascending; n_vips */
	size_t n_vips;
	enum cat_vip_source vip_source;	/* the worst over its families */
	struct cat_svc_port *ports;	/* its service ports, VIPs then ports ascending */
	size_t n_ports;
	const char *allow_from;		/* weft.io/allow-from; "" = no rule; never NULL */
};

/* VIP allocation in one snapshot, for status and metrics. */
struct cat_vip_stats {
	size_t allocated;	/* services whose VIPs came from the ranges */
	size_t collisions;	/* of those, the ones whose home address was taken */
	size_t exhausted;	/* services left without a VIP: the range was full */
};

/* One service port on one VIP: the unit the proxy resolves a destination to. */
struct cat_svc_port {
	const struct cat_service *svc;
	struct addr vip;	/* cluster IP and service port */
	const char *port_name;	/* "" for an unnamed port; < OBJ_PORT_NAME_MAX with
				 * its NUL; in the service's block */
	bool vip_allocated;	/* the VIP came from --vip-range (svc->vip_source) */
	/* Unique among the service ports of the snapshots alive at once, small
	 * and reused: the proxy keeps its state of the port at this index.
	 */
	uint32_t slot;
	struct cat_endpoint *endpoints;	/* every endpoint, ready or not: the n_ready
					 * ready ones first, each group by address */
	size_t n_endpoints;
	size_t n_ready;
};

/* What the registry says about one Pod (v1 Pod objects are optional). */
struct cat_pod {
	char ns[OBJ_NS_MAX];
	char name[OBJ_NAME_MAX];
	char uid[OBJ_UID_MAX];		/* metadata.uid, "" if the source has none */
	char node[OBJ_NAME_MAX];	/* spec.nodeName, "" if unscheduled */
	char service_account[OBJ_NAME_MAX];	/* spec.serviceAccountName, "default" if unset */
	struct addr ips[OBJ_POD_IPS_MAX];	/* status.podIPs, port 0 */
	size_t n_ips;
	bool host_network;		/* spec.hostNetwork */
	enum obj_pod_phase phase;	/* status.phase */
	bool terminating;		/* metadata.deletionTimestamp is set */
	bool opted_out;			/* annotation weft.io/mesh: disabled */
	uint16_t excl_ports[OBJ_EXCL_PORTS_MAX];	/* weft.io/exclude-outbound-ports */
	size_t n_excl_ports;
	uint16_t excl_in_ports[OBJ_EXCL_PORTS_MAX];	/* weft.io/exclude-inbound-ports */
	size_t n_excl_in_ports;
	struct cidr excl_cidrs[OBJ_EXCL_CIDRS_MAX];	/* weft.io/exclude-outbound-cidrs */
	size_t n_excl_cidrs;
	struct obj_pod_register registers[OBJ_REGISTER_MAX];	/* weft.io/register */
	size_t n_registers;
	enum obj_tristate sw[OBJ_SW_COUNT];	/* enum obj_switch */
};

struct catalogue;

/* Take another reference; returns @c. */
struct catalogue *catalogue_ref(struct catalogue *c);
/* Drop a reference; frees on the last. Accepts NULL. */
void catalogue_unref(struct catalogue *c);

/* An empty catalogue (refcount 1), or NULL with errno set. */
struct catalogue *catalogue_new_empty(void);

/* Monotonic generation number of the snapshot (0 for the empty one). */
uint64_t catalogue_generation(const struct catalogue *c);

/* Services built, rebuilt or dropped by the builder up to and including
 * this snapshot, since the agent started (0 for the empty one): between two
 * snapshots, the difference is how many Services a worker going from the
 * first to the second has to look at (proxy/workers.h counts it per bind).
 */
uint64_t catalogue_changes(const struct catalogue *c);

/* The service port whose VIP and port equal @dst (IPv4-mapped IPv6 must be
 * unmapped by the caller), or NULL. O(1). Two Services claiming one VIP:port:
 * the first in (namespace, name) order has it.
 */
struct cat_svc_port *catalogue_find_vip(const struct catalogue *c, const struct addr *dst);

/* Whether namespace @ns exists and carries the label weft.io/mesh=enabled. */
bool catalogue_ns_meshed(const struct catalogue *c, const char *ns);

/* Switch @sw (enum obj_switch) of the pod @name of namespace @ns: its Pod
 * object's own value, else its Namespace's, else no. @p is that Pod object,
 * or NULL when the registry has none (the Namespace's value then holds).
 */
bool catalogue_pod_switch(const struct catalogue *c, const char *ns, const struct cat_pod *p,
			  enum obj_switch sw);
/* The same with @dflt when neither the Pod nor its Namespace says: for the
 * switches that default to yes (OBJ_SW_DNS_CAPTURE).
 */
bool catalogue_pod_switch_or(const struct catalogue *c, const char *ns, const struct cat_pod *p,
			     enum obj_switch sw, bool dflt);

/* Namespace @ns's weft.io/mtls-mode; OBJ_MTLS_UNSET when it sets none or is
 * unknown (the agent's default applies).
 */
enum obj_mtls_mode catalogue_ns_mtls_mode(const struct catalogue *c, const char *ns);

/* Namespace @ns's weft.io/allow-from ("" when none, or unknown). */
const char *catalogue_ns_allow_from(const struct catalogue *c, const char *ns);

/* Whether Pod @p of @c has a workload identity other meshed pods reach over
 * mTLS: in a meshed namespace, not opted out, not on the host's network, not
 * finished or terminating.
 */
bool catalogue_pod_meshed(const struct catalogue *c, const struct cat_pod *p);

/* Namespaces the catalogue knows, 0 <= i < catalogue_n_namespaces(), by name;
 * catalogue_ns_at() sets *@meshed as catalogue_ns_meshed() would. For the
 * node state file the CNI plugin reads.
 */
size_t catalogue_n_namespaces(const struct catalogue *c);
const char *catalogue_ns_at(const struct catalogue *c, size_t i, bool *meshed);

/* The Pod ns/name, or NULL when the registry has no such Pod. */
const struct cat_pod *catalogue_find_pod(const struct catalogue *c, const char *ns,
					 const char *name);

/* Whether a Pod ns/name is known and annotated weft.io/mesh: disabled. */
bool catalogue_pod_opted_out(const struct catalogue *c, const char *ns, const char *name);

/* The number of Pods, and the i-th (0 <= i < n) in (namespace, name) order. */
size_t catalogue_n_pods(const struct catalogue *c);
const struct cat_pod *catalogue_pod_at(const struct catalogue *c, size_t i);

/* The Service @ns/@name, or NULL. O(log n). */
const struct cat_service *catalogue_find_service(const struct catalogue *c, const char *ns,
						 const char *name);

/* The i-th Service (0 <= i < catalogue_n_services()) in (namespace, name) order. */
const struct cat_service *catalogue_service_at(const struct catalogue *c, size_t i);

/* What VIP allocation did in this snapshot. */
struct cat_vip_stats catalogue_vip_stats(const struct catalogue *c);

/* Counts, for status output. */
size_t catalogue_n_services(const struct catalogue *c);
size_t catalogue_n_svc_ports(const struct catalogue *c);

/* The i-th service port, 0 <= i < catalogue_n_svc_ports(), in a stable order
 * (namespace, name, VIP, port); for listing. O(log n): a Service's own ports
 * are cat_service.ports.
 */
struct cat_svc_port *catalogue_svc_port_at(const struct catalogue *c, size_t i);

/* The index of @sp, a service port of @c, in that order (the inverse of
 * catalogue_svc_port_at()); catalogue_n_svc_ports() when @sp is not one of
 * @c's. O(log n).
 */
size_t catalogue_svc_port_index(const struct catalogue *c, const struct cat_svc_port *sp);

/* Above the highest cat_svc_port.slot of @c (0: no ports): the size of an
 * array indexed by slot. A snapshot patched from the one before keeps that
 * one's bound, so it may exceed the highest slot + 1.
 */
uint32_t catalogue_n_slots(const struct catalogue *c);

#endif /* WEFT_CATALOGUE_H */
