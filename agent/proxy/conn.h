/* SPDX-License-Identifier: GPL-2.0-only */
/* One proxied connection: the upstream connect (inside the pod's netns, with
 * the mark, bounded by a timeout) and the relay of both directions, passing on
 * half-closes as shutdown(SHUT_WR) and resets as resets. Internal to agent/proxy.
 */
#ifndef WEFT_CONN_H
#define WEFT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "proxy.h"

struct loop;
struct pod;
struct conn;

/* Bytes buffered per direction. Two per connection; see docs for the memory budget. */
#define CONN_BUF_SIZE 16384

struct proxy {
	struct loop *loop;
	struct proxy_opts opts;
	struct catalogue *cat;
	struct proxy_stats stats;
};

/* Take ownership of the accepted client socket @cfd of @pod and connect to
 * @target. On failure the client is reset and counted; nothing to free.
 */
void conn_start(struct proxy *px, struct pod *pod, int cfd, const struct addr *target);

/* Close @c at once, sending a reset to both sides if @reset. Unlinks it from its pod. */
void conn_close(struct conn *c, bool reset);

/* Close a socket so the peer gets a RST rather than a FIN. */
void sock_close_reset(int fd);

#endif /* WEFT_CONN_H */
