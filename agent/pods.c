// SPDX-License-Identifier: GPL-2.0-only
/* Enrollment of pods: the meshing decision, capture on and off, and the saved
 * state that lets a restarted agent take its pods back. The order of a capture
 * is listeners first, the kernel's steering second (capture_pod_apply()):
 * once a pod's connections are redirected, somebody must already be listening.
 * Capture is per netns (struct pod_netns), reference-counted by the pods
 * enrolled in it; a meshed netns whose listeners cannot be opened keeps its
 * steering and retries them (docs/cni.md, "A squatted proxy port").
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
#include "pods_state.h"
#include "proxy/workers.h"

/* Retrying blocked listeners: first after this long, doubling up to the cap. */
#define LISTEN_RETRY_FIRST_MS 200
#define LISTEN_RETRY_MAX_MS 5000

/* One enrolled network namespace: what capture is about. Pods sharing a
 * netns (one netns, several container ids) share this, reference-counted.
 */
struct pod_netns {
	struct pods *p;
	struct pod_netns *next;		/* in pods.netns */
	struct netns_id id;		/* the key: the nsfs inode, held open by @fd */
	unsigned int refs;		/* pods with nsx == this */
	int fd;
	uint64_t cookie;
	uint32_t pod_id;		/* the capture's id: its first pod's */
	struct pod *lead;		/* whose annotations the capture follows */
	struct px_capture *capture;	/* NULL while not meshed or blocked */
	void *dns;			/* its DNS responder (deps.dns_open); NULL: none */
	bool dns_failed;		/* the last attempt to open it failed (logged once) */
	struct capture_pod applied;	/* what capture_pod_apply() last wrote, */
	bool applied_ok;		/* when it succeeded */
	bool meshed;			/* the kernel's steering is in place */
	bool restored;			/* enrolled by an earlier agent */
	int sysctls_before;		/* retpath.h; -1: not known */
	int beat_err;			/* the last heartbeat's result (pods_heartbeat) */
	/* Meshed, but the listeners could not be opened: why, or "". */
	char blocked[128];
	struct loop_timer retry;
	unsigned int backoff_ms;
	uint64_t retries;
};

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
	struct pod_netns *netns;	/* every enrolled netns */
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

static void dns_close(struct pods *p, struct pod_netns *ns)
{
	if (ns->dns)
		p->deps.dns_close(p->deps.ctx, ns->dns);
	ns->dns = NULL;
}

/* Whether @ns's DNS should be captured while it is meshed: the node
 * captures DNS and its lead pod does not opt out (weft.io/dns-capture
 * "false" on the Pod, or on its Namespace when the Pod says nothing).
 */
static bool dns_wanted(const struct pods *p, const struct pod_netns *ns)
{
	const struct cat_pod *cp;

	if (!p->deps.dns_port || !p->deps.dns_open || !ns->lead)
		return false;
	cp = catalogue_find_pod(cat(p), ns->lead->spec.ns, ns->lead->spec.name);
	return catalogue_pod_switch_or(cat(p), ns->lead->spec.ns, cp, OBJ_SW_DNS_CAPTURE, true);
}

/* Open or close @ns's responder as @meshed and the annotation say; the
 * caller then brings capture in line (pod_to_capture() reads ns->dns). A
 * responder that cannot be opened leaves the pod's DNS uncaptured: names
 * are a convenience, the pod's own resolver still answers.
 */
static void dns_sync(struct pods *p, struct pod_netns *ns, bool meshed)
{
	bool want = meshed && dns_wanted(p, ns);

	if (!want) {
		dns_close(p, ns);
		ns->dns_failed = false;
		return;
	}
	if (ns->dns)
		return;
	ns->dns = p->deps.dns_open(p->deps.ctx, ns->fd, ns->pod_id);
	if (!ns->dns && !ns->dns_failed)
		log_warn("pods: %s/%s: DNS responder: %s; its DNS is not captured, ignoring",
			 ns->lead->spec.ns, ns->lead->spec.name, strerror(errno));
	ns->dns_failed = !ns->dns;
}

bool pods_dns_captured(const struct pod *pod)
{
	return pod->nsx && pod->nsx->meshed && pod->nsx->dns;
}

