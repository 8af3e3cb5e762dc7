// SPDX-License-Identifier: GPL-2.0-only
/* The table of registry backends, selected by --registry SCHEME[:ARG]. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "registry/consul.h"
#include "registry/etcd.h"
#include "registry/file.h"
#include "registry/k8s.h"
#include "registry/registry.h"
#include "registry/zk.h"

const struct reg_backend_ops *const reg_backends[] = {
	&reg_file_ops,
	&reg_k8s_ops,
	&reg_etcd_ops,
	&reg_zk_ops,
	&reg_consul_ops,
	NULL,
};

const struct reg_backend_ops *reg_backend_find(const char *spec, const char **arg)
{
	for (const struct reg_backend_ops *const *b = reg_backends; *b; b++) {
		size_t n = strlen((*b)->scheme);

		if (!strncmp(spec, (*b)->scheme, n) && (spec[n] == ':' || spec[n] == '\0')) {
			*arg = spec[n] ? spec + n + 1 : "";
			return *b;
		}
	}
	return NULL;
}
