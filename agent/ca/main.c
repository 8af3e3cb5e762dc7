// SPDX-License-Identifier: GPL-2.0-only
/* weft-ca's process (weft-agent --mode-ca): its option table, the listening
 * socket, and the main loop that accepts connections (served on threads by
 * serve.c), looks at the CA files every --reload-period and publishes the
 * bundle ConfigMap whenever the signer or the bundle changed.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "addr.h"
#include "ca/ca.h"
#include "clock.h"
#include "log.h"
#include "loop.h"
#include "opt.h"
#include "spiffe.h"

/* How long a stopping weft-ca waits for requests under way. */
#define CA_DRAIN_MS 15000
/* The bundle is written again this often even when unchanged, so that a
 * ConfigMap deleted or edited by hand comes back (an unchanged write
 * changes nothing for the API server or kubelet).
 */
#define CA_REPUBLISH_S 60

#define OPT(n, e, t, f, d, lo, hi, m, h)                                                           \
	{ .name = n, .env = e, .type = t, .offset = offsetof(struct ca_config, f), .def = d,       \
	  .min = lo, .max = hi, .metavar = m, .help = h }

static const struct opt_def ca_opts[] = {
	OPT("listen", "WEFT_CA_LISTEN", OPT_STRING, listen, "0.0.0.0:8443", 0, 0, "IP:PORT",
	    "where weft-ca serves HTTPS (POST /v1/sign, GET /v1/status, GET /metrics)"),
	OPT("ca-dir", "WEFT_CA_DIR", OPT_STRING, ca_dir, "/etc/weft-ca", 0, 0, "DIR",
	    "the weft-ca Secret's files: ca.crt and ca.key (the signing CA), trust.pem (optional: more CA certificates agents must trust, the old or next CA of a rotation); looked at again every --reload-period"),
	OPT("trust-domain", "WEFT_TRUST_DOMAIN", OPT_STRING, trust_domain, "cluster.local", 0, 0,
	    "NAME", "SPIFFE trust domain of the identities signed"),
	OPT("svid-ttl", "WEFT_SVID_TTL", OPT_U32, svid_ttl_s, "86400", 10, 2592000, "S",
	    "lifetime of the workload certificates signed; agents renew at half of it"),
	OPT("audience", "WEFT_CA_AUDIENCE", OPT_STRING, audience, "weft-ca", 0, 0, "AUD",
	    "the audience callers' tokens must be issued for"),
	OPT("agent-service-account", "WEFT_CA_AGENT_SA", OPT_STRING, agent_sa,
	    "weft-system:weft-agent", 0, 0, "NS:NAME",
	    "the only ServiceAccount whose tokens may ask for certificates: the node agents'"),
	OPT("serving-names", "WEFT_CA_SERVING_NAMES", OPT_STRING, serving_names,
	    "weft-ca.weft-system.svc,weft-ca.weft-system,weft-ca", 0, 0, "NAMES",
	    "DNS names and IP addresses of weft-ca's own serving certificate, comma-separated"),
	OPT("bundle-configmap", "WEFT_CA_BUNDLE_CONFIGMAP", OPT_STRING, bundle_configmap,
	    "weft-system/weft-ca-bundle", 0, 0, "NS/NAME",
	    "ConfigMap weft-ca keeps equal to the bundle (key bundle.pem), which agents mount as --trust-bundle; empty: not published"),
	OPT("kubeconfig", "KUBECONFIG", OPT_STRING, kubeconfig, "", 0, 0, "PATH",
	    "kubeconfig of the API server; empty: the in-cluster service account"),
	OPT("log-level", "WEFT_LOG_LEVEL", OPT_STRING, log_level, "info", 0, 0, "LEVEL",
	    "err, warn, info or debug"),
	OPT("max-conns", "WEFT_CA_MAX_CONNS", OPT_U32, max_conns, "64", 1, 4096, "N",
	    "connections served at once, one thread each; more are closed at once"),
	OPT("reload-period", "WEFT_CA_RELOAD_MS", OPT_U32, reload_ms, "1000", 100, 600000, "MS",
	    "how often the files of --ca-dir are looked at (a stat each)"),
	OPT("version", NULL, OPT_FLAG, version, NULL, 0, 0, NULL, "print the version and exit"),
};

