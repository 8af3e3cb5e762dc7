/* SPDX-License-Identifier: GPL-2.0-only */
/* Model objects: the parts of Kubernetes Namespaces, Services,
 * EndpointSlices and Pods that the mesh uses, decoded and validated once
 * (registry/decode.c) and then handed to the model, which owns them.
 * Every array is bounded by a named constant; no string is ever truncated.
 */
#ifndef WEFT_MODEL_OBJECTS_H
#define WEFT_MODEL_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "model/policy.h"

#define OBJ_NS_MAX 64		/* DNS-1123 label (63) + NUL */
#define OBJ_NAME_MAX 254	/* DNS-1123 subdomain (253) + NUL */
#define OBJ_UID_MAX 64		/* a UUID is 36 */
#define OBJ_RV_MAX 64		/* a list's or event's resourceVersion: opaque */
#define OBJ_PORT_NAME_MAX 64	/* service/slice port names are DNS-1123 labels */
#define OBJ_IANA_NAME_MAX 16	/* a named targetPort: IANA service name (15) + NUL */
#define OBJ_ZONE_MAX 64		/* topology.kubernetes.io/zone value (63) + NUL */
#define OBJ_ANNOT_VALUE_MAX 256	/* weft.io/ values are short settings */

#define OBJ_SVC_IPS_MAX 2	/* spec.clusterIPs: one per family at most */
#define OBJ_SVC_PORTS_MAX 100	/* what one EndpointSlice can carry */
#define OBJ_SLICE_ENDPOINTS_MAX 1000	/* API limit of endpoints[] */
#define OBJ_SLICE_PORTS_MAX 100		/* API limit of ports[] */
#define OBJ_EP_ADDRS_MAX 100		/* API limit of endpoints[].addresses[] */
#define OBJ_POD_IPS_MAX 2	/* status.podIPs: one per family */

enum obj_kind {
	OBJ_NAMESPACE,
	OBJ_SERVICE,
	OBJ_ENDPOINTSLICE,
	OBJ_POD,
};
#define OBJ_KIND_COUNT 4

enum obj_proto {
	OBJ_PROTO_TCP,		/* the default when a manifest omits protocol */
	OBJ_PROTO_UDP,
	OBJ_PROTO_SCTP,
};

/* What identifies an object inside one source. */
struct obj_key {
	enum obj_kind kind;
	char ns[OBJ_NS_MAX];	/* "" for Namespaces (cluster-scoped) */
	char name[OBJ_NAME_MAX];
};

/* Yes/no annotations ("true" or "false") a Namespace or a Pod may carry,
 * one row each in registry/decode.c's table: a Pod's own value wins over its
 * Namespace's; absent on both, no (catalogue_pod_switch()).
 */
enum obj_switch {
	OBJ_SW_DENY_RAW,	/* weft.io/deny-raw-sockets: refuse the pod's raw IP
				 * sockets (eBPF mode) */
	OBJ_SW_FAIL_OPEN,	/* weft.io/fail-open: capture nothing of the pod while
				 * the agent's heartbeat is stale */
	OBJ_SW_DNS_CAPTURE,	/* weft.io/dns-capture: send the pod's DNS to the agent
				 * (absent: yes; catalogue_pod_switch_or()) */
	OBJ_SW_COUNT,
};

enum obj_tristate {
	OBJ_UNSET = 0,
	OBJ_NO,
	OBJ_YES,
};

/* A namespace's weft.io/mtls-mode (label or annotation; docs/mtls.md). */
enum obj_mtls_mode {
	OBJ_MTLS_UNSET = 0,	/* absent: the agent's default (--mtls-mode) */
	OBJ_MTLS_PERMISSIVE,	/* mTLS and plaintext inbound both accepted */
	OBJ_MTLS_STRICT,	/* plaintext inbound refused */
};

/* weft.io/allow-from on a Service or Namespace: the identities allowed to
 * connect, "NS/sa/SA" or "NS/" "*", comma separated, checked at decode
 * (lib/spiffe.h); "" when absent: no rule, everyone allowed.
 */
#define OBJ_ALLOW_FROM "weft.io/allow-from"

