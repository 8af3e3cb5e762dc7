// SPDX-License-Identifier: GPL-2.0-only
/* The datapath's lifecycle: load the mesh_redirect skeleton, pin its maps
 * under <bpffs_dir>/maps and its cgroup links under <bpffs_dir>/links, take
 * over links a previous agent left, and keep the pods map; dp_cleanup also
 * removes the per-pod links of dp_inbound.c under <bpffs_dir>/inbound. The
 * only agent code that talks to libbpf, besides its dp_*.c siblings; callers
 * see dp.h's verbs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/magic.h>
#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi.h"
#include "dp.h"
#include "dp_internal.h"
#include "fs.h"
#include "log.h"
#include "redirect.skel.h"

_Static_assert(DP_MAX_EXCL_PORTS == MESH_MAX_EXCL_PORTS, "dp.h and abi.h disagree on excl_ports");
_Static_assert(DP_MAX_EXCL_CIDRS == MESH_MAX_EXCL_CIDRS, "dp.h and abi.h disagree on excl_cidrs");

/* The programs, in attach order. A connection redirected by connect4/6 is
 * only useful once sockops records it, getsockopt can answer for it and
 * getpeername can hide the rewrite, so the consumers go in first and the
 * producers last; dp_cleanup() detaches in the reverse order. dp_open() fails
 * if the object has a program this table does not name, so the two cannot
 * drift apart unnoticed.
 */
static const char *const dp_prog_order[] = {
	"mesh_sock_create",
	"mesh_getsockopt",
	"mesh_sockops",
	"mesh_getpeername4",
	"mesh_getpeername6",
	"mesh_recvmsg4",
	"mesh_recvmsg6",
	"mesh_sendmsg4",
	"mesh_sendmsg6",
	"mesh_connect4",
	"mesh_connect6",
};
_Static_assert(sizeof(dp_prog_order) / sizeof(dp_prog_order[0]) == DP_NPROGS,
	       "dp_prog_order must name DP_NPROGS programs");

/* libbpf's output, one log_debug line per line it prints: its warnings are
 * mostly probing noise, and the errors that matter are logged by our callers.
 */
static int dp_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *text, *line, *save = NULL;

	(void)level;
	if (log_get_level() < LOG_LEVEL_DEBUG)
		return 0;
	if (vasprintf(&text, fmt, ap) < 0)
		return 0;
	/* One event per line: a verifier log arrives as one call of many lines. */
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		log_debug("libbpf: %s", line);
	free(text);
	return 0;
}

void dp_libbpf_log_init(void)
{
	libbpf_set_print(dp_libbpf_print);
}

static int path_join(char *buf, size_t len, const char *a, const char *b)
{
	int n = snprintf(buf, len, "%s/%s", a, b);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

/* mkdir @path unless it exists; refuses to create anything outside a bpffs,
 * so a typo in the pin root cannot litter another filesystem.
 */
static int mkdir_on_bpffs(const char *path)
{
	char parent[PATH_MAX];
	char *slash;
	struct stat st;

	if (stat(path, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	if (errno != ENOENT)
		return -errno;
	snprintf(parent, sizeof(parent), "%s", path);
	slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(parent, sizeof(parent), ".");
	if (!is_bpffs(parent))
		return -ENOTSUP;
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Make @dir (and any missing parents inside the bpffs) and check it is on a
 * bpffs. 0 or -errno, logged here because only here is the fix known.
 */
static int prepare_bpffs_dir(const char *dir)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);
	int err;

	if (len == 0 || len >= sizeof(path))
		return log_errno(-ENAMETOOLONG, "bpffs folder '%s'", dir);
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		err = mkdir_on_bpffs(path);
		path[i] = dir[i];
		if (err == -ENOTSUP)
			break;	/* reported below with the fix */
		if (err)
			return log_errno(err, "create bpffs folder '%.*s'", (int)i, dir);
	}
	if (!is_bpffs(dir)) {
		log_err("'%s' is not on a bpffs: mount one there ('mount -t bpf bpf %s') or pick a "
			"folder under an existing bpffs such as /sys/fs/bpf", dir, dir);
		return -ENOTSUP;
	}
	return 0;
}

/* The file handle type of kernfs (cgroup v2) nodes since Linux 5.5, from the
 * kernel's include/linux/exportfs.h, which is not uapi. A wrong value would
 * make every cgroup look gone; dp, refuses_links_of_another_cgroup guards it.
 */
#define DP_FILEID_KERNFS 0xfe

/* Whether cgroup @id still exists on the cgroup2 filesystem of @any_cg_fd. */
static bool cgroup_alive(int any_cg_fd, __u64 id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + sizeof(__u64)];
	} h = { .fh.handle_bytes = sizeof(__u64), .fh.handle_type = DP_FILEID_KERNFS };
	int fd;

	memcpy(h.fh.f_handle, &id, sizeof(id));
	fd = open_by_handle_at(any_cg_fd, &h.fh, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return true;
	}
	/* Only ESTALE proves it gone; on any other error assume it lives. */
	return errno != ESTALE;
}

