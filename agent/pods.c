// SPDX-License-Identifier: GPL-2.0-only
/* Enrollment of pods: the meshing decision, capture on and off, and the saved
 * state that lets a restarted agent take its pods back. The order of a capture
 * is listeners first, the kernel's steering second (capture_pod_apply()):
 * once a pod's connections are redirected, somebody must already be listening.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datapath/capture.h"
#include "log.h"
#include "loop.h"
#include "model/catalogue.h"
#include "netns.h"
#include "pods.h"
#include "proxy/workers.h"

#define POD_STATE_DIR "pods"

/* A CNI ADD waiting for its Pod object (pods_add()). */
struct pods_wait {
	struct pods *p;
	struct pods_wait *next;		/* in pods.waits */
	struct cni_proto_pod spec;
	struct loop_timer timer;
	pods_add_done_fn done;
	void *done_ctx;
	uint64_t since_ms;
};

struct pods {
	struct pods_deps deps;
	struct pod *list;
	struct pods_wait *waits;
	uint32_t next_id;
};

struct pods *pods_new(const struct pods_deps *deps)
{
	struct pods *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->deps = *deps;
	p->next_id = 1;
	return p;
}

static const struct catalogue *cat(const struct pods *p)
{
	return p->deps.catalogue(p->deps.ctx);
}

static bool synced(const struct pods *p)
{
	return p->deps.synced(p->deps.ctx);
}

static void changed(const struct pods *p)
{
	if (p->deps.changed)
		p->deps.changed(p->deps.ctx);
}

static void pod_free(struct pods *p, struct pod *pod)
{
	workers_capture_close(p->deps.workers, pod->capture);
	pod->capture = NULL;
	if (pod->netns_fd != -1)
		close(pod->netns_fd);
	free(pod);
}

static void wait_unlink(struct pods *p, struct pods_wait *w)
{
	for (struct pods_wait **pp = &p->waits; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	loop_timer_del(p->deps.loop, &w->timer);
}

void pods_free(struct pods *p)
{
	if (!p)
		return;
	/* Their clients are the CNI server's, which goes first. */
	while (p->waits) {
		struct pods_wait *w = p->waits;

		wait_unlink(p, w);
		free(w);
	}
	while (p->list) {
		struct pod *pod = p->list;

		p->list = pod->next;
		pod_free(p, pod);
	}
	free(p);
}

bool pods_can_enroll(const struct pods *p)
{
	return synced(p);
}

const struct pod *pods_first(const struct pods *p)
{
	return p->list;
}

size_t pods_count(const struct pods *p, bool meshed_only)
{
	size_t n = 0;

	for (const struct pod *pod = p->list; pod; pod = pod->next)
		n += !meshed_only || pod->meshed;
	return n;
}

static struct pod *pod_find(struct pods *p, const char *container_id, struct pod ***link)
{
	struct pod **pp;

	for (pp = &p->list; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->spec.container_id, container_id)) {
			if (link)
				*link = pp;
			return *pp;
		}
	}
	return NULL;
}

/* The meshing rule of DESIGN.md, with the reason meshctl shows. */
static bool should_mesh(const struct catalogue *c, const struct cni_proto_pod *s, char *why,
			size_t len)
{
	if (!catalogue_ns_meshed(c, s->ns)) {
		snprintf(why, len, "namespace %s lacks label weft.io/mesh=enabled", s->ns);
		return false;
	}
	if (catalogue_pod_opted_out(c, s->ns, s->name)) {
		snprintf(why, len, "pod has annotation weft.io/mesh: disabled");
		return false;
	}
	snprintf(why, len, "namespace %s has label weft.io/mesh=enabled", s->ns);
	return true;
}

static void add_port(uint16_t *ports, size_t *n, uint16_t port)
{
	for (size_t i = 0; i < *n; i++) {
		if (ports[i] == port)
			return;
	}
	if (*n < CAPTURE_EXCL_PORTS_MAX)
		ports[(*n)++] = port;
}

/* The pod's capture: the agent-wide exclusions first, then the pod's own
 * annotations; past the capture's bounds, the agent-wide ones win (they
 * usually protect the node: DNS, the API server).
 */
