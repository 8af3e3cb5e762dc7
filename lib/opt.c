// SPDX-License-Identifier: GPL-2.0-only
/* Implementation of lib/opt.h. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdio.h>
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

static int opt_set(const struct opt_def *d, void *target, const char *val, const char *from,
		   char *err, size_t errlen)
{
	char *field = (char *)target + d->offset;
	int rc = 0;

	switch (d->type) {
	case OPT_STRING:
		*(const char **)field = val;
		break;
	case OPT_U32: {
		uint32_t v;

		rc = opt_parse_u32(val, d->min, d->max, &v);
		if (!rc)
			*(uint32_t *)field = v;
		if (rc)
			snprintf(err, errlen, "%s: '%s' is not an integer in %u..%u", from, val,
				 d->min, d->max);
		break;
	}
	case OPT_PORT: {
		uint16_t v;

		rc = opt_parse_u16(val, &v);
		if (!rc)
			*(uint16_t *)field = v;
		else
			snprintf(err, errlen, "%s: '%s' is not a port (1..65535)", from, val);
		break;
	}
	case OPT_STRINGS: {
		struct opt_strings *l = (struct opt_strings *)field;

		if (l->n == OPT_STRINGS_MAX) {
			snprintf(err, errlen, "%s: more than %d values", from, OPT_STRINGS_MAX);
			rc = -E2BIG;
			break;
		}
		l->v[l->n++] = val;
		break;
	}
	case OPT_ENUM: {
		uint32_t i;
		int len;

		for (i = 0; i < d->n_names && strcmp(val, d->names[i]); i++)
			;
		if (i < d->n_names) {
			*(int *)field = (int)i;
			break;
		}
		len = snprintf(err, errlen, "%s: '%s' is not one of ", from, val);
		for (i = 0; i < d->n_names && len >= 0 && (size_t)len < errlen; i++)
			len += snprintf(err + len, errlen - (size_t)len, "%s%s", i ? ", " : "",
					d->names[i]);
		rc = -EINVAL;
		break;
	}
	case OPT_FLAG:
		if (!strcmp(val, "1") || !strcmp(val, "true") || !strcmp(val, "yes"))
			*(bool *)field = true;
		else if (!strcmp(val, "0") || !strcmp(val, "false") || !strcmp(val, "no"))
			*(bool *)field = false;
		else {
			snprintf(err, errlen, "%s: '%s' is not a boolean (true/false)", from, val);
			rc = -EINVAL;
		}
		break;
	}
	return rc ? -EINVAL : 0;
}

int opt_parse(const struct opt_def *defs, size_t n, void *target, int argc, char **argv,
	      char *err, size_t errlen)
{
	char from[96];
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (!defs[i].def)
			continue;
		snprintf(from, sizeof(from), "default of --%s", defs[i].name);
		rc = opt_set(&defs[i], target, defs[i].def, from, err, errlen);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < n; i++) {
		const char *v = defs[i].env ? getenv(defs[i].env) : NULL;

		if (!v || !*v)
			continue;
		snprintf(from, sizeof(from), "environment %s", defs[i].env);
		if (defs[i].type == OPT_STRINGS) {
			struct opt_strings *l = (struct opt_strings *)((char *)target + defs[i].offset);
			char *save = NULL, *tok;

			l->n = 0;
			snprintf(l->env_copy, sizeof(l->env_copy), "%s", v);
			for (tok = strtok_r(l->env_copy, " \t", &save); tok;
			     tok = strtok_r(NULL, " \t", &save)) {
				rc = opt_set(&defs[i], target, tok, from, err, errlen);
				if (rc)
					return rc;
			}
			continue;
		}
		rc = opt_set(&defs[i], target, v, from, err, errlen);
		if (rc)
			return rc;
	}
	for (int a = 1; a < argc; a++) {
		const char *arg = argv[a], *eq, *val;
		const struct opt_def *d = NULL;
		size_t len;

		if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
			return 1;
		if (strncmp(arg, "--", 2)) {
			snprintf(err, errlen, "unexpected argument '%s'", arg);
			return -EINVAL;
		}
		arg += 2;
		eq = strchr(arg, '=');
		len = eq ? (size_t)(eq - arg) : strlen(arg);
		for (size_t i = 0; i < n; i++) {
			if (strlen(defs[i].name) == len && !strncmp(defs[i].name, arg, len))
				d = &defs[i];
		}
		if (!d) {
			snprintf(err, errlen, "unknown option '--%.*s' (see --help)", (int)len, arg);
			return -EINVAL;
		}
		if (d->type == OPT_FLAG && !eq) {
			val = "true";
		} else if (eq) {
			val = eq + 1;
		} else if (a + 1 < argc) {
			val = argv[++a];
		} else {
			snprintf(err, errlen, "option '--%s' needs a value", d->name);
			return -EINVAL;
		}
		snprintf(from, sizeof(from), "option --%s", d->name);
		if (d->type == OPT_STRINGS) {
			struct opt_strings *l = (struct opt_strings *)((char *)target + d->offset);

			/* Flags replace what the environment or the default said. */
			if (!l->from_args) {
				l->n = 0;
				l->from_args = true;
			}
		}
		rc = opt_set(d, target, val, from, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

void opt_usage(FILE *out, const struct opt_def *defs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct opt_def *d = &defs[i];
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s", d->name, d->metavar ? " " : "",
			 d->metavar ? d->metavar : "");
		fprintf(out, "  %-28s %s", left, d->help);
		bool has_def = d->def && d->def[0];

		if (d->env || has_def) {
			fprintf(out, " [");
			if (d->env)
				fprintf(out, "env %s", d->env);
			if (d->env && has_def)
				fprintf(out, ", ");
			if (has_def)
				fprintf(out, "default %s", d->def);
			fprintf(out, "]");
		}
		fprintf(out, "\n");
	}
}
