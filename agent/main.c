// SPDX-License-Identifier: GPL-2.0-only
/* weft-agent: parse the configuration, build the modules, run the loop, tear
 * down in reverse. No logic of its own beyond wiring.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "admin/cmds.h"
#include "admin/http.h"
#include "admin/metrics.h"
#include "agent.h"
#include "ca/ca.h"
#include "cgroup.h"
#include "cni_server.h"
#include "config.h"
#include "datapath/capture.h"
#include "datapath/fastpath.h"
#include "dns/responder.h"
#include "fs.h"
#include "handover.h"
#include "log.h"
#include "loop.h"
#include "opt.h"
#include "model/model.h"
#include "pods.h"
#include "proxy/adopt.h"
#include "proxy/proxy.h"
#include "proxy/workers.h"
#include "registry/registry.h"
#include "selfreg.h"

/* Pods whose netns --cleanup visits: more than a node runs. */
#define CLEANUP_PODS_MAX 4096

static void on_sink_changed(void *ctx)
{
	(void)agent_publish(ctx);
}

/* The sink's gate: a big change is published in parts, each once every
 * worker has bound the one before (registry/sink.c).
 */
static bool sink_busy(void *ctx)
{
	struct agent *a = ctx;

	return a->workers && workers_binding(a->workers);
}

static void on_workers_bound(void *ctx)
{
	struct agent *a = ctx;

	if (a->sink)
		reg_sink_resume(a->sink);
}

/* Open every --registry source, in rank order, and self-registration. */
static int start_registries(struct agent *a)
{
	const struct opt_strings *regs = &a->cfg->registries;
	const struct reg_opts opts = {
		.node_name = a->cfg->node_name,
		.kubeconfig = a->cfg->kubeconfig,
		.etcd_prefix = a->cfg->etcd_prefix,
		.etcd_lease_ttl_s = a->cfg->etcd_lease_ttl_s,
		.zk_session_timeout_ms = a->cfg->zk_session_timeout_ms,
		.consul_token_file = a->cfg->consul_token_file,
		.consul_ca = a->cfg->consul_ca,
		.consul_namespace = a->cfg->consul_namespace,
		.consul_partition = a->cfg->consul_partition,
		.consul_agent = a->cfg->consul_agent,
		.consul_check_ttl_s = a->cfg->consul_check_ttl_s,
		.consul_wait_s = a->cfg->consul_wait_s,
	};
	int err;

	if (!regs->n) {
		log_err("option --registry: at least one source is needed");
		return -EINVAL;
	}
	a->sink = reg_sink_new(a->loop, a->model, on_sink_changed, a);
	a->selfreg = selfreg_new(a->cfg->node_name);
	if (!a->sink || !a->selfreg)
		return log_errno(-errno, "start the registry sink");
	for (unsigned int i = 0; i < regs->n; i++) {
		struct agent_registry *r = &a->regs[a->n_regs];
		const char *spec = regs->v[i], *arg;

		r->spec = spec;
		err = model_declare_source(a->model, spec);
		if (err)
			return log_errno(err, "registry '%s'", spec);
		r->ops = reg_backend_find(spec, &arg);
		if (!r->ops) {
			log_err("option --registry: '%s' is not a known source (file:PATH, or a "
				"backend listed in --help)", spec);
			return -EINVAL;
		}
		err = r->ops->start(spec, arg, &opts, a->sink, &r->state);
		if (err)
			return err;
		a->n_regs++;
		err = selfreg_add_backend(a->selfreg, r->ops, r->state);
		if (err)
			return log_errno(err, "registry '%s'", spec);
	}
	/* What the backends loaded at start (a file) is in the first catalogue. */
	reg_sink_drain(a->sink);
	return 0;
}

/* Stop registry @r by passing what keeps this node's registrations to a
 * successor, into a->ho_regs. Whether it did (and @r is stopped).
 */
