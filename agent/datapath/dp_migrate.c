// SPDX-License-Identifier: GPL-2.0-only
/* Pinned maps of another layout (dp_internal.h): an agent of another version
 * pinned a map whose type, key or value size, size or flags differ from the
 * object being loaded. libbpf would refuse to reuse it, and refusing to start
 * would leave the node's meshed pods cut off until someone removes the pins.
 * Instead, before the load, the old map's entries are read and its pin moved
 * aside (<name>_old: bpffs names take no dot); libbpf then creates and pins
 * the new map; after the load the entries are written into it, converted,
 * the programs and links are swapped as at every start, and the old pin goes.
 *
 * Converted: hash, LRU hash and array maps whose key size is unchanged; each
 * value keeps its common prefix and the rest is zero (fields appended at the
 * end of a value struct, the only kind of change abi.h makes, read as
 * "unset"). Not converted, only replaced: maps of another key size or type,
 * per-CPU counters, socket maps and socket storage, which the agent refills
 * (listeners at pod restore) or which live with their sockets.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dp_internal.h"
#include "log.h"

struct dp_moved {
	char name[64];
	char pin[PATH_MAX];		/* where the new map is pinned */
	char old_pin[PATH_MAX + 8];	/* where the old one was moved */
	uint32_t key_size, old_value_size;
	size_t n;			/* entries saved */
	unsigned char *keys, *values;	/* n * key_size, n * old_value_size */
	bool convert;			/* entries saved to be written back */
};

struct dp_migration {
	struct dp_moved *v;
	size_t n;
};

static bool convertible(enum bpf_map_type t)
{
	return t == BPF_MAP_TYPE_HASH || t == BPF_MAP_TYPE_LRU_HASH || t == BPF_MAP_TYPE_ARRAY;
}

/* Read every entry of @fd into @m (at most @max). 0 or -errno. */
static int save_entries(int fd, struct dp_moved *m, uint32_t max)
{
	unsigned char *key = calloc(1, m->key_size), *next = calloc(1, m->key_size);
	void *prev = NULL;
	int err = 0;

	m->keys = calloc(max ? max : 1, m->key_size);
	m->values = calloc(max ? max : 1, m->old_value_size);
	if (!key || !next || !m->keys || !m->values) {
		err = -ENOMEM;
		goto out;
	}
	while (m->n < max && !bpf_map_get_next_key(fd, prev, next)) {
		unsigned char *k = m->keys + m->n * m->key_size;
		unsigned char *v = m->values + m->n * m->old_value_size;

		memcpy(k, next, m->key_size);
		/* An entry deleted meanwhile (LRU) is skipped, not an error. */
		if (!bpf_map_lookup_elem(fd, k, v))
			m->n++;
		memcpy(key, next, m->key_size);
		prev = key;
	}
out:
	free(key);
	free(next);
	return err;
}

static void moved_free(struct dp_moved *m)
{
	free(m->keys);
	free(m->values);
}

void dp_migration_free(struct dp_migration *mig)
{
	if (!mig)
		return;
	for (size_t i = 0; i < mig->n; i++)
		moved_free(&mig->v[i]);
	free(mig->v);
	free(mig);
}