static void pod_to_capture(const struct pods *p, const struct pod *pod, struct capture_pod *out)
{
	const struct pods_deps *deps = &p->deps;
	const struct cat_pod *cp = catalogue_find_pod(cat(p), pod->spec.ns, pod->spec.name);

	memset(out, 0, sizeof(*out));
	out->pod_id = pod->id;
	out->outbound_port = deps->proxy_port;
	out->inbound_port = deps->inbound_port;
	for (size_t i = 0; i < deps->n_excl_ports; i++)
		add_port(out->excl_out_ports, &out->n_excl_out_ports, deps->excl_ports[i]);
	for (size_t i = 0; cp && i < cp->n_excl_ports; i++)
		add_port(out->excl_out_ports, &out->n_excl_out_ports, cp->excl_ports[i]);
	for (size_t i = 0; i < deps->n_excl_cidrs && out->n_excl_out_cidrs < CAPTURE_EXCL_CIDRS_MAX;
	     i++)
		out->excl_out_cidrs[out->n_excl_out_cidrs++] = deps->excl_cidrs[i];
	for (size_t i = 0; cp && i < cp->n_excl_cidrs &&
			   out->n_excl_out_cidrs < CAPTURE_EXCL_CIDRS_MAX;
	     i++)
		out->excl_out_cidrs[out->n_excl_out_cidrs++] = cp->excl_cidrs[i];
	for (size_t i = 0; cp && i < cp->n_excl_in_ports; i++)
		add_port(out->excl_in_ports, &out->n_excl_in_ports, cp->excl_in_ports[i]);
}

void pods_capture_entry(const struct pods *p, const struct pod *pod, struct capture_pod *out)
{
	pod_to_capture(p, pod, out);
}

static struct capture_target pod_target(const struct pod *pod)
{
	struct capture_target t = {
		.netns_fd = pod->netns_fd,
		.netns_cookie = pod->netns_cookie,
		.lfd4 = -1,
		.lfd6 = -1,
	};

	if (pod->capture)
		workers_capture_inbound_fds(pod->capture, &t.lfd4, &t.lfd6);
	t.adopted = pod->restored && !pod->applied_ok;
	return t;
}

/* Bring the kernel's capture of a meshed @pod in line with its rules; a
 * no-op when they did not change since the last time (annotations and the
 * catalogue change far more often than one pod's exclusions).
 */
static int capture_sync(struct pods *p, struct pod *pod)
{
	struct capture_pod want;
	struct capture_target t;
	int err;

	pod_to_capture(p, pod, &want);
	if (pod->applied_ok && !memcmp(&want, &pod->applied, sizeof(want)))
		return 0;
	t = pod_target(pod);
	err = capture_pod_apply(p->deps.capture, &t, &want,
				pod->sysctls_before == -1 ? &pod->sysctls_before : NULL);
	pod->applied = want;
	pod->applied_ok = !err;
	return err;
}

static int capture_on(struct pods *p, struct pod *pod)
{
	const struct px_pod_info info = {
		.id = pod->id,
		.ns = pod->spec.ns,
		.name = pod->spec.name,
		.netns_fd = pod->netns_fd,
		.inbound = p->deps.inbound_port != 0,
	};
	int err;

	if (!pod->capture) {
		pod->capture = workers_capture_open(p->deps.workers, &info);
		if (!pod->capture)
			return -errno;
		pod->netns_cookie = workers_capture_netns_cookie(pod->capture);
	}
	/* Listeners first (above), then the kernel's steering: once a
	 * connection is redirected, somebody must already be listening.
	 */
	pod->applied_ok = false;
	err = capture_sync(p, pod);
	if (err) {
		struct capture_target t = pod_target(pod);

		(void)capture_pod_remove(p->deps.capture, &t, pod->sysctls_before);
		workers_capture_close(p->deps.workers, pod->capture);
		pod->capture = NULL;
		return err;
	}
	pod->meshed = true;
	return 0;
}

static void capture_off(struct pods *p, struct pod *pod)
{
	struct capture_target t = pod_target(pod);

	/* Steering first, so no new connection reaches a closing listener. */
	if (pod->meshed || pod->capture)
		(void)capture_pod_remove(p->deps.capture, &t, pod->sysctls_before);
	pod->sysctls_before = -1;
	pod->applied_ok = false;
	workers_capture_close(p->deps.workers, pod->capture);
	pod->capture = NULL;
	pod->meshed = false;
}

