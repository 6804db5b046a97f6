/*
 * idhash.h: the bucket of a 64-bit id in a power-of-two table, for the
 * relay's chained hash tables keyed by user id (users.c, subscribe.c).
 */
#ifndef CORE_IDHASH_H
#define CORE_IDHASH_H

#include <stddef.h>
#include <stdint.h>

/* size is a power of two; ids close together spread over the table */
static inline size_t
id_bucket(int64_t id, size_t size)
{
	uint64_t	x = (uint64_t) id;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t) (x & (size - 1));
}

#endif
