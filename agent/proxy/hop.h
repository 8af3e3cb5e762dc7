/* SPDX-License-Identifier: GPL-2.0-only */
/* Hop-by-hop header fields (RFC 9110 7.6.1): what one HTTP/1.x connection
 * says about itself and must not travel to the next one. http.c has each
 * request head rewritten before it goes upstream (hop_request()) and each
 * final response head before it goes to the client (hop_response()), so a
 * client's `Connection: close` ends the client's connection and not the
 * pooled upstream one, and the response tells the client what the proxy
 * will do with its connection.
 */
#ifndef WEFT_PROXY_HOP_H
#define WEFT_PROXY_HOP_H

#include <stddef.h>
#include <sys/types.h>

/* Lines hop_rewrite() may add before the empty line that ends a head. */
#define HOP_CLOSE "connection: close\r\n"
#define HOP_KEEP_ALIVE "connection: keep-alive\r\n"

/* Rewrite the message head at @buf[0, @head_len) (the start line, field
 * lines, and the empty line, as framing.c accepted them: CRLF line ends, no
 * folding) in place: drop Connection, Keep-Alive, Proxy-Connection, TE,
 * Trailer, Upgrade and every field named in a Connection field, except the
 * fields that frame the message (Content-Length, Transfer-Encoding) and
 * Host, which a Connection field may not take away; then add line @add
 * (NULL: none) at the end of the head. The bytes after the head, up to
 * *@len, move with it, and *@len becomes the new length; @cap is the size
 * of @buf. 0, or -ENOSPC when @add does not fit (@buf then untouched).
 */
int hop_rewrite(char *buf, size_t head_len, size_t *len, size_t cap, const char *add);

/* The length of the head at @buf[0, @len): up to and including the CRLF
 * CRLF that ends it, or 0 if it is not all there.
 */
size_t hop_head_len(const char *buf, size_t len);

struct conn;

/* The request head of @c, complete in c2u, before it is first sent
 * upstream: its hop-by-hop fields dropped, keep-alive asked of the upstream
 * for an HTTP/1.0 request; c2u's length and the parsed count follow.
 * Upgrades and CONNECT are left as they are.
 */
void hop_request(struct conn *c);

/* The final response head of @c, complete in u2c from h.resp_at, before
 * any of it goes to the client: its hop-by-hop fields dropped and the fate
 * of the client's connection said (sets h.resp_close). 0, -ENOSPC when the
 * result no longer fits the buffer, or -EBADMSG when no head is there.
 */
int hop_response(struct conn *c);

#endif /* WEFT_PROXY_HOP_H */
