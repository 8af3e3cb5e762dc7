/* SPDX-License-Identifier: GPL-2.0-only */
/* Private to registry/zk*.c: the mirror of the tree under ROOT into the sink
 * (zk_tree.c), driven by the worker thread of zk.c.
 */
#ifndef WEFT_REG_ZK_TREE_H
#define WEFT_REG_ZK_TREE_H

struct zk;

/* List the whole tree as one resync of the sink, arming every watch.
 * 0 or -errno (the listing is abandoned; the next one replaces it).
 */
int zk_tree_resync(struct zk *z);

/* Handle one watch event (re-listing, fetching, deleting). 0 or -errno. */
int zk_tree_event(struct zk *z, int type, const char *path);

/* Forget the mirror's directories (a new session lists everything). */
void zk_tree_forget(struct zk *z);

#endif /* WEFT_REG_ZK_TREE_H */
