/* SPDX-License-Identifier: GPL-2.0-only */
/* Workload identities as SPIFFE IDs, spiffe://<trust-domain>/ns/<ns>/sa/<sa>
 * (docs/mtls.md): formatting one from a pod's namespace and service account,
 * reading one back from a certificate's URI SAN, and the authorization
 * patterns of weft.io/allow-from ("shop/sa/frontend", "ops/ *", without the blank).
 */
#ifndef WEFT_SPIFFE_H
#define WEFT_SPIFFE_H

#include <stdbool.h>
#include <stddef.h>

/* Bounds: a trust domain is a DNS name (253), a namespace a label (63), a
 * service account a subdomain (253); "spiffe://" "/ns/" "/sa/" and NUL.
 */
#define SPIFFE_TD_MAX 254
#define SPIFFE_NS_MAX 64
#define SPIFFE_SA_MAX 254
#define SPIFFE_ID_MAX (9 + 253 + 4 + 63 + 4 + 253 + 1)

/* A parsed workload identity. */
struct spiffe_id {
	char td[SPIFFE_TD_MAX];
	char ns[SPIFFE_NS_MAX];
	char sa[SPIFFE_SA_MAX];
};

/* Whether @td is a trust domain name SPIFFE allows: 1..253 characters of
 * lowercase letters, digits, '.', '-' and '_'.
 */
bool spiffe_td_valid(const char *td);

/* Write spiffe://@td/ns/@ns/sa/@sa into @buf of @len. 0, -EINVAL when a part
 * is empty or holds a '/', or -ENAMETOOLONG.
 */
int spiffe_id_fmt(char *buf, size_t len, const char *td, const char *ns, const char *sa);

/* Parse @uri, a SPIFFE ID of the ns/sa shape, into @out. 0 or -EINVAL (not
 * spiffe://, a bad trust domain, another path shape, a part too long).
 */
int spiffe_id_parse(const char *uri, struct spiffe_id *out);

/* The most patterns one allow-from list holds. */
#define SPIFFE_ALLOW_MAX 16

/* One allow-from pattern: namespace @ns, and service account @sa or any
 * ("*") when @sa is empty.
 */
struct spiffe_allow {
	char ns[SPIFFE_NS_MAX];
	char sa[SPIFFE_SA_MAX];
};

/* Parse a weft.io/allow-from value, "NS/sa/SA" or "NS/" "*" (any account of NS) separated by commas
 * and blanks, into @out (@max entries). The count, or -EINVAL with the bad
 * pattern copied into @bad (@badlen), or -E2BIG beyond @max.
 */
int spiffe_allow_parse(const char *text, struct spiffe_allow *out, size_t max, char *bad,
		       size_t badlen);

/* Whether identity @id (its trust domain already checked) matches one of
 * @n patterns @allow.
 */
bool spiffe_allowed(const struct spiffe_id *id, const struct spiffe_allow *allow, size_t n);

#endif /* WEFT_SPIFFE_H */
