// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/cni_install.h: which config the runtime loads, how
 * weft is chained into it, the records that make uninstall exact, and the
 * inotify watch that re-chains after the cluster's network plugin rewrites
 * its file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cni_install.h"
#include "fs.h"
#include "log.h"

/* A CNI config is small; anything past this is not one. */
#define CONF_MAX (1 << 20)
/* The plugin binary (static, a few MiB). */
#define BIN_MAX (256 << 20)
/* Passes of one sync: chaining or converting changes which file is first. */
#define SYNC_PASSES 4
#define STATE_CONF  "conf"

struct cni_install {
	char *conf_dir;
	char *bin_dir;
	char *plugin_src;
	char *state_dir;
	char *agent_socket;
	int ifd; /* inotify, -1 until cni_install_watch() */
	int wd;	 /* watch of conf_dir, -1 when lost */
	struct cni_install_stats stats;
};

enum conf_kind { CONF_NONE, CONF_SINGLE, CONF_LIST };

/* What libcni's ConfFiles() matches: the extension after the last dot. */
static enum conf_kind conf_kind_of(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (!dot)
		return CONF_NONE;
	if (!strcmp(dot, ".conflist"))
		return CONF_LIST;
	if (!strcmp(dot, ".conf") || !strcmp(dot, ".json"))
		return CONF_SINGLE;
	return CONF_NONE;
}

static int join(char *out, size_t len, const char *dir, const char *name, const char *suffix)
{
	int n = snprintf(out, len, "%s/%s%s", dir, name, suffix);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Replace @dir/@name by @buf atomically: a temp file in the same folder,
 * written and synced, renamed over the name. The temp name has no
 * extension libcni would load, so a runtime listing the folder never picks
 * it up half-written.
 */
static int write_atomic(const char *dir, const char *name, const void *buf, size_t len, mode_t mode)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	size_t off = 0;
	int fd, err;

	err = join(tmp, sizeof(tmp), dir, ".weft-tmp-XXXXXX", "");
	if (!err)
		err = join(path, sizeof(path), dir, name, "");
	if (err)
		return err;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd == -1)
		return -errno;
	while (off < len) {
		ssize_t n = write(fd, (const char *)buf + off, len - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			err = -errno;
			goto out_unlink;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, mode) == -1 || fsync(fd) == -1) {
		err = -errno;
		goto out_unlink;
	}
	if (close(fd) == -1) {
		fd = -1;
		err = -errno;
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		err = -errno;
		goto out_unlink;
	}
	return 0;
out_unlink:
	if (fd != -1)
		close(fd);
	(void)unlink(tmp);
	return err;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) == -1 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) == -1 && errno != EEXIST)
		return -errno;
	return 0;
}

static int set_err(char *err, size_t len, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int set_err(char *err, size_t len, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return ret;
}

/* Parse @buf as one JSON object. -EINVAL with a message naming @path. */
static int parse_conf(const char *path, const char *buf, size_t len, json_object **out, char *err,
		      size_t errlen)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *o;
	enum json_tokener_error jerr;

	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!o || jerr != json_tokener_success) {
		set_err(err, errlen, -EINVAL, "'%s': not JSON: %s at byte %zu", path,
			json_tokener_error_desc(jerr == json_tokener_continue
							? json_tokener_error_parse_eof
							: jerr),
			json_tokener_get_parse_end(tok));
		json_object_put(o);
		json_tokener_free(tok);
		return -EINVAL;
	}
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return set_err(err, errlen, -EINVAL, "'%s': not a JSON object", path);
	}
	*out = o;
	return 0;
}