static bool pass_registry(struct agent *a, struct agent_registry *r)
{
	struct handover_reg *h;

	if (!r->ops->pass || strlen(r->spec) >= sizeof(h->spec))
		return false;
	if (!a->ho_regs && !(a->ho_regs = calloc(AGENT_MAX_REGISTRIES, sizeof(*a->ho_regs))))
		return false;
	h = &a->ho_regs[a->n_ho_regs];
	r->ops->pass(r->state, &h->pass);
	if (h->pass.len) {
		snprintf(h->spec, sizeof(h->spec), "%s", r->spec);
		a->n_ho_regs++;
	}
	return true;
}

/* Stop every registry; with @deregister this node's endpoints go with the
 * agent, without they stay for a successor to re-assert (a hand-over), or
 * to take over where the successor resumes what they pass (ZooKeeper's
 * session: a->ho_resumes).
 */
static void stop_registries(struct agent *a, bool deregister)
{
	bool passing = !deregister && a->ho_resumes;

	if (passing && !a->ho_regs && !(a->ho_regs = calloc(AGENT_MAX_REGISTRIES, sizeof(*a->ho_regs))))
		passing = false;	/* stopped as before: the successor registers anew */
	/* Every session is let go side by side: each one's timeout runs from
	 * its own let-go, and none waits behind another's round trip.
	 */
	for (unsigned int i = 0; passing && i < a->n_regs; i++) {
		struct agent_registry *r = &a->regs[i];

		if (r->ops->pass && r->ops->pass_begin && strlen(r->spec) < HANDOVER_SPEC_MAX)
			r->ops->pass_begin(r->state);
	}
	for (unsigned int i = 0; i < a->n_regs; i++) {
		struct agent_registry *r = &a->regs[i];

		if (passing && pass_registry(a, r))
			continue;
		r->ops->stop(r->state, deregister);
	}
	a->n_regs = 0;
	selfreg_free(a->selfreg);
	a->selfreg = NULL;
	reg_sink_free(a->sink);
	a->sink = NULL;
}

/* A predecessor hands over: the registries that can take its
 * registrations over wait for them (resume_registries()).
 */
static void hold_registries(struct agent *a)
{
	for (unsigned int i = 0; i < a->n_regs; i++) {
		if (a->regs[i].ops->hold)
			a->regs[i].ops->hold(a->regs[i].state);
	}
}

/* After the hand-over, whatever its outcome: give each registry what the
 * predecessor's registry of the same --registry value passed (each pass
 * once), or nothing, and free the passes.
 */
static void resume_registries(struct agent *a)
{
	for (unsigned int i = 0; i < a->n_regs; i++) {
		const struct agent_registry *r = &a->regs[i];
		struct handover_reg *found = NULL;

		if (!r->ops->resume)
			continue;
		for (unsigned int j = 0; j < a->n_ho_regs && !found; j++) {
			if (a->ho_regs[j].pass.len && !strcmp(a->ho_regs[j].spec, r->spec))
				found = &a->ho_regs[j];
		}
		r->ops->resume(r->state, found ? &found->pass : NULL);
		if (found)
			found->pass.len = 0;
	}
	for (unsigned int j = 0; j < a->n_ho_regs; j++) {
		if (a->ho_regs[j].pass.len)
			log_warn("registry: the previous agent's '%s' is not a registry of this one: "
				 "its registrations go when its session times out, ignoring",
				 a->ho_regs[j].spec);
	}
	free(a->ho_regs);
	a->ho_regs = NULL;
	a->n_ho_regs = 0;
}

#define DRAIN_POLL_MS 50

static void on_drain_tick(struct loop_timer *t, uint64_t now)
{
	struct agent *a = (struct agent *)((char *)t - offsetof(struct agent, drain_timer));
	struct proxy_stats st;

	workers_stats(a->workers, &st);	/* without parking the draining workers */
	if (!st.active) {
		log_info("agent: drained, every connection ended");
		loop_stop(a->loop);
	} else if (now >= a->drain_deadline_ms) {
		log_info("agent: drain deadline (--drain-seconds %u): resetting %llu connection(s)",
			 a->cfg->drain_s, (unsigned long long)st.active);
		loop_stop(a->loop);
	} else if (loop_timer_set(a->loop, t, DRAIN_POLL_MS, on_drain_tick)) {
		loop_stop(a->loop);
	}
}

