// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of agent/pods_state.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "pods_state.h"

bool pods_state_valid_id(const char *id)
{
	/* It names a file: no '/', no leading '.', and not empty. */
	if (!id[0] || id[0] == '.')
		return false;
	for (const char *c = id; *c; c++) {
		if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') &&
		    !(*c >= '0' && *c <= '9') && *c != '-' && *c != '_' && *c != '.')
			return false;
	}
	return true;
}

int pods_state_path(const char *run_dir, const char *container_id, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s/%s.json", run_dir, PODS_STATE_DIR, container_id);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int pods_state_write(const char *run_dir, const struct cni_proto_pod *saved)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], *json;
	int fd, err;
	size_t len;

	err = pods_state_path(run_dir, saved->container_id, path, sizeof(path));
	if (err)
		return err;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	json = cni_proto_req_encode(CNI_PROTO_NONE, saved, &len);
	if (!json)
		return -errno;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1) {
		err = -errno;
		goto out_free;
	}
	if (write(fd, json, len) != (ssize_t)len)
		err = errno ? -errno : -EIO;
	if (close(fd) == -1 && !err)
		err = -errno;
	/* rename() makes the file appear whole or not at all across a crash. */
	if (!err && rename(tmp, path) == -1)
		err = -errno;
	if (err)
		(void)unlink(tmp);
out_free:
	free(json);
	return err;
}

int pods_state_for_each(const char *run_dir,
			void (*fn)(const struct cni_proto_pod *spec, const char *path, void *ctx),
			void *ctx)
{
	char dir[PATH_MAX], path[PATH_MAX + 300], err_msg[256];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s", run_dir, PODS_STATE_DIR);
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct cni_proto_pod spec;
		size_t n = strlen(de->d_name), len;
		char *json = NULL;
		int err;

		if (n < 6 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		err = fs_read_file(path, CNI_PROTO_MAX_LINE, &json, &len, NULL);
		if (!err)
			err = cni_proto_req_decode(json, false, NULL, &spec, err_msg,
						   sizeof(err_msg));
		else
			snprintf(err_msg, sizeof(err_msg), "%s", strerror(-err));
		free(json);
		if (err) {
			log_warn("pods: saved state '%s': %s, ignoring", path, err_msg);
			continue;
		}
		fn(&spec, path, ctx);
	}
	closedir(d);
	return 0;
}