static int open_cgroup(const char *path, int *fd_out, __u64 *id)
{
	struct statfs st;
	int fd, err;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return log_errno(-errno, "open cgroup '%s'", path);
	if (fstatfs(fd, &st) == -1 || st.f_type != CGROUP2_SUPER_MAGIC) {
		close(fd);
		log_err("'%s' is not a cgroup v2 folder: weft attaches to the unified hierarchy "
			"(see /proc/mounts, type cgroup2)", path);
		return -ENOTSUP;
	}
	err = fs_cgroup_id(path, id);
	if (err) {
		close(fd);
		return log_errno(err, "read the id of cgroup '%s'", path);
	}
	*fd_out = fd;
	return 0;
}

/* What a pinned link is attached to; -ENOLINK when its cgroup is gone. */
static int link_target(int link_fd, __u64 *cg_id, __u32 *attach_type)
{
	struct bpf_link_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(link_fd, &info, &len))
		return -errno;
	if (info.type != BPF_LINK_TYPE_CGROUP)
		return -EINVAL;
	/* A cgroup's links are detached when it is removed; the link object
	 * lives on, pointing nowhere.
	 */
	if (!info.cgroup.cgroup_id)
		return -ENOLINK;
	*cg_id = info.cgroup.cgroup_id;
	*attach_type = info.cgroup.attach_type;
	return 0;
}

/* Take over the link pinned at @pin if there is one: swap its program for
 * @prog atomically (BPF_LINK_UPDATE), so no connect() ever runs without a
 * program. Returns 1 and sets *@out when taken over, 0 when there is nothing
 * to take over (no pin, or a stale one, now removed), or -errno (logged).
 */
static int link_take_over(const char *pin, struct bpf_program *prog, int cg_fd, __u64 cg_id,
			  const char *cgroup_path, struct bpf_link **out)
{
	const char *name = bpf_program__name(prog);
	struct bpf_link *link;
	__u32 attach_type = 0;
	__u64 link_cg = 0;
	int err;

	link = bpf_link__open(pin);
	if (!link) {
		if (errno == ENOENT)
			return 0;
		return log_errno(-errno, "open pinned link '%s'", pin);
	}
	err = link_target(bpf_link__fd(link), &link_cg, &attach_type);
	/* The kernel detaches a removed cgroup's links from a work queue, some
	 * time after rmdir; until then the link still names the dead cgroup.
	 */
	if (!err && link_cg != cg_id && !cgroup_alive(cg_fd, link_cg))
		err = -ENOLINK;
	if (err == -ENOLINK) {
		log_info("link '%s' outlived its cgroup, replacing it", pin);
		if (unlink(pin) == -1 && errno != ENOENT) {
			err = log_errno(-errno, "remove stale link '%s'", pin);
			goto out_destroy_link;
		}
		bpf_link__destroy(link);
		return 0;
	}
	if (err) {
		log_errno(err, "inspect pinned link '%s'", pin);
		goto out_destroy_link;
	}
	if (link_cg != cg_id || attach_type != (__u32)bpf_program__expected_attach_type(prog)) {
		log_err("link '%s' is attached to cgroup id %llu (type %u), not to '%s' (id %llu): "
			"another agent owns this bpffs folder; give each agent its own",
			pin, (unsigned long long)link_cg, attach_type, cgroup_path,
			(unsigned long long)cg_id);
		err = -EEXIST;
		goto out_destroy_link;
	}
	err = bpf_link__update_program(link, prog);
	if (err) {
		log_errno(err, "replace the program of link '%s' with %s", pin, name);
		goto out_destroy_link;
	}
	*out = link;
	return 1;

out_destroy_link:
	bpf_link__destroy(link);
	return err;
}