static void stop_accepting(struct px_capture *cap, void *ctx)
{
	workers_capture_stop_accepting(((struct agent *)ctx)->workers, cap);
}

/* Stop accepting everywhere, give up the control sockets and the
 * registries, and let established connections run until they end or
 * --drain-seconds pass. @handover: a successor has adopted the listeners and
 * keeps this node's registrations; without one they are withdrawn.
 */
static void drain(struct agent *a, bool handover)
{
	if (a->draining)
		return;
	a->draining = true;
	if (a->pods) {
		pods_stop_retries(a->pods);
		pods_each_capture(a->pods, stop_accepting, a);
	}
	/* An agent that no longer accepts is no proof of life: fail-open pods
	 * go their own way once the beat is stale, unless a successor, which
	 * began beating before it adopted the listeners, keeps it fresh.
	 */
	agent_heartbeat_stop(a);
	handover_close(a, !handover);
	http_server_free(a->metrics);
	a->metrics = NULL;
	http_server_free(a->admin);
	a->admin = NULL;
	cni_server_free(a->cni);
	a->cni = NULL;
	agent_repair_stop(a);
	stop_registries(a, !handover);
	a->drain_deadline_ms = loop_now_ms(a->loop) + (uint64_t)a->cfg->drain_s * 1000;
	log_info("agent: %s; draining established connections for at most %u s",
		 handover ? "handed over to a successor" : "stopping, no longer accepting",
		 a->cfg->drain_s);
	if (loop_timer_set(a->loop, &a->drain_timer, 0, on_drain_tick))
		loop_stop(a->loop);
}

static void release_to_successor(struct agent *a)
{
	drain(a, true);
}

static void on_signal(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct signalfd_siginfo si;
	struct agent *a = ctx;

	(void)events;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (!a->workers || (a->draining && si.ssi_signo == SIGINT)) {
		log_info("agent: signal %u, stopping now (pinned programs stay: meshed pods fail closed)",
			 si.ssi_signo);
		loop_stop(loop);
		return;
	}
	if (a->draining) {
		/* Kubernetes stops the old pod of a rolling update once its
		 * successor is ready: right after the hand-over, mid-drain.
		 */
		log_info("agent: signal %u while draining: the drain goes on until its deadline (SIGINT stops now)",
			 si.ssi_signo);
		return;
	}
	log_info("agent: signal %u", si.ssi_signo);
	drain(a, false);
}

static int run_path(const struct agent_config *cfg, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", cfg->run_dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Where --opaque-fastpath sockmap pins its maps: <bpffs>/fastpath. */
static int fastpath_pin_dir(const struct agent_config *cfg, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/fastpath", cfg->bpffs);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The capture options of --cleanup and of a start. */
static struct capture_opts capture_opts_of(const struct agent_config *cfg, const char *cgroup);

static int cleanup(const struct agent_config *cfg, const char *cgroup)
{
	const struct capture_opts co = capture_opts_of(cfg, cgroup);
	static const char *const files[] = { "cni.sock", "admin.sock", HANDOVER_SOCK,
					     CNI_PROTO_STATE_FILE };
	char path[PATH_MAX];
	int netns_fds[CLEANUP_PODS_MAX], n, err;

	/* The pods an agent enrolled carry capture in their own netns too (nft
	 * mode's table, the return path): those go first, while their saved
	 * state still says where they are.
	 */
	n = pods_saved_netns(cfg->run_dir, netns_fds, CLEANUP_PODS_MAX);
	if (n < 0) {
		log_warn("cleanup: cannot read the saved pods under '%s': %s; their netns keep what capture put there",
			 cfg->run_dir, strerror(-n));
		n = 0;
	}
	/* Before capture's: it removes the bpffs folder once it is empty. */
	if (!fastpath_pin_dir(cfg, path, sizeof(path)))
		(void)dp_fastpath_cleanup(path);
	err = capture_cleanup(&co, netns_fds, (size_t)n);
	for (int i = 0; i < n; i++)
		close(netns_fds[i]);
	if (err)
		return log_errno(err, "clean up capture under '%s' and in %d pod(s)", cfg->bpffs, n);
	/* nft mode's capture has no bpffs folder to remove; the fast path may
	 * have made one (left alone when anything else is in it).
	 */
	(void)rmdir(cfg->bpffs);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (!run_path(cfg, files[i], path, sizeof(path)))
			(void)unlink(path);
	}
	if (!run_path(cfg, "pods", path, sizeof(path)))
		(void)fs_remove_suffix(path, ".json");
	(void)rmdir(path);
	(void)rmdir(cfg->run_dir);
	log_info("agent: removed every attachment, pin, pod table, route, socket and saved pod under '%s', '%s' and %d pod netns",
		 cfg->bpffs, cfg->run_dir, n);
	return 0;
}

static int setup_signals(struct agent *a)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		return -errno;
	/* A peer closing mid-write must be an EPIPE, never a fatal signal. */
	signal(SIGPIPE, SIG_IGN);
	a->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a->signal_fd == -1)
		return -errno;
	return loop_add_fd(a->loop, a->signal_fd, EPOLLIN, on_signal, a);
}

