// SPDX-License-Identifier: GPL-2.0-only
/* Helpers every thread of the Consul backend uses (registry/consul_core.h):
 * waiting on stop or new work, and the ACL token.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "registry/consul_core.h"

bool consul_wait(struct consul *c, uint32_t ms, const uint64_t *gen)
{
	struct timespec until;
	bool stopping;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->lock);
	while (!c->stopping && (!gen || *gen == c->want_gen)) {
		if (pthread_cond_timedwait(&c->cond, &c->lock, &until) == ETIMEDOUT)
			break;
	}
	stopping = c->stopping;
	pthread_mutex_unlock(&c->lock);
	return stopping;
}

bool consul_stopping(struct consul *c)
{
	bool s;

	pthread_mutex_lock(&c->lock);
	s = c->stopping;
	pthread_mutex_unlock(&c->lock);
	return s;
}

int consul_token(struct consul *c, char *buf, size_t len)
{
	FILE *f;
	size_t n;
	int err;

	buf[0] = '\0';
	if (!c->token_file) {
		if (c->env_token)
			snprintf(buf, len, "%s", c->env_token);
		return 0;
	}
	/* A token file is rotated by replacing it: read it every time, the
	 * cost is one small read per call.
	 */
	f = fopen(c->token_file, "r");
	if (!f) {
		err = -errno;
		log_debug("registry: %s: cannot read --consul-token-file %s: %s", c->source,
			  c->token_file, strerror(-err));
		return err;
	}
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	return 0;
}

int consul_url(const struct consul *c, const char *base, const char *path, const char *params,
	       char *buf, size_t len)
{
	const char *q = c->query ? c->query : "";
	int n = snprintf(buf, len, "%s%s%s%s%s%s", base, path, params[0] || q[0] ? "?" : "",
			 params, params[0] && q[0] ? "&" : "", q);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
