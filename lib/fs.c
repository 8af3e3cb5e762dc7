// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of lib/fs.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
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