/* Free @ns's in-memory state: listeners, retry timer, fd. What capture put
 * in the kernel stays (capture_off() removes it).
 */
static void ns_free(struct pods *p, struct pod_netns *ns)
{
	for (struct pod_netns **pp = &p->netns; *pp; pp = &(*pp)->next) {
		if (*pp == ns) {
			*pp = ns->next;
			break;
		}
	}
	if (p->deps.loop)
		loop_timer_del(p->deps.loop, &ns->retry);
	workers_capture_close(p->deps.workers, ns->capture);
	dns_close(p, ns);
	if (ns->fd != -1)
		close(ns->fd);
	free(ns);
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
		free(pod);
	}
	while (p->netns)
		ns_free(p, p->netns);
	free(p);
}

void pods_each_capture(struct pods *p, pods_capture_fn fn, void *ctx)
{
	for (struct pod_netns *ns = p->netns; ns; ns = ns->next)
		if (ns->capture)
			fn(ns->capture, ctx);
}

void pods_stop_retries(struct pods *p)
{
	for (struct pod_netns *ns = p->netns; ns; ns = ns->next)
		if (p->deps.loop)
			loop_timer_del(p->deps.loop, &ns->retry);
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

/* The capture of @ns: the agent-wide exclusions first, then its lead pod's
 * own annotations; past the capture's bounds, the agent-wide ones win (they
 * usually protect the node: DNS, the API server).
 */
static void pod_to_capture(const struct pods *p, const struct pod_netns *ns,
			   struct capture_pod *out)
{
	const struct pods_deps *deps = &p->deps;
	const struct cat_pod *cp = ns->lead ? catalogue_find_pod(cat(p), ns->lead->spec.ns,
								 ns->lead->spec.name) : NULL;

	memset(out, 0, sizeof(*out));
	out->pod_id = ns->pod_id;
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
	if (ns->lead) {
		const char *pod_ns = ns->lead->spec.ns;

		out->deny_raw = catalogue_pod_switch(cat(p), pod_ns, cp, OBJ_SW_DENY_RAW);
		out->fail_open = catalogue_pod_switch(cat(p), pod_ns, cp, OBJ_SW_FAIL_OPEN);
	}
	out->dns_port = ns->dns ? deps->dns_port : 0;
}

void pods_capture_entry(const struct pods *p, const struct pod *pod, struct capture_pod *out)
{
	pod_to_capture(p, pod->nsx, out);
}

const char *pods_listener_blocked(const struct pod *pod)
{
	return pod->nsx && pod->nsx->meshed && pod->nsx->blocked[0] ? pod->nsx->blocked : NULL;
}

uint64_t pods_listener_retries(const struct pod *pod)
{
	return pod->nsx ? pod->nsx->retries : 0;
}

unsigned int pods_netns_refs(const struct pod *pod)
{
	return pod->nsx ? pod->nsx->refs : 0;
}

static struct capture_target ns_target(const struct pod_netns *ns)
{
	struct capture_target t = {
		.netns_fd = ns->fd,
		.netns_cookie = ns->cookie,
		.lfd4 = -1,
		.lfd6 = -1,
	};

	if (ns->capture)
		workers_capture_inbound_fds(ns->capture, &t.lfd4, &t.lfd6);
	t.adopted = ns->restored && !ns->applied_ok;
	return t;
}

/* Copy what @ns says into every pod of it (the fields admin reads), with
 * the reason of a pod meshed for another pod's sake or blocked.
 */
static void ns_mirror(struct pods *p, struct pod_netns *ns)
{
	for (struct pod *pod = p->list; pod; pod = pod->next) {
		if (pod->nsx != ns)
			continue;
		pod->netns_fd = ns->fd;
		pod->netns_cookie = ns->cookie;
		pod->capture = ns->capture;
		pod->meshed = ns->meshed;
		if (ns->meshed && ns->blocked[0])
			snprintf(pod->reason, sizeof(pod->reason), "%s", ns->blocked);
		else if (ns->meshed && !pod->wants && ns->lead && ns->lead != pod)
			snprintf(pod->reason, sizeof(pod->reason),
				 "shares its netns with meshed pod %.50s/%.50s "
				 "(capture is per netns)",
				 ns->lead->spec.ns, ns->lead->spec.name);
	}
}

/* Bring the kernel's capture of a meshed @ns in line with its rules; a
 * no-op when they did not change since the last time (annotations and the
 * catalogue change far more often than one pod's exclusions).
 */
static int capture_sync(struct pods *p, struct pod_netns *ns)
{
	struct capture_pod want;
	struct capture_target t;
	int err;

	pod_to_capture(p, ns, &want);
	if (ns->applied_ok && !memcmp(&want, &ns->applied, sizeof(want)))
		return 0;
	t = ns_target(ns);
	err = capture_pod_apply(p->deps.capture, &t, &want,
				ns->sysctls_before == -1 ? &ns->sysctls_before : NULL);
	ns->applied = want;
	ns->applied_ok = !err;
	return err;
}

/* Open @ns's listeners on every worker. 0 or -errno. */
static int listeners_open(struct pods *p, struct pod_netns *ns)
{
	const struct px_pod_info info = {
		.id = ns->pod_id,
		.ns = ns->lead ? ns->lead->spec.ns : "",
		.name = ns->lead ? ns->lead->spec.name : "",
		.netns_fd = ns->fd,
		.inbound = p->deps.inbound_port != 0,
	};

	ns->capture = workers_capture_open(p->deps.workers, &info);
	return ns->capture ? 0 : -errno;
}

/* Which of the listeners' ports another socket holds in @ns (a bind of our
 * own, closed at once, says it); 0 when neither is held now.
 */
static uint16_t port_held(struct pods *p, struct pod_netns *ns)
{
	const uint16_t ports[2] = { p->deps.proxy_port, p->deps.inbound_port };
	int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	uint16_t held = 0;

	if (home == -1)
		return 0;
	for (int i = 0; i < 2 && !held; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(ports[i]) };
		int fd;

		if (!ports[i])
			continue;
		/* The outbound listener's address; a wildcard holder conflicts too. */
		sa.sin_addr.s_addr = htonl(i == 0 ? INADDR_LOOPBACK : INADDR_ANY);
		fd = netns_socket(ns->fd, home, AF_INET, SOCK_STREAM);
		if (fd < 0)
			break;
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 && errno == EADDRINUSE)
			held = ports[i];
		close(fd);
	}
	close(home);
	return held;
}