static int state_path(struct pods *p, const char *container_id, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s/%s.json", p->deps.run_dir, POD_STATE_DIR, container_id);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int state_save(struct pods *p, const struct cni_proto_pod *spec, bool meshed)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], *json;
	struct cni_proto_pod saved = *spec;
	int fd, err = 0;
	size_t len;

	err = state_path(p, spec->container_id, path, sizeof(path));
	if (err)
		return err;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	saved.meshed_hint = meshed;
	json = cni_proto_req_encode(CNI_PROTO_NONE, &saved, &len);
	if (!json)
		return -errno;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1) {
		err = -errno;
		goto out_free;
	}
	if (write(fd, json, len) != (ssize_t)len)
		err = errno ? -errno : -EIO;
	if (close(fd) == -1 && !err)
		err = -errno;
	/* rename() makes the file appear whole or not at all across a crash. */
	if (!err && rename(tmp, path) == -1)
		err = -errno;
	if (err)
		(void)unlink(tmp);
out_free:
	free(json);
	return err;
}

static bool valid_container_id(const char *id)
{
	/* It names a file: no '/', no leading '.', and not empty. */
	if (!id[0] || id[0] == '.')
		return false;
	for (const char *c = id; *c; c++) {
		if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') &&
		    !(*c >= '0' && *c <= '9') && *c != '-' && *c != '_' && *c != '.')
			return false;
	}
	return true;
}

/* Enroll @spec; @save: a CNI ADD (else a restore from saved state). 0 or the
 * errors of pods_add() with @msg filled.
 */
static int pod_enroll(struct pods *p, const struct cni_proto_pod *spec, bool save, char *msg,
		      size_t msglen)
{
	struct pod *pod;
	int err;

	if (!valid_container_id(spec->container_id)) {
		snprintf(msg, msglen, "container id '%s' must be [A-Za-z0-9_.-]+",
			 spec->container_id);
		return -EINVAL;
	}
	pod = pod_find(p, spec->container_id, NULL);
	if (pod) {
		/* A repeated ADD (runtime retry): the pod is already in place. */
		if (!strcmp(pod->spec.netns, spec->netns))
			return 0;
		snprintf(msg, msglen, "container %s is already enrolled with netns '%s'",
			 spec->container_id, pod->spec.netns);
		return -EEXIST;
	}
	pod = calloc(1, sizeof(*pod));
	if (!pod) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	pod->spec = *spec;
	pod->id = p->next_id++;
	pod->sysctls_before = -1;
	pod->restored = !save;
	pod->netns_fd = netns_open(spec->netns);
	if (pod->netns_fd < 0) {
		err = pod->netns_fd;
		pod->netns_fd = -1;
		snprintf(msg, msglen, "cannot open netns '%s': %s", spec->netns, strerror(-err));
		err = -ENOENT;
		goto out_free;
	}
	if (!synced(p) && save) {
		/* The catalogue cannot tell yet whether this pod is meshed; starting
		 * it unmeshed would be a silent bypass. The runtime retries.
		 */
		snprintf(msg, msglen, "the agent's registries have not synced yet");
		err = -EAGAIN;
		goto out_free;
	}
	if (!synced(p)) {
		/* A restart: keep what the pod was until the registries have spoken,
		 * so a meshed pod never runs unmeshed in between.
		 */
		snprintf(pod->reason, sizeof(pod->reason), "%s",
			 spec->meshed_hint ? "restored as meshed; waiting for the registries' first sync"
					   : "restored as not meshed; waiting for the registries' first sync");
		if (spec->meshed_hint) {
			err = capture_on(p, pod);
			if (err) {
				snprintf(msg, msglen, "capture for %s/%s: %s", spec->ns, spec->name,
					 strerror(-err));
				err = err == -ENOMEM ? err : -EIO;
				goto out_free;
			}
		}
	} else if (should_mesh(cat(p), spec, pod->reason, sizeof(pod->reason))) {
		err = capture_on(p, pod);
		if (err) {
			snprintf(msg, msglen, "capture for %s/%s in '%s': %s", spec->ns, spec->name,
				 spec->netns, strerror(-err));
			err = err == -ENOMEM ? err : -EIO;
			goto out_free;
		}
	}
	if (save) {
		err = state_save(p, spec, pod->meshed);
		if (err) {
			snprintf(msg, msglen, "save state of %s: %s", spec->container_id,
				 strerror(-err));
			capture_off(p, pod);
			err = err == -ENOMEM ? err : -EIO;
			goto out_free;
		}
	}
	pod->next = p->list;
	p->list = pod;
	log_info("pods: enrolled %s/%s container=%s meshed=%s (%s)", spec->ns, spec->name,
		 spec->container_id, pod->meshed ? "yes" : "no", pod->reason);
	changed(p);
	return 0;
out_free:
	pod_free(p, pod);
	return err;
}