/* @map's pin holds a map of another layout: save it and move it aside. */
static int move_aside(struct dp_migration *mig, struct bpf_map *map, const char *pin, int fd,
		      const struct bpf_map_info *info)
{
	struct dp_moved *m;
	void *v = realloc(mig->v, (mig->n + 1) * sizeof(*mig->v));
	int err = 0;

	if (!v)
		return -ENOMEM;
	mig->v = v;
	m = &mig->v[mig->n];
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", bpf_map__name(map));
	snprintf(m->pin, sizeof(m->pin), "%s", pin);
	snprintf(m->old_pin, sizeof(m->old_pin), "%s_old", pin);
	m->key_size = info->key_size;
	m->old_value_size = info->value_size;
	m->convert = convertible(info->type) && info->type == bpf_map__type(map) &&
		     info->key_size == bpf_map__key_size(map);
	if (m->convert)
		err = save_entries(fd, m, bpf_map__max_entries(map));
	if (!err && rename(pin, m->old_pin) == -1)
		err = -errno;
	if (err) {
		moved_free(m);
		return err;
	}
	log_warn("datapath: map %s pinned by another version has another layout (type %u key %u value %u entries %u flags %#x; now %u %u %u %u %#x): migrating %zu entr%s",
		 m->name, info->type, info->key_size, info->value_size, info->max_entries,
		 info->map_flags, bpf_map__type(map), bpf_map__key_size(map),
		 bpf_map__value_size(map), bpf_map__max_entries(map), bpf_map__map_flags(map), m->n,
		 m->n == 1 ? "y" : "ies");
	mig->n++;
	return 0;
}

int dp_migrate_prepare(struct bpf_object *obj, struct dp_migration **out)
{
	struct dp_migration *mig = calloc(1, sizeof(*mig));
	struct bpf_map *map;
	int err = 0;

	*out = NULL;
	if (!mig)
		return -ENOMEM;
	bpf_object__for_each_map(map, obj) {
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);
		const char *pin = bpf_map__pin_path(map);
		int fd;

		if (bpf_map__is_internal(map) || !pin)
			continue;
		fd = bpf_obj_get(pin);
		if (fd < 0) {
			if (fd == -ENOENT)
				continue;
			err = fd;
			break;
		}
		err = bpf_obj_get_info_by_fd(fd, &info, &len);
		if (!err && (info.type != bpf_map__type(map) ||
			     info.key_size != bpf_map__key_size(map) ||
			     info.value_size != bpf_map__value_size(map) ||
			     info.max_entries != bpf_map__max_entries(map) ||
			     info.map_flags != bpf_map__map_flags(map)))
			err = move_aside(mig, map, pin, fd, &info);
		close(fd);
		if (err)
			break;
	}
	if (err) {
		dp_migrate_abort(mig);
		return log_errno(err, "datapath: migrate the pinned maps of another layout");
	}
	*out = mig;
	return 0;
}

void dp_migrate_abort(struct dp_migration *mig)
{
	if (!mig)
		return;
	/* Back where they were: the next start tries again. */
	for (size_t i = 0; i < mig->n; i++)
		if (rename(mig->v[i].old_pin, mig->v[i].pin) == -1)
			log_warn("datapath: cannot move '%s' back: %m", mig->v[i].old_pin);
	dp_migration_free(mig);
}

void dp_migrate_finish(struct dp_migration *mig, struct bpf_object *obj)
{
	if (!mig)
		return;
	for (size_t i = 0; i < mig->n; i++) {
		struct dp_moved *m = &mig->v[i];
		struct bpf_map *map = bpf_object__find_map_by_name(obj, m->name);
		uint32_t vsize = map ? bpf_map__value_size(map) : 0;
		unsigned char *val = vsize ? calloc(1, vsize) : NULL;
		size_t copied = 0;

		for (size_t k = 0; m->convert && val && k < m->n; k++) {
			uint32_t common = vsize < m->old_value_size ? vsize : m->old_value_size;

			memset(val, 0, vsize);
			memcpy(val, m->values + k * m->old_value_size, common);
			if (!bpf_map_update_elem(bpf_map__fd(map), m->keys + k * m->key_size, val,
						 BPF_ANY))
				copied++;
		}
		free(val);
		if (unlink(m->old_pin) == -1)
			log_warn("datapath: cannot remove the old map's pin '%s': %m", m->old_pin);
		log_info("datapath: migrated map %s: %zu of %zu entr%s copied%s", m->name, copied,
			 m->n, m->n == 1 ? "y" : "ies",
			 m->convert ? "" : " (not convertible: the agent refills it)");
	}
	dp_migration_free(mig);
}