/* The Prometheus listener of --metrics-addr, when asked for. */
static int start_metrics(struct agent *a)
{
	const struct http_route *routes;
	struct addr addr;
	size_t n_routes;
	int err;

	if (!a->cfg->metrics_addr[0])
		return 0;
	if (addr_parse_listen(a->cfg->metrics_addr, &addr)) {
		log_err("option --metrics-addr: '%s' is not IP:PORT or [IPv6]:PORT",
			a->cfg->metrics_addr);
		return -EINVAL;
	}
	routes = metrics_routes(&n_routes);
	a->metrics = http_server_new_tcp(a->loop, &addr, routes, n_routes, a);
	if (!a->metrics)
		return log_errno(-errno, "listen for metrics on '%s'", a->cfg->metrics_addr);
	err = http_server_local_addr(a->metrics, &addr);
	if (err)
		return log_errno(err, "read the metrics listener's address");
	addr_fmt(&addr, a->metrics_addr, sizeof(a->metrics_addr));
	log_info("metrics: serving GET /metrics on %s", a->metrics_addr);
	return 0;
}

/* Whether a registry delivers this node's Pod objects: a Kubernetes source
 * with --node-name (it watches spec.nodeName=NODE).
 */
static bool agent_has_pod_objects(const struct agent *a)
{
	if (!a->cfg->node_name[0])
		return false;
	for (unsigned int i = 0; i < a->n_regs; i++)
		if (!strcmp(a->regs[i].ops->scheme, "kubernetes"))
			return true;
	return false;
}

/* The pods table's view of the agent (struct pods_deps). */
static const struct catalogue *pods_catalogue(void *ctx)
{
	return ((struct agent *)ctx)->cat;
}

/* The DNS responder's view of the agent (struct dnsr_deps) and the pods
 * table's view of the responder.
 */
static int dns_open_ns(void *ctx, int netns_fd, int *ct_fd)
{
	return capture_dns_open(((struct agent *)ctx)->capture, netns_fd, ct_fd);
}

static int dns_resolver(void *ctx, int ct_fd, bool tcp, int fd, const struct sockaddr *local,
			const struct sockaddr *peer, struct sockaddr_storage *out)
{
	return capture_dns_resolver(((struct agent *)ctx)->capture, ct_fd, tcp, fd, local, peer,
				    out);
}

static void *pods_dns_open(void *ctx, int netns_fd, uint32_t pod_id)
{
	return dnsr_pod_open(((struct agent *)ctx)->dnsr, netns_fd, pod_id);
}

static void pods_dns_close(void *ctx, void *responder)
{
	dnsr_pod_close(((struct agent *)ctx)->dnsr, responder);
}

static bool pods_synced(void *ctx)
{
	return ((struct agent *)ctx)->registries_synced;
}

