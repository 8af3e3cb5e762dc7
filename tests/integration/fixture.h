/* SPDX-License-Identifier: GPL-2.0-only */
/* The common fixture of the integration suites: topology, registry, a running
 * agent, and pods a, b (meshed) and c (not meshed) enrolled through weft-cni.
 */
#ifndef WEFT_TEST_FIXTURE_H
#define WEFT_TEST_FIXTURE_H

#include <criterion/criterion.h>

#include "env.h"

extern struct tenv env;

/* .init and .fini of every integration suite. */
void fixture_up(void);
void fixture_down(void);

/* Enroll test netns @ns as pod @k8s_ns/@pod with @ip; asserts success. */
void fixture_enroll(const char *ns, const char *k8s_ns, const char *pod, const char *ip);

#endif /* WEFT_TEST_FIXTURE_H */
