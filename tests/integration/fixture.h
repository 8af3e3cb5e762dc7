/* SPDX-License-Identifier: GPL-2.0-only */
/* The common fixture of the integration suites: topology, registry, a running
 * agent, and pods a, b (meshed) and c (not meshed) enrolled through weft-cni.
 */
#ifndef WEFT_TEST_FIXTURE_H
#define WEFT_TEST_FIXTURE_H

#include <criterion/criterion.h>
#include <stdbool.h>

#include "env.h"

extern struct tenv env;

/* .init and .fini of every integration suite. */
void fixture_up(void);
/* fixture_up() with more weft-agent options (env.extra_args). */
void fixture_up_with(const char *extra_args);
void fixture_down(void);
/* The same with "--workers 2" and the IPv4 backends started, and its
 * tear-down: the suites that look at how the two workers serve (admin,
 * publish, upgrade).
 */
void fixture_up_two_workers(void);
void fixture_down_with_backends(void);

/* Start the topology's backends in netns s: web-1, web-2, web-3 and api-1
 * on 198.18.2.11-14:8080 and, with @v6, web-v6 on [fd00:198:2::11]:8080.
 * Asserts each started.
 */
void fixture_backends_start(bool v6);
/* Stop the backends fixture_backends_start() started. Idempotent. */
void fixture_backends_stop(void);

/* Whether the web VIP (198.19.0.10:80) answers pod a from a backend whose
 * name starts with @want, trying for about 5 s. Blocks.
 */
bool fixture_web_answers_from(const char *want);

/* Enroll test netns @ns as pod @k8s_ns/@pod with @ip; asserts success. */
void fixture_enroll(const char *ns, const char *k8s_ns, const char *pod, const char *ip);

/* Write @yaml as the registry and wait until /v1/pods contains @expect (a
 * Pod's annotations applied); asserts it does within about 5 s.
 */
void fixture_registry_until(const char *yaml, const char *expect);

#endif /* WEFT_TEST_FIXTURE_H */
