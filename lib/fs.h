/* SPDX-License-Identifier: GPL-2.0-only */
/* Small filesystem helpers. */
#ifndef WEFT_FS_H
#define WEFT_FS_H

/* Remove the regular files of @dir whose names end in @suffix. Returns the
 * number removed or -errno (a missing @dir is 0).
 */
int fs_remove_suffix(const char *dir, const char *suffix);

#endif /* WEFT_FS_H */