struct ca_proc {
	struct ca_server srv;
	struct loop *loop;
	int lfd, sfd;
	struct loop_timer reload;
	bool publish_due;	/* the bundle changed and is not published yet */
	time_t publish_retry_at;	/* after a failed write, not before this */
};

/* After a failed write of the bundle, the next try waits this long (an API
 * server away, or RBAC missing, is not retried every --reload-period).
 */
#define CA_PUBLISH_RETRY_S 10

/* Write the bundle ConfigMap; @changed: the bundle is new (logged). */
static void publish(struct ca_proc *p, bool changed)
{
	const struct ca_config *cfg = p->srv.cfg;
	char err[512] = "", *pem;
	int rc;

	if (!cfg->bundle_configmap[0]) {
		p->publish_due = false;
		return;
	}
	pthread_rwlock_rdlock(&p->srv.store.lock);
	pem = strdup(p->srv.store.bundle_pem);
	pthread_rwlock_unlock(&p->srv.store.lock);
	if (!pem)
		return;
	rc = ca_kube_publish_bundle(&p->srv.kube, cfg->bundle_configmap, pem, err, sizeof(err));
	free(pem);
	if (rc) {
		log_warn("weft-ca: publishing the bundle: %s; retried in %d s", err,
			 CA_PUBLISH_RETRY_S);
		p->publish_retry_at = time(NULL) + CA_PUBLISH_RETRY_S;
		return;
	}
	p->publish_due = false;
	if (atomic_exchange(&p->srv.bundle_published, time(NULL)) && !changed)
		return;
	log_info("weft-ca: bundle published to ConfigMap %s (%zu CA certificate(s))",
		 cfg->bundle_configmap, p->srv.store.n_bundle);
}

static void on_reload(struct loop_timer *t, uint64_t now_ms)
{
	struct ca_proc *p = (struct ca_proc *)((char *)t - offsetof(struct ca_proc, reload));
	bool changed = ca_store_reload(&p->srv.store, p->srv.cfg, false) > 0;

	(void)now_ms;
	if (changed || time(NULL) - atomic_load(&p->srv.bundle_published) >= CA_REPUBLISH_S)
		p->publish_due = true;
	if (p->publish_due && (changed || time(NULL) >= p->publish_retry_at))
		publish(p, changed || !atomic_load(&p->srv.bundle_published));
	if (loop_timer_set(p->loop, &p->reload, p->srv.cfg->reload_ms, on_reload))
		log_warn("weft-ca: cannot re-arm the reload timer; the CA files are not looked at any more");
}

static void on_accept(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct ca_proc *p = ctx;
	int cfd;

	(void)loop;
	(void)events;
	while ((cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) != -1)
		ca_serve_conn(&p->srv, cfd);
}

static void on_signal(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct signalfd_siginfo si;

	(void)events;
	(void)ctx;
	if (read(fd, &si, sizeof(si)) == sizeof(si))
		log_info("weft-ca: signal %u, stopping", si.ssi_signo);
	loop_stop(loop);
}

static int open_listener(const char *spec, int *out)
{
	struct sockaddr_storage ss;
	struct addr a;
	socklen_t len;
	int fd, one = 1, err;

	err = addr_parse_ip_port(spec, &a);
	if (err)
		return err;
	len = addr_to_sockaddr(&a, &ss);
	fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 128) == -1) {
		err = -errno;
		close(fd);
		return err;
	}
	*out = fd;
	return 0;
}