static void on_listen_retry(struct loop_timer *t, uint64_t now);

/* The listeners of meshed @ns could not be opened (@err): say why, keep the
 * capture in place (fail closed) and retry with backoff.
 */
static void listeners_blocked(struct pods *p, struct pod_netns *ns, int err)
{
	uint16_t port = err == -EADDRINUSE ? port_held(p, ns) : 0;
	bool first = !ns->blocked[0];

	if (port)
		snprintf(ns->blocked, sizeof(ns->blocked),
			 "listener blocked: port %u held by another socket", port);
	else
		snprintf(ns->blocked, sizeof(ns->blocked), "listener blocked: %s",
			 strerror(-err));
	if (first) {
		ns->backoff_ms = LISTEN_RETRY_FIRST_MS;
		log_warn("pods: %s/%s netns_cookie=%llu: %s; capture stays in place (its "
			 "connections end inside the pod), retrying",
			 ns->lead ? ns->lead->spec.ns : "", ns->lead ? ns->lead->spec.name : "",
			 (unsigned long long)ns->cookie, ns->blocked);
	} else {
		ns->backoff_ms = ns->backoff_ms * 2 > LISTEN_RETRY_MAX_MS ? LISTEN_RETRY_MAX_MS
									 : ns->backoff_ms * 2;
	}
	if (!p->deps.loop || loop_timer_set(p->deps.loop, &ns->retry, ns->backoff_ms,
					    on_listen_retry))
		log_warn("pods: cannot arm the listener retry of netns_cookie=%llu",
			 (unsigned long long)ns->cookie);
}