/* Attach @prog to the cgroup and pin the link at @pin. */
static int link_attach(const char *pin, struct bpf_program *prog, int cg_fd,
		       const char *cgroup_path, struct bpf_link **out)
{
	const char *name = bpf_program__name(prog);
	struct bpf_link *link;
	int err;

	link = bpf_program__attach_cgroup(prog, cg_fd);
	if (!link)
		return log_errno(-errno, "attach %s to '%s'", name, cgroup_path);
	err = bpf_link__pin(link, pin);
	if (err) {
		/* Not pinned, so destroying it also detaches it. */
		bpf_link__destroy(link);
		return log_errno(err, "pin link of %s at '%s'", name, pin);
	}
	*out = link;
	return 0;
}

/* The decision counters pinned at @pin by an agent that knew another number
 * of reasons (mesh_metrics has one slot per enum mesh_reason) are dropped
 * with a note, so that adding a reason never makes an upgrade fail to load:
 * the counters restart from zero, nothing else is lost (links swap to the
 * new programs atomically, which use the new map). 0 or -errno.
 */
static int drop_other_counters(const char *pin, uint32_t want)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(pin), err = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		err = -errno;
	close(fd);
	if (err || info.max_entries == want)
		return err;
	log_info("datapath: the pinned decision counters have %u reasons, this agent %u: "
		 "starting them afresh", info.max_entries, want);
	if (unlink(pin) == -1 && errno != ENOENT)
		return -errno;
	return 0;
}

/* Pin every map at <bpffs_dir>/maps/<name>: libbpf reuses a pinned map of the
 * same shape at load (the pods and recorded destinations survive a restart)
 * and pins new ones itself.
 */
static int set_map_pins(struct bpf_object *obj, const char *maps_dir)
{
	char pin[PATH_MAX];
	struct bpf_map *map;
	int err;

	bpf_object__for_each_map(map, obj) {
		/* .rodata is the program's own constants, rebuilt at every load. */
		if (bpf_map__is_internal(map))
			continue;
		err = path_join(pin, sizeof(pin), maps_dir, bpf_map__name(map));
		if (!err && map == bpf_object__find_map_by_name(obj, "mesh_metrics"))
			err = drop_other_counters(pin, bpf_map__max_entries(map));
		if (!err)
			err = bpf_map__set_pin_path(map, pin);
		if (err)
			return log_errno(err, "set pin path of map %s", bpf_map__name(map));
	}
	return 0;
}

/* Give every map filled per pod or per connection @capacity entries instead
 * of abi.h's (0: leave them). Only tests ask, to drive ten times a map's
 * capacity through it in seconds; the inbound skeleton takes the sizes of
 * these maps from their fds (bpf_map__reuse_fd), so both agree.
 */
static int set_capacity(struct mesh_redirect *skel, uint32_t capacity)
{
	struct bpf_map *maps[] = {
		skel->maps.mesh_pods, skel->maps.mesh_inbound,
		skel->maps.mesh_orig_dst, skel->maps.mesh_in_agent,
	};
	int err;

	for (size_t i = 0; capacity && i < sizeof(maps) / sizeof(maps[0]); i++) {
		err = bpf_map__set_max_entries(maps[i], capacity);
		if (err)
			return log_errno(err, "set max_entries of %s", bpf_map__name(maps[i]));
	}
	return 0;
}

static int check_prog_table(struct bpf_object *obj)
{
	struct bpf_program *prog;
	size_t n = 0;

	bpf_object__for_each_program(prog, obj)
		n++;
	for (size_t i = 0; i < DP_NPROGS; i++) {
		if (!bpf_object__find_program_by_name(obj, dp_prog_order[i])) {
			log_err("program %s is missing from mesh_redirect", dp_prog_order[i]);
			return -ENOENT;
		}
	}
	if (n != DP_NPROGS) {
		log_err("mesh_redirect has %zu programs, dp.c attaches %u", n, DP_NPROGS);
		return -EINVAL;
	}
	return 0;
}

