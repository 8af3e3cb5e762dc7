// SPDX-License-Identifier: GPL-2.0-only
/* The table of network registry backends, selected by --registry SCHEME[:ARG]. */
#include <stddef.h>

#include "registry/etcd.h"
#include "registry/k8s.h"
#include "registry/registry.h"
#include "registry/zk.h"

const struct reg_backend_ops *const reg_backends[] = {
	&reg_k8s_ops,
	&reg_etcd_ops,
	&reg_zk_ops,
	NULL,
};