static void on_listen_retry(struct loop_timer *t, uint64_t now)
{
	struct pod_netns *ns = (struct pod_netns *)((char *)t - offsetof(struct pod_netns, retry));
	struct pods *p = ns->p;
	int err;

	(void)now;
	if (!ns->meshed || ns->capture)
		return;
	ns->retries++;
	err = listeners_open(p, ns);
	if (err) {
		listeners_blocked(p, ns, err);
		ns_mirror(p, ns);
		return;
	}
	ns->blocked[0] = '\0';
	/* eBPF mode's sk_lookup gets the new inbound listeners. */
	ns->applied_ok = false;
	err = capture_sync(p, ns);
	if (err)
		log_warn("pods: netns_cookie=%llu: listeners up but capture update failed: %s",
			 (unsigned long long)ns->cookie, strerror(-err));
	log_info("pods: %s/%s: listeners up after %llu retries",
		 ns->lead ? ns->lead->spec.ns : "", ns->lead ? ns->lead->spec.name : "",
		 (unsigned long long)ns->retries);
	for (struct pod *pod = p->list; pod; pod = pod->next) {
		if (pod->nsx == ns && pod->wants)
			snprintf(pod->reason, sizeof(pod->reason), "namespace %s has label "
				 "weft.io/mesh=enabled", pod->spec.ns);
	}
	ns_mirror(p, ns);
	changed(p);
}

/* Mesh @ns: listeners first, then the kernel's steering — once a connection
 * is redirected, somebody must already be listening. With @may_block (a
 * restore, or a pod meshed later), listeners that cannot be opened leave the
 * steering in place anyway and are retried: the pod runs already, and
 * forgetting its capture would let it out of the mesh for good. A CNI ADD
 * fails instead: its pod has not started, the runtime retries.
 */
static int capture_on(struct pods *p, struct pod_netns *ns, bool may_block)
{
	int err, lerr = 0;

	if (!ns->cookie) {
		err = netns_cookie(ns->fd, &ns->cookie);
		if (err)
			return err;
	}
	if (!ns->capture)
		lerr = listeners_open(p, ns);
	if (lerr && !may_block)
		return lerr;
	/* The responder before the steering, as for the listeners. */
	dns_sync(p, ns, true);
	ns->applied_ok = false;
	err = capture_sync(p, ns);
	if (err) {
		struct capture_target t = ns_target(ns);

		(void)capture_pod_remove(p->deps.capture, &t, ns->sysctls_before);
		workers_capture_close(p->deps.workers, ns->capture);
		ns->capture = NULL;
		dns_close(p, ns);
		return err;
	}
	ns->meshed = true;
	if (lerr)
		listeners_blocked(p, ns, lerr);
	return 0;
}

static void capture_off(struct pods *p, struct pod_netns *ns)
{
	struct capture_target t = ns_target(ns);

	/* Steering first, so no new connection reaches a closing listener. */
	if (ns->meshed || ns->capture)
		(void)capture_pod_remove(p->deps.capture, &t, ns->sysctls_before);
	ns->sysctls_before = -1;
	ns->applied_ok = false;
	workers_capture_close(p->deps.workers, ns->capture);
	ns->capture = NULL;
	dns_close(p, ns);
	ns->meshed = false;
	ns->blocked[0] = '\0';
	if (p->deps.loop)
		loop_timer_del(p->deps.loop, &ns->retry);
}

/* Save @pod with its netns's identity, so a restarted agent re-identifies
 * the netns by what it is, not by its path.
 */
static int state_save(struct pods *p, const struct pod *pod)
{
	struct cni_proto_pod saved = pod->spec;

	saved.meshed_hint = pod->meshed;
	saved.netns_dev = pod->nsx->id.dev;
	saved.netns_ino = pod->nsx->id.ino;
	saved.netns_cookie = pod->nsx->cookie;
	return pods_state_write(p->deps.run_dir, &saved);
}

static struct pod_netns *ns_find(struct pods *p, const struct netns_id *id)
{
	for (struct pod_netns *ns = p->netns; ns; ns = ns->next) {
		if (ns->id.dev == id->dev && ns->id.ino == id->ino)
			return ns;
	}
	return NULL;
}

