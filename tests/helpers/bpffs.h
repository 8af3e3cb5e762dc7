/* SPDX-License-Identifier: GPL-2.0-only */
/* A private bpffs per test: a fresh folder under /tmp with its own bpf
 * filesystem mounted on it, so pins never meet the machine's /sys/fs/bpf.
 */
#ifndef WEFT_TESTS_BPFFS_H
#define WEFT_TESTS_BPFFS_H

#include <stddef.h>

/* mkdtemp "/tmp/weft-bpffs-<pid>-XXXXXX", mount a bpffs there and copy the path
 * into @dir. 0 or -errno (nothing is left behind on failure).
 */
int tbpffs_mount(char *dir, size_t len);

/* Unmount the bpffs at @dir (dropping every pin in it) and remove the folder.
 * 0 or -errno.
 */
int tbpffs_umount(const char *dir);

#endif /* WEFT_TESTS_BPFFS_H */
