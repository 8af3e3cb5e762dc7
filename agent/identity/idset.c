// SPDX-License-Identifier: GPL-2.0-only
/* The node's workload identities: one SVID per (namespace, service account)
 * with a meshed pod here, issued on arrival, renewed at half-life, dropped
 * on departure. The main thread's; it hands SVIDs out by reference. The
 * issuer answers at once (the standalone CA) or later (weft-ca): identities
 * whose issuance is under way are kept aside until idset_put().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "identity/identity.h"
#include "log.h"

/* A missing identity is tried again this often (seconds). */
#define IDSET_RETRY_S 5

struct idset {
	struct idset_issuer iss;
	struct trust *trust;	/* a reference */
	uint32_t ttl_s;
	struct svid **svids;	/* sorted by ns, sa */
	size_t n;
	struct spiffe_id *want;	/* the last idset_sync(), sorted, unique */
	size_t n_want;
	struct spiffe_id *pending;	/* issuances under way, unsorted */
	size_t n_pending, cap_pending;
};

int idset_issue_standalone(void *ctx, struct trust *t, const char *ns, const char *sa,
			   uint32_t ttl_s, struct svid **out, char *err)
{
	return svid_issue(*(struct ca **)ctx, t, ns, sa, ttl_s, out, err);
}

struct idset *idset_new(const struct idset_issuer *iss, struct trust *t, uint32_t ttl_s)
{
	struct idset *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	set->iss = *iss;
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
	free(set->want);
	free(set->pending);
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

static ssize_t pending_find(const struct idset *set, const char *ns, const char *sa)
{
	for (size_t i = 0; i < set->n_pending; i++)
		if (!id_cmp(set->pending[i].ns, set->pending[i].sa, ns, sa))
			return (ssize_t)i;
	return -1;
}

static void pending_del(struct idset *set, const char *ns, const char *sa)
{
	ssize_t at = pending_find(set, ns, sa);

	if (at >= 0)
		set->pending[at] = set->pending[--set->n_pending];
}

/* Issue @id. The new SVID, or NULL: under way (remembered as pending) or
 * failed (logged). A pending identity is not asked for twice.
 */
static struct svid *issue(struct idset *set, const struct spiffe_id *id)
{
	char err[IDENTITY_ERR_MAX] = "";
	struct svid *s = NULL;
	int ret;

	if (pending_find(set, id->ns, id->sa) >= 0)
		return NULL;
	ret = set->iss.issue(set->iss.ctx, set->trust, id->ns, id->sa, set->ttl_s, &s, err);
	if (ret == -EINPROGRESS) {
		if (array_reserve(&set->pending, &set->cap_pending, set->n_pending,
				  sizeof(*set->pending), 4))
			return NULL;	/* the answer will find nothing pending: dropped */
		set->pending[set->n_pending++] = *id;
		return NULL;
	}
	if (ret) {
		log_warn("identity: %s/%s: no certificate: %s", id->ns, id->sa,
			 err[0] ? err : strerror(-ret));
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

static bool wanted(const struct idset *set, const char *ns, const char *sa)
{
	struct spiffe_id key = { 0 };

	snprintf(key.ns, sizeof(key.ns), "%s", ns);
	snprintf(key.sa, sizeof(key.sa), "%s", sa);
	return set->n_want &&
	       bsearch(&key, set->want, set->n_want, sizeof(key), spiffe_cmp) != NULL;
}

int idset_sync(struct idset *set, const struct spiffe_id *ids, size_t n)
{
	struct spiffe_id *want = NULL;
	struct svid **next = NULL;
	bool *kept = NULL;
	size_t n_next = 0, n_want = 0;
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

		if (n_want && !spiffe_cmp(&want[n_want - 1], &want[i]))
			continue;
		want[n_want++] = want[i];
		at = find(set, want[i].ns, want[i].sa);
		if (at >= 0) {
			next[n_next++] = set->svids[at];
			kept[at] = true;
		} else if ((next[n_next] = issue(set, &want[i]))) {
			n_next++;
		} else if (pending_find(set, want[i].ns, want[i].sa) < 0) {
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
	free(set->want);
	free(kept);
	set->svids = next;
	set->n = n_next;
	set->want = want;
	set->n_want = n_want;
	/* An answer still under way for a dropped identity finds it gone. */
	for (size_t i = 0; i < set->n_pending;) {
		if (wanted(set, set->pending[i].ns, set->pending[i].sa))
			i++;
		else
			set->pending[i] = set->pending[--set->n_pending];
	}
	return failures;
}

/* Put @s in the sorted array in the place of its identity. Takes @s. */
static int place(struct idset *set, struct svid *s)
{
	ssize_t at = find(set, s->id.ns, s->id.sa);
	struct svid **grown;
	size_t i;

	if (at >= 0) {
		svid_unref(set->svids[at]);
		set->svids[at] = s;
		return 0;
	}
	grown = realloc(set->svids, (set->n + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	set->svids = grown;
	for (i = set->n; i > 0 && id_cmp(grown[i - 1]->id.ns, grown[i - 1]->id.sa, s->id.ns,
					  s->id.sa) > 0; i--)
		grown[i] = grown[i - 1];
	grown[i] = s;
	set->n++;
	return 0;
}

bool idset_put(struct idset *set, struct svid *s)
{
	if (pending_find(set, s->id.ns, s->id.sa) < 0 || !wanted(set, s->id.ns, s->id.sa))
		return false;
	pending_del(set, s->id.ns, s->id.sa);
	if (place(set, svid_ref(s))) {
		svid_unref(s);
		return false;
	}
	log_info("identity: issued %s, serial %s, valid until %lld", s->uri, s->serial,
		 (long long)s->not_after);
	return true;
}

void idset_failed(struct idset *set, const char *ns, const char *sa)
{
	pending_del(set, ns, sa);
}

time_t idset_renew(struct idset *set, time_t now)
{
	time_t next = 0;
	bool missing = false;

	for (size_t i = 0; i < set->n; i++) {
		struct svid *s = set->svids[i];

		if (s->renew_at <= now) {
			struct svid *fresh = issue(set, &s->id);

			/* On failure the old one serves on until it expires; retried
			 * at the next call. An asynchronous answer replaces it.
			 */
			if (fresh) {
				svid_unref(s);
				set->svids[i] = s = fresh;
			}
		}
		if (s->renew_at > now && (!next || s->renew_at < next))
			next = s->renew_at;
		else if (s->renew_at <= now)
			missing = true;
	}
	for (size_t i = 0; i < set->n_want; i++) {
		struct svid *s;

		if (find(set, set->want[i].ns, set->want[i].sa) >= 0)
			continue;
		s = issue(set, &set->want[i]);
		if (s && place(set, s))
			svid_unref(s);
		if (!s)
			missing = true;
	}
	if (missing && (!next || next > now + IDSET_RETRY_S))
		next = now + IDSET_RETRY_S;
	return next;
}

int idset_set_trust(struct idset *set, struct trust *t)
{
	int failures = 0;

	trust_unref(set->trust);
	set->trust = trust_ref(t);
	for (size_t i = 0; i < set->n; i++) {
		struct svid *fresh = issue(set, &set->svids[i]->id);

		if (!fresh) {
			if (pending_find(set, set->svids[i]->id.ns, set->svids[i]->id.sa) < 0)
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

size_t idset_pending(const struct idset *set)
{
	return set->n_pending;
}

const char *idset_issuer_kind(const struct idset *set)
{
	return set->iss.kind;
}
