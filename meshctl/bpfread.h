/* SPDX-License-Identifier: GPL-2.0-only */
/* Reading weft's pinned BPF objects directly (bpf.c), shared with the
 * preflight checks (check.c): the only meshctl code that uses libbpf.
 */
#ifndef WEFT_MESHCTL_BPFREAD_H
#define WEFT_MESHCTL_BPFREAD_H

#include <stddef.h>

struct json_object;

#define BPFREAD_DEFAULT_BPFFS "/sys/fs/bpf/weft"	/* the agent's --bpffs default */

/* Open the object pinned at @bpffs/@kind/@name ("maps", "links"). An fd, or
 * -errno with a sentence in @err that says what to do.
 */
int bpfread_open(const char *bpffs, const char *kind, const char *name, char *err, size_t errlen);

/* Every link pinned under @bpffs/links as a JSON array of {pin, program,
 * link_id, prog_id, tag, attach_type, cgroup_id, attached}. 0 and *@out (a
 * new reference), or -errno with @err.
 */
int bpfread_links(const char *bpffs, struct json_object **out, char *err, size_t errlen);

#endif /* WEFT_MESHCTL_BPFREAD_H */
