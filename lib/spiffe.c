// SPDX-License-Identifier: GPL-2.0-only
/* SPIFFE IDs of workloads and allow-from patterns (spiffe.h). Pure string
 * work, shared by the agent (certificates, authorization) and meshctl.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "spiffe.h"

#define SCHEME "spiffe://"

static bool td_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
	       c == '_';
}

bool spiffe_td_valid(const char *td)
{
	size_t n = strlen(td);

	if (!n || n >= SPIFFE_TD_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!td_char(td[i]))
			return false;
	return true;
}

/* A path segment: non-empty, no '/', nothing SPIFFE forbids ("." "..")
 * and only characters a namespace or service account name can hold.
 */
static bool seg_valid(const char *s, size_t n)
{
	if (!n || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!td_char(s[i]))
			return false;
	return true;
}

int spiffe_id_fmt(char *buf, size_t len, const char *td, const char *ns, const char *sa)
{
	int n;

	if (!spiffe_td_valid(td) || !seg_valid(ns, strlen(ns)) || !seg_valid(sa, strlen(sa)))
		return -EINVAL;
	n = snprintf(buf, len, SCHEME "%s/ns/%s/sa/%s", td, ns, sa);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* Copy segment @s (@n bytes) into @out of @size if it is valid. */
static int take_seg(const char *s, size_t n, char *out, size_t size)
{
	if (!seg_valid(s, n) || n >= size)
		return -EINVAL;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

int spiffe_id_parse(const char *uri, struct spiffe_id *out)
{
	const char *p, *slash, *ns, *sa;
	size_t n;

	if (strncmp(uri, SCHEME, strlen(SCHEME)))
		return -EINVAL;
	p = uri + strlen(SCHEME);
	slash = strchr(p, '/');
	if (!slash || (size_t)(slash - p) >= sizeof(out->td))
		return -EINVAL;
	memcpy(out->td, p, (size_t)(slash - p));
	out->td[slash - p] = '\0';
	if (!spiffe_td_valid(out->td) || strncmp(slash, "/ns/", 4))
		return -EINVAL;
	ns = slash + 4;
	slash = strchr(ns, '/');
	if (!slash || strncmp(slash, "/sa/", 4))
		return -EINVAL;
	if (take_seg(ns, (size_t)(slash - ns), out->ns, sizeof(out->ns)))
		return -EINVAL;
	sa = slash + 4;
	n = strlen(sa);
	if (strchr(sa, '/') || take_seg(sa, n, out->sa, sizeof(out->sa)))
		return -EINVAL;
	return 0;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == ',' || c == '\n';
}

/* One pattern @s (@n bytes): "NS/sa/SA", or NS, a slash and "*". */
static int allow_one(const char *s, size_t n, struct spiffe_allow *a)
{
	const char *slash = memchr(s, '/', n);
	size_t ns_len, rest;

	if (!slash)
		return -EINVAL;
	ns_len = (size_t)(slash - s);
	rest = n - ns_len - 1;
	if (take_seg(s, ns_len, a->ns, sizeof(a->ns)))
		return -EINVAL;
	if (rest == 1 && slash[1] == '*') {
		a->sa[0] = '\0';
		return 0;
	}
	if (rest < 4 || strncmp(slash + 1, "sa/", 3))
		return -EINVAL;
	return take_seg(slash + 4, rest - 3, a->sa, sizeof(a->sa));
}

int spiffe_allow_parse(const char *text, struct spiffe_allow *out, size_t max, char *bad,
		       size_t badlen)
{
	size_t n = 0;
	const char *p = text;

	for (;;) {
		const char *start;

		while (*p && blank(*p))
			p++;
		if (!*p)
			return (int)n;
		start = p;
		while (*p && !blank(*p))
			p++;
		if (n == max)
			return -E2BIG;
		if (allow_one(start, (size_t)(p - start), &out[n])) {
			snprintf(bad, badlen, "%.*s", (int)(p - start), start);
			return -EINVAL;
		}
		n++;
	}
}

bool spiffe_allowed(const struct spiffe_id *id, const struct spiffe_allow *allow, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(allow[i].ns, id->ns) && (!allow[i].sa[0] || !strcmp(allow[i].sa, id->sa)))
			return true;
	return false;
}