static const char *str_field(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Check the fields the runtime needs, so a broken file is named precisely. */
static int check_conf(const char *path, json_object *o, enum conf_kind kind, char *err,
		      size_t errlen)
{
	json_object *plugins;

	if (kind == CONF_SINGLE) {
		if (!str_field(o, "type"))
			return set_err(err, errlen, -EINVAL,
				       "'%s': field 'type': missing or not a string%s", path,
				       json_object_object_get_ex(o, "plugins", NULL)
					       ? " (a plugin list belongs in a .conflist)"
					       : "");
		return 0;
	}
	if (!json_object_object_get_ex(o, "plugins", &plugins) ||
	    !json_object_is_type(plugins, json_type_array))
		return set_err(err, errlen, -EINVAL, "'%s': field 'plugins': missing or not a list",
			       path);
	if (!json_object_array_length(plugins))
		return set_err(err, errlen, -EINVAL, "'%s': field 'plugins': empty", path);
	for (size_t i = 0; i < json_object_array_length(plugins); i++) {
		json_object *p = json_object_array_get_idx(plugins, i);

		if (!json_object_is_type(p, json_type_object) || !str_field(p, "type"))
			return set_err(err, errlen, -EINVAL,
				       "'%s': field 'plugins[%zu].type': missing or not a string",
				       path, i);
	}
	return 0;
}

static bool is_weft(json_object *plugin)
{
	const char *t = str_field(plugin, "type");

	return t && !strcmp(t, CNI_INSTALL_PLUGIN_TYPE);
}

static bool chains_weft(json_object *o)
{
	json_object *plugins;

	if (!json_object_object_get_ex(o, "plugins", &plugins) ||
	    !json_object_is_type(plugins, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(plugins); i++)
		if (is_weft(json_object_array_get_idx(plugins, i)))
			return true;
	return false;
}

static int write_json(const char *dir, const char *name, json_object *o, mode_t mode)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								  JSON_C_TO_STRING_SPACED |
								  JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t n = strlen(s);
	char *buf = malloc(n + 2);
	int err;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, s, n);
	buf[n] = '\n';
	err = write_atomic(dir, name, buf, n + 1, mode);
	free(buf);
	return err;
}

/* The lexicographically first config file of @dir (Go's sort.Strings is a
 * byte order, so strcmp). Regular files only; -ENOENT when there is none.
 */
static int first_conf(const char *dir, char *out, size_t len)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	bool found = false;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;

		if (conf_kind_of(de->d_name) == CONF_NONE)
			continue;
		if (join(path, sizeof(path), dir, de->d_name, "") || stat(path, &st) == -1 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (found && strcmp(de->d_name, out) >= 0)
			continue;
		if (strlen(de->d_name) >= len)
			continue;
		snprintf(out, len, "%s", de->d_name);
		found = true;
	}
	closedir(d);
	return found ? 0 : -ENOENT;
}

/* ---------------------------------------------------------------- records */

