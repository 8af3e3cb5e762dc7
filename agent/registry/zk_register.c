// SPDX-License-Identifier: GPL-2.0-only
/* This node's EndpointSlices in ZooKeeper: one ephemeral znode each under
 * ROOT/endpointslices/<namespace>/, owned by the agent's session. When the
 * agent dies its session expires and the server deletes them: a dead node's
 * endpoints need nobody to clean up. A znode left by an earlier session of
 * this node (an agent restarted before its old session expired) would vanish
 * with that session, so it is replaced, not updated. A successor that
 * resumed its predecessor's session (docs/lifecycle.md) owns that session's
 * znodes already: the mirror hands them over (zk_register_found()), the
 * wanted ones are kept as they are and the others removed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "log.h"
#include "registry/zk_register.h"
#include "registry/zk_session.h"

/* Wait for one call just issued (@rc: what zoo_a*() returned). */
static int finish(struct zk *z, struct zk_req *r, int rc)
{
	zk_req_issued(r, rc);
	return zk_wait(z, r, 1);
}

static int create(struct zk *z, const char *abs, const char *data, int len, int flags)
{
	struct zk_req r = { .z = z };
	int err;

	err = finish(z, &r, zoo_acreate(z->zh, abs, data, len, &ZOO_OPEN_ACL_UNSAFE, flags,
					zk_string_done, &r));
	return err ? err : zk_errno(r.rc);
}

/* Create every missing ancestor of @abs as an empty persistent znode. */
static int make_parents(struct zk *z, const char *abs)
{
	char path[ZK_PATH_MAX];
	int err = 0;

	snprintf(path, sizeof(path), "%s", abs);
	for (char *p = strchr(path + 1, '/'); p && !err; p = strchr(p + 1, '/')) {
		*p = '\0';
		err = create(z, path, NULL, -1, ZOO_PERSISTENT);
		if (err == -EEXIST)
			err = 0;
		*p = '/';
	}
	return err;
}

/* Make @abs an ephemeral znode of this session holding @manifest. */
static int ensure(struct zk *z, const char *abs, const char *manifest)
{
	struct zk_req r = { .z = z }, d = { .z = z };
	int len = (int)strlen(manifest), err;

	err = finish(z, &r, zoo_aget(z->zh, abs, 0, zk_data_done, &r));
	if (err)
		goto out;
	if (r.rc == ZOK && r.stat.ephemeralOwner == z->session_id) {
		if (r.len != len || memcmp(r.data, manifest, (size_t)len)) {
			struct zk_req s = { .z = z };

			err = finish(z, &s, zoo_aset(z->zh, abs, manifest, len, -1, zk_stat_done, &s));
			if (!err)
				err = zk_errno(s.rc);
		}
		goto out;
	}
	if (r.rc == ZOK) {
		/* Another session's (or persistent): it would not go with ours. */
		err = finish(z, &d, zoo_adelete(z->zh, abs, -1, zk_void_done, &d));
		if (!err && d.rc != ZOK && d.rc != ZNONODE)
			err = zk_errno(d.rc);
	} else if (r.rc != ZNONODE) {
		err = zk_errno(r.rc);
	}
	if (err)
		goto out;
	err = create(z, abs, manifest, len, ZOO_EPHEMERAL);
	if (err == -ENOENT) {
		err = make_parents(z, abs);
		if (!err)
			err = create(z, abs, manifest, len, ZOO_EPHEMERAL);
	}
out:
	zk_req_clear(&r);
	return err;
}

/* Delete @abs if this session owns it. */
static int remove_own(struct zk *z, const char *abs)
{
	struct zk_req r = { .z = z }, d = { .z = z };
	int err;

	err = finish(z, &r, zoo_aexists(z->zh, abs, 0, zk_stat_done, &r));
	if (err || r.rc == ZNONODE)
		return err;
	if (r.rc != ZOK)
		return zk_errno(r.rc);
	if (r.stat.ephemeralOwner != z->session_id)
		return 0;
	err = finish(z, &d, zoo_adelete(z->zh, abs, -1, zk_void_done, &d));
	if (!err && d.rc != ZOK && d.rc != ZNONODE)
		err = zk_errno(d.rc);
	return err;
}

