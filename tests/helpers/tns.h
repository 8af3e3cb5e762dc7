/* SPDX-License-Identifier: GPL-2.0-only */
/* Test network namespaces: named ones under /run/netns (so the CNI plugin and
 * nsenter can reach them), every name prefixed "wt<pid>", entered per thread.
 * Nothing created here has a route to the host's real network.
 */
#ifndef WEFT_TEST_NETNS_H
#define WEFT_TEST_NETNS_H

#include <stdbool.h>
#include <stddef.h>

/* Run a shell command built from @fmt; returns its exit status (or -1). */
int tns_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Full name of test namespace @short_name for this process ("wt1234a");
 * @short_name starts with a letter (tns_del_all() relies on it).
 */
const char *tns_name(const char *short_name, char *buf, size_t len);

/* Create the named netns with lo up. 0 or -1. */
int tns_add(const char *short_name);

/* Delete every netns this process created (prefix wt<pid>). */
void tns_del_all(void);

/* Connect namespaces @a and @b with a veth pair named <a>-<b> / <b>-<a> (short
 * names, max 6 chars each) and bring both ends up. 0 or -1.
 */
int tns_link(const char *a, const char *b);

/* Move this thread into netns @short_name (or back home with NULL). 0 or -errno. */
int tns_enter(const char *short_name);

/* Path of the netns file, for CNI_NETNS. */
const char *tns_path(const char *short_name, char *buf, size_t len);

#endif /* WEFT_TEST_NETNS_H */