static int write_config(struct dp *dp, const struct dp_opts *opts)
{
	struct mesh_config cfg = {
		.mark = opts->mark,
		.inbound_mark = opts->inbound_mark,
		.agent_cgroup_id = opts->agent_cgroup_id,
		.agent_cgroup_level = opts->agent_cgroup_level,
	};
	__u32 key = 0;
	int err;

	err = bpf_map__update_elem(dp->skel->maps.mesh_config, &key, sizeof(key), &cfg,
				   sizeof(cfg), BPF_ANY);
	if (err)
		return log_errno(err, "write mesh_config");
	return 0;
}

/* Attach every program in dp_prog_order. On failure the links this call
 * created are detached and unpinned again; links it took over keep their new
 * program (they share the pinned maps with the old one, so either works).
 */
static int attach_all(struct dp *dp, const struct dp_opts *opts, const char *links_dir)
{
	bool created[DP_NPROGS] = { false };
	char pin[PATH_MAX];
	__u64 cg_id = 0;
	int cg_fd = -1, err;
	size_t i;

	err = open_cgroup(opts->cgroup_path, &cg_fd, &cg_id);
	if (err)
		return err;
	for (i = 0; i < DP_NPROGS; i++) {
		struct bpf_program *prog =
			bpf_object__find_program_by_name(dp->skel->obj, dp_prog_order[i]);

		err = path_join(pin, sizeof(pin), links_dir, dp_prog_order[i]);
		if (err) {
			log_errno(err, "link pin path under '%s'", links_dir);
			goto out_detach_created;
		}
		err = link_take_over(pin, prog, cg_fd, cg_id, opts->cgroup_path, &dp->links[i]);
		if (err < 0)
			goto out_detach_created;
		if (err == 1) {
			log_debug("datapath: %s took over '%s'", dp_prog_order[i], pin);
			continue;
		}
		err = link_attach(pin, prog, cg_fd, opts->cgroup_path, &dp->links[i]);
		if (err)
			goto out_detach_created;
		created[i] = true;
		log_debug("datapath: %s attached to '%s'", dp_prog_order[i], opts->cgroup_path);
	}
	close(cg_fd);
	return 0;

out_detach_created:
	while (i-- > 0) {
		if (!created[i])
			continue;
		if (path_join(pin, sizeof(pin), links_dir, dp_prog_order[i]) == 0)
			(void)unlink(pin);
		bpf_link__destroy(dp->links[i]);
		dp->links[i] = NULL;
	}
	close(cg_fd);
	return err;
}

/* The agent's cgroup must name something below the attach cgroup: at depth 0
 * (the root) or equal to the attach cgroup, every socket the programs see
 * would descend from it and be the agent's, and nothing would be captured.
 */
static int check_agent_cgroup(const struct dp_opts *opts)
{
	unsigned long long attach_id = 0;
	int err;

	if (!opts->agent_cgroup_id || !opts->agent_cgroup_level) {
		log_err("the agent's own cgroup v2 is unknown or the root (id %llu, level %u): "
			"the datapath recognises the agent's sockets by their cgroup, so the agent "
			"must run in a cgroup of its own below '%s'",
			(unsigned long long)opts->agent_cgroup_id, opts->agent_cgroup_level,
			opts->cgroup_path);
		return -EINVAL;
	}
	err = fs_cgroup_id(opts->cgroup_path, &attach_id);
	if (err)
		return log_errno(err, "read the id of cgroup '%s'", opts->cgroup_path);
	if (attach_id == opts->agent_cgroup_id) {
		log_err("the agent runs in '%s', the cgroup the programs attach to: every socket "
			"below it would count as the agent's; run the agent in a cgroup of its own "
			"(a child of it) holding no pod's processes",
			opts->cgroup_path);
		return -EINVAL;
	}
	return 0;
}