/* Whether the catalogue holds the Pod object of @spec: same name, and the
 * same uid when both are known (a StatefulSet's pod recreated under its
 * name must not be decided by its predecessor's annotations).
 */
static bool pod_known(const struct pods *p, const struct cni_proto_pod *spec)
{
	const struct cat_pod *cp = catalogue_find_pod(cat(p), spec->ns, spec->name);

	return cp && (!spec->uid[0] || !cp->uid[0] || !strcmp(spec->uid, cp->uid));
}

/* Whether the ADD of @spec must wait for its Pod object first. */
static bool must_wait(struct pods *p, const struct cni_proto_pod *spec)
{
	if (!p->deps.pod_wait_ms || !synced(p))
		return false;
	/* Annotations matter only for a pod that would be meshed; a retried
	 * ADD of an enrolled container is answered at once.
	 */
	if (!catalogue_ns_meshed(cat(p), spec->ns) || pod_find(p, spec->container_id, NULL))
		return false;
	return !pod_known(p, spec);
}

/* The wait of @w is over: enroll (or give up, @timed_out) and answer. */
static void wait_finish(struct pods *p, struct pods_wait *w, bool timed_out)
{
	char msg[512] = "";
	int err;

	wait_unlink(p, w);
	if (timed_out && catalogue_ns_meshed(cat(p), w->spec.ns) && !pod_known(p, &w->spec)) {
		snprintf(msg, sizeof(msg),
			 "Pod %s/%s%s%s not seen from the Kubernetes API within %u ms: its "
			 "weft.io/ annotations cannot be read yet",
			 w->spec.ns, w->spec.name, w->spec.uid[0] ? " uid " : "", w->spec.uid,
			 p->deps.pod_wait_ms);
		log_warn("pods: ADD of container %s: %s; the runtime retries", w->spec.container_id,
			 msg);
		err = -EAGAIN;
	} else {
		log_debug("pods: Pod %s/%s known after %llu ms", w->spec.ns, w->spec.name,
			  (unsigned long long)(loop_now_ms(p->deps.loop) - w->since_ms));
		err = pod_enroll(p, &w->spec, true, msg, sizeof(msg));
	}
	w->done(w->done_ctx, err, msg);
	free(w);
}

static void on_wait_timeout(struct loop_timer *t, uint64_t now)
{
	struct pods_wait *w = (struct pods_wait *)((char *)t - offsetof(struct pods_wait, timer));

	(void)now;
	wait_finish(w->p, w, true);
}

/* After a publish: answer the ADDs whose Pod (or namespace) has changed. */
static void waits_run(struct pods *p)
{
	struct pods_wait *w = p->waits, *next;

	for (; w; w = next) {
		next = w->next;
		if (!catalogue_ns_meshed(cat(p), w->spec.ns) || pod_known(p, &w->spec))
			wait_finish(p, w, false);
	}
}

int pods_add(struct pods *p, const struct cni_proto_pod *spec, pods_add_done_fn done,
	     void *done_ctx, struct pods_wait **wait, char *msg, size_t msglen)
{
	struct pods_wait *w;
	int err;

	if (!done || !must_wait(p, spec))
		return pod_enroll(p, spec, true, msg, msglen);
	w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	w->p = p;
	w->spec = *spec;
	w->done = done;
	w->done_ctx = done_ctx;
	w->since_ms = loop_now_ms(p->deps.loop);
	err = loop_timer_set(p->deps.loop, &w->timer, p->deps.pod_wait_ms, on_wait_timeout);
	if (err) {
		free(w);
		snprintf(msg, msglen, "arm the Pod wait: %s", strerror(-err));
		return -EIO;
	}
	w->next = p->waits;
	p->waits = w;
	log_info("pods: ADD of %s/%s container=%s waits up to %u ms for its Pod object",
		 spec->ns, spec->name, spec->container_id, p->deps.pod_wait_ms);
	*wait = w;
	return -EINPROGRESS;
}