static void pods_changed(void *ctx)
{
	agent_register_local(ctx);
	agent_identity_sync(ctx);
}

static struct capture_opts capture_opts_of(const struct agent_config *cfg, const char *cgroup)
{
	return (struct capture_opts){
		.mode = cfg->mode,
		.cgroup_path = cgroup,
		.bpffs_dir = cfg->bpffs,
		.mark = cfg->mark,
		.inbound_mark = cfg->inbound_mark,
		.return_table = cfg->return_table,
		.return_priority = CAPTURE_RETURN_PRIORITY,
		.fail_open_after_ms = cfg->fail_open_after_ms,
	};
}

/* Open the capture mode --mode asks for (auto: probe), and say which and why. */
static int start_capture(struct agent *a)
{
	const struct capture_opts co = capture_opts_of(a->cfg, a->cgroup);
	char why[640];
	int err;

	err = capture_open(&a->capture, &co, why, sizeof(why));
	if (err) {
		log_err("capture: %s", why);
		return err;
	}
	log_info("capture: mode %s (%s)", capture_mode_name(capture_mode(a->capture)),
		 capture_why(a->capture));
	if (capture_mode(a->capture) != CAPTURE_EBPF)
		return 0;
	err = cgroup_check_member(a->cgroup);
	if (err == -EPERM) {
		log_err("weft-agent must run inside --cgroup '%s' (or a child of it): "
			"getsockopt(SO_ORIGINAL_DST) is answered by a program attached there",
			a->cgroup);
		return err;
	} else if (err) {
		return log_errno(err, "read this process' cgroup");
	}
	return 0;
}

/* Raise the soft descriptor limit to the hard one, as servers do: every
 * proxied connection costs one descriptor (HTTP, its upstream pooled) or two
 * (opaque), and a soft limit of 1024 would refuse clients long before the
 * node's limit. Nothing uses select(), so a large limit is safe.
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_errno(-errno, "raise the descriptor limit to %llu",
			  (unsigned long long)rl.rlim_max);
		return;
	}
	log_info("descriptor limit raised to the hard limit, %llu", (unsigned long long)rl.rlim_max);
}

static int fastpath_add(void *ctx, int cfd, int ufd, uint32_t slot)
{
	return dp_fastpath_add(ctx, cfd, ufd, slot);
}

static int fastpath_forget(void *ctx, uint64_t cookie)
{
	return dp_fastpath_forget(ctx, cookie);
}

static int fastpath_adopt(void *ctx, int cfd, int ufd, uint32_t slot, uint64_t wr_off[2])
{
	return dp_fastpath_adopt(ctx, cfd, ufd, slot, wr_off);
}

static int fastpath_note(void *ctx, int cfd, int ufd, const uint64_t wr_off[2])
{
	return dp_fastpath_note(ctx, cfd, ufd, wr_off);
}

/* --opaque-fastpath sockmap: load the verdict and hand the proxy its view. */
static int start_fastpath(struct agent *a, struct proxy_opts *po)
{
	char pin_dir[PATH_MAX];
	int err;

	if (strcmp(a->cfg->opaque_fastpath, "sockmap"))
		return 0;
	/* In nft mode the fast path lost a stream's bytes under load (the
	 * fastpath suite's 16 MiB transfer ended early) and after hand-overs
	 * (docs/datapath.md): until that is understood it is eBPF mode only.
	 * Asked for together with --mode nft, that is an error; when --mode
	 * auto fell back to nft, the relay stays on splice and says so.
	 */
	if (capture_mode(a->capture) != CAPTURE_EBPF) {
		if (!strcmp(a->cfg->mode, "nft")) {
			log_err("--opaque-fastpath sockmap is not supported with --mode nft "
				"(see docs/datapath.md); use --opaque-fastpath splice");
			return -EINVAL;
		}
		log_warn("opaque TCP: --opaque-fastpath sockmap is not supported in nft mode, "
			 "which --mode auto chose here: relaying with splice");
		return 0;
	}
	err = fastpath_pin_dir(a->cfg, pin_dir, sizeof(pin_dir));
	if (!err)
		err = dp_fastpath_open(&a->fastpath, pin_dir);
	if (err)
		return log_errno(err, "opaque fast path (--opaque-fastpath sockmap)");
	a->px_fastpath = (struct px_fastpath){
		.add = fastpath_add,
		.adopt = fastpath_adopt,
		.forget = fastpath_forget,
		.note = fastpath_note,
		.ctx = a->fastpath,
		.pinned = dp_fastpath_pinned(a->fastpath),
		.bytes = dp_fastpath_bytes(a->fastpath),
		.slots = dp_fastpath_slots(a->fastpath),
	};
	po->fastpath = &a->px_fastpath;
	log_info("opaque TCP: the kernel fast path (sockmap), %u connections at once",
		 a->px_fastpath.slots);
	return 0;
}