struct obj_namespace {
	bool meshed;		/* label weft.io/mesh=enabled */
	enum obj_mtls_mode mtls_mode;
	char allow_from[OBJ_ANNOT_VALUE_MAX];
	enum obj_tristate sw[OBJ_SW_COUNT];	/* enum obj_switch */
};

struct obj_svc_port {
	char name[OBJ_PORT_NAME_MAX];	/* "" for the single unnamed port */
	enum obj_proto proto;
	uint16_t port;
	uint16_t target_port;		/* numeric targetPort (defaults to port); 0 if named */
	char target_port_name[OBJ_IANA_NAME_MAX];	/* named container port, else "" */
};

struct obj_service {
	struct addr vips[OBJ_SVC_IPS_MAX];	/* port 0; none for a headless Service */
	uint32_t n_vips;
	bool headless;				/* clusterIP "None": no VIP wanted; no
						 * cluster IP at all (registries other
						 * than Kubernetes) gets one allocated */
	struct obj_svc_port *ports;		/* n_ports entries, every protocol */
	size_t n_ports;
	struct policy_override *policy;		/* what its weft.io/ annotations set,
						 * decoded; NULL: nothing */
	/* weft.io/allow-from (< OBJ_ANNOT_VALUE_MAX with its NUL), owned; NULL:
	 * no rule. Few Services carry one: a fixed buffer would cost every
	 * Service 256 bytes.
	 */
	char *allow_from;
};

struct obj_slice_port {
	char name[OBJ_PORT_NAME_MAX];	/* "" matches the Service's unnamed port */
	enum obj_proto proto;
	uint16_t port;			/* 0 when the manifest leaves it unset */
};

struct obj_endpoint {
	struct addr *addrs;		/* 1..OBJ_EP_ADDRS_MAX, family of the slice, port 0 */
	uint32_t n_addrs;
	bool ready;			/* conditions.ready; absent or null counts as ready */
	const char *node;		/* "" if unknown; < OBJ_NAME_MAX with its NUL */
	const char *zone;		/* "" if unknown; < OBJ_ZONE_MAX with its NUL */
};

/* A slice's endpoints keep their addresses and their node and zone strings
 * in two arrays the slice owns (a node's name stored once per run of
 * endpoints naming it): 100,000 endpoints are 100,000 small objects less.
 */
struct obj_slice {
	/* label kubernetes.io/service-name: a Service name, a DNS-1035 label */
	char service[OBJ_NS_MAX];
	int family;			/* AF_INET or AF_INET6, from addressType */
	struct obj_endpoint *endpoints;
	size_t n_endpoints;
	struct obj_slice_port *ports;
	size_t n_ports;
	struct addr *addr_pool;		/* every endpoint's addrs; NULL: each owns its own */
	char *str_pool;			/* every endpoint's node and zone, or NULL */
};

/* Destinations a pod's capture leaves alone, from its annotations
 * weft.io/exclude-outbound-ports ("5432,6379"),
 * weft.io/exclude-outbound-cidrs ("198.18.9.0/24,fd00::/8") and, for
 * connections to the pod, weft.io/exclude-inbound-ports ("9090"). The bounds
 * are the datapath's (bpf/abi.h MESH_MAX_EXCL_*).
 */
#define OBJ_EXCL_PORTS_MAX 8
#define OBJ_EXCL_CIDRS_MAX 8

/* One SERVICE:PORT of a pod's annotation weft.io/register: this node's agent
 * registers the pod as an endpoint of SERVICE (etcd, ZooKeeper backends).
 */
#define OBJ_REGISTER_MAX 8
struct obj_pod_register {
	char service[OBJ_NS_MAX];	/* a Service name: DNS-1035 label (63) + NUL */
	uint16_t port;
};

/* status.phase; UNKNOWN also when the manifest has none. */
enum obj_pod_phase {
	OBJ_POD_PHASE_UNKNOWN = 0,
	OBJ_POD_PENDING,
	OBJ_POD_RUNNING,
	OBJ_POD_SUCCEEDED,
	OBJ_POD_FAILED,
};

/* The service account a Pod runs as when its spec names none. */
#define OBJ_DEFAULT_SERVICE_ACCOUNT "default"

