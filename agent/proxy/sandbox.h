/* SPDX-License-Identifier: GPL-2.0-only */
/* The worker threads' sandbox (README "Security model"): a one-way drop,
 * taken by each worker thread on itself before it reads any byte from a
 * pod. Afterwards the thread holds no capability in any set, has
 * no_new_privs, and runs under a seccomp allowlist of what a worker's loop
 * does (proxy/sandbox.c lists it, with why each call is there). Sockets it
 * cannot make any more come from the broker (proxy/broker.h).
 */
#ifndef WEFT_PROXY_SANDBOX_H
#define WEFT_PROXY_SANDBOX_H

/* Drop the calling thread's capabilities (effective, permitted, inheritable,
 * ambient, and the bounding set when the thread may), set no_new_privs and
 * load the seccomp filter on the calling thread only. Irreversible for the
 * thread, no effect on the others. 0 or -errno; on failure the thread may be
 * half-dropped and must not go on to serve pods.
 */
int sandbox_enter_worker(void);

#endif /* WEFT_PROXY_SANDBOX_H */
