// SPDX-License-Identifier: GPL-2.0-only
/* weft-cni-install: the node's CNI installer as its own static binary, run
 * by the DaemonSet's install-cni container. `run` installs and keeps the
 * chaining in place until SIGTERM, then exits changing nothing (a restart or
 * an upgrade); `uninstall` undoes exactly what was installed. The logic is
 * agent/cni_install.c; this file parses options and runs the poll loop.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cni_install.h"
#include "log.h"
#include "opt.h"

struct args {
	const char *conf_dir;
	const char *bin_dir;
	const char *plugin;
	const char *state_dir;
	const char *agent_socket;
	const char *log_level;
	uint32_t resync_s;
};

#define OPT(n, e, t, f, d, lo, hi, m, h)                                                           \
	{ .name = n, .env = e, .type = t, .offset = offsetof(struct args, f), .def = d,            \
	  .min = lo, .max = hi, .metavar = m, .help = h }

static const struct opt_def defs[] = {
	OPT("conf-dir", "CNI_CONF_DIR", OPT_STRING, conf_dir, "/host/etc/cni/net.d", 0, 0, "DIR",
	    "the container runtime's CNI config folder"),
	OPT("bin-dir", "CNI_BIN_DIR", OPT_STRING, bin_dir, "/host/opt/cni/bin", 0, 0, "DIR",
	    "the CNI plugin folder weft-cni is copied into"),
	OPT("plugin", "WEFT_CNI_PLUGIN", OPT_STRING, plugin, "/usr/local/libexec/cni/weft-cni", 0,
	    0, "PATH", "the weft-cni binary to install (empty: do not copy)"),
	OPT("state-dir", "WEFT_CNI_STATE_DIR", OPT_STRING, state_dir,
	    "/host/var/lib/weft/cni-install", 0, 0, "DIR",
	    "where what was changed is recorded for uninstall; must survive restarts and reboots"),
	OPT("agent-socket", "WEFT_CNI_SOCKET", OPT_STRING, agent_socket, "/run/weft/cni.sock", 0, 0,
	    "PATH", "the agent's CNI socket, as the host sees it (the chained entry's agent_socket)"),
	OPT("resync", "WEFT_CNI_RESYNC_S", OPT_U32, resync_s, "10", 1, 3600, "S",
	    "run: also check every S seconds (a missed event, a deleted binary)"),
	OPT("log-level", "WEFT_LOG_LEVEL", OPT_STRING, log_level, "info", 0, 0, "LEVEL",
	    "err, warn, info or debug"),
};
#define N_DEFS (sizeof(defs) / sizeof(defs[0]))

static void usage(FILE *out)
{
	fprintf(out,
		"usage: weft-cni-install install|run|uninstall|pause [OPTIONS]\n\n"
		"  install    copy weft-cni and chain it into the runtime's CNI config, once\n"
		"  run        install, then re-chain whenever the config folder changes, until\n"
		"             SIGTERM; exits leaving everything in place (restart, upgrade)\n"
		"  uninstall  undo exactly what install did (see docs/install.md)\n"
		"  pause      wait for SIGTERM (the uninstall DaemonSet's last container)\n\n");
	opt_usage(out, defs, N_DEFS);
}

static void report(const struct cni_install *ci, int err)
{
	const struct cni_install_stats *st = cni_install_stats(ci);

	if (err == -ENOENT)
		log_warn("%s, ignoring", st->last_error);
	else if (err)
		log_err("%s", st->last_error[0] ? st->last_error : strerror(-err));
}

/* Install, then watch until SIGTERM/SIGINT. The chaining stays on exit.
 * With @ci NULL, only wait for the signal.
 */
static int run(struct cni_install *ci, uint32_t resync_s)
{
	struct pollfd pfd[2] = { { .fd = -1, .events = POLLIN }, { .fd = -1, .events = POLLIN } };
	sigset_t set;
	int err;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1)
		return log_errno(-errno, "block signals");
	pfd[0].fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (pfd[0].fd == -1)
		return log_errno(-errno, "signalfd");
	if (!ci) {
		while (poll(pfd, 1, -1) == -1 && errno == EINTR)
			;
		close(pfd[0].fd);
		return 0;
	}
	err = cni_install_watch(ci);
	if (err < 0) {
		close(pfd[0].fd);
		return log_errno(err, "watch '%s'", cni_install_stats(ci)->conf_file);
	}
	pfd[1].fd = err;
	report(ci, cni_install_sync(ci));
	for (;;) {
		int n = poll(pfd, 2, (int)resync_s * 1000);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			err = log_errno(-errno, "poll");
			break;
		}
		if (pfd[0].revents) {
			const struct cni_install_stats *st = cni_install_stats(ci);

			log_info("stopping; weft-cni stays chained in '%s' (chains %llu, repairs "
				 "%llu)",
				 st->conf_file, (unsigned long long)st->chains,
				 (unsigned long long)st->repairs);
			err = 0;
			break;
		}
		report(ci, pfd[1].revents ? cni_install_on_events(ci) : cni_install_sync(ci));
	}
	close(pfd[0].fd);
	return err;
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	struct cni_install_cfg cfg;
	struct cni_install *ci;
	enum log_level level;
	char err[CNI_INSTALL_ERR_MAX];
	const char *cmd;
	int ret;

	log_set_ident("weft-cni-install");
	if (argc < 2 || argv[1][0] == '-') {
		usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
		return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	cmd = argv[1];
	ret = opt_parse(defs, N_DEFS, &a, argc - 1, argv + 1, err, sizeof(err));
	if (ret == 1) {
		usage(stdout);
		return 0;
	}
	if (ret) {
		fprintf(stderr, "weft-cni-install: %s\n", err);
		return 2;
	}
	if (log_parse_level(a.log_level, &level)) {
		fprintf(stderr,
			"weft-cni-install: --log-level: '%s' is not err, warn, info or "
			"debug\n",
			a.log_level);
		return 2;
	}
	log_set_level(level);
	cfg = (struct cni_install_cfg){
		.conf_dir = a.conf_dir,
		.bin_dir = a.bin_dir,
		.plugin_src = a.plugin[0] ? a.plugin : NULL,
		.state_dir = a.state_dir,
		.agent_socket = a.agent_socket,
	};
	if (!strcmp(cmd, "pause"))
		return run(NULL, 0) ? 1 : 0;
	if (!strcmp(cmd, "uninstall")) {
		ret = cni_install_uninstall(&cfg, err, sizeof(err));
		if (ret)
			log_err("uninstall: %s", err);
		return ret ? 1 : 0;
	}
	if (strcmp(cmd, "install") && strcmp(cmd, "run")) {
		fprintf(stderr, "weft-cni-install: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	ci = cni_install_new(&cfg);
	if (!ci)
		return log_errno(-errno, "start"), 1;
	if (!strcmp(cmd, "install")) {
		ret = cni_install_sync(ci);
		report(ci, ret);
	} else {
		ret = run(ci, a.resync_s);
	}
	cni_install_free(ci);
	return ret ? 1 : 0;
}