struct obj_pod {
	/* metadata.uid, "" if absent: names this incarnation of the pod (an
	 * eviction's precondition, the CNI's pod check). Only Pods keep one.
	 */
	char uid[OBJ_UID_MAX];
	char node[OBJ_NAME_MAX];	/* spec.nodeName, "" if unscheduled */
	/* spec.serviceAccountName, OBJ_DEFAULT_SERVICE_ACCOUNT when absent: with
	 * the namespace, the pod's workload identity (docs/mtls.md).
	 */
	char service_account[OBJ_NAME_MAX];
	bool host_network;		/* spec.hostNetwork: never meshed, no CNI ADD */
	enum obj_pod_phase phase;	/* status.phase */
	bool terminating;		/* metadata.deletionTimestamp is set */
	struct addr ips[OBJ_POD_IPS_MAX];	/* status.podIPs (or podIP), port 0 */
	size_t n_ips;
	bool opted_out;			/* annotation weft.io/mesh: disabled */
	uint16_t excl_ports[OBJ_EXCL_PORTS_MAX];	/* outbound destination ports */
	size_t n_excl_ports;
	uint16_t excl_in_ports[OBJ_EXCL_PORTS_MAX];	/* the pod's own ports, inbound */
	size_t n_excl_in_ports;
	struct cidr excl_cidrs[OBJ_EXCL_CIDRS_MAX];
	size_t n_excl_cidrs;
	struct obj_pod_register registers[OBJ_REGISTER_MAX];	/* weft.io/register */
	size_t n_registers;
	enum obj_tristate sw[OBJ_SW_COUNT];	/* enum obj_switch */
};

/* No uid (a Pod's is in struct obj_pod) nor resourceVersion: nothing reads
 * them once an object is decoded (a watch resumes from the versions of its
 * list and events, not from the objects'), and at 10,000 Services they were
 * 2.5 MiB.
 */
struct obj {
	struct obj_key key;
	union {
		struct obj_namespace nspace;	/* key.kind == OBJ_NAMESPACE */
		struct obj_service svc;		/* OBJ_SERVICE */
		struct obj_slice slice;		/* OBJ_ENDPOINTSLICE */
		struct obj_pod pod;		/* OBJ_POD */
	};
};

/* An owned, growable array of objects. Embed it and use init/done. */
struct obj_list {
	struct obj **items;
	size_t n;
	size_t cap;
};

/* "Namespace", "Service", "EndpointSlice", "Pod". Never NULL. */
const char *obj_kind_name(enum obj_kind kind);
/* "TCP", "UDP", "SCTP". Never NULL. */
const char *obj_proto_name(enum obj_proto proto);

/* Order keys by kind, namespace, then name (strcmp); returns <0, 0 or >0. */
int obj_key_cmp(const struct obj_key *a, const struct obj_key *b);

/* Format "Service default/web" (or "Namespace demo") into @buf; returns @buf. */
const char *obj_key_fmt(const struct obj_key *k, char *buf, size_t len);

/* A zeroed object of @kind (no arrays), or NULL with errno set. It is
 * allocated to the size of @kind's member of the union only: never copy a
 * struct obj by value, use obj_dup().
 */
struct obj *obj_new(enum obj_kind kind);

/* A deep copy of @o, or NULL with errno set. */
struct obj *obj_dup(const struct obj *o);

/* Move the addresses and strings of @s's endpoints (each endpoint owning
 * its addrs, node and zone pointing anywhere) into the slice's two pools.
 * 0, or -ENOMEM with @s unchanged.
 */
int obj_slice_pack(struct obj_slice *s);
/* Give @dst (an object of @src's kind) @src's content, freeing what @dst
 * owned and @src itself: @dst keeps its address, so a table holding it
 * by pointer needs no update when a new version of an object comes. Takes
 * ownership of @src.
 */
void obj_move(struct obj *dst, struct obj *src);

/* Free @o and every array it owns. Accepts NULL and half-built objects. */
void obj_free(struct obj *o);

void obj_list_init(struct obj_list *l);

/* Free every object still in @l and the array; @l is left empty and reusable. */
void obj_list_done(struct obj_list *l);

/* Append @o. On success @l takes ownership of @o; on failure (-ENOMEM) the
 * caller still owns it. Returns 0 or -ENOMEM.
 */
int obj_list_add(struct obj_list *l, struct obj *o);

#endif /* WEFT_MODEL_OBJECTS_H */