static int record_path(const char *state, const char *name, const char *suffix, char *out,
		       size_t len)
{
	char dir[PATH_MAX];
	int err = join(dir, sizeof(dir), state, STATE_CONF, "");

	return err ?: join(out, len, dir, name, suffix);
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Write the record @name@suffix (".orig" or ".new") with @buf and @mode,
 * and drop the other kind: a config file has one record at most.
 */
static int record(struct cni_install *ci, const char *name, const char *suffix,
		  const char *other, const char *buf, size_t len, mode_t mode)
{
	char dir[PATH_MAX], rec[NAME_MAX + 8], path[PATH_MAX];
	int err;

	err = join(dir, sizeof(dir), ci->state_dir, STATE_CONF, "");
	if (!err)
		err = mkdir_p(dir);
	if (err)
		return err;
	if (snprintf(rec, sizeof(rec), "%s%s", name, suffix) >= (int)sizeof(rec))
		return -ENAMETOOLONG;
	err = write_atomic(dir, rec, buf, len, mode);
	if (err)
		return err;
	if (!record_path(ci->state_dir, name, other, path, sizeof(path)))
		(void)unlink(path); /* absent is fine */
	return 0;
}

/* Remember @buf as the cluster's own version of config file @name. The
 * record's mode is the file's, so uninstall restores both.
 */
static int record_orig(struct cni_install *ci, const char *name, const char *buf, size_t len,
		       mode_t mode)
{
	return record(ci, name, ".orig", ".new", buf, len, mode);
}

/* Remember that config file @name did not exist before weft wrote it. */
static int record_new(struct cni_install *ci, const char *name)
{
	return record(ci, name, ".new", ".orig", "", 0, 0644);
}

/* Has weft changed any config file before (this process or an earlier one)? */
static bool has_records(const char *state)
{
	char dir[PATH_MAX];
	struct dirent *de;
	bool any = false;
	DIR *d;

	if (join(dir, sizeof(dir), state, STATE_CONF, ""))
		return false;
	d = opendir(dir);
	if (!d)
		return false;
	while (!any && (de = readdir(d)))
		any = de->d_name[0] != '.';
	closedir(d);
	return any;
}

/* ---------------------------------------------------------------- install */

static int copy_plugin(struct cni_install *ci)
{
	char dst[PATH_MAX], marker[PATH_MAX], orig[PATH_MAX];
	char *src_buf = NULL, *dst_buf = NULL;
	size_t src_len, dst_len = 0;
	mode_t dst_mode = 0755;
	bool same;
	int err, dst_err;

	if (!ci->plugin_src)
		return 0;
	err = join(dst, sizeof(dst), ci->bin_dir, CNI_INSTALL_PLUGIN_TYPE, "");
	if (!err)
		err = join(marker, sizeof(marker), ci->state_dir, "bin.installed", "");
	if (!err)
		err = join(orig, sizeof(orig), ci->state_dir, "bin.orig", "");
	if (err)
		return err;
	err = fs_read_file(ci->plugin_src, BIN_MAX, &src_buf, &src_len, NULL);
	if (err)
		return set_err(ci->stats.last_error, sizeof(ci->stats.last_error), err,
			       "read the plugin '%s': %s", ci->plugin_src, strerror(-err));
	dst_err = fs_read_file(dst, BIN_MAX, &dst_buf, &dst_len, &dst_mode);
	same = !dst_err && dst_len == src_len && !memcmp(src_buf, dst_buf, src_len);
	if (!exists(marker)) {
		err = mkdir_p(ci->state_dir);
		/* A weft-cni that is not ours is kept for uninstall. */
		if (!err && !dst_err && !same)
			err = write_atomic(ci->state_dir, "bin.orig", dst_buf, dst_len, dst_mode);
		if (!err)
			err = write_atomic(ci->state_dir, "bin.installed", "", 0, 0644);
		if (err)
			goto out;
	}
	if (!same) {
		err = write_atomic(ci->bin_dir, CNI_INSTALL_PLUGIN_TYPE, src_buf, src_len, 0755);
		if (err) {
			set_err(ci->stats.last_error, sizeof(ci->stats.last_error), err,
				"install '%s': %s", dst, strerror(-err));
			goto out;
		}
		log_info("installed '%s'", dst);
	}
out:
	free(dst_buf);
	free(src_buf);
	return err;
}

static json_object *weft_entry(struct cni_install *ci)
{
	json_object *p = json_object_new_object();

	json_object_object_add(p, "type", json_object_new_string(CNI_INSTALL_PLUGIN_TYPE));
	json_object_object_add(p, "agent_socket", json_object_new_string(ci->agent_socket));
	return p;
}

static void count_chain(struct cni_install *ci, bool repair, const char *what, const char *path)
{
	ci->stats.chains++;
	if (repair) {
		ci->stats.repairs++;
		log_info("re-chained weft-cni into '%s' (%s; repair %llu)", path, what,
			 (unsigned long long)ci->stats.repairs);
	} else {
		log_info("chained weft-cni into '%s' (%s)", path, what);
	}
}

/* Append weft to conflist @name (not chained yet). */
static int chain_list(struct cni_install *ci, const char *name, json_object *o, const char *buf,
		      size_t len, mode_t mode)
{
	bool repair = has_records(ci->state_dir);
	json_object *plugins;
	char path[PATH_MAX];
	int err;

	err = record_orig(ci, name, buf, len, mode);
	if (err)
		return err;
	json_object_object_get_ex(o, "plugins", &plugins);
	json_object_array_add(plugins, weft_entry(ci));
	err = write_json(ci->conf_dir, name, o, mode);
	if (err)
		return err;
	(void)join(path, sizeof(path), ci->conf_dir, name, "");
	count_chain(ci, repair, "appended to its plugins", path);
	return 0;
}

/* Replace single-plugin config @name by BASE.conflist holding it and weft,
 * as libcni's ConfListFromConf() would build it. The .conflist is written
 * first, then @name removed: the runtime loads one or the other, never none.
 */
static int convert_single(struct cni_install *ci, const char *name, json_object *o, const char *buf,
			  size_t len, mode_t mode)
{
	bool repair = has_records(ci->state_dir);
	char target[NAME_MAX + 1], tpath[PATH_MAX], path[PATH_MAX];
	const char *dot = strrchr(name, '.');
	json_object *list, *plugins, *v;
	char *tbuf = NULL;
	size_t tlen;
	mode_t tmode;
	int err;

	if (snprintf(target, sizeof(target), "%.*s.conflist", (int)(dot - name), name) >=
	    (int)sizeof(target))
		return -ENAMETOOLONG;
	err = join(tpath, sizeof(tpath), ci->conf_dir, target, "");
	if (!err)
		err = join(path, sizeof(path), ci->conf_dir, name, "");
	if (err)
		return err;
	err = fs_read_file(tpath, CONF_MAX, &tbuf, &tlen, &tmode);
	if (err == -ENOENT) {
		err = record_new(ci, target);
	} else if (!err) {
		json_object *t = NULL;
		char ignored[CNI_INSTALL_ERR_MAX];

		/* The cluster's own file of that name (not one weft wrote) is
		 * kept for uninstall.
		 */
		if (parse_conf(tpath, tbuf, tlen, &t, ignored, sizeof(ignored)) || !chains_weft(t))
			err = record_orig(ci, target, tbuf, tlen, tmode);
		json_object_put(t);
	}
	free(tbuf);
	if (err)
		return err;
	err = record_orig(ci, name, buf, len, mode);
	if (err)
		return err;

	list = json_object_new_object();
	plugins = json_object_new_array();
	if (json_object_object_get_ex(o, "cniVersion", &v))
		json_object_object_add(list, "cniVersion", json_object_get(v));
	if (json_object_object_get_ex(o, "name", &v))
		json_object_object_add(list, "name", json_object_get(v));
	json_object_array_add(plugins, json_object_get(o));
	json_object_array_add(plugins, weft_entry(ci));
	json_object_object_add(list, "plugins", plugins);
	err = write_json(ci->conf_dir, target, list, mode);
	json_object_put(list);
	if (err)
		return err;
	if (unlink(path) == -1 && errno != ENOENT)
		return -errno;
	count_chain(ci, repair, name, tpath);
	return 0;
}

/* One pass: look at the first config; 1 when it already chains weft, 0
 * when this pass changed something (look again), or -errno.
 */
static int sync_pass(struct cni_install *ci)
{
	char name[NAME_MAX + 1], path[PATH_MAX];
	char *err_buf = ci->stats.last_error;
	size_t errlen = sizeof(ci->stats.last_error);
	json_object *o = NULL;
	enum conf_kind kind;
	char *buf = NULL;
	size_t len;
	mode_t mode;
	int err;

	err = first_conf(ci->conf_dir, name, sizeof(name));
	if (err == -ENOENT)
		return set_err(err_buf, errlen, err,
			       "no *.conf, *.conflist or *.json in '%s' yet: waiting for the "
			       "cluster's network plugin",
			       ci->conf_dir);
	if (err)
		return set_err(err_buf, errlen, err, "list '%s': %s", ci->conf_dir, strerror(-err));
	err = join(path, sizeof(path), ci->conf_dir, name, "");
	if (err)
		return err;
	snprintf(ci->stats.conf_file, sizeof(ci->stats.conf_file), "%s", path);
	err = fs_read_file(path, CONF_MAX, &buf, &len, &mode);
	if (err == -ENOENT)
		return 0; /* replaced under us: look again */
	if (err)
		return set_err(err_buf, errlen, err, "read '%s': %s", path, strerror(-err));
	kind = conf_kind_of(name);
	err = parse_conf(path, buf, len, &o, err_buf, errlen);
	if (!err)
		err = check_conf(path, o, kind, err_buf, errlen);
	if (err)
		goto out;
	if (kind == CONF_LIST && chains_weft(o))
		err = 1;
	else if (kind == CONF_SINGLE && is_weft(o))
		err = set_err(err_buf, errlen, -EINVAL,
			      "'%s': field 'type': weft-cni cannot be the only plugin", path);
	else if (kind == CONF_LIST)
		err = chain_list(ci, name, o, buf, len, mode);
	else
		err = convert_single(ci, name, o, buf, len, mode);
	if (err < 0 && !err_buf[0])
		set_err(err_buf, errlen, err, "chain into '%s': %s", path, strerror(-err));
out:
	json_object_put(o);
	free(buf);
	return err;
}

int cni_install_sync(struct cni_install *ci)
{
	int err;

	ci->stats.syncs++;
	ci->stats.last_error[0] = '\0';
	if (ci->ifd != -1 && ci->wd == -1)
		ci->wd = inotify_add_watch(ci->ifd, ci->conf_dir,
					   IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO |
						   IN_MOVED_FROM | IN_DELETE | IN_ATTRIB |
						   IN_DELETE_SELF | IN_MOVE_SELF);
	err = copy_plugin(ci);
	for (int i = 0; !err && i < SYNC_PASSES; i++) {
		err = sync_pass(ci);
		if (err == 1)
			return 0;
	}
	if (!err)
		err = set_err(ci->stats.last_error, sizeof(ci->stats.last_error), -EAGAIN,
			      "'%s' keeps changing: not chained after %d passes", ci->conf_dir,
			      SYNC_PASSES);
	ci->stats.errors++;
	return err;
}

int cni_install_watch(struct cni_install *ci)
{
	if (ci->ifd != -1)
		return ci->ifd;
	ci->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ci->ifd == -1)
		return -errno;
	ci->wd = inotify_add_watch(ci->ifd, ci->conf_dir,
				   IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
					   IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF);
	if (ci->wd == -1) {
		int err = -errno;

		close(ci->ifd);
		ci->ifd = -1;
		return err;
	}
	return ci->ifd;
}