static int start(struct agent *a)
{
	const struct agent_config *cfg = a->cfg;
	struct proxy_opts po = {
		.port = cfg->proxy_port, .mark = cfg->mark,
		.inbound_port = (uint16_t)cfg->inbound_port, .inbound_mark = cfg->inbound_mark,
		.max_conns = cfg->max_conns, .pod_max_conns = cfg->pod_max_conns,
		.defaults = &cfg->policy,
		.sandbox = !cfg->no_sandbox,
	};
	char path[PATH_MAX];
	size_t n_routes;
	int err;

	raise_nofile();
	if (mkdir(cfg->run_dir, 0755) == -1 && errno != EEXIST)
		return log_errno(-errno, "create run dir '%s'", cfg->run_dir);
	a->home_netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (a->home_netns_fd == -1)
		return log_errno(-errno, "open the agent's netns");
	po.home_netns_fd = a->home_netns_fd;
	a->loop = loop_new();
	a->model = model_new();
	if (!a->loop || !a->model)
		return log_errno(-ENOMEM, "start");
	err = model_set_vip_ranges(a->model, cfg->vip_ranges, cfg->n_vip_ranges);
	if (err)
		return log_errno(err, "VIP ranges");
	err = setup_signals(a);
	if (err)
		return log_errno(err, "set up signals");
	err = start_registries(a);
	if (err)
		return err;
	/* The first catalogue: published already if a backend loaded at start. */
	err = a->cat ? 0 : agent_publish(a);
	if (err)
		return err;
	err = start_capture(a);
	if (err)
		return err;
	err = start_fastpath(a, &po);
	if (err)
		return err;
	a->workers = workers_new(a->loop, cfg->workers ? cfg->workers : workers_default(), &po);
	if (!a->workers)
		return log_errno(-errno, "start the proxy");
	workers_set_catalogue(a->workers, a->cat);
	err = workers_on_bound(a->workers, a->loop, on_workers_bound, a);
	if (err)
		return log_errno(err, "start the proxy");
	reg_sink_set_gate(a->sink, sink_busy, a);
	/* Before the pods: restoring them adopts what a predecessor passes. */
	err = handover_begin(a);
	if (err < 0)
		return err;
	if (err > 0)
		hold_registries(a);
	if (cfg->dns_port) {
		a->dnsr = dnsr_new(&(struct dnsr_deps){
			.loop = a->loop,
			.catalogue = pods_catalogue,
			.domain = cfg->cluster_domain,
			.port = (uint16_t)cfg->dns_port,
			.open_ns = dns_open_ns,
			.resolver = dns_resolver,
			/* nft mode redirects a query to an IPv6 resolver to
			 * ::1; eBPF mode steers it over IPv4 (127.54.X.Y).
			 */
			.listen6 = capture_mode(a->capture) == CAPTURE_NFT,
			.ctx = a,
		});
		if (!a->dnsr)
			return log_errno(-errno, "start the DNS responder");
	}
	a->pods = pods_new(&(struct pods_deps){
		.capture = a->capture,
		.workers = a->workers,
		.catalogue = pods_catalogue,
		.synced = pods_synced,
		.changed = pods_changed,
		.ctx = a,
		.run_dir = cfg->run_dir,
		.proxy_port = cfg->proxy_port,
		.inbound_port = (uint16_t)cfg->inbound_port,
		.excl_ports = cfg->excl_ports,
		.n_excl_ports = cfg->n_excl_ports,
		.excl_cidrs = cfg->excl_cidrs,
		.n_excl_cidrs = cfg->n_excl_cidrs,
		.pod_wait_ms = agent_has_pod_objects(a) ? cfg->pod_wait_ms : 0,
		.loop = a->loop,
		.node_name = cfg->node_name,
		.dns_port = a->dnsr ? (uint16_t)cfg->dns_port : 0,
		.dns_open = pods_dns_open,
		.dns_close = pods_dns_close,
	});
	if (!a->pods)
		return log_errno(-errno, "start");
	err = pods_restore(a->pods);
	if (err < 0)
		return err;
	if (err > 0)
		log_info("pods: restored %d pod(s) enrolled before this start", err);
	/* Listeners are up: beat from now, before a predecessor stops. */
	err = agent_heartbeat_start(a);
	if (err)
		return log_errno(err, "start the heartbeat");
	if (a->ho_cfd != -1) {
		err = handover_finish(a, resume_registries);
		if (err)
			log_warn("handover: going on; the control sockets are bound anew");
		/* Pods the predecessor enrolled while this agent restored (its
		 * cni.sock served until it released): known ones are left as
		 * they are, new ones enrolled now.
		 */
		err = pods_restore(a->pods);
		if (err < 0)
			return err;
	}
	err = run_path(cfg, "cni.sock", path, sizeof(path));
	if (!err) {
		a->cni = cni_server_new(a->loop, path, a->pods);
		err = a->cni ? 0 : -errno;
	}
	if (err)
		return log_errno(err, "listen on '%s'", path);
	err = agent_repair_start(a);
	if (err)
		return log_errno(err, "start looking for pods that escaped the mesh");
	err = agent_identity_start(a);
	if (err)
		return err;
	err = run_path(cfg, "admin.sock", path, sizeof(path));
	if (!err) {
		const struct http_route *routes = admin_routes(&n_routes);

		a->admin = http_server_new(a->loop, path, 0600, routes, n_routes, a);
		err = a->admin ? 0 : -errno;
	}
	if (err)
		return log_errno(err, "listen on '%s'", path);
	err = start_metrics(a);
	if (err)
		return err;
	err = handover_listen(a, release_to_successor);
	if (err)
		return log_errno(err, "listen on '%s/%s'", cfg->run_dir, HANDOVER_SOCK);
	a->start_ms = loop_now_ms(a->loop);
	log_info("agent: version %s ready cgroup='%s' bpffs='%s' run_dir='%s' registries=%u",
		 WEFT_VERSION, a->cgroup, cfg->bpffs, cfg->run_dir, a->n_regs);
	return 0;
}