int dp_load(struct dp **out, const struct dp_opts *opts, bool *refused)
{
	char maps_dir[PATH_MAX], links_dir[PATH_MAX], inbound_dir[PATH_MAX];
	long page_size = sysconf(_SC_PAGESIZE);
	struct dp_migration *mig = NULL;
	struct dp *dp;
	int err;

	if (refused)
		*refused = false;
	if (!opts || !opts->cgroup_path || !opts->bpffs_dir)
		return log_errno(-EINVAL, "datapath options need a cgroup and a bpffs folder");
	dp_libbpf_log_init();
	err = prepare_bpffs_dir(opts->bpffs_dir);
	if (err)
		return err;
	if (path_join(maps_dir, sizeof(maps_dir), opts->bpffs_dir, "maps") ||
	    path_join(links_dir, sizeof(links_dir), opts->bpffs_dir, "links") ||
	    path_join(inbound_dir, sizeof(inbound_dir), opts->bpffs_dir, DP_INBOUND_DIR))
		return log_errno(-ENAMETOOLONG, "bpffs folder '%s'", opts->bpffs_dir);
	err = mkdir_on_bpffs(maps_dir);
	if (!err)
		err = mkdir_on_bpffs(links_dir);
	if (!err)
		err = mkdir_on_bpffs(inbound_dir);
	if (err)
		return log_errno(err, "create pin folders under '%s'", opts->bpffs_dir);

	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return log_errno(-ENOMEM, "allocate datapath");
	memcpy(dp->inbound_dir, inbound_dir, sizeof(dp->inbound_dir));
	memcpy(dp->links_dir, links_dir, sizeof(dp->links_dir));
	dp->skel = mesh_redirect__open();
	if (!dp->skel) {
		err = log_errno(-errno, "open BPF skeleton mesh_redirect");
		goto out_free_dp;
	}
	err = check_prog_table(dp->skel->obj);
	if (err)
		goto out_destroy_skel;
	if (page_size > 0)
		dp->skel->rodata->mesh_page_size = (__u32)page_size;
	err = set_map_pins(dp->skel->obj, maps_dir);
	if (err)
		goto out_destroy_skel;
	err = set_capacity(dp->skel, opts->map_capacity);
	if (err)
		goto out_destroy_skel;
	err = dp_migrate_prepare(dp->skel->obj, &mig);
	if (err)
		goto out_destroy_skel;
	err = mesh_redirect__load(dp->skel);
	if (err) {
		dp_migrate_abort(mig);
		log_debug("datapath: load mesh_redirect (maps under '%s'): %s", maps_dir,
			  strerror(-err));
		if (refused)
			*refused = true;
		goto out_destroy_skel;
	}
	dp_migrate_finish(mig, dp->skel->obj);
	*out = dp;
	return 0;

out_destroy_skel:
	mesh_redirect__destroy(dp->skel);
out_free_dp:
	free(dp);
	return err;
}

int dp_attach(struct dp *dp, const struct dp_opts *opts)
{
	int err;

	err = check_agent_cgroup(opts);
	if (!err)
		err = write_config(dp, opts);
	if (!err)
		err = attach_all(dp, opts, dp->links_dir);
	if (err)
		return err;
	log_info("datapath: attached to '%s', pinned under '%s'; the agent's sockets are those "
		 "of cgroup id %llu (level %u) and below",
		 opts->cgroup_path, opts->bpffs_dir, (unsigned long long)opts->agent_cgroup_id,
		 opts->agent_cgroup_level);
	return 0;
}

int dp_open(struct dp **out, const struct dp_opts *opts)
{
	bool refused = false;
	struct dp *dp;
	int err;

	if (!opts || !opts->cgroup_path || !opts->bpffs_dir)
		return log_errno(-EINVAL, "datapath options need a cgroup and a bpffs folder");
	err = check_agent_cgroup(opts);
	if (err)
		return err;
	err = dp_load(&dp, opts, &refused);
	if (err && refused)
		return log_errno(err, "load weft's BPF programs (the verifier log is at debug "
				 "level; maps under '%s/maps')", opts->bpffs_dir);
	if (err)
		return err;
	err = dp_attach(dp, opts);
	if (err) {
		dp_close(dp);
		return err;
	}
	*out = dp;
	return 0;
}

void dp_close(struct dp *dp)
{
	if (!dp)
		return;
	/* Pinned links stay attached when their last fd closes. */
	for (size_t i = 0; i < DP_NPROGS; i++)
		bpf_link__destroy(dp->links[i]);
	mesh_redirect__destroy(dp->skel);
	free(dp);
}