int cni_install_on_events(struct cni_install *ci)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;

	if (ci->ifd == -1)
		return 0;
	for (;;) {
		ssize_t n = read(ci->ifd, buf, sizeof(buf));

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->mask & IN_IGNORED)
				ci->wd = -1; /* the folder went: sync re-adds the watch */
			/* Our own temp files come and go on every write. */
			if (!(ev->len && !strncmp(ev->name, ".weft-tmp-", 10)))
				changed = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	return changed ? cni_install_sync(ci) : 0;
}

const struct cni_install_stats *cni_install_stats(const struct cni_install *ci)
{
	return &ci->stats;
}

struct cni_install *cni_install_new(const struct cni_install_cfg *cfg)
{
	struct cni_install *ci;

	if (!cfg->conf_dir || !cfg->bin_dir || !cfg->state_dir) {
		errno = EINVAL;
		return NULL;
	}
	ci = calloc(1, sizeof(*ci));
	if (!ci)
		return NULL;
	ci->ifd = -1;
	ci->wd = -1;
	ci->conf_dir = strdup(cfg->conf_dir);
	ci->bin_dir = strdup(cfg->bin_dir);
	ci->state_dir = strdup(cfg->state_dir);
	ci->agent_socket = strdup(cfg->agent_socket ?: "/run/weft/cni.sock");
	ci->plugin_src = cfg->plugin_src ? strdup(cfg->plugin_src) : NULL;
	if (!ci->conf_dir || !ci->bin_dir || !ci->state_dir || !ci->agent_socket ||
	    (cfg->plugin_src && !ci->plugin_src)) {
		cni_install_free(ci);
		errno = ENOMEM;
		return NULL;
	}
	return ci;
}

