/*
 * envelope.h: what the extension publishes on chat_events, taken apart
 * without re-encoding anything.
 *
 * A payload is one envelope or a JSON array of them (the publisher's
 * batches). An envelope is exactly {"to":[ids…],"ev":EVENT}: the routing
 * data first, then the event as clients receive it, which goes out byte for
 * byte. "to":null is a broadcast (resync). A payload whose envelopes do not
 * parse is refused whole: nothing of it is used unless all of it parses
 * (whether each event is valid JSON is the caller's check, event by event).
 */
#ifndef CORE_ENVELOPE_H
#define CORE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct envelope
{
	const char *ev;				/* the event's bytes, inside the payload */
	size_t		ev_len;
	bool		broadcast;		/* "to":null */
	const int64_t *to;			/* recipients (into the list's ids) */
	size_t		nto;
};

struct envelope_list
{
	struct envelope *v;
	size_t		n,
				cap;
	int64_t    *ids;			/* every envelope's recipients, one run each */
	size_t		nids,
				ids_cap;
};

/*
 * Parse payload into out (reused between calls: its arrays grow). 0, or -1
 * when any part is malformed (then out->n is 0). The envelopes point into
 * payload, which must outlive them.
 */
int			envelope_parse(const char *payload, size_t len, struct envelope_list *out);
void		envelope_list_free(struct envelope_list *l);

#endif
