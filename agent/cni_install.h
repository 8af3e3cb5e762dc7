/* SPDX-License-Identifier: GPL-2.0-only */
/* The CNI config installer: puts weft-cni into the node's CNI bin folder and
 * chains it into the config file the container runtime really uses, keeps it
 * chained when the cluster's network plugin rewrites that file, and undoes
 * exactly its own changes on uninstall. Talks to nothing but the filesystem;
 * the caller owns the loop (it polls cni_install_fd()).
 *
 * What it changed is recorded under a state folder that must outlive the
 * process (a host path): <state>/conf/NAME.orig holds the bytes of config
 * file NAME as the cluster last wrote them, <state>/conf/NAME.new marks a
 * file it created, <state>/bin.installed and <state>/bin.orig the same for
 * the plugin binary. A restart reads the records and changes nothing that is
 * already in place; only cni_install_uninstall() restores.
 */
#ifndef WEFT_CNI_INSTALL_H
#define WEFT_CNI_INSTALL_H

#include <limits.h>
#include <stdint.h>

#define CNI_INSTALL_PLUGIN_TYPE "weft-cni"
#define CNI_INSTALL_ERR_MAX	512

struct cni_install_cfg {
	const char *conf_dir;	  /* the runtime's CNI config folder (/etc/cni/net.d) */
	const char *bin_dir;	  /* where weft-cni is installed (/opt/cni/bin) */
	const char *plugin_src;	  /* the weft-cni binary to copy, or NULL: do not copy */
	const char *state_dir;	  /* records of what was changed; must survive restarts */
	const char *agent_socket; /* "agent_socket" of the chained entry */
};

struct cni_install_stats {
	uint64_t chains;	  /* times weft was chained into a file by this process */
	uint64_t repairs;	  /* of which re-chains after weft had been un-chained */
	uint64_t errors;	  /* syncs that failed (malformed config, I/O) */
	uint64_t syncs;		  /* syncs run */
	char conf_file[PATH_MAX]; /* the config the runtime uses ("" none yet) */
	char last_error[CNI_INSTALL_ERR_MAX]; /* "" after a successful sync */
};

struct cni_install;

/* Create an installer for @cfg (strings are copied). Does not touch the
 * filesystem. Returns NULL with errno set (ENOMEM, EINVAL for a missing
 * folder name).
 */
struct cni_install *cni_install_new(const struct cni_install_cfg *cfg);

/* Stop watching and free @ci. Changes nothing on disk. Accepts NULL. */
void cni_install_free(struct cni_install *ci);

/* Bring the node to the installed state, idempotently: copy the plugin when
 * the installed copy differs (temp file + rename), then chain weft into the
 * lexicographically first *.conf, *.conflist or *.json of the config folder
 * (the file libcni and the runtimes load). A .conf/.json single-plugin
 * config is replaced by a .conflist of the same base name holding it and
 * weft. Files are replaced atomically and recorded first. Does not block
 * beyond the file I/O. Returns 0, -ENOENT when the folder holds no config
 * yet, -EINVAL for a malformed config (stats->last_error names the file and
 * the field), or another -errno.
 */
int cni_install_sync(struct cni_install *ci);

/* Start watching the config folder (inotify). Returns a non-blocking fd the
 * caller polls for POLLIN and then calls cni_install_on_events(); -errno on
 * failure. @ci keeps ownership of the fd. Calling it again returns the same fd.
 */
int cni_install_watch(struct cni_install *ci);

/* Drain the pending inotify events and, if any touched the config folder,
 * sync. Returns what cni_install_sync() returned, or 0 when nothing changed.
 */
int cni_install_on_events(struct cni_install *ci);

/* Counters and the last error; valid until cni_install_free(). */
const struct cni_install_stats *cni_install_stats(const struct cni_install *ci);

/* Undo what the records under cfg->state_dir say was changed: a file weft
 * modified or removed gets the cluster's last bytes back unless the cluster
 * rewrote it since (then it is left alone), a file weft created is removed
 * while it still chains weft, the plugin binary is removed (or the one it
 * replaced restored), and the records go. A config that still chains weft
 * with no record (records lost) has the weft entry taken out. With no
 * records and nothing chained this is a no-op. Returns 0 or the first
 * -errno (it carries on past errors; @err gets a message).
 */
int cni_install_uninstall(const struct cni_install_cfg *cfg, char *err, size_t errlen);

#endif /* WEFT_CNI_INSTALL_H */