void cni_install_free(struct cni_install *ci)
{
	if (!ci)
		return;
	if (ci->ifd != -1)
		close(ci->ifd);
	free(ci->conf_dir);
	free(ci->bin_dir);
	free(ci->plugin_src);
	free(ci->state_dir);
	free(ci->agent_socket);
	free(ci);
}

/* -------------------------------------------------------------- uninstall */

/* Does config file @path exist and chain weft? */
static int conf_state(const char *path, bool *chained)
{
	char ignored[CNI_INSTALL_ERR_MAX], *buf;
	json_object *o = NULL;
	size_t len;
	int err;

	*chained = false;
	err = fs_read_file(path, CONF_MAX, &buf, &len, NULL);
	if (err)
		return err;
	if (!parse_conf(path, buf, len, &o, ignored, sizeof(ignored)))
		*chained = chains_weft(o);
	json_object_put(o);
	free(buf);
	return 0;
}

/* Record @rec (a config file's name and @suffix, in @recdir): where it
 * points, and what that config file is now.
 */
struct rec_paths {
	char name[NAME_MAX + 1];	/* the config file's */
	char path[PATH_MAX];		/* the config file */
	char rpath[PATH_MAX];		/* the record */
	int state;			/* conf_state() of the config file: 0 or -errno */
	bool chained;			/* when @state is 0 */
};

