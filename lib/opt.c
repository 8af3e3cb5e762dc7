// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of lib/opt.h. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "opt.h"

int opt_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int opt_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;
	int err = opt_parse_u64(s, min, max, &v);

	if (!err)
		*out = (uint32_t)v;
	return err;
}

int opt_parse_u16(const char *s, uint16_t *out)
{
	uint32_t v;
	int err = opt_parse_u32(s, 1, 65535, &v);

	if (!err)
		*out = (uint16_t)v;
	return err;
}

int opt_parse_duration_ms(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "", 1 } };
	char num[32];
	size_t n = 0;

	while (s[n] && isdigit((unsigned char)s[n]))
		n++;
	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n);
	num[n] = '\0';
	for (unsigned int i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t v;
		int err;

		if (strcmp(s + n, units[i].suffix))
			continue;
		err = opt_parse_u64(num, 0, UINT64_MAX / units[i].mult, &v);
		if (err)
			return err;
		*out = v * units[i].mult;
		return 0;
	}
	return -EINVAL;
}
