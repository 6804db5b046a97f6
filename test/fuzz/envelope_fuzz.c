/*
 * envelope_fuzz.c: libFuzzer on what the relay does with a NOTIFY payload
 * of chat_events before anything is sent: relay/core/envelope.c takes it
 * apart, then relay/event_check.c judges each event (JSON, protocol type,
 * broadcast only for resync, its chat, whether its message is to be
 * fetched). Every accepted envelope's bytes and recipients must lie inside
 * the payload (ASan checks the reads). `make fuzz-envelope`, and in
 * `make test` (test/fuzz/run.sh).
 */
#include "envelope.h"
#include "event_check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The payload as the relay's parser gets it. SEALING GOES HERE: once
 * relay/core/seal.c is in, open the input with seal_open() under a fixed
 * test key first (seal_seal() makes the corpus) and return the plaintext,
 * or NULL for anything that does not open, as the relay drops it.
 */
static const char *
open_payload(const char *payload, size_t len, size_t *plain_len)
{
	*plain_len = len;
	return payload;
}

/* What event.c would do with one parsed event. */
static void
check_event(const struct envelope *e)
{
	struct event_info ei;
	enum event_route r = event_check(e, &ei);

	/* a broadcast is a resync or nothing; only an event of a chat is ever fetched */
	if ((r == EVR_BAD) != (ei.type == NULL) ||
		(e->broadcast && r != EVR_BAD && (r != EVR_BROADCAST || strcmp(ei.type, "resync"))) ||
		(!e->broadcast && r == EVR_BROADCAST) || (ei.fetchable && r != EVR_CHAT))
		abort();
	json_decref(ei.ev);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct envelope_list l;
	char	   *copy = malloc(size ? size : 1);	/* exactly size bytes: ASan sees any overread */
	const char *plain;
	size_t		plain_len;

	memcpy(copy, data, size);
	plain = open_payload(copy, size, &plain_len);
	if (plain && envelope_parse(plain, plain_len, &l) == 0)
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
			check_event(&l.v[i]);
		}
	free(copy);
	return 0;
}
