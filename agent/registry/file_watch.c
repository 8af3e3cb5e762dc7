// SPDX-License-Identifier: GPL-2.0-only
/* inotify for one path (see file_watch.h): resolve the path component by
 * component as the kernel would, watch the directory of every symlink met
 * and of the final file for that one name, and redo it when any of them
 * changes, since a swapped symlink moves the file to another directory.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "registry/file_watch.h"

/* Writes, atomic renames (ours and kubelet's ..data swap), delete and
 * recreate; *_SELF for a watched directory that goes away (the previous
 * ConfigMap payload directory is deleted after each swap).
 */
#define WATCH_MASK                                                                             \
	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF | \
	 IN_MOVE_SELF | IN_ONLYDIR)

#define SYMLINK_HOPS_MAX 40	/* the kernel's MAXSYMLINKS */

struct entry {
	int wd;			/* -1 when the directory could not be watched */
	char dir[PATH_MAX];	/* physical directory, no symlinks in it */
	char name[NAME_MAX + 1];
};

struct file_watch {
	int fd;
	char path[PATH_MAX];	/* absolute */
	struct entry entries[FILE_WATCH_MAX];
	size_t n;
};

static void plan_add(struct entry *out, size_t *n, const char *dir, const char *name)
{
	/* Longer chains do not happen in practice; the rest goes unwatched. */
	if (*n == FILE_WATCH_MAX || strlen(name) > NAME_MAX)
		return;
	out[*n] = (struct entry){ .wd = -1 };
	snprintf(out[*n].dir, sizeof(out[*n].dir), "%s", dir);
	snprintf(out[*n].name, sizeof(out[*n].name), "%s", name);
	(*n)++;
}

static void parent_dir(char *dir)
{
	char *slash = strrchr(dir, '/');

	if (slash == dir || !slash)
		strcpy(dir, "/");
	else
		*slash = '\0';
}

/* The (directory, name) pairs to watch for absolute @path: every symlink met
 * while resolving it and the final component. Stops at the first component
 * that does not exist, which is then watched for its creation.
 */
static void plan(const char *path, struct entry *out, size_t *n)
{
	char dir[PATH_MAX] = "/", cand[PATH_MAX + NAME_MAX + 2], target[PATH_MAX];
	char rest[2 * PATH_MAX], next[2 * PATH_MAX];
	unsigned int hops = 0;

	*n = 0;
	snprintf(rest, sizeof(rest), "%s", path);
	for (;;) {
		char *comp = rest, *after;
		struct stat st;
		ssize_t len;

		while (*comp == '/')
			comp++;
		if (!*comp)
			return;
		after = strchrnul(comp, '/');
		if (*after)
			*after++ = '\0';
		while (*after == '/')
			after++;
		if (!strcmp(comp, ".") || !strcmp(comp, "..")) {
			if (!strcmp(comp, ".."))
				parent_dir(dir);
			memmove(rest, after, strlen(after) + 1);
			continue;
		}
		len = snprintf(cand, sizeof(cand), "%s/%s", strcmp(dir, "/") ? dir : "", comp);
		if (len < 0 || (size_t)len >= sizeof(cand))
			return;
		if (lstat(cand, &st) == -1) {
			plan_add(out, n, dir, comp);
			return;
		}
		if (S_ISLNK(st.st_mode)) {
			plan_add(out, n, dir, comp);
			len = readlink(cand, target, sizeof(target) - 1);
			if (++hops > SYMLINK_HOPS_MAX || len <= 0)
				return;
			target[len] = '\0';
			if (target[0] == '/')
				strcpy(dir, "/");
			len = snprintf(next, sizeof(next), "%s%s%s", target, *after ? "/" : "",
				       after);
			if (len < 0 || (size_t)len >= sizeof(next))
				return;
			memcpy(rest, next, sizeof(rest));
			continue;
		}
		if (!*after) {
			plan_add(out, n, dir, comp);
			return;
		}
		if (!S_ISDIR(st.st_mode) || strlen(cand) >= sizeof(dir))
			return;
		strcpy(dir, cand);
		memmove(rest, after, strlen(after) + 1);
	}
}

