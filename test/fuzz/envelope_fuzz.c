/*
 * envelope_fuzz.c: libFuzzer on relay/core/envelope.c, the first code a
 * NOTIFY payload meets. Every accepted envelope's bytes and recipients must
 * lie inside the payload (ASan checks the reads). Not part of make test:
 * `make fuzz-envelope` (FUZZ_SECONDS, 60 by default).
 */
#include "envelope.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct envelope_list l;
	char	   *copy = malloc(size ? size : 1);	/* exactly size bytes: ASan sees any overread */

	memcpy(copy, data, size);
	if (envelope_parse(copy, size, &l) == 0)
		for (size_t i = 0; i < l.n; i++)
		{
			volatile char first = l.v[i].ev[0];
			volatile char last = l.v[i].ev[l.v[i].ev_len - 1];

			(void) first;
			(void) last;
			for (size_t j = 0; j < l.v[i].nto; j++)
			{
				volatile int64_t id = l.v[i].to[j];

				(void) id;
			}
		}
	free(copy);
	return 0;
}
