/* SPDX-License-Identifier: GPL-2.0-only */
/* Test backends: a server process inside a test netns, bound to one IP:port,
 * speaking a tiny line protocol so tests can see who answered and from where:
 *   "IDENT\n"  → "<name> <peer-ip>\n", then close
 *   "ECHO\n"   → echo every byte until EOF, then "BYE <count>\n" and close
 *   "GET ..."  → HTTP/1.1 200 with body "<name> <peer-ip>\n", then close
 * One thread per connection, so hundreds of concurrent clients are fine.
 */
#ifndef WEFT_TEST_SERVERS_H
#define WEFT_TEST_SERVERS_H

#include <stdint.h>
#include <sys/types.h>

/* Start a server named @name in netns @ns (short name) on @ip:@port; returns
 * once it listens. Returns the pid or -1.
 */
pid_t tsrv_start(const char *ns, const char *ip, uint16_t port, const char *name);

/* Stop one server (SIGKILL + reap). */
void tsrv_stop(pid_t pid);

#endif /* WEFT_TEST_SERVERS_H */
