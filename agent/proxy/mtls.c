// SPDX-License-Identifier: GPL-2.0-only
/* The proxy's mTLS table (mtls.h): built by the main thread, read by the
 * workers without a lock, like a catalogue; the authorization check and the
 * preamble's encoding.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/mtls.h"

struct mtls_table *mtls_table_new(const char *td, size_t n)
{
	struct mtls_table *t = calloc(1, sizeof(*t) + n * sizeof(t->pods[0]));

	if (!t)
		return NULL;
	atomic_init(&t->refs, 1);
	snprintf(t->td, sizeof(t->td), "%s", td);
	t->n = n;
	return t;
}

struct mtls_table *mtls_table_ref(struct mtls_table *t)
{
	if (t)
		atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	return t;
}

void mtls_table_unref(struct mtls_table *t)
{
	if (!t || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < t->n; i++)
		svid_unref(t->pods[i].svid);
	free(t);
}

const struct mtls_pod *mtls_table_pod(const struct mtls_table *t, uint32_t pod_id)
{
	size_t lo = 0, hi = t ? t->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->pods[mid].pod_id == pod_id)
			return &t->pods[mid];
		if (t->pods[mid].pod_id < pod_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool mtls_allowed(const struct mtls_pod *p, uint16_t port, const struct spiffe_id *id)
{
	const struct mtls_rule *any = NULL;

	for (size_t i = 0; i < p->n_rules; i++) {
		if (p->rules[i].port == port)
			return spiffe_allowed(id, p->rules[i].allow, p->rules[i].n);
		if (!p->rules[i].port)
			any = &p->rules[i];
	}
	return !any || spiffe_allowed(id, any->allow, any->n);
}

void mtls_preamble_put(uint8_t out[MTLS_PREAMBLE_LEN], uint16_t port)
{
	uint16_t be = htons(port);

	memcpy(out, MTLS_MAGIC, 4);
	out[4] = MTLS_VERSION;
	out[5] = 0;		/* flags: none defined */
	memcpy(out + 6, &be, 2);
}

int mtls_preamble_get(const uint8_t in[MTLS_PREAMBLE_LEN], uint16_t *port)
{
	uint16_t be;

	if (memcmp(in, MTLS_MAGIC, 4) || in[4] != MTLS_VERSION || in[5])
		return -EPROTO;
	memcpy(&be, in + 6, 2);
	*port = ntohs(be);
	return *port ? 0 : -EPROTO;
}
