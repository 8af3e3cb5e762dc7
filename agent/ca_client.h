/* SPDX-License-Identifier: GPL-2.0-only */
/* The agent's client of weft-ca (docs/mtls.md): HTTPS requests driven by a
 * libcurl multi handle whose sockets and timer live on the main loop, so a
 * round trip to weft-ca never blocks it. Each request carries the agent's
 * projected ServiceAccount token (read again every time: kubelet rotates
 * it) and checks weft-ca's certificate against the trust bundle file (read
 * again every time: a CA rotation changes it). Knows HTTP, not certificates.
 */
#ifndef WEFT_CA_CLIENT_H
#define WEFT_CA_CLIENT_H

#include <stdint.h>

struct loop;
struct ca_client;

/* Largest answer weft-ca sends: a certificate and a bundle of a few CAs. */
#define CA_CLIENT_BODY_MAX (256u << 10)
/* One request's whole time, connect included. */
#define CA_CLIENT_TIMEOUT_MS 10000

struct ca_client_opts {
	const char *url;	/* https://weft-ca.weft-system.svc:443 (no trailing '/') */
	const char *token_file;	/* the projected token, audience weft-ca */
	const char *bundle_file;	/* PEM CAs weft-ca's serving certificate chains to */
};

/* Called once per request: @status is the HTTP status, or a negative errno
 * when there was no answer (-ECANCELED: the client is being freed); @body
 * the answer ("" when none), @err curl's message or "". Runs on the loop.
 */
typedef void (*ca_client_done_fn)(void *ctx, int status, const char *body, const char *err);

/* A client on @loop (borrowed); strings of @o are borrowed for its life.
 * NULL with errno set.
 */
struct ca_client *ca_client_new(struct loop *loop, const struct ca_client_opts *o);
/* Ends every request (each callback runs with -ECANCELED). Accepts NULL. */
void ca_client_free(struct ca_client *c);

/* Start a request: POST @body (JSON) to @path, or GET when @body is NULL.
 * @fn runs later, never from inside this call. 0 or -errno (@fn not
 * called). Does not block beyond reading the token and bundle files.
 */
int ca_client_request(struct ca_client *c, const char *path, const char *body,
		      ca_client_done_fn fn, void *ctx);

/* What meshctl shows of the client. */
struct ca_client_stats {
	uint64_t requests, ok, refused, failed;	/* refused: a 4xx; failed: no answer, 5xx */
	int64_t last_ok;		/* epoch seconds, 0: never */
	char last_error[256];		/* "" when the last request succeeded */
};
void ca_client_stats(const struct ca_client *c, struct ca_client_stats *out);

/* The URL it talks to. */
const char *ca_client_url(const struct ca_client *c);

#endif /* WEFT_CA_CLIENT_H */
