/* SPDX-License-Identifier: GPL-2.0-only */
/* Registry objects: the parts of Kubernetes Namespaces, Services,
 * EndpointSlices and Pods that the mesh uses, decoded and validated once
 * (registry/decode.c) and then handed to the model, which owns them.
 * Every array is bounded by a named constant; no string is ever truncated.
 */
#ifndef WEFT_REG_OBJECTS_H
#define WEFT_REG_OBJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define REG_NS_MAX 64		/* DNS-1123 label (63) + NUL */
#define REG_NAME_MAX 254	/* DNS-1123 subdomain (253) + NUL */
#define REG_UID_MAX 64		/* a UUID is 36 */
#define REG_RV_MAX 64		/* resourceVersion: opaque, an etcd revision in practice */
#define REG_PORT_NAME_MAX 64	/* service/slice port names are DNS-1123 labels */
#define REG_IANA_NAME_MAX 16	/* a named targetPort: IANA service name (15) + NUL */
#define REG_ZONE_MAX 64		/* topology.kubernetes.io/zone value (63) + NUL */
#define REG_ANNOT_KEY_MAX 72	/* "weft.io/" + name part (63) + NUL */
#define REG_ANNOT_VALUE_MAX 256	/* weft.io/ values are short settings */

#define REG_SVC_IPS_MAX 2	/* spec.clusterIPs: one per family at most */
#define REG_SVC_PORTS_MAX 100	/* what one EndpointSlice can carry */
#define REG_SVC_ANNOTATIONS_MAX 32	/* weft.io/ annotations kept per Service */
#define REG_SLICE_ENDPOINTS_MAX 1000	/* API limit of endpoints[] */
#define REG_SLICE_PORTS_MAX 100		/* API limit of ports[] */
#define REG_EP_ADDRS_MAX 100		/* API limit of endpoints[].addresses[] */
#define REG_POD_IPS_MAX 2	/* status.podIPs: one per family */

enum reg_kind {
	REG_NAMESPACE,
	REG_SERVICE,
	REG_ENDPOINTSLICE,
	REG_POD,
};
#define REG_KIND_COUNT 4

enum reg_proto {
	REG_PROTO_TCP,		/* the default when a manifest omits protocol */
	REG_PROTO_UDP,
	REG_PROTO_SCTP,
};

/* What identifies an object inside one source. */
struct reg_key {
	enum reg_kind kind;
	char ns[REG_NS_MAX];	/* "" for Namespaces (cluster-scoped) */
	char name[REG_NAME_MAX];
};

struct reg_namespace {
	bool meshed;		/* label weft.io/mesh=enabled */
};

struct reg_svc_port {
	char name[REG_PORT_NAME_MAX];	/* "" for the single unnamed port */
	enum reg_proto proto;
	uint16_t port;
	uint16_t target_port;		/* numeric targetPort (defaults to port); 0 if named */
	char target_port_name[REG_IANA_NAME_MAX];	/* named container port, else "" */
};

struct reg_annotation {
	char key[REG_ANNOT_KEY_MAX];	/* always starts with "weft.io/" */
	char value[REG_ANNOT_VALUE_MAX];
};

struct reg_service {
	struct addr vips[REG_SVC_IPS_MAX];	/* port 0; none for a headless Service */
	size_t n_vips;
	struct reg_svc_port *ports;		/* n_ports entries, every protocol */
	size_t n_ports;
	struct reg_annotation *annotations;	/* only keys under weft.io/ */
	size_t n_annotations;
};

struct reg_slice_port {
	char name[REG_PORT_NAME_MAX];	/* "" matches the Service's unnamed port */
	enum reg_proto proto;
	uint16_t port;			/* 0 when the manifest leaves it unset */
};

struct reg_endpoint {
	struct addr *addrs;		/* 1..REG_EP_ADDRS_MAX, family of the slice, port 0 */
	size_t n_addrs;
	bool ready;			/* conditions.ready; absent or null counts as ready */
	char node[REG_NAME_MAX];	/* "" if unknown */
	char zone[REG_ZONE_MAX];	/* "" if unknown */
};

