// SPDX-License-Identifier: GPL-2.0-only
/* The node's workload identities: one SVID per (namespace, service account)
 * with a meshed pod here, issued on arrival, renewed at half-life, dropped
 * on departure. The main thread's; it hands SVIDs out by reference.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "identity/identity.h"
#include "log.h"

struct idset {
	struct ca *ca;		/* borrowed: the caller keeps it for the set's life */
	struct trust *trust;	/* a reference */
	uint32_t ttl_s;
	struct svid **svids;	/* sorted by ns, sa */
	size_t n, cap;
};

struct idset *idset_new(struct ca *ca, struct trust *t, uint32_t ttl_s)
{
	struct idset *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	set->ca = ca;
	set->trust = trust_ref(t);
	set->ttl_s = ttl_s;
	return set;
}

void idset_free(struct idset *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		svid_unref(set->svids[i]);
	free(set->svids);
	trust_unref(set->trust);
	free(set);
}

static int id_cmp(const char *ns_a, const char *sa_a, const char *ns_b, const char *sa_b)
{
	int c = strcmp(ns_a, ns_b);

	return c ? c : strcmp(sa_a, sa_b);
}

static int spiffe_cmp(const void *a, const void *b)
{
	const struct spiffe_id *x = a, *y = b;

	return id_cmp(x->ns, x->sa, y->ns, y->sa);
}

/* Issue @ns/@sa's SVID; NULL (logged) on failure. */
static struct svid *issue(struct idset *set, const char *ns, const char *sa)
{
	char err[IDENTITY_ERR_MAX] = "";
	struct svid *s;
	int ret = svid_issue(set->ca, set->trust, ns, sa, set->ttl_s, &s, err);

	if (ret) {
		log_warn("identity: %s/%s: no certificate: %s", ns, sa, err[0] ? err : strerror(-ret));
		return NULL;
	}
	log_info("identity: issued %s, serial %s, valid until %lld", s->uri, s->serial,
		 (long long)s->not_after);
	return s;
}

/* The index of @ns/@sa in the set, or -1. */
static ssize_t find(const struct idset *set, const char *ns, const char *sa)
{
	size_t lo = 0, hi = set->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = id_cmp(set->svids[mid]->id.ns, set->svids[mid]->id.sa, ns, sa);

		if (!c)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int idset_sync(struct idset *set, const struct spiffe_id *ids, size_t n)
{
	struct spiffe_id *want = NULL;
	struct svid **next = NULL;
	bool *kept = NULL;
	size_t n_next = 0;
	int failures = 0;

	want = malloc((n ? n : 1) * sizeof(*want));
	next = calloc(n ? n : 1, sizeof(*next));
	kept = calloc(set->n ? set->n : 1, sizeof(*kept));
	if (!want || !next || !kept) {
		free(want);
		free(next);
		free(kept);
		return -ENOMEM;
	}
	if (n)
		memcpy(want, ids, n * sizeof(*want));
	qsort(want, n, sizeof(*want), spiffe_cmp);
	/* @want is sorted like the set, so @next comes out sorted too. */
	for (size_t i = 0; i < n; i++) {
		ssize_t at;

		if (i && !spiffe_cmp(&want[i - 1], &want[i]))
			continue;
		at = find(set, want[i].ns, want[i].sa);
		if (at >= 0) {
			next[n_next++] = set->svids[at];
			kept[at] = true;
		} else if ((next[n_next] = issue(set, want[i].ns, want[i].sa))) {
			n_next++;
		} else {
			failures++;
		}
	}
	for (size_t i = 0; i < set->n; i++) {
		if (kept[i])
			continue;
		log_info("identity: %s has no pod on this node any more", set->svids[i]->uri);
		svid_unref(set->svids[i]);
	}
	free(set->svids);
	free(want);
	free(kept);
	set->svids = next;
	set->n = set->cap = n_next;
	return failures;
}

time_t idset_renew(struct idset *set, time_t now)
{
	time_t next = 0;

	for (size_t i = 0; i < set->n; i++) {
		struct svid *s = set->svids[i];

		if (s->renew_at <= now) {
			struct svid *fresh = issue(set, s->id.ns, s->id.sa);

			/* On failure the old one serves on until it expires; retried
			 * at the next call.
			 */
			if (fresh) {
				svid_unref(s);
				set->svids[i] = s = fresh;
			}
		}
		if (s->renew_at > now && (!next || s->renew_at < next))
			next = s->renew_at;
	}
	return next;
}

int idset_set_issuer(struct idset *set, struct ca *ca, struct trust *t)
{
	int failures = 0;

	set->ca = ca;
	trust_unref(set->trust);
	set->trust = trust_ref(t);
	for (size_t i = 0; i < set->n; i++) {
		struct svid *fresh = issue(set, set->svids[i]->id.ns, set->svids[i]->id.sa);

		if (!fresh) {
			failures++;
			continue;
		}
		svid_unref(set->svids[i]);
		set->svids[i] = fresh;
	}
	return failures;
}

struct svid *idset_get(struct idset *set, const char *ns, const char *sa)
{
	ssize_t at = find(set, ns, sa);

	return at < 0 ? NULL : svid_ref(set->svids[at]);
}

size_t idset_count(const struct idset *set)
{
	return set->n;
}

const struct svid *idset_at(const struct idset *set, size_t i)
{
	return i < set->n ? set->svids[i] : NULL;
}

const struct trust *idset_trust(const struct idset *set)
{
	return set->trust;
}
