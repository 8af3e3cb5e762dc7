/* SPDX-License-Identifier: GPL-2.0-only */
/* FNV-1a, 64 bits: the one hash of names and bytes that weft's tables and
 * fingerprints use (a registry file's documents and objects, the model's
 * index of objects, a listing's keys, a Service's home VIP). Not for
 * anything an adversary could aim at: none of these tables takes keys
 * from outside the registries an operator configured.
 */
#ifndef WEFT_FNV_H
#define WEFT_FNV_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A64_OFFSET 14695981039346656037ull
#define FNV1A64_PRIME 1099511628211ull

/* @h (FNV1A64_OFFSET to start) with the @len bytes at @p mixed in. */
static inline uint64_t fnv1a64(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * FNV1A64_PRIME;
	return h;
}

/* The same with the bytes of the string @s, without its NUL. */
static inline uint64_t fnv1a64_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * FNV1A64_PRIME;
	return h;
}

/* The same with one byte. */
static inline uint64_t fnv1a64_byte(uint64_t h, unsigned char b)
{
	return (h ^ b) * FNV1A64_PRIME;
}

/* For a table slot (hash & mask): FNV's low bits mix only the bytes' low
 * bits, so the high half is folded into the low one first.
 */
static inline uint64_t fnv_fold(uint64_t h)
{
	return h ^ h >> 32;
}

#endif /* WEFT_FNV_H */
