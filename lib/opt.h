/* SPDX-License-Identifier: GPL-2.0-only */
/* Checked number parsers: the only way weft turns text into integers. */
#ifndef WEFT_OPT_H
#define WEFT_OPT_H

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

#endif /* WEFT_OPT_H */