int dp_unpin_link(const char *pin)
{
	int fd, err = 0;

	fd = bpf_obj_get(pin);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	/* Detach explicitly: another process may still hold an fd to the
	 * link, and removing the pin alone would leave it attached.
	 */
	if (bpf_link_detach(fd))
		log_debug("datapath: detach '%s': %s", pin, strerror(errno));
	close(fd);
	if (unlink(pin) == -1 && errno != ENOENT)
		err = -errno;
	return err;
}

/* Remove every entry of @dir, detaching links first when @links. */
static int empty_dir(const char *dir, bool links)
{
	char path[PATH_MAX];
	struct dirent *de;
	int err = 0, e;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		e = path_join(path, sizeof(path), dir, de->d_name);
		if (!e)
			e = links ? dp_unpin_link(path) : (unlink(path) == -1 ? -errno : 0);
		if (e && !err)
			err = e;
	}
	closedir(d);
	if (rmdir(dir) == -1 && errno != ENOENT && !err)
		err = -errno;
	return err;
}

int dp_cleanup(const struct dp_opts *opts)
{
	char links_dir[PATH_MAX], maps_dir[PATH_MAX], inbound_dir[PATH_MAX], pin[PATH_MAX];
	struct stat st;
	int err;

	if (!opts || !opts->bpffs_dir)
		return log_errno(-EINVAL, "datapath cleanup needs a bpffs folder");
	if (stat(opts->bpffs_dir, &st) == -1 && errno == ENOENT)
		return 0;
	if (path_join(maps_dir, sizeof(maps_dir), opts->bpffs_dir, "maps") ||
	    path_join(links_dir, sizeof(links_dir), opts->bpffs_dir, "links") ||
	    path_join(inbound_dir, sizeof(inbound_dir), opts->bpffs_dir, DP_INBOUND_DIR))
		return log_errno(-ENAMETOOLONG, "bpffs folder '%s'", opts->bpffs_dir);

	/* Inbound first: with its sk_lookup links gone, every pod's
	 * connections reach its applications directly again. A link whose
	 * netns is gone detaches as a no-op; its pin is removed all the same.
	 */
	err = empty_dir(inbound_dir, true);
	if (err)
		return log_errno(err, "empty '%s'", inbound_dir);

	/* Producers first (the reverse of attach order), so no connection is
	 * redirected after the programs that serve it are gone.
	 */
	for (size_t i = DP_NPROGS; i-- > 0;) {
		if (path_join(pin, sizeof(pin), links_dir, dp_prog_order[i]))
			continue;
		err = dp_unpin_link(pin);
		if (err)
			return log_errno(err, "detach and unpin '%s'", pin);
	}
	/* Whatever is left was pinned by another weft version: same folder,
	 * same owner.
	 */
	err = empty_dir(links_dir, true);
	if (err)
		return log_errno(err, "empty '%s'", links_dir);
	err = empty_dir(maps_dir, false);
	if (err)
		return log_errno(err, "empty '%s'", maps_dir);
	if (rmdir(opts->bpffs_dir) == -1 && errno != ENOENT && errno != ENOTEMPTY)
		return log_errno(-errno, "remove '%s'", opts->bpffs_dir);
	log_info("datapath: detached and unpinned '%s'", opts->bpffs_dir);
	return 0;
}

size_t dp_links(struct dp *dp, struct dp_link_status *out, size_t n)
{
	size_t count = 0;

	for (size_t i = 0; i < DP_NPROGS && count < n; i++) {
		struct dp_link_status *st = &out[count++];
		struct bpf_link_info info = { 0 };
		__u32 len = sizeof(info);

		memset(st, 0, sizeof(*st));
		snprintf(st->prog, sizeof(st->prog), "%s", dp_prog_order[i]);
		if (!dp->links[i] ||
		    bpf_obj_get_info_by_fd(bpf_link__fd(dp->links[i]), &info, &len))
			continue;
		st->link_id = info.id;
		st->prog_id = info.prog_id;
		if (info.type == BPF_LINK_TYPE_CGROUP)
			st->cgroup_id = info.cgroup.cgroup_id;
		/* A removed cgroup detaches its links; the link lives on, empty. */
		st->attached = st->cgroup_id != 0;
	}
	return count;
}