static int rec_paths(struct rec_paths *p, const struct cni_install_cfg *cfg, const char *recdir,
		     const char *rec, const char *suffix)
{
	int err;

	snprintf(p->name, sizeof(p->name), "%.*s", (int)(strlen(rec) - strlen(suffix)), rec);
	err = join(p->path, sizeof(p->path), cfg->conf_dir, p->name, "") ?:
	      join(p->rpath, sizeof(p->rpath), recdir, rec, "");
	if (!err)
		p->state = conf_state(p->path, &p->chained);
	return err;
}

static int restore_orig(const struct cni_install_cfg *cfg, const char *recdir, const char *rec,
			char *err, size_t errlen)
{
	struct rec_paths p;
	char *buf;
	size_t len;
	mode_t mode;
	int ret;

	ret = rec_paths(&p, cfg, recdir, rec, ".orig");
	if (ret)
		return ret;
	ret = p.state;
	if (!ret && !p.chained) {
		log_info("'%s' was rewritten since weft chained it and no longer names weft: "
			 "left as it is",
			 p.path);
		goto out_drop;
	}
	if (ret && ret != -ENOENT)
		return set_err(err, errlen, ret, "read '%s': %s", p.path, strerror(-ret));
	ret = fs_read_file(p.rpath, CONF_MAX, &buf, &len, &mode);
	if (ret)
		return set_err(err, errlen, ret, "read '%s': %s", p.rpath, strerror(-ret));
	ret = write_atomic(cfg->conf_dir, p.name, buf, len, mode);
	free(buf);
	if (ret)
		return set_err(err, errlen, ret, "restore '%s': %s", p.path, strerror(-ret));
	log_info("restored '%s'", p.path);
out_drop:
	(void)unlink(p.rpath);
	return 0;
}

static int remove_new(const struct cni_install_cfg *cfg, const char *recdir, const char *rec,
		      char *err, size_t errlen)
{
	struct rec_paths p;
	int ret;

	ret = rec_paths(&p, cfg, recdir, rec, ".new");
	if (ret)
		return ret;
	if (!p.state && p.chained) {
		if (unlink(p.path) == -1)
			return set_err(err, errlen, -errno, "remove '%s': %m", p.path);
		log_info("removed '%s'", p.path);
	}
	(void)unlink(p.rpath);
	return 0;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && !strcmp(s + n - m, suffix);
}

