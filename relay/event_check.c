/*
 * event_check.c: one event of a payload judged from its bytes alone; what
 * event.c then does with it depends on who is connected here.
 */
#include "event_check.h"

#include <string.h>

static const char inline_false[] = EVENT_INLINE_FALSE;

/*
 * Is this an event type of the protocol (docs/protocol.md), or "block",
 * which the relay acts on and never forwards? Others are never forwarded.
 */
static bool
known_type(const char *type)
{
	static const char *const types[] = {
		"message", "edit", "delete", "read", "typing", "presence", "resync", "block", NULL
	};

	for (int i = 0; types[i]; i++)
		if (strcmp(type, types[i]) == 0)
			return true;
	return false;
}

/* Was this event's message too large for NOTIFY (to be fetched, if a recipient is here)? */
static bool
fetchable(json_t *ev, const char *type, const struct envelope *e)
{
	if (strcmp(type, "message") && strcmp(type, "edit") && strcmp(type, "delete"))
		return false;
	return json_is_false(json_object_get(ev, "inline")) &&
		json_object_get(ev, "message") == NULL &&
		json_is_integer(json_object_get(ev, "sender_id")) &&
		json_is_integer(json_object_get(ev, "seq")) &&
		e->ev_len > sizeof(inline_false) &&
		memcmp(e->ev + e->ev_len - (sizeof(inline_false) - 1), inline_false, sizeof(inline_false) - 1) == 0;
}

/* A presence change or a block: integer user ids, or refused. */
static enum event_route
by_user(struct event_info *out)
{
	json_t	   *user = json_object_get(out->ev, "user_id");
	json_t	   *other = json_object_get(out->ev, "other_id");
	bool		block = !strcmp(out->type, "block");

	if (!json_is_integer(user) || (block && !json_is_integer(other)))
	{
		out->type = NULL;
		return EVR_BAD;
	}
	out->user_id = json_integer_value(user);
	out->other_id = block ? json_integer_value(other) : 0;
	return block ? EVR_BLOCK : EVR_PRESENCE;
}

enum event_route
event_check(const struct envelope *e, struct event_info *out)
{
	json_t	   *chat;

	memset(out, 0, sizeof(*out));
	out->ev = json_loadb(e->ev, e->ev_len, JSON_REJECT_DUPLICATES, NULL);
	out->type = json_string_value(json_object_get(out->ev, "type"));
	if (!json_is_object(out->ev) || out->type == NULL || !known_type(out->type) ||
		(e->broadcast != (strcmp(out->type, "resync") == 0)))
	{
		out->type = NULL;
		return EVR_BAD;
	}
	if (e->broadcast)
		return EVR_BROADCAST;
	if (!strcmp(out->type, "presence") || !strcmp(out->type, "block"))
		return by_user(out);
	chat = json_object_get(out->ev, "chat_id");
	if (!json_is_integer(chat))
		return EVR_DIRECT;
	out->chat_id = json_integer_value(chat);
	out->fetchable = fetchable(out->ev, out->type, e);
	return EVR_CHAT;
}
