/*
 * event_check.h: what event.c decides about one event of a payload before
 * anything is sent (event_check.c): JSON, a protocol type, broadcast only
 * for resync, its chat, and whether its message was left out for a fetch;
 * presence by subscription, and blocks that end subscriptions.
 * Nothing here needs a connection or the database (test/fuzz/event_fuzz.c).
 */
#ifndef RELAY_EVENT_CHECK_H
#define RELAY_EVENT_CHECK_H

#include "envelope.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* how an event that left its message out for a fetch ends */
#define EVENT_INLINE_FALSE ",\"inline\":false}"

enum event_route
{
	EVR_BAD,					/* refused: not JSON, unknown type, broadcast not resync … */
	EVR_BROADCAST,				/* a resync, to everyone */
	EVR_CHAT,					/* of a chat (integer chat_id): in that chat's order */
	EVR_DIRECT,					/* to its recipients as it is */
	EVR_PRESENCE,				/* of user_id: to the connections subscribed to them */
	EVR_BLOCK					/* user_id blocked other_id: for the relay, never forwarded */
};

struct event_info
{
	json_t	   *ev;				/* the parsed event (caller json_decref's, also on EVR_BAD) */
	const char *type;			/* inside ev; NULL on EVR_BAD */
	int64_t		chat_id;		/* EVR_CHAT */
	int64_t		user_id;		/* EVR_PRESENCE, EVR_BLOCK */
	int64_t		other_id;		/* EVR_BLOCK */
	bool		fetchable;		/* message/edit/delete ending "inline":false, sender_id and seq integers */
};

enum event_route event_check(const struct envelope *e, struct event_info *out);

#endif