static int setup(struct ca_proc *p)
{
	const struct ca_config *cfg = p->srv.cfg;
	char err[K8S_CFG_ERR_MAX] = "";
	sigset_t set;
	int rc;

	rc = cfg->kubeconfig[0]
		     ? k8s_conn_from_kubeconfig(cfg->kubeconfig, &p->srv.kube, err, sizeof(err))
		     : k8s_conn_in_cluster(K8S_SA_DIR, getenv("KUBERNETES_SERVICE_HOST"),
					   getenv("KUBERNETES_SERVICE_PORT"), &p->srv.kube, err,
					   sizeof(err));
	if (rc)
		return log_errno(rc, "weft-ca: API server: %s", err);
	rc = ca_store_init(&p->srv.store);
	if (rc)
		return log_errno(rc, "weft-ca: store");
	rc = ca_store_reload(&p->srv.store, cfg, true);
	if (rc < 0)
		return rc;	/* logged */
	p->publish_due = true;
	p->loop = loop_new();
	if (!p->loop)
		return log_errno(-errno, "weft-ca: loop");
	rc = open_listener(cfg->listen, &p->lfd);
	if (rc)
		return log_errno(rc, "weft-ca: option --listen: cannot listen on '%s'", cfg->listen);
	rc = loop_add_fd(p->loop, p->lfd, EPOLLIN, on_accept, p);
	if (rc)
		return log_errno(rc, "weft-ca: listen");
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	signal(SIGPIPE, SIG_IGN);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return log_errno(-EINVAL, "weft-ca: signals");
	p->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (p->sfd == -1)
		return log_errno(-errno, "weft-ca: signalfd");
	rc = loop_add_fd(p->loop, p->sfd, EPOLLIN, on_signal, p);
	if (rc)
		return log_errno(rc, "weft-ca: signals");
	on_reload(&p->reload, 0);
	log_info("weft-ca: serving on %s, trust domain %s, certificates for %us, callers must be %s",
		 cfg->listen, cfg->trust_domain, cfg->svid_ttl_s, cfg->agent_sa);
	return 0;
}

static void teardown(struct ca_proc *p)
{
	uint64_t end = mono_ms() + CA_DRAIN_MS;

	if (p->loop)
		loop_timer_del(p->loop, &p->reload);
	if (p->lfd >= 0)
		close(p->lfd);
	/* Requests under way hold the store: they finish first. */
	while (atomic_load(&p->srv.conns) && mono_ms() < end)
		usleep(10000);
	if (p->sfd >= 0)
		close(p->sfd);
	loop_free(p->loop);
	if (!atomic_load(&p->srv.conns))
		ca_store_done(&p->srv.store);
	k8s_conn_done(&p->srv.kube);
}

int ca_main(int argc, char **argv)
{
	struct ca_config cfg = { 0 };
	struct ca_proc p = { .lfd = -1, .sfd = -1, .srv = { .cfg = &cfg } };
	char err[256] = "";
	enum log_level level;
	int rc;

	log_set_ident("weft-ca");
	rc = opt_parse(ca_opts, sizeof(ca_opts) / sizeof(ca_opts[0]), &cfg, argc, argv, err,
		       sizeof(err));
	if (rc == 1) {
		printf("Usage: weft-agent --mode-ca [OPTION]...\n"
		       "weft-ca: signs node agents' workload certificates (docs/mtls.md).\n\n");
		opt_usage(stdout, ca_opts, sizeof(ca_opts) / sizeof(ca_opts[0]));
		return 0;
	}
	if (rc) {
		fprintf(stderr, "weft-ca: %s\n", err);
		return 2;
	}
	if (cfg.version) {
		printf("weft-ca %s\n", WEFT_VERSION);
		return 0;
	}
	if (log_parse_level(cfg.log_level, &level)) {
		fprintf(stderr, "weft-ca: option --log-level: '%s' is not one of err, warn, info, debug\n",
			cfg.log_level);
		return 2;
	}
	log_set_level(level);
	if (!spiffe_td_valid(cfg.trust_domain)) {
		fprintf(stderr, "weft-ca: option --trust-domain: '%s' is not a trust domain\n",
			cfg.trust_domain);
		return 2;
	}
	if (!strchr(cfg.agent_sa, ':')) {
		fprintf(stderr, "weft-ca: option --agent-service-account: '%s' is not NAMESPACE:NAME\n",
			cfg.agent_sa);
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		fprintf(stderr, "weft-ca: libcurl did not initialise\n");
		return 1;
	}
	p.srv.started = time(NULL);
	rc = setup(&p);
	if (!rc)
		rc = loop_run(p.loop);
	teardown(&p);
	curl_global_cleanup();
	return rc ? 1 : 0;
}
