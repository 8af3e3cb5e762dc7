// SPDX-License-Identifier: GPL-2.0-only
/* The kernel fast path of the opaque relay (--opaque-fastpath sockmap,
 * docs/datapath.md): each worker's counter slots, the switch of a relayed
 * connection onto the path (by the broker when the worker is sandboxed:
 * the map writes need bpf()), the counts read from the mapped counters, and
 * the wait that keeps a half-close behind the bytes the kernel still holds.
 * Called by tcp.c and conn.c; calls upstream.c for the broker's other
 * replies met while it waits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/tcp.h>

#include "log.h"
#include "proxy/conn.h"

int fp_init(struct proxy *px)
{
	const struct proxy_opts *o = &px->opts;

	if (!o->fastpath || !o->fp_count)
		return 0;
	px->fp_free = calloc(o->fp_count, sizeof(*px->fp_free));
	if (!px->fp_free)
		return -ENOMEM;
	for (uint32_t i = 0; i < o->fp_count; i++)
		px->fp_free[i] = o->fp_first + o->fp_count - 1 - i;
	px->fp_n_free = o->fp_count;
	return 0;
}

void fp_done(struct proxy *px)
{
	free(px->fp_free);
	px->fp_free = NULL;
	px->fp_n_free = 0;
}

/* What a socket has handed to TCP so far: sent once (retransmissions left
 * out) plus written and not yet sent. <linux/tcp.h>'s tcp_info, since
 * glibc's lacks the byte counts (Linux 4.19 and later fill them).
 */
static int tcp_written(int fd, uint64_t *out)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == -1)
		return -errno;
	if (len < offsetof(struct tcp_info, tcpi_bytes_retrans) + sizeof(ti.tcpi_bytes_retrans))
		return -EOPNOTSUPP;
	*out = ti.tcpi_bytes_sent - ti.tcpi_bytes_retrans + ti.tcpi_notsent_bytes;
	return 0;
}

static int cookies(int cfd, int ufd, uint64_t out[2])
{
	socklen_t len = sizeof(out[0]);

	if (getsockopt(cfd, SOL_SOCKET, SO_COOKIE, &out[0], &len) == -1)
		return -errno;
	len = sizeof(out[1]);
	if (getsockopt(ufd, SOL_SOCKET, SO_COOKIE, &out[1], &len) == -1)
		return -errno;
	return 0;
}

/* Nothing waits to be read on @fd (an error counts as something). */
static bool rx_empty(int fd)
{
	char b;

	return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == -1 && errno == EAGAIN;
}