void pods_wait_cancel(struct pods *p, struct pods_wait *w)
{
	if (!w)
		return;
	log_debug("pods: ADD of %s/%s container=%s withdrawn while waiting for its Pod",
		  w->spec.ns, w->spec.name, w->spec.container_id);
	wait_unlink(p, w);
	free(w);
}

size_t pods_waiting(const struct pods *p)
{
	size_t n = 0;

	for (const struct pods_wait *w = p->waits; w; w = w->next)
		n++;
	return n;
}

static bool enrolled(const struct pods *p, const struct cat_pod *cp)
{
	for (const struct pod *pod = p->list; pod; pod = pod->next) {
		if (!strcmp(pod->spec.ns, cp->ns) && !strcmp(pod->spec.name, cp->name))
			return true;
	}
	return false;
}

size_t pods_escaped(const struct pods *p, void (*fn)(const struct cat_pod *cp, void *ctx),
		    void *ctx)
{
	const struct catalogue *c = cat(p);
	const char *node = p->deps.node_name ? p->deps.node_name : "";
	size_t n = 0;

	if (!synced(p))
		return 0;
	for (size_t i = 0; i < catalogue_n_pods(c); i++) {
		const struct cat_pod *cp = catalogue_pod_at(c, i);

		if (cp->phase != OBJ_POD_RUNNING || cp->terminating || cp->host_network ||
		    cp->opted_out ||
		    (node[0] && strcmp(cp->node, node)) || !catalogue_ns_meshed(c, cp->ns) ||
		    enrolled(p, cp))
			continue;
		if (fn)
			fn(cp, ctx);
		n++;
	}
	return n;
}

int pods_del(struct pods *p, const char *container_id)
{
	struct pod **link, *pod = pod_find(p, container_id, &link);
	char path[PATH_MAX];

	if (valid_container_id(container_id) &&
	    !state_path(p, container_id, path, sizeof(path)))
		(void)unlink(path);	/* absent is fine: DEL is idempotent */
	if (!pod)
		return 0;
	*link = pod->next;
	capture_off(p, pod);
	log_info("pods: removed %s/%s container=%s", pod->spec.ns, pod->spec.name, container_id);
	pod_free(p, pod);
	changed(p);
	return 0;
}

int pods_check(struct pods *p, const char *container_id, char *msg, size_t msglen)
{
	struct pod *pod = pod_find(p, container_id, NULL);
	char why[160];
	bool want;

	if (!pod) {
		snprintf(msg, msglen, "container %s is not enrolled", container_id);
		return -ENOENT;
	}
	want = should_mesh(cat(p), &pod->spec, why, sizeof(why));
	if (want != pod->meshed) {
		snprintf(msg, msglen, "pod %s/%s should %sbe meshed (%s)", pod->spec.ns,
			 pod->spec.name, want ? "" : "not ", why);
		return -EIO;
	}
	if (pod->meshed &&
	    (!pod->capture || !workers_capture_has_listener(pod->capture, AF_INET))) {
		snprintf(msg, msglen, "pod %s/%s is meshed but has no listener", pod->spec.ns,
			 pod->spec.name);
		return -EIO;
	}
	if (pod->meshed) {
		struct capture_target t = pod_target(pod);
		struct capture_pod want;
		char why_not[200];
		int err;

		pod_to_capture(p, pod, &want);
		err = capture_pod_verify(p->deps.capture, &t, &want, why_not, sizeof(why_not));
		if (err == -EIO)
			snprintf(msg, msglen, "pod %s/%s: %s", pod->spec.ns, pod->spec.name, why_not);
		else if (err)
			snprintf(msg, msglen, "pod %s/%s: cannot read its capture back: %s",
				 pod->spec.ns, pod->spec.name, strerror(-err));
		if (err)
			return -EIO;
	}
	return 0;
}

