/* SPDX-License-Identifier: GPL-2.0-only */
/* Checked number parsers: the only way weft turns text into integers. */
#ifndef WEFT_OPT_H
#define WEFT_OPT_H

#include <stdbool.h>
#include <stdint.h>

/* Parse a decimal (or 0x hex) integer in [@min, @max]. Rejects empty input,
 * trailing junk, signs on unsigned values and overflow. Returns 0 or -EINVAL/-ERANGE.
 */
int opt_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
int opt_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* A TCP/UDP port, 1..65535. */
int opt_parse_u16(const char *s, uint16_t *out);

/* A duration: integer with unit "ms", "s" or "m" (bare number = ms). Returns ms. */
int opt_parse_duration_ms(const char *s, uint64_t *out);


/* ---- option tables: one row per option; --help, env parsing and defaults
 * all come from the table (xdp-tools DEFINE_OPTION, redis standardConfig).
 */
#include <stddef.h>
#include <stdio.h>

enum opt_type {
	OPT_STRING,	/* char * (points into argv/env or the default) */
	OPT_U32,	/* uint32_t within [min, max] */
	OPT_PORT,	/* uint16_t, 1..65535 */
	OPT_FLAG,	/* bool, set by presence; takes no argument */
	OPT_STRINGS,	/* struct opt_strings: the option may repeat; the environment
			 * variable holds the values separated by spaces */
	OPT_ENUM,	/* an int-sized enum: the index of the value in names[] */
};

#define OPT_STRINGS_MAX 8

struct opt_strings {
	const char *v[OPT_STRINGS_MAX];
	unsigned int n;
	bool from_args;			/* the first argv value replaces defaults and env */
	char env_copy[1024];		/* the environment value, split in place */
};

struct opt_def {
	const char *name;	/* long option, without "--" */
	const char *env;	/* environment variable, or NULL */
	enum opt_type type;
	size_t offset;		/* offsetof() the field in the target struct */
	const char *def;	/* default as text, or NULL for none */
	uint32_t min, max;	/* OPT_U32 bounds */
	const char *const *names;	/* OPT_ENUM: the n_names values, in enum order */
	uint32_t n_names;
	const char *metavar;	/* "DIR", "PATH"... for --help */
	const char *help;
};

/* Apply defaults, then environment, then argv (later wins) into @target.
 * On a bad value, writes a message naming the option and the value into @err
 * and returns -EINVAL. "--help" returns 1 (caller prints opt_usage()).
 * Stray positional arguments are errors.
 */
int opt_parse(const struct opt_def *defs, size_t n, void *target, int argc, char **argv,
	      char *err, size_t errlen);

/* Print one line per option: "--name METAVAR  help [env ENV, default DEF]". */
void opt_usage(FILE *out, const struct opt_def *defs, size_t n);

#endif /* WEFT_OPT_H */