static bool has_wd(const struct entry *e, size_t n, int wd)
{
	for (size_t i = 0; i < n; i++)
		if (e[i].wd == wd)
			return true;
	return false;
}

/* Move the watches to where the path resolves now. Failures leave a gap
 * (logged at debug): the next event on a watched entry retries.
 */
static void rewatch(struct file_watch *w)
{
	struct entry *fresh = calloc(FILE_WATCH_MAX, sizeof(*fresh));
	size_t n;

	if (!fresh) {
		log_debug("registry: '%s': no memory to move watches, keeping the old ones",
			  w->path);
		return;
	}
	plan(w->path, fresh, &n);
	for (size_t i = 0; i < n; i++) {
		/* The same directory twice gives the same wd: inotify keys by inode. */
		fresh[i].wd = inotify_add_watch(w->fd, fresh[i].dir, WATCH_MASK);
		if (fresh[i].wd == -1)
			log_debug("registry: cannot watch '%s': %s", fresh[i].dir, strerror(errno));
	}
	for (size_t i = 0; i < w->n; i++) {
		int wd = w->entries[i].wd;

		/* Fails when the directory is gone or the wd was removed already. */
		if (wd >= 0 && !has_wd(fresh, n, wd) && !has_wd(w->entries, i, wd))
			(void)inotify_rm_watch(w->fd, wd);
	}
	memcpy(w->entries, fresh, n * sizeof(*fresh));
	w->n = n;
	free(fresh);
}

struct file_watch *file_watch_new(const char *path)
{
	struct file_watch *w;
	char cwd[PATH_MAX];
	int n, err;

	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->fd = -1;
	if (path[0] != '/' && !getcwd(cwd, sizeof(cwd))) {
		err = -errno;
		goto out_free;
	}
	n = snprintf(w->path, sizeof(w->path), "%s%s%s", path[0] == '/' ? "" : cwd,
		     path[0] == '/' ? "" : "/", path);
	if (n < 0 || (size_t)n >= sizeof(w->path)) {
		err = -ENAMETOOLONG;
		goto out_free;
	}
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd == -1) {
		err = -errno;
		goto out_free;
	}
	rewatch(w);
	return w;
out_free:
	free(w);
	errno = -err;
	return NULL;
}

void file_watch_free(struct file_watch *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w);
}

int file_watch_fd(const struct file_watch *w)
{
	return w->fd;
}

static const struct entry *match(const struct file_watch *w, int wd, const char *name)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->entries[i].wd == wd && !strcmp(w->entries[i].name, name))
			return &w->entries[i];
	return NULL;
}

static bool is_regular(const struct entry *e)
{
	char p[PATH_MAX + NAME_MAX + 2];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", e->dir, e->name);
	return lstat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* What one event means: the watches must move, the file may have changed. */
static void classify(const struct file_watch *w, const struct inotify_event *ev, bool *moved,
		     bool *changed)
{
	const struct entry *e;

	if (ev->mask & IN_Q_OVERFLOW) {
		*moved = *changed = true;	/* events were lost: assume the worst */
		return;
	}
	if (!has_wd(w->entries, w->n, ev->wd))
		return;		/* a watch we dropped, or its IN_IGNORED */
	if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
		*moved = *changed = true;
		return;
	}
	e = ev->len ? match(w, ev->wd, ev->name) : NULL;
	if (!e)
		return;
	*moved = true;
	/* A new regular file is still being written: its IN_CLOSE_WRITE
	 * follows. Reading it now could apply half a file. A new symlink or
	 * directory is complete at once.
	 */
	if ((ev->mask & IN_CREATE) && !(ev->mask & IN_ISDIR) && is_regular(e))
		return;
	*changed = true;
}

int file_watch_drain(struct file_watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool moved = false, changed = false;

	for (;;) {
		ssize_t len = read(w->fd, buf, sizeof(buf));
		const struct inotify_event *ev;

		if (len == -1 && errno == EINTR)
			continue;
		if (len == -1 && errno == EAGAIN)
			break;
		if (len == -1)
			return -errno;
		if (len == 0)
			break;
		for (char *p = buf; p < buf + len; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			classify(w, ev, &moved, &changed);
		}
	}
	if (moved)
		rewatch(w);
	return changed;
}