static void stop(struct agent *a)
{
	if (a->loop)
		loop_timer_del(a->loop, &a->drain_timer);
	agent_heartbeat_stop(a);
	/* A successor, if any, has bound its own by now. */
	handover_close(a, !a->draining);
	if (a->ho_cfd != -1)
		close(a->ho_cfd);
	free(a->ho_regs);
	/* A start that failed mid-hand-over: the predecessor keeps its own. */
	px_adopt_close_rest();
	http_server_free(a->metrics);
	http_server_free(a->admin);
	agent_repair_stop(a);
	agent_identity_stop(a);
	cni_server_free(a->cni);
	pods_free(a->pods);
	dnsr_free(a->dnsr);
	workers_free(a->workers);
	a->workers = NULL;	/* the sink's gate asks it no more */
	dp_fastpath_close(a->fastpath);
	capture_close(a->capture);
	stop_registries(a, true);
	model_free(a->model);
	catalogue_unref(a->cat);
	cni_proto_state_done(&a->node_state);
	if (a->signal_fd > 0)
		close(a->signal_fd);
	loop_free(a->loop);
	if (a->home_netns_fd > 0)
		close(a->home_netns_fd);
}

/* Whether this agent loads libcurl for a registry (etcd, Consul) and
 * speaks TLS nowhere: no mTLS (a CA, weft-ca or a bundle), no kubernetes
 * registry (its API server is HTTPS), no https:// URL among the etcd and
 * Consul registries and the Consul agent.
 */