static struct zk_eph *find_eph(struct zk *z, const char *rel)
{
	for (size_t i = 0; i < z->n_ephs; i++)
		if (!strcmp(z->ephs[i].rel, rel))
			return &z->ephs[i];
	return NULL;
}

/* Keep @rel with @manifest, or with NULL (found, content unknown). */
static int track(struct zk *z, const char *rel, const char *manifest)
{
	struct zk_eph *e = find_eph(z, rel);
	char *copy = manifest ? strdup(manifest) : NULL;

	if (manifest && !copy)
		return -ENOMEM;
	if (!e) {
		if (array_reserve(&z->ephs, &z->cap_ephs, z->n_ephs, sizeof(*z->ephs), 8)) {
			free(copy);
			return -ENOMEM;
		}
		e = &z->ephs[z->n_ephs++];
		snprintf(e->rel, sizeof(e->rel), "%s", rel);
		e->manifest = NULL;
	}
	free(e->manifest);
	e->manifest = copy;
	return 0;
}

static int slice_rel(const struct reg_local_slice *s, char *buf, size_t len)
{
	struct obj_key k = { .kind = OBJ_ENDPOINTSLICE };

	snprintf(k.ns, sizeof(k.ns), "%s", s->ns);
	snprintf(k.name, sizeof(k.name), "%s", s->name);
	return reg_kv_path(&k, buf, len);
}

static int sync_all(struct zk *z, bool recheck)
{
	char rel[REG_KV_PATH_MAX], abs[ZK_PATH_MAX];
	int err = reg_local_want_take(&z->reg_want, &z->want, &z->lock);

	for (size_t i = 0; i < z->reg_want.n && !err; i++) {
		const struct reg_local_slice *s = &z->reg_want.slices[i];
		struct zk_eph *e;

		if (slice_rel(s, rel, sizeof(rel)) || zk_abs(z, rel, abs, sizeof(abs)))
			continue;
		e = find_eph(z, rel);
		if (e && !recheck && e->manifest && !strcmp(e->manifest, s->manifest))
			continue;
		err = ensure(z, abs, s->manifest);
		if (!err)
			err = track(z, rel, s->manifest);
		if (!err)
			log_debug("registry: %s: registered '%s'", z->source, abs);
	}
	if (!z->reg_want.complete)
		return err;	/* a partial set removes nothing (struct reg_local_want) */
	for (size_t i = z->n_ephs; i-- > 0 && !err;) {
		bool wanted = false;

		for (size_t j = 0; j < z->reg_want.n && !wanted; j++)
			wanted = !slice_rel(&z->reg_want.slices[j], rel, sizeof(rel)) &&
				 !strcmp(rel, z->ephs[i].rel);
		if (wanted || zk_abs(z, z->ephs[i].rel, abs, sizeof(abs)))
			continue;
		err = remove_own(z, abs);
		if (err)
			break;
		log_debug("registry: %s: deregistered '%s'", z->source, abs);
		free(z->ephs[i].manifest);
		z->ephs[i] = z->ephs[--z->n_ephs];
	}
	return err;
}

int zk_register_sync(struct zk *z, bool recheck)
{
	int err = sync_all(z, recheck);

	if (err && err != -ECANCELED && err != -EAGAIN && !z->reg_failing)
		log_warn("registry: %s: cannot register this node's endpoints: %s; retrying, "
			 "ignoring",
			 z->source, strerror(-err));
	else if (!err && z->reg_failing)
		log_info("registry: %s: this node's endpoints are registered again", z->source);
	z->reg_failing = err && err != -ECANCELED && err != -EAGAIN;
	return err;
}

int zk_register_found(struct zk *z, const char *rel)
{
	if (!z->registers || find_eph(z, rel))
		return 0;
	log_debug("registry: %s: '%s' is this session's already", z->source, rel);
	return track(z, rel, NULL);
}

void zk_register_forget(struct zk *z)
{
	for (size_t i = 0; i < z->n_ephs; i++)
		free(z->ephs[i].manifest);
	free(z->ephs);
	z->ephs = NULL;
	z->n_ephs = z->cap_ephs = 0;
}
