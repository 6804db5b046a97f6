/*
 * seal_fuzz.c: libFuzzer on relay/core/seal.c, what every NOTIFY payload
 * meets first. Two properties: arbitrary bytes never open (the chance that
 * random input authenticates is 2^-128) and never read outside the input;
 * and anything sealed under the ring's key with a fresh number opens to
 * exactly what was sealed, once.
 */
#include "seal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct seal_ring ring;
static const struct seal_key key = {7, "fuzz-key-0123456789abcdef-012345"};
static uint64_t next_seq = 1000;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *copy = malloc(size ? size : 1);	/* exactly size bytes: ASan sees any overread */
	static char sealed[8192];
	const char *plain;
	size_t		plain_len;
	int			key_id,
				n;

	if (ring.nkeys == 0)
	{
		seal_ring_set_keys(&ring, &key, 1);
		seal_ring_reset(&ring, next_seq - 1);
	}
	memcpy(copy, data, size);
	if (seal_open(&ring, copy, size, &plain, &plain_len, &key_id) == SEAL_OK)
		abort();				/* random bytes authenticated */
	free(copy);

	/* the input as a payload, sealed and opened again */
	if (size > 5960)
		return 0;
	n = seal_seal(&key, ++next_seq, (const char *) data, size, sealed, sizeof(sealed));
	if (n < 0 || n >= 8000)
		abort();
	if (seal_open(&ring, sealed, (size_t) n, &plain, &plain_len, &key_id) != SEAL_OK ||
		plain_len != size || memcmp(plain, data, size) != 0 || key_id != key.id)
		abort();
	if (seal_open(&ring, sealed, (size_t) n, &plain, &plain_len, &key_id) != SEAL_REPLAYED)
		abort();				/* the same payload twice */
	return 0;
}