/* A read of @fd would say EOF (the peer's FIN, nothing before it). */
static bool peek_eof(int fd)
{
	char b;

	return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Switch both sockets over: directly, or through the broker. */
static int fp_add(struct proxy *px, int cfd, int ufd, uint32_t slot)
{
	const struct px_fastpath *fp = px->opts.fastpath;

	if (px->brk_chan < 0)
		return fp->add(fp->ctx, cfd, ufd, slot);
	return up_broker_fastpath(px, cfd, ufd, slot);
}

int fp_try(struct conn *c)
{
	struct proxy *px = c->px;
	struct up *u = c->up;
	int err;

	if (!px->opts.fastpath || c->fp_tried || !u || u->connecting ||
	    c->fp_reads < FP_AFTER_READS || c->fp_bulk)
		return 0;
	/* Bytes someone reads (observe.c, TLS) cannot skip user space; wait
	 * for buffered or piped bytes to go, and for both directions open.
	 */
	if (c->tls || u->tls || c->c2u.copy || c->u2c.copy)
		return 0;
	if (!half_empty(&c->c2u) || !half_empty(&c->u2c) || c->c2u.eof || c->u2c.eof)
		return 0;
	/* Nor while a socket holds unread bytes: the verdict takes whole
	 * skbs off the receive queue, so one the relay has read part of would
	 * go out again from its start. Bytes arriving after this look come
	 * in whole skbs.
	 */
	if (!rx_empty(c->cfd) || !rx_empty(u->fd))
		return 0;
	c->fp_tried = true;
	if (!px->fp_n_free) {
		ctr_inc(&px->stats.fastpath_full);
		return 0;
	}
	if (tcp_written(u->fd, &c->fp_wr_off[0]) || tcp_written(c->cfd, &c->fp_wr_off[1]) ||
	    cookies(c->cfd, u->fd, c->fp_cookie))
		return 0;
	c->fp_wr_off[0] -= c->c2u.bytes;
	c->fp_wr_off[1] -= c->u2c.bytes;
	c->fp_slot = px->fp_free[--px->fp_n_free];
	err = fp_add(px, c->cfd, u->fd, c->fp_slot);
	if (err == -EAGAIN || err == -EPIPE) {
		/* The broker did not answer: the switch may have happened. The
		 * connection is run as if it had (reads, never splices), which
		 * is right either way; the slot stays with it.
		 */
		ctr_inc(&px->stats.fastpath_errors);
		err = 0;
	}
	if (err) {
		px->fp_free[px->fp_n_free++] = c->fp_slot;
		ctr_inc(&px->stats.fastpath_errors);
		log_debug("proxy: pod=%u: fast path refused: %s", c->pod->id, strerror(-err));
		return 0;
	}
	c->fast = true;
	c->fp_seen = 0;
	/* From now on what reaches user space is read, never spliced: bytes
	 * the verdict passed up wait in the socket's BPF queue, which
	 * splice() does not see.
	 */
	c->c2u.no_pipe = c->u2c.no_pipe = true;
	ctr_inc(&px->stats.fastpath);
	/* Bytes that reached a socket before it went in wait on its receive
	 * queue, and nothing wakes the verdict for them: a read does (the
	 * relay watches for the FIN only from now on). The read itself must
	 * find nothing: bytes it finds were passed up by the verdict while
	 * the other socket was not in the map yet (the two go in one after
	 * the other), and later ones may already be on their way in the
	 * kernel, so relaying these now could reorder the stream.
	 */
	if (!rx_empty(c->cfd) && !peek_eof(c->cfd))
		return -EPROTO;
	if (!rx_empty(u->fd) && !peek_eof(u->fd))
		return -EPROTO;
	return 0;
}

void fp_adopt(struct conn *c)
{
	struct proxy *px = c->px;
	const struct px_fastpath *fp = px->opts.fastpath;

	/* Whatever comes of it, the sockets may carry a verdict: their bytes
	 * are never spliced, and they are never added again.
	 */
	c->fp_tried = true;
	c->c2u.no_pipe = c->u2c.no_pipe = true;
	if (!fp || !px->fp_n_free || !c->up)
		return;
	c->fp_slot = px->fp_free[--px->fp_n_free];
	/* The bytes counts came in the record (the kernel's up to the
	 * hand-over included); the offsets from the predecessor's note.
	 */
	if (cookies(c->cfd, c->up->fd, c->fp_cookie) ||
	    fp->adopt(fp->ctx, c->cfd, c->up->fd, c->fp_slot, c->fp_wr_off)) {
		px->fp_free[px->fp_n_free++] = c->fp_slot;
		ctr_inc(&px->stats.fastpath_errors);
		return;
	}
	c->fast = true;
	c->fp_seen = 0;
	ctr_inc(&px->stats.fastpath);
}

uint64_t fp_bytes(const struct conn *c, int dir)
{
	if (!c->fast)
		return 0;
	return c->px->opts.fastpath->bytes[2 * (size_t)c->fp_slot + (dir & 1)];
}

bool fp_moved(struct conn *c)
{
	uint64_t now;

	if (!c->fast)
		return false;
	now = fp_bytes(c, 0) + fp_bytes(c, 1);
	if (now == c->fp_seen)
		return false;
	c->fp_seen = now;
	return true;
}

bool fp_drained(struct conn *c, int dir, int dst)
{
	uint64_t written, now = loop_now_ms(c->px->loop);

	if (!c->fast)
		return true;
	/* The verdict queues what it redirects on the destination's own
	 * queue, sent from a kernel worker: the EOF the proxy reads can come
	 * before those bytes are on the destination's TCP, and a FIN written
	 * then would overtake them.
	 */
	if (tcp_written(dst, &written))
		return true;
	/* Every byte counted toward @dst, by the relay or the kernel, is
	 * on its TCP: the FIN comes after them. The counts cover the whole
	 * connection (a successor's include its predecessors'), so the test
	 * holds however many slots and agents the bytes went through.
	 */
	if (written - c->fp_wr_off[dir] >= (dir ? c->u2c.bytes : c->c2u.bytes) + fp_bytes(c, dir)) {
		c->fp_fin_ms = 0;
		return true;
	}
	/* A slow reader is no reason to give up: only a kernel that stopped
	 * handing bytes over for FP_FIN_WAIT_MS is.
	 */
	if (!c->fp_fin_ms || written != c->fp_fin_written) {
		c->fp_fin_ms = now;
		c->fp_fin_written = written;
	}
	if (now - c->fp_fin_ms >= FP_FIN_WAIT_MS) {
		log_warn("proxy: pod=%u: fast path: FIN sent %s with %llu of %llu bytes on the "
			 "destination's TCP (%llu counted by the kernel)",
			 c->pod->id, dir ? "to the client" : "upstream",
			 (unsigned long long)(written - c->fp_wr_off[dir]),
			 (unsigned long long)((dir ? c->u2c.bytes : c->c2u.bytes) + fp_bytes(c, dir)),
			 (unsigned long long)fp_bytes(c, dir));
		ctr_inc(&c->px->stats.fastpath_fin_late);
		return true;
	}
	return false;
}

void fp_release(struct conn *c)
{
	struct proxy *px = c->px;
	const struct px_fastpath *fp = px->opts.fastpath;

	if (!c->fast)
		return;
	c->c2u.bytes += fp_bytes(c, 0);
	c->u2c.bytes += fp_bytes(c, 1);
	c->fast = false;
	px->fp_free[px->fp_n_free++] = c->fp_slot;
	for (int i = 0; i < 2; i++) {
		if (px->brk_chan < 0)
			(void)fp->forget(fp->ctx, c->fp_cookie[i]);
		else if (broker_forget_fastpath(px->brk_chan, c->fp_cookie[i]))
			ctr_inc(&px->stats.fastpath_errors);
	}
}

int fp_hand_over(struct conn *c)
{
	const struct px_fastpath *fp = c->px->opts.fastpath;

	if (!c->fast)
		return 0;
	return fp->note(fp->ctx, c->cfd, c->up->fd, c->fp_wr_off);
}

void fp_handed_over(struct conn *c)
{
	if (!c->fast)
		return;
	c->fast = false;
	c->px->fp_free[c->px->fp_n_free++] = c->fp_slot;
}
