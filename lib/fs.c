// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of lib/fs.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

int fs_remove_suffix(const char *dir, const char *suffix)
{
	size_t slen = strlen(suffix);
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len <= slen || strcmp(de->d_name + len - slen, suffix))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}

int fs_read_file(const char *path, size_t max, char **out, size_t *len, mode_t *mode)
{
	size_t got = 0, cap;
	struct stat st;
	char *buf = NULL;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return -errno;
	if (fstat(fd, &st) == -1) {
		err = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out_close;
	}
	/* The size may change while we read: read up to one byte past @max
	 * rather than trust st_size.
	 */
	cap = (size_t)st.st_size < max ? (size_t)st.st_size + 1 : max + 1;
	buf = malloc(cap + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out_close;
	}
	for (;;) {
		ssize_t n;

		if (got == cap) {
			char *bigger;

			if (cap > max)
				break;
			cap = cap * 2 > max ? max + 1 : cap * 2;
			bigger = realloc(buf, cap + 1);
			if (!bigger) {
				err = -ENOMEM;
				goto out_free;
			}
			buf = bigger;
		}
		n = read(fd, buf + got, cap - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			err = -errno;
			goto out_free;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > max) {
		err = -EFBIG;
		goto out_free;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	if (mode)
		*mode = st.st_mode & 07777;
	buf = NULL;
out_free:
	free(buf);
out_close:
	close(fd);
	return err;
}

int fs_cgroup_id(const char *path, unsigned long long *id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + sizeof(*id)];
	} h = { .fh.handle_bytes = sizeof(*id) };
	int mount_id;

	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) == -1)
		return -errno;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}
