/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to model.c and catalogue.c: turning the merged registry objects into
 * a catalogue snapshot. Nothing else builds catalogues.
 */
#ifndef WEFT_CATALOGUE_BUILD_H
#define WEFT_CATALOGUE_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "model/catalogue.h"
#include "model/objects.h"

/* A new catalogue (refcount 1) with @generation, from @objs: @n objects sorted
 * by obj_key_cmp() with unique keys (the model's merge of every source).
 * A Service with no cluster IP that is not headless gets one VIP per family
 * its EndpointSlices have (the first range's family when it has none) from
 * @vip_ranges (@n_ranges, at most one per family; vip_alloc.h). Borrows @objs
 * and @vip_ranges for the call only: the snapshot copies what it keeps.
 * Returns NULL with errno set on allocation failure. Does not block.
 */
struct catalogue *catalogue_build(const struct obj *const *objs, size_t n, uint64_t generation,
				  const struct cidr *vip_ranges, size_t n_ranges);

#endif /* WEFT_CATALOGUE_BUILD_H */
