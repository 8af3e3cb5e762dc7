/* SPDX-License-Identifier: GPL-2.0-only */
/* The Kubernetes registry backend (--registry kubernetes): lists then
 * watches Namespaces, Services, EndpointSlices and this node's Pods on one
 * thread of its own, and feeds what it learns to the sink (registry.h).
 * Files: k8s.c (thread, transfers, retries, health), k8s_watch.c (events
 * into the sink), k8s_http.c (requests), k8s_config.c (kubeconfig and
 * in-cluster), k8s_stream.c (incremental JSON).
 */
#ifndef WEFT_REG_K8S_H
#define WEFT_REG_K8S_H

#include "registry/registry.h"

/* Retry delays after a failure: the n-th failure in a row waits a random
 * time in [d/2, d], d = BASE * 2^(n-1) capped at MAX (and at least what a
 * Retry-After header asks).
 */
#define K8S_BACKOFF_BASE_MS 500
#define K8S_BACKOFF_MAX_MS 30000

/* The backend: scheme "kubernetes", no argument. Uses opts->kubeconfig, or
 * the in-cluster service account when it is empty, and opts->node_name for
 * the Pods (none watched when it is empty). See docs/registry-kubernetes.md.
 */
extern const struct reg_backend_ops reg_k8s_ops;

#endif /* WEFT_REG_K8S_H */