void pods_reconcile(struct pods *p)
{
	if (!synced(p))
		return;
	waits_run(p);
	for (struct pod *pod = p->list; pod; pod = pod->next) {
		char why[sizeof(pod->reason)];
		bool want = should_mesh(cat(p), &pod->spec, why, sizeof(why));
		int err;

		snprintf(pod->reason, sizeof(pod->reason), "%s", why);
		if (want && pod->meshed) {
			/* Exclusions may have changed with the Pod's annotations. */
			err = capture_sync(p, pod);
			if (err)
				log_warn("pods: update %s/%s: %s, ignoring", pod->spec.ns,
					 pod->spec.name, strerror(-err));
		}
		if (want == pod->meshed)
			continue;
		if (want) {
			err = capture_on(p, pod);
			if (err)
				log_warn("pods: mesh %s/%s: %s, ignoring", pod->spec.ns,
					 pod->spec.name, strerror(-err));
			else
				log_info("pods: meshed %s/%s (%s)", pod->spec.ns, pod->spec.name, why);
		} else {
			capture_off(p, pod);
			log_info("pods: unmeshed %s/%s (%s)", pod->spec.ns, pod->spec.name, why);
		}
		/* What a restarted agent holds to until its registries sync. */
		err = state_save(p, &pod->spec, pod->meshed);
		if (err)
			log_warn("pods: save state of %s: %s, ignoring", pod->spec.container_id,
				 strerror(-err));
	}
}

static int drop_stale(uint64_t cookie, void *ctx)
{
	struct pods *p = ctx;

	for (struct pod *pod = p->list; pod; pod = pod->next) {
		if (pod->meshed && pod->netns_cookie == cookie)
			return 0;
	}
	log_info("pods: dropping datapath entry of a pod no longer enrolled netns_cookie=%llu",
		 (unsigned long long)cookie);
	(void)capture_drop_cookie(p->deps.capture, cookie);
	return 0;
}

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd == -1)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* Call @fn with every pod saved under @run_dir/pods (and its file's path);
 * unreadable files are logged and skipped. 0 or -errno (the folder).
 */
static int saved_for_each(const char *run_dir,
			  void (*fn)(const struct cni_proto_pod *spec, const char *path, void *ctx),
			  void *ctx)
{
	char dir[PATH_MAX], path[PATH_MAX + 300], json[CNI_PROTO_MAX_LINE], err_msg[256];
	struct dirent *de;
	int err;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", run_dir, POD_STATE_DIR);
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct cni_proto_pod spec;
		size_t n = strlen(de->d_name);

		if (n < 6 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		err = read_file(path, json, sizeof(json));
		if (!err)
			err = cni_proto_req_decode(json, false, NULL, &spec, err_msg,
						   sizeof(err_msg));
		else
			snprintf(err_msg, sizeof(err_msg), "%s", strerror(-err));
		if (err) {
			log_warn("pods: saved state '%s': %s, ignoring", path, err_msg);
			continue;
		}
		fn(&spec, path, ctx);
	}
	closedir(d);
	return 0;
}

struct restore_walk {
	struct pods *p;
	int restored;
};

static void restore_one(const struct cni_proto_pod *spec, const char *path, void *ctx)
{
	struct restore_walk *w = ctx;
	char err_msg[256];

	if (pod_enroll(w->p, spec, false, err_msg, sizeof(err_msg))) {
		/* The pod went away while no agent ran: forget it. */
		log_warn("pods: cannot restore %s/%s: %s, forgetting it", spec->ns, spec->name,
			 err_msg);
		(void)unlink(path);
		return;
	}
	w->restored++;
}

int pods_restore(struct pods *p)
{
	struct restore_walk w = { .p = p };
	char dir[PATH_MAX];
	int err;

	snprintf(dir, sizeof(dir), "%s/%s", p->deps.run_dir, POD_STATE_DIR);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return log_errno(-errno, "create '%s'", dir);
	err = saved_for_each(p->deps.run_dir, restore_one, &w);
	if (err)
		return log_errno(err, "open '%s'", dir);
	err = capture_for_each_cookie(p->deps.capture, drop_stale, p);
	if (err)
		return log_errno(err, "walk the pods map");
	return w.restored;
}

struct netns_walk {
	int *fds;
	size_t n, max;
};

static void open_netns(const struct cni_proto_pod *spec, const char *path, void *ctx)
{
	struct netns_walk *w = ctx;
	int fd;

	(void)path;
	if (w->n == w->max)
		return;
	fd = netns_open(spec->netns);
	if (fd >= 0)
		w->fds[w->n++] = fd;
}

int pods_saved_netns(const char *run_dir, int *fds, size_t max)
{
	struct netns_walk w = { .fds = fds, .max = max };
	int err = saved_for_each(run_dir, open_netns, &w);

	return err == -ENOENT ? 0 : err ? err : (int)w.n;
}
