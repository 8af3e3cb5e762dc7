// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of lib/unix_sock.h. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "unix_sock.h"

static int fill_sun(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

int unix_listen(const char *path, mode_t mode, int backlog)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old_mask;
	int fd, err;

	err = fill_sun(&sun, path);
	if (err)
		return err;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		if (unlink(path) == -1)
			return -errno;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	/* The umask applies at bind(): the file never exists with a wider mode. */
	old_mask = umask(~mode & 0777);
	err = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ? -errno : 0;
	umask(old_mask);
	if (err)
		goto out_close;
	if (listen(fd, backlog) == -1) {
		err = -errno;
		(void)unlink(path);
		goto out_close;
	}
	return fd;
out_close:
	close(fd);
	return err;
}
