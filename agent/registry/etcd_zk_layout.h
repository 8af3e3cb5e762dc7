/* SPDX-License-Identifier: GPL-2.0-only */
/* The key-value layout shared by the etcd and ZooKeeper registries: one key
 * (znode) per object, below a prefix (root), holding the object's JSON
 * manifest — the same documents as the file registry, read by the same
 * decoder (registry/decode.h):
 *
 *   namespaces/<name>
 *   services/<namespace>/<name>
 *   endpointslices/<namespace>/<name>
 *   pods/<namespace>/<name>
 *
 * See docs/registry-etcd-zookeeper.md.
 */
#ifndef WEFT_REG_ETCD_ZK_LAYOUT_H
#define WEFT_REG_ETCD_ZK_LAYOUT_H

#include <stddef.h>

#include "model/objects.h"

/* Largest value read: both servers refuse far smaller ones by default
 * (etcd 1.5 MiB, ZooKeeper 1 MiB), so anything bigger is not ours.
 */
#define REG_KV_VALUE_MAX (4u << 20)

/* Room for a relative path: plural, namespace, name, two slashes, NUL. */
#define REG_KV_PATH_MAX (16 + OBJ_NS_MAX + OBJ_NAME_MAX)

/* "namespaces", "services", "endpointslices", "pods". Never NULL. */
const char *reg_kv_plural(enum obj_kind kind);

/* The relative path of @key ("services/shop/web", "namespaces/shop") into
 * @buf. 0 or -ENAMETOOLONG.
 */
int reg_kv_path(const struct obj_key *key, char *buf, size_t len);

/* Parse the relative path @rel (@len bytes, not NUL-terminated) into @key.
 * 0, or -EINVAL when @rel is not the path of an object (a directory, an
 * unknown plural, an empty or oversized segment, a segment too many): such
 * keys are not ours and are ignored. Does not block.
 */
int reg_kv_parse_path(const char *rel, size_t len, struct obj_key *key);

/* Decode the value @val (@len bytes) stored at @key: one JSON object whose
 * kind, namespace and name must be @key's. On success returns 0 and a new
 * object in @out (the caller owns it). -EINVAL with the reason in @err
 * ("not JSON: ...", the decoder's message, or "holds Service shop/api"),
 * or -ENOMEM. Does not block.
 */
int reg_kv_decode(const struct obj_key *key, const char *val, size_t len, struct obj **out,
		  char *err, size_t errlen);

#endif /* WEFT_REG_ETCD_ZK_LAYOUT_H */