/* Records lost: take weft's entries out of any config that still has one. */
static int strip_leftovers(const struct cni_install_cfg *cfg, char *err, size_t errlen)
{
	struct dirent *de;
	DIR *d = opendir(cfg->conf_dir);
	int ret = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char path[PATH_MAX], ignored[CNI_INSTALL_ERR_MAX], *buf;
		json_object *o = NULL, *plugins, *kept;
		size_t len;
		mode_t mode;
		int r;

		if (conf_kind_of(de->d_name) != CONF_LIST ||
		    join(path, sizeof(path), cfg->conf_dir, de->d_name, "") ||
		    fs_read_file(path, CONF_MAX, &buf, &len, &mode))
			continue;
		if (parse_conf(path, buf, len, &o, ignored, sizeof(ignored)) || !chains_weft(o)) {
			json_object_put(o);
			free(buf);
			continue;
		}
		json_object_object_get_ex(o, "plugins", &plugins);
		kept = json_object_new_array();
		for (size_t i = 0; i < json_object_array_length(plugins); i++) {
			json_object *p = json_object_array_get_idx(plugins, i);

			if (!is_weft(p))
				json_object_array_add(kept, json_object_get(p));
		}
		json_object_object_add(o, "plugins", kept);
		r = write_json(cfg->conf_dir, de->d_name, o, mode);
		if (r && !ret)
			ret = set_err(err, errlen, r, "un-chain '%s': %s", path, strerror(-r));
		else if (!r)
			log_warn("'%s' chained weft-cni with no record of it: entry taken out",
				 path);
		json_object_put(o);
		free(buf);
	}
	closedir(d);
	return ret;
}

static int uninstall_bin(const struct cni_install_cfg *cfg, char *err, size_t errlen)
{
	char marker[PATH_MAX], orig[PATH_MAX], dst[PATH_MAX], *buf;
	size_t len;
	mode_t mode;
	int ret;

	ret = join(marker, sizeof(marker), cfg->state_dir, "bin.installed", "");
	if (!ret)
		ret = join(orig, sizeof(orig), cfg->state_dir, "bin.orig", "");
	if (!ret)
		ret = join(dst, sizeof(dst), cfg->bin_dir, CNI_INSTALL_PLUGIN_TYPE, "");
	if (ret || !exists(marker))
		return ret;
	if (!fs_read_file(orig, BIN_MAX, &buf, &len, &mode)) {
		ret = write_atomic(cfg->bin_dir, CNI_INSTALL_PLUGIN_TYPE, buf, len, mode);
		free(buf);
		if (ret)
			return set_err(err, errlen, ret, "restore '%s': %s", dst, strerror(-ret));
		(void)unlink(orig);
	} else if (unlink(dst) == -1 && errno != ENOENT) {
		return set_err(err, errlen, -errno, "remove '%s': %m", dst);
	} else {
		log_info("removed '%s'", dst);
	}
	(void)unlink(marker);
	return 0;
}

int cni_install_uninstall(const struct cni_install_cfg *cfg, char *err, size_t errlen)
{
	static const char *const passes[] = { ".orig", ".new" };
	char recdir[PATH_MAX];
	int ret = 0, r;

	err[0] = '\0';
	r = join(recdir, sizeof(recdir), cfg->state_dir, STATE_CONF, "");
	if (r)
		return set_err(err, errlen, r, "state folder name too long");
	/* Restored files first: a .conf sorts before the .conflist weft made of
	 * it, so the runtime moves back to it before the .conflist goes.
	 */
	for (size_t p = 0; p < 2; p++) {
		DIR *d = opendir(recdir);
		struct dirent *de;

		if (!d)
			break;
		while ((de = readdir(d))) {
			if (!has_suffix(de->d_name, passes[p]))
				continue;
			r = p == 0 ? restore_orig(cfg, recdir, de->d_name, err, errlen)
				   : remove_new(cfg, recdir, de->d_name, err, errlen);
			ret = ret ?: r;
		}
		closedir(d);
	}
	r = strip_leftovers(cfg, err, errlen);
	ret = ret ?: r;
	r = uninstall_bin(cfg, err, errlen);
	ret = ret ?: r;
	if (!ret) {
		(void)rmdir(recdir);
		(void)rmdir(cfg->state_dir);
	}
	return ret;
}
