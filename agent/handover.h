/* SPDX-License-Identifier: GPL-2.0-only */
/* The hand-over between two agents on one node (docs/lifecycle.md): the
 * running agent listens on RUN_DIR/handover.sock (root only); a successor
 * connects, receives every in-pod listening socket over SCM_RIGHTS with what
 * identifies it (pod netns identity, family, port), adopts them instead of
 * binding, and says so; only then does the predecessor stop accepting, give
 * up its control sockets and drain. A successor that dies before saying it
 * adopted everything changes nothing: the predecessor carries on.
 */
#ifndef WEFT_HANDOVER_H
#define WEFT_HANDOVER_H

#include <stdbool.h>

#include "registry/registry.h"

struct agent;

/* The file under RUN_DIR. */
#define HANDOVER_SOCK "handover.sock"

/* What one registry backend passes its successor (reg_backend_ops.pass),
 * under its --registry value: collected by the predecessor's release,
 * received by the successor's handover_finish(), in struct agent.
 */
#define HANDOVER_SPEC_MAX 512
struct handover_reg {
	char spec[HANDOVER_SPEC_MAX];	/* NUL-terminated */
	struct reg_pass pass;
};

/* What the predecessor runs once its successor adopted everything: stop
 * accepting and drain (main.c). @a's handover socket is closed by then.
 * When a->ho_resumes (the successor resumes what registries pass), it
 * stops the registries with reg_backend_ops.pass into a->ho_regs, which
 * the hand-over then sends.
 */
typedef void (*handover_release_fn)(struct agent *a);

/* Predecessor side: listen on RUN_DIR/handover.sock (replacing a stale
 * file) and serve hand-overs on @a's loop, calling @release when one
 * completes. 0 or -errno.
 */
int handover_listen(struct agent *a, handover_release_fn release);
/* Stop serving hand-overs; remove the socket file when @unlink_path (not
 * when a successor is about to bind its own). Idempotent.
 */
void handover_close(struct agent *a, bool unlink_path);

/* Successor side, before the pods are restored: connect to a running
 * agent's hand-over socket and put the listeners it passes in the proxy's
 * adoption pool (proxy/adopt.h). Returns 1 when a predecessor is handing
 * over, 0 when none answers (with --takeover: -ESRCH), or -errno.
 */
int handover_begin(struct agent *a);
/* The successor's registries take what the predecessor's passed
 * (a->ho_regs, a->n_ho_regs; possibly none), which it then frees.
 */
typedef void (*handover_resume_fn)(struct agent *a);

/* Successor side, once the pods are restored: close what nobody adopted,
 * tell the predecessor, and wait until it has stopped accepting and released
 * its control sockets (cni.sock, admin.sock, the metrics port), which the
 * successor binds next. @resume is called exactly once: as soon as the
 * registries' sessions arrive (their timeouts run from the predecessor's
 * let-go, so they do not wait for the connections), else at the end with
 * nothing passed; also without handover_begin() returning 1, when the rest
 * is a no-op. 0 or -errno (the predecessor then drains anyway once it reads
 * the word).
 */
int handover_finish(struct agent *a, handover_resume_fn resume);

#endif /* WEFT_HANDOVER_H */