struct reg_slice {
	char service[REG_NAME_MAX];	/* label kubernetes.io/service-name */
	int family;			/* AF_INET or AF_INET6, from addressType */
	struct reg_endpoint *endpoints;
	size_t n_endpoints;
	struct reg_slice_port *ports;
	size_t n_ports;
};

/* Outbound destinations a pod's capture leaves alone, from its annotations
 * weft.io/exclude-outbound-ports ("5432,6379") and
 * weft.io/exclude-outbound-cidrs ("198.18.9.0/24,fd00::/8"). The bounds are
 * the datapath's (bpf/abi.h MESH_MAX_EXCL_*).
 */
#define REG_EXCL_PORTS_MAX 8
#define REG_EXCL_CIDRS_MAX 8

/* One SERVICE:PORT of a pod's annotation weft.io/register: this node's agent
 * registers the pod as an endpoint of SERVICE (etcd, ZooKeeper backends).
 */
#define REG_REGISTER_MAX 8
struct reg_pod_register {
	char service[REG_NS_MAX];	/* a Service name: DNS-1035 label (63) + NUL */
	uint16_t port;
};

struct reg_pod {
	char node[REG_NAME_MAX];	/* spec.nodeName, "" if unscheduled */
	struct addr ips[REG_POD_IPS_MAX];	/* status.podIPs (or podIP), port 0 */
	size_t n_ips;
	bool opted_out;			/* annotation weft.io/mesh: disabled */
	uint16_t excl_ports[REG_EXCL_PORTS_MAX];
	size_t n_excl_ports;
	struct cidr excl_cidrs[REG_EXCL_CIDRS_MAX];
	size_t n_excl_cidrs;
	struct reg_pod_register registers[REG_REGISTER_MAX];	/* weft.io/register */
	size_t n_registers;
};

struct reg_obj {
	struct reg_key key;
	char uid[REG_UID_MAX];		/* metadata.uid, "" if absent */
	char resource_version[REG_RV_MAX];	/* metadata.resourceVersion, "" if absent */
	union {
		struct reg_namespace nspace;	/* key.kind == REG_NAMESPACE */
		struct reg_service svc;		/* REG_SERVICE */
		struct reg_slice slice;		/* REG_ENDPOINTSLICE */
		struct reg_pod pod;		/* REG_POD */
	};
};

/* An owned, growable array of objects. Embed it and use init/done. */
struct reg_obj_list {
	struct reg_obj **items;
	size_t n;
	size_t cap;
};

/* "Namespace", "Service", "EndpointSlice", "Pod". Never NULL. */
const char *reg_kind_name(enum reg_kind kind);
/* "TCP", "UDP", "SCTP". Never NULL. */
const char *reg_proto_name(enum reg_proto proto);

/* Order keys by kind, namespace, then name (strcmp); returns <0, 0 or >0. */
int reg_key_cmp(const struct reg_key *a, const struct reg_key *b);

/* Format "Service default/web" (or "Namespace demo") into @buf; returns @buf. */
const char *reg_key_fmt(const struct reg_key *k, char *buf, size_t len);

/* A zeroed object of @kind (no arrays), or NULL with errno set. */
struct reg_obj *reg_obj_new(enum reg_kind kind);

/* A deep copy of @o, or NULL with errno set. */
struct reg_obj *reg_obj_dup(const struct reg_obj *o);

/* Free @o and every array it owns. Accepts NULL and half-built objects. */
void reg_obj_free(struct reg_obj *o);

void reg_obj_list_init(struct reg_obj_list *l);

/* Free every object still in @l and the array; @l is left empty and reusable. */
void reg_obj_list_done(struct reg_obj_list *l);

/* Append @o. On success @l takes ownership of @o; on failure (-ENOMEM) the
 * caller still owns it. Returns 0 or -ENOMEM.
 */
int reg_obj_list_add(struct reg_obj_list *l, struct reg_obj *o);

#endif /* WEFT_REG_OBJECTS_H */
