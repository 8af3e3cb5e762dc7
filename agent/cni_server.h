/* SPDX-License-Identifier: GPL-2.0-only */
/* The agent's end of RUN_DIR/cni.sock: one JSON request line per connection
 * from the CNI plugin (lib/cni_proto.h), answered once capture is in place.
 */
#ifndef WEFT_CNI_SERVER_H
#define WEFT_CNI_SERVER_H

struct loop;
struct pods;
struct cni_server;

/* Listen on @path (mode 0600, replacing a stale socket). Borrows @loop and
 * @pods. NULL with errno set.
 */
struct cni_server *cni_server_new(struct loop *loop, const char *path, struct pods *pods);
/* Close clients and the listener, unlink the socket. Accepts NULL. */
void cni_server_free(struct cni_server *s);

#endif /* WEFT_CNI_SERVER_H */
