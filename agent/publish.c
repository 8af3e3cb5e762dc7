// SPDX-License-Identifier: GPL-2.0-only
/* The agent's publish step (agent.h): a new catalogue from the model, handed
 * to the proxy workers and the pods, this node's endpoints handed to
 * self-registration, and the node state file (RUN_DIR/mesh-state.json, format
 * in lib/cni_proto.h) the CNI plugin reads when the agent is away.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cni_proto.h"
#include "fs.h"
#include "config.h"

#include "agent.h"
#include "log.h"
#include "model/catalogue.h"
#include "model/model.h"
#include "pods.h"
#include "proxy/workers.h"
#include "registry/registry.h"
#include "selfreg.h"

/* Whether every registry source has been SYNCED once (a file as soon as it
 * loaded, a network backend after its first full listing).
 */
static bool registries_synced(const struct agent *a)
{
	struct reg_source_status st[AGENT_MAX_REGISTRIES];
	size_t n = a->sink ? reg_sink_status(a->sink, st, AGENT_MAX_REGISTRIES) : 0;

	for (unsigned int i = 0; i < a->n_regs; i++) {
		bool synced = false;

		for (size_t j = 0; j < n && j < AGENT_MAX_REGISTRIES; j++)
			if (!strcmp(st[j].source, a->regs[i].spec))
				synced = st[j].synced_once;
		if (!synced)
			return false;
	}
	return true;
}

/* Read and decode the state file @path into @st. 0, or -errno (-ENOENT: no
 * file) with @st empty.
 */
static int state_read(const char *path, struct cni_proto_state *st)
{
	char *buf, err[128];
	size_t len;
	int rc;

	*st = (struct cni_proto_state){ 0 };
	rc = fs_read_file(path, CNI_PROTO_MAX_STATE, &buf, &len, NULL);
	if (rc)
		return rc;
	rc = cni_proto_state_decode(buf, st, err, sizeof(err));
	free(buf);
	return rc;
}

static bool state_same(const struct cni_proto_state *x, const struct cni_proto_state *y)
{
	if (x->synced != y->synced || x->n_meshed != y->n_meshed)
		return false;
	for (size_t i = 0; i < x->n_meshed; i++) {
		if (strcmp(x->meshed[i], y->meshed[i]))
			return false;
	}
	return true;
}

/* Replace @path by @st's encoding atomically: a reader sees the old file or
 * the new one, never a part. 0 or -errno.
 */
static int state_write(const char *path, const struct cni_proto_state *st)
{
	char tmp[PATH_MAX];
	size_t len;
	char *text = cni_proto_state_encode(st, &len);
	int fd, err = 0;

	if (!text)
		return -errno;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		free(text);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		err = -errno;
	else if (write(fd, text, len) != (ssize_t)len || fsync(fd))
		err = errno ? -errno : -EIO;
	if (fd >= 0 && close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		(void)unlink(tmp);
	free(text);
	return err;
}

/* Record which namespaces are meshed for the CNI plugin, which lets pods of
 * other namespaces start while the agent is down or syncing (docs/cni.md).
 * Before the first sync the catalogue may not know every namespace yet, so
 * the file keeps the last synced list and only its "synced" flag drops; with
 * no file at all (first start on this node) nothing is written, and the
 * plugin fails closed. Written only when the flag or the list changes.
 */
static void write_node_state(struct agent *a)
{
	struct cni_proto_state *old = &a->node_state, st = {
		.generation = catalogue_generation(a->cat),
	};
	char path[PATH_MAX];
	size_t n_ns = catalogue_n_namespaces(a->cat);
	int rc = 0;

	if (!a->cfg || snprintf(path, sizeof(path), "%s/%s", a->cfg->run_dir,
				CNI_PROTO_STATE_FILE) >= (int)sizeof(path))
		return;
	if (!a->node_state_loaded) {
		/* What a previous agent left: no file, or an unreadable one, reads
		 * as none.
		 */
		(void)state_read(path, old);
		a->node_state_loaded = true;
	}
	if (!a->registries_synced) {
		if (!old->synced)
			return;
		old->synced = false;
		rc = state_write(path, old);
		if (rc)
			old->synced = true;	/* the file still says so: try again */
		goto out_log;
	}
	st.synced = true;
	st.meshed = calloc(n_ns + 1, sizeof(*st.meshed));
	if (!st.meshed) {
		rc = -ENOMEM;
		goto out_log;
	}
	for (size_t i = 0; i < n_ns; i++) {
		bool meshed;
		const char *ns = catalogue_ns_at(a->cat, i, &meshed);

		if (meshed && strlen(ns) < sizeof(*st.meshed))
			memcpy(st.meshed[st.n_meshed++], ns, strlen(ns) + 1);
	}
	if (state_same(old, &st))
		goto out_done;
	rc = state_write(path, &st);
	if (!rc) {
		cni_proto_state_done(old);
		*old = st;
		st = (struct cni_proto_state){ 0 };
	}
out_log:
	if (rc)
		log_warn("node state: cannot write '%s': %s (the CNI plugin decides from the "
			 "previous one)", path, strerror(-rc));
out_done:
	cni_proto_state_done(&st);
}

/* Say which services lost their home VIP or got none, when that changed
 * since the previous snapshot (a build happens on every registry change).
 */
static void log_vip_changes(const struct catalogue *old, const struct catalogue *c)
{
	const struct cat_service *s, *was;
	char buf[ADDR_STRLEN];

	for (size_t i = 0; (s = catalogue_service_at(c, i)); i++) {
		if (s->vip_source != CAT_VIP_PROBED && s->vip_source != CAT_VIP_EXHAUSTED)
			continue;
		was = old ? catalogue_find_service(old, s->ns, s->name) : NULL;
		if (was && was->vip_source == s->vip_source && was->n_vips == s->n_vips &&
		    (!s->n_vips || addr_equal(&was->vips[0], &s->vips[0])))
			continue;
		if (s->vip_source == CAT_VIP_EXHAUSTED)
			log_warn("vip: %s/%s has no VIP: --vip-range is full", s->ns, s->name);
		else
			log_warn("vip: %s/%s: its home address is taken (collision), allocated %s",
				 s->ns, s->name, addr_fmt_ip(&s->vips[0], buf, sizeof(buf)));
	}
}

int agent_publish(struct agent *a)
{
	struct catalogue *c = model_build(a->model);

	if (!c)
		return log_errno(-errno, "build catalogue");
	log_vip_changes(a->cat, c);
	catalogue_unref(a->cat);
	a->cat = c;
	if (!a->registries_synced && registries_synced(a)) {
		a->registries_synced = true;
		log_info("registry: every source has synced; meshing decisions follow the catalogue");
	}
	if (a->workers)
		workers_set_catalogue(a->workers, c);
	if (a->pods)
		pods_reconcile(a->pods);
	write_node_state(a);
	agent_identity_sync(a);
	log_info("catalogue: generation=%llu services=%zu service_ports=%zu vips_allocated=%zu "
		 "vip_collisions=%zu",
		 (unsigned long long)catalogue_generation(c), catalogue_n_services(c),
		 catalogue_n_svc_ports(c), catalogue_vip_stats(c).allocated,
		 catalogue_vip_stats(c).collisions);
	agent_register_local(a);
	return 0;
}

void agent_register_local(struct agent *a)
{
	if (a->selfreg && a->pods && a->cat)
		selfreg_update(a->selfreg, pods_first(a->pods), a->cat, a->registries_synced);
}
