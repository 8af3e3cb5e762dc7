// SPDX-License-Identifier: GPL-2.0-only
/* Helpers every thread of the Consul backend uses (registry/consul_core.h):
 * waiting on stop or new work, and the ACL token.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "registry/consul_core.h"
#include "sync.h"

bool consul_wait(struct consul *c, uint32_t ms, const uint64_t *gen)
{
	return sync_wait(&c->lock, &c->cond, &c->stopping, &c->want.gen, gen, ms);
}

bool consul_stopping(struct consul *c)
{
	return sync_flag(&c->lock, &c->stopping);
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