static bool plaintext_http_registry(const struct agent_config *cfg)
{
	bool http = false;

	if (cfg->ca_cert[0] || cfg->ca_url[0] || cfg->trust_bundle[0])
		return false;
	if (cfg->consul_agent && strcasestr(cfg->consul_agent, "https://"))
		return false;
	for (unsigned int i = 0; i < cfg->registries.n; i++) {
		const char *r = cfg->registries.v[i];

		if (!strncmp(r, "kubernetes", 10) || strcasestr(r, "https://"))
			return false;
		if (!strncmp(r, "etcd:", 5) || !strncmp(r, "consul:", 7))
			http = true;
	}
	return http;
}

/* libcurl initialises OpenSSL as it starts (curl_global_init()) with
 * OpenSSL's defaults: every cipher and digest registered under its legacy
 * name, the error strings loaded, openssl.cnf read; 1.1 MiB resident
 * (libcrypto's pages and heap). An agent whose HTTP registry is plaintext
 * and that has no mTLS uses none of it: OpenSSL initialises each part
 * once per process, so initialising it here first without those parts
 * makes libcurl's request for them a no-op. Algorithms are still fetched
 * from OpenSSL's providers; the name tables, strings and configuration
 * serve TLS and key files, which this agent has none of. With no HTTP
 * registry libcurl is not loaded (agent/curl_lazy.c) and this would only
 * cost. docs/benchmarks.md ("Idle RSS") has the figures.
 */
static void openssl_init_lean(const struct agent_config *cfg)
{
	if (!plaintext_http_registry(cfg))
		return;
	if (!OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS |
					 OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
					 OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
				 NULL))
		log_warn("OpenSSL: cannot initialise it; the registry's HTTP client will fail as it starts");
}

int main(int argc, char **argv)
{
	struct agent_config cfg = { 0 };
	struct agent a = {
		.cfg = &cfg, .home_netns_fd = -1, .signal_fd = -1, .ho_lfd = -1, .ho_cfd = -1,
	};
	int err;

	/* GnuTLS (which libcurl's LDAP and RTMP support link; libcurl is
	 * loaded when an HTTP client first needs it, agent/curl_lazy.c)
	 * initialises itself from a constructor as it is loaded unless this is
	 * set: 0.6 MiB resident here, its random generator, FIPS check and
	 * system priority file. weft speaks neither protocol and libcurl's own
	 * TLS is OpenSSL; a library that does use GnuTLS calls
	 * gnutls_global_init() itself, as both of those do. Set here, before
	 * any thread exists (setenv() beside another thread's getenv() is a
	 * race). The agent starts no other program, so nothing inherits it.
	 */
	(void)setenv("GNUTLS_NO_IMPLICIT_INIT", "1", 0);
	/* The same binary is weft-ca, the certificate issuer (docs/mtls.md). */
	if (argc > 1 && !strcmp(argv[1], "--mode-ca"))
		return ca_main(argc - 1, argv + 1);
	log_set_ident("weft-agent");
	err = cfg_parse(&cfg, argc, argv);
	if (err)
		return err > 0 ? 0 : 2;
	if (cfg.version) {
		printf("weft-agent %s\n", WEFT_VERSION);
		return 0;
	}
	err = cgroup_resolve(cfg.cgroup, a.cgroup, sizeof(a.cgroup));
	if (err) {
		log_errno(err, "option --cgroup: cannot use '%s'", cfg.cgroup[0] ? cfg.cgroup : "(cgroup v2 mount)");
		return 1;
	}
	if (cfg.cleanup)
		return cleanup(&cfg, a.cgroup) ? 1 : 0;
	openssl_init_lean(&cfg);	/* before any thread, and before libcurl */
	err = start(&a);
	if (!err)
		err = loop_run(a.loop);
	stop(&a);
	return err ? 1 : 0;
}