/* Drop @pod's reference on its netns: the last one removes the capture
 * (@remove) and frees it; otherwise the lead passes to another pod.
 */
static void ns_unref(struct pods *p, struct pod *pod, bool remove)
{
	struct pod_netns *ns = pod->nsx;

	pod->nsx = NULL;
	if (!ns)
		return;
	if (--ns->refs == 0) {
		if (remove)
			capture_off(p, ns);
		ns_free(p, ns);
		return;
	}
	if (ns->lead == pod) {
		ns->lead = NULL;
		for (struct pod *o = p->list; o; o = o->next) {
			if (o->nsx == ns && (!ns->lead || o->wants))
				ns->lead = o;
		}
	}
}

/* Whether a saved pod's netns (@spec, saved identity) is the one @fd now
 * opens (@id): its inode, and its cookie, which the kernel never reuses. A
 * state file from an agent that saved no identity is taken as it is.
 */
static bool same_netns(const struct cni_proto_pod *spec, int fd, const struct netns_id *id,
		       char *msg, size_t msglen)
{
	uint64_t cookie = 0;

	if (!spec->netns_ino)
		return true;
	if (spec->netns_dev != id->dev || spec->netns_ino != id->ino) {
		snprintf(msg, msglen, "netns '%s' now names another network namespace (inode "
			 "%llu, saved %llu)", spec->netns, (unsigned long long)id->ino,
			 (unsigned long long)spec->netns_ino);
		return false;
	}
	if (spec->netns_cookie && !netns_cookie(fd, &cookie) && cookie != spec->netns_cookie) {
		snprintf(msg, msglen, "netns '%s' now names another network namespace (cookie "
			 "%llu, saved %llu)", spec->netns, (unsigned long long)cookie,
			 (unsigned long long)spec->netns_cookie);
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
	struct pod_netns *ns;
	struct netns_id id;
	bool was_meshed;
	struct pod *pod;
	int fd, err;

	if (!pods_state_valid_id(spec->container_id)) {
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
	fd = netns_open_id(spec->netns, &id, msg, msglen);
	if (fd < 0)
		return fd == -EINVAL ? -EINVAL : -ENOENT;
	if (!save && !same_netns(spec, fd, &id, msg, msglen)) {
		close(fd);
		return -ESTALE;
	}
	if (!synced(p) && save) {
		/* The catalogue cannot tell yet whether this pod is meshed; starting
		 * it unmeshed would be a silent bypass. The runtime retries.
		 */
		close(fd);
		snprintf(msg, msglen, "the agent's registries have not synced yet");
		return -EAGAIN;
	}
	pod = calloc(1, sizeof(*pod));
	ns = ns_find(p, &id);
	if (!pod || (!ns && !(ns = calloc(1, sizeof(*ns))))) {
		close(fd);
		free(pod);
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	pod->spec = *spec;
	pod->id = p->next_id++;
	if (ns->refs) {
		/* One netns under a second container id: one capture for both. */
		close(fd);
		log_info("pods: container %s shares netns '%s' (inode %llu) with %u enrolled "
			 "container(s)", spec->container_id, spec->netns,
			 (unsigned long long)id.ino, ns->refs);
	} else {
		ns->p = p;
		ns->id = id;
		ns->fd = fd;
		ns->pod_id = pod->id;
		ns->sysctls_before = -1;
		ns->restored = !save;
		ns->next = p->netns;
		p->netns = ns;
	}
	ns->refs++;
	pod->nsx = ns;
	pod->netns_fd = -1;
	/* Linked now so that ns_mirror() sees it; unlinked on failure. */
	pod->next = p->list;
	p->list = pod;
	if (!ns->lead)
		ns->lead = pod;
	was_meshed = ns->meshed;
	if (!synced(p)) {
		/* A restart: keep what the pod was until the registries have spoken,
		 * so a meshed pod never runs unmeshed in between.
		 */
		snprintf(pod->reason, sizeof(pod->reason), "%s",
			 spec->meshed_hint ? "restored as meshed; waiting for the registries' first sync"
					   : "restored as not meshed; waiting for the registries' first sync");
		pod->wants = spec->meshed_hint;
	} else {
		pod->wants = should_mesh(cat(p), spec, pod->reason, sizeof(pod->reason));
	}
	if (pod->wants && !ns->lead->wants)
		ns->lead = pod;
	if (pod->wants && !ns->meshed) {
		err = capture_on(p, ns, !save);
		if (err) {
			snprintf(msg, msglen, "capture for %s/%s in '%s': %s", spec->ns, spec->name,
				 spec->netns, strerror(-err));
			err = err == -ENOMEM ? err : -EIO;
			goto out_unlink;
		}
	}
	ns_mirror(p, ns);
	if (save) {
		err = state_save(p, pod);
		if (err) {
			snprintf(msg, msglen, "save state of %s: %s", spec->container_id,
				 strerror(-err));
			if (!was_meshed && ns->meshed)
				capture_off(p, ns);
			err = err == -ENOMEM ? err : -EIO;
			goto out_unlink;
		}
	}
	log_info("pods: enrolled %s/%s container=%s meshed=%s (%s)", spec->ns, spec->name,
		 spec->container_id, pod->meshed ? "yes" : "no", pod->reason);
	changed(p);
	return 0;
out_unlink:
	p->list = pod->next;
	ns_unref(p, pod, !was_meshed);
	free(pod);
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

/* @ns's capture follows what its pods want: meshed while any pod of it is
 * (a netns cannot be half captured). Saves the pods' state when that
 * changed. @may_block as capture_on().
 */
static void ns_reconcile(struct pods *p, struct pod_netns *ns, bool may_block)
{
	bool want = false;
	int err;

	for (struct pod *pod = p->list; pod; pod = pod->next) {
		if (pod->nsx == ns && pod->wants) {
			want = true;
			if (!ns->lead || !ns->lead->wants)
				ns->lead = pod;
		}
	}
	if (want && ns->meshed) {
		/* Exclusions and the DNS opt-out may have changed with the
		 * Pod's annotations. Capture first stops sending queries to a
		 * responder that is about to close.
		 */
		bool had_dns = ns->dns;

		if (had_dns && !dns_wanted(p, ns)) {
			void *keep = ns->dns;

			ns->dns = NULL;
			(void)capture_sync(p, ns);
			ns->dns = keep;
		}
		dns_sync(p, ns, true);
		err = capture_sync(p, ns);
		if (err)
			log_warn("pods: update netns_cookie=%llu: %s, ignoring",
				 (unsigned long long)ns->cookie, strerror(-err));
	}
	if (want != ns->meshed) {
		const char *who = ns->lead ? ns->lead->spec.name : "";

		if (want) {
			err = capture_on(p, ns, may_block);
			if (err)
				log_warn("pods: mesh %s: %s, ignoring", who, strerror(-err));
			else
				log_info("pods: meshed %s", who);
		} else {
			capture_off(p, ns);
			log_info("pods: unmeshed %s", who);
		}
		ns_mirror(p, ns);
		/* What a restarted agent holds to until its registries sync. */
		for (struct pod *pod = p->list; pod; pod = pod->next) {
			if (pod->nsx != ns)
				continue;
			err = state_save(p, pod);
			if (err)
				log_warn("pods: save state of %s: %s, ignoring",
					 pod->spec.container_id, strerror(-err));
		}
	}
	ns_mirror(p, ns);
}

int pods_del(struct pods *p, const char *container_id)
{
	struct pod **link, *pod = pod_find(p, container_id, &link);
	struct pod_netns *ns;
	char path[PATH_MAX];
	unsigned int left;

	if (pods_state_valid_id(container_id) &&
	    !pods_state_path(p->deps.run_dir, container_id, path, sizeof(path)))
		(void)unlink(path);	/* absent is fine: DEL is idempotent */
	if (!pod)
		return 0;
	*link = pod->next;
	ns = pod->nsx;
	left = ns ? ns->refs - 1 : 0;
	ns_unref(p, pod, true);	/* frees @ns with its last pod */
	if (left) {
		/* Other containers share the netns: it stays captured while any
		 * of them is meshed.
		 */
		log_info("pods: removed %s/%s container=%s; its netns stays enrolled by %u other "
			 "container(s)", pod->spec.ns, pod->spec.name, container_id, ns->refs);
		ns_reconcile(p, ns, true);
	} else {
		log_info("pods: removed %s/%s container=%s", pod->spec.ns, pod->spec.name,
			 container_id);
	}
	free(pod);
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
	if (want && !pod->meshed) {
		snprintf(msg, msglen, "pod %s/%s should be meshed (%s)", pod->spec.ns,
			 pod->spec.name, why);
		return -EIO;
	}
	if (!want && pod->meshed && pod->nsx->lead == pod) {
		snprintf(msg, msglen, "pod %s/%s should not be meshed (%s)", pod->spec.ns,
			 pod->spec.name, why);
		return -EIO;
	}
	if (pods_listener_blocked(pod)) {
		snprintf(msg, msglen, "pod %s/%s: %s", pod->spec.ns, pod->spec.name,
			 pods_listener_blocked(pod));
		return -EIO;
	}
	if (pod->meshed &&
	    (!pod->capture || !workers_capture_has_listener(pod->capture, AF_INET))) {
		snprintf(msg, msglen, "pod %s/%s is meshed but has no listener", pod->spec.ns,
			 pod->spec.name);
		return -EIO;
	}
	if (pod->meshed) {
		struct capture_target t = ns_target(pod->nsx);
		struct capture_pod want;
		char why_not[200];
		int err;

		pod_to_capture(p, pod->nsx, &want);
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
	for (struct pod *pod = p->list; pod; pod = pod->next)
		pod->wants = should_mesh(cat(p), &pod->spec, pod->reason, sizeof(pod->reason));
	for (struct pod_netns *ns = p->netns; ns; ns = ns->next)
		ns_reconcile(p, ns, true);
}

static int drop_stale(uint64_t cookie, void *ctx)
{
	struct pods *p = ctx;

	for (struct pod_netns *ns = p->netns; ns; ns = ns->next) {
		if (ns->meshed && ns->cookie == cookie)
			return 0;
	}
	log_info("pods: dropping datapath entry of a pod no longer enrolled netns_cookie=%llu",
		 (unsigned long long)cookie);
	(void)capture_drop_cookie(p->deps.capture, cookie);
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
		/* The pod went away while no agent ran, or its path now names
		 * another netns (or none): forget it. Keeping it would capture a
		 * stranger, or nothing.
		 */
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

	snprintf(dir, sizeof(dir), "%s/%s", p->deps.run_dir, PODS_STATE_DIR);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return log_errno(-errno, "create '%s'", dir);
	err = pods_state_for_each(p->deps.run_dir, restore_one, &w);
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
	struct netns_id id;
	char why[PATH_MAX + 128];
	int fd;

	(void)path;
	if (w->n == w->max)
		return;
	fd = netns_open_id(spec->netns, &id, why, sizeof(why));
	if (fd < 0)
		return;
	/* Clean only the netns that was enrolled, not what the path names now. */
	if (!same_netns(spec, fd, &id, why, sizeof(why))) {
		log_warn("pods: saved pod %s/%s: %s, leaving it alone", spec->ns, spec->name, why);
		close(fd);
		return;
	}
	w->fds[w->n++] = fd;
}

void pods_heartbeat(struct pods *p)
{
	for (struct pod_netns *ns = p->netns; ns; ns = ns->next) {
		struct capture_target t;
		int err;

		if (!ns->meshed || !ns->applied_ok || !ns->applied.fail_open)
			continue;
		t = ns_target(ns);
		err = capture_pod_heartbeat(p->deps.capture, &t, &ns->applied);
		if (err && err != ns->beat_err)
			log_warn("pods: heartbeat of fail-open netns_cookie=%llu: %s; its capture "
				 "will count the agent as gone, ignoring",
				 (unsigned long long)ns->cookie, strerror(-err));
		ns->beat_err = err;
	}
}

int pods_saved_netns(const char *run_dir, int *fds, size_t max)
{
	struct netns_walk w = { .fds = fds, .max = max };
	int err = pods_state_for_each(run_dir, open_netns, &w);

	return err == -ENOENT ? 0 : err ? err : (int)w.n;
}
