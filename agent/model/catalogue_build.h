/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to the model (model.c, catalogue.c, cat_service.c, cat_builder.c):
 * how a catalogue snapshot is laid out and built. Nothing else builds
 * catalogues.
 *
 * A snapshot is assembled from parts that consecutive snapshots share:
 *   - one cat_svc_obj per Service (its ports, endpoints and their strings in
 *     one allocation), immutable and reference counted, rebuilt only when
 *     its Service, one of its EndpointSlices, its allocated VIPs or the pod
 *     (identity) of one of its endpoint IPs change;
 *   - one cat_people (namespaces and pods), shared until one of them changes;
 *   - per snapshot: the array of service pointers, the port offsets and the
 *     VIP hash table, re-assembled from those parts (pointer work only).
 * The builder (cat_builder) keeps what it needs to know which Services a
 * registry change touches: the EndpointSlices filed under each Service.
 */
#ifndef WEFT_CATALOGUE_BUILD_H
#define WEFT_CATALOGUE_BUILD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "model/catalogue.h"
#include "model/objects.h"

struct cat_ns {
	char name[OBJ_NS_MAX];
	bool meshed;
	enum obj_tristate sw[OBJ_SW_COUNT];
	enum obj_mtls_mode mtls_mode;
	char allow_from[OBJ_ANNOT_VALUE_MAX];
};

/* A meshed pod's IP, to give endpoints their pod's identity. */
struct pod_ip {
	struct addr ip;			/* port 0 */
	const struct cat_pod *pod;	/* NULL: two live pods claim the IP */
};

/* The namespaces and pods of a snapshot. Service objects built against it
 * hold a reference: their endpoints point at its pods.
 */
struct cat_people {
	atomic_uint refs;
	struct cat_ns *nss;		/* sorted by name */
	size_t n_nss;
	struct cat_pod *pods;		/* sorted by namespace, name */
	size_t n_pods;
	struct pod_ip *pod_ips;		/* meshed pods' IPs, sorted, unique */
	size_t n_pod_ips;
};

/* One built Service. svc.ports[i].slot is unique among the live service
 * ports of the snapshots the builder made: a stable small index the proxy
 * keys its per-port state by (catalogue.h).
 */
struct cat_svc_obj {
	atomic_uint refs;
	struct cat_people *people;	/* a reference on the people its endpoints'
					 * pods are in; NULL: none is a pod */
	struct cat_service svc;
	/* followed by its ports, their endpoints and their node/zone strings */
};

struct catalogue {
	atomic_uint refs;
	uint64_t generation;
	uint64_t changes;		/* catalogue_changes() */
	struct cat_people *people;	/* never NULL */
	struct cat_svc_obj **svcs;	/* sorted by namespace, name; a reference each */
	size_t n_services;
	uint32_t *port_base;		/* n_services + 1: first global port index of each */
	size_t n_ports;
	uint32_t n_slots;		/* above every port's slot (catalogue.h) */
	struct cat_svc_port **table;	/* open addressing on addr_hash(vip) with linear
					 * probing; NULL = free */
	size_t table_mask;		/* table size - 1 (a power of two); no table
					 * when n_ports is 0 */
	size_t n_dup_vips;		/* ports left out: their VIP:port was taken */
	struct cat_vip_stats vip_stats;
};

/* The pods and namespaces of @objs (@n, sorted by key, kinds Namespace and
 * Pod only) as a cat_people (refcount 1), or NULL with errno set.
 */
struct cat_people *cat_people_build(const struct obj *const *objs, size_t n);
struct cat_people *cat_people_ref(struct cat_people *p);
void cat_people_unref(struct cat_people *p);

/* Hands out the proxy's per-port slots: the lowest released one first. */
struct cat_slots {
	uint32_t *free;
	size_t n_free, cap_free;
	uint32_t next;
};

/* Service @svc built into one object (refcount 1) with @vips (@n_vips,
 * ascending, port 0) from @vip_source, endpoints resolved from @slices (@n,
 * its EndpointSlices sorted by name) and identities from @people. Slots come
 * from @slots. NULL with errno set.
 */
struct cat_svc_obj *cat_svc_build(const struct obj *svc, const struct obj *const *slices,
				  size_t n, const struct addr *vips, size_t n_vips,
				  enum cat_vip_source vip_source, struct cat_people *people,
				  struct cat_slots *slots);
/* Give @o's slots back to @slots (the builder drops its version). */
void cat_svc_release_slots(const struct cat_svc_obj *o, struct cat_slots *slots);
struct cat_svc_obj *cat_svc_ref(struct cat_svc_obj *o);
/* Drop a reference; frees on the last, from whichever thread. Accepts NULL. */
void cat_svc_unref(struct cat_svc_obj *o);

/* A snapshot (refcount 1) of @svcs (@n, sorted by namespace, name: each
 * gets a reference) and @people (referenced). @prev, the snapshot assembled
 * before (or NULL), lends what did not change: its VIP table is copied and
 * patched with the Services that differ. NULL with errno set.
 */
struct catalogue *catalogue_assemble(uint64_t generation, struct cat_people *people,
				     struct cat_svc_obj *const *svcs, size_t n,
				     struct cat_vip_stats vip_stats, const struct catalogue *prev);

/* What the builder reads the model through: the winning object of a key
 * across sources (NULL: none), and every winning object of a kind sorted by
 * key (*@out malloc'ed, the count returned, or -ENOMEM).
 */
struct cat_lookup {
	const struct obj *(*find)(void *ctx, enum obj_kind kind, const char *ns,
				  const char *name);
	long (*collect)(void *ctx, enum obj_kind kind, const struct obj ***out);
	void *ctx;
};

struct cat_builder;

/* NULL with errno set. */
struct cat_builder *cat_builder_new(void);
void cat_builder_free(struct cat_builder *b);

/* A new snapshot (refcount 1) with @generation after the objects of @dirty
 * (@n_dirty keys: kind, ns, name; duplicates allowed) changed, or after
 * anything changed when @all. Rebuilds the Services those keys touch and
 * those whose allocated VIPs move; the result equals what a build from
 * scratch gives. A Service with no cluster IP that is not headless gets one
 * VIP per family its EndpointSlices have (the first range's family when it
 * has none) from @vip_ranges (@n_ranges, at most one per family;
 * vip_alloc.h); a change of ranges needs @all. NULL with errno set (the
 * builder is then reset: the next build must pass @all).
 */
struct catalogue *cat_builder_build(struct cat_builder *b, const struct cat_lookup *l,
				    const struct obj_key *dirty, size_t n_dirty, bool all,
				    uint64_t generation, const struct cidr *vip_ranges,
				    size_t n_ranges);

#endif /* WEFT_CATALOGUE_BUILD_H */
