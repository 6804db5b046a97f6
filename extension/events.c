/*
 * events.c: every event of channel chat_events is built here (events.h).
 *
 * Every event leaves through Publish, which either stages it for the
 * publisher worker (event_queue.c, publisher.c) or NOTIFYs in the writing
 * transaction. Both deliver only if the transaction commits, and in commit
 * order; with seq assigned under the chat row lock a chat's events arrive in
 * seq order.
 *
 * The bytes are fixed, not just the JSON: an envelope is exactly
 * {"to":[...],"ev":EVENT} with "ev" last, so a relay can cut EVENT out of a
 * payload without parsing it, and a message event that had to leave its
 * message out ends with exactly ,"inline":false} so that a relay can rebuild
 * the inline form byte for byte from the message it fetched.
 */
#include "chat.h"
#include "events.h"
#include "queue.h"

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "utils/builtins.h"
#include "utils/json.h"

/*
 * Publish one envelope (at most CHAT_PLAIN_MAX bytes) of the current
 * transaction: deferred through the shared queue when the library is
 * preloaded and chat.event_mode is deferred, else NOTIFY right here.
 */
static void
Publish(const char *payload)
{
	if (chat_event_mode == CHAT_EVENTS_DEFERRED && ChatQueueAvailable())
		ChatQueueStage(payload);
	else
		ChatNotifyDirect(payload);
}

/* NOTIFY chat_events in the current transaction, sealed. */
void
ChatNotifyDirect(const char *payload)
{
	char	   *sealed = ChatSeal(payload);

	Async_Notify(CHAT_EVENT_CHANNEL, sealed);
	pfree(sealed);
}

/* Start an envelope and its event: {"to":[u1,...],"ev":{"v":1,"type":"…" */
static void
Begin(StringInfo buf, const int64 *to, int n, const char *type)
{
	int			i;

	/* ascending: every caller's query orders them (ORDER BY user_id) */
	initStringInfo(buf);
	appendStringInfoString(buf, "{\"to\":[");
	for (i = 0; i < n; i++)
	{
		Assert(i == 0 || to[i - 1] < to[i]);
		appendStringInfo(buf, "%s" INT64_FORMAT, i ? "," : "", to[i]);
	}
	appendStringInfo(buf, "],\"ev\":{\"v\":%d,\"type\":\"%s\"", CHAT_EVENT_VERSION, type);
}

/* Close the event and its envelope, and publish it. */
static void
Finish(StringInfo buf)
{
	appendStringInfoString(buf, "}}");
	Publish(buf->data);
	pfree(buf->data);
}

/*
 * A message, edit or delete event. The message rides inline when the
 * envelope fits NOTIFY's limit; otherwise the event carries its ids only
 * ("inline": false) and listeners fetch it.
 */
void
ChatEventMessage(const char *type, const ChatMessage *msg, Jsonb *json,
				 const int64 *to, int nto)
{
	StringInfoData buf;
	int			head_len;

	Begin(&buf, to, nto, type);
	appendStringInfo(&buf, ",\"chat_id\":" INT64_FORMAT ",\"seq\":" INT64_FORMAT
					 ",\"cursor\":" INT64_FORMAT ",\"sender_id\":" INT64_FORMAT,
					 msg->chat_id, msg->seq, msg->rev, msg->sender_id);
	head_len = buf.len;
	appendStringInfoString(&buf, ",\"inline\":true,\"message\":");
	(void) JsonbToCString(&buf, &json->root, VARSIZE(json));
	/* Finish adds "}" for the event and "}" for the envelope */
	if (buf.len + 2 > CHAT_PLAIN_MAX)
	{
		buf.len = head_len;
		buf.data[buf.len] = '\0';
		appendStringInfoString(&buf, ",\"inline\":false");
	}
	Finish(&buf);
}

/* A read receipt: user_id has read chat_id up to seq. */
void
ChatEventRead(int64 chat_id, int64 user_id, int64 seq, const int64 *to, int nto)
{
	StringInfoData buf;

	Begin(&buf, to, nto, "read");
	appendStringInfo(&buf, ",\"chat_id\":" INT64_FORMAT ",\"user_id\":" INT64_FORMAT
					 ",\"seq\":" INT64_FORMAT, chat_id, user_id, seq);
	Finish(&buf);
}

/* user_id is typing in chat_id. */
void
ChatEventTyping(int64 chat_id, int64 user_id, const int64 *to, int nto)
{
	StringInfoData buf;

	Begin(&buf, to, nto, "typing");
	appendStringInfo(&buf, ",\"chat_id\":" INT64_FORMAT ",\"user_id\":" INT64_FORMAT,
					 chat_id, user_id);
	Finish(&buf);
}

/*
 * user_id came online or went offline. No recipients: a relay sends it to
 * the connections that subscribed to user_id with a presence request, which
 * checked that they may see it (CHAT_SEES_PRESENCE_SQL). last_seen is the
 * coarse one (ChatCoarseTime); version orders changes of one user.
 */
void
ChatEventPresence(int64 user_id, bool online, TimestampTz last_seen, int64 version)
{
	char	   *ts = JsonEncodeDateTime(NULL, TimestampTzGetDatum(ChatCoarseTime(last_seen)),
										TIMESTAMPTZOID, NULL);
	StringInfoData buf;

	Begin(&buf, NULL, 0, "presence");
	appendStringInfo(&buf, ",\"user_id\":" INT64_FORMAT ",\"online\":%s,\"last_seen\":\"%s\""
					 ",\"version\":" INT64_FORMAT,
					 user_id, online ? "true" : "false", ts, version);
	Finish(&buf);
	pfree(ts);
}

/*
 * blocker blocked blocked: relays drop the presence subscriptions between
 * the two, both ways round. For relays only: never forwarded to a client
 * (the blocked user is not told).
 */
void
ChatEventBlock(int64 blocker, int64 blocked)
{
	int64		to[2] = {Min(blocker, blocked), Max(blocker, blocked)};
	StringInfoData buf;

	Begin(&buf, to, 2, "block");
	appendStringInfo(&buf, ",\"user_id\":" INT64_FORMAT ",\"other_id\":" INT64_FORMAT,
					 blocker, blocked);
	Finish(&buf);
}

/* The resync broadcast: {"to":null,"ev":{"v":1,"type":"resync","reason":…}} */
char *
ChatEventResync(const char *reason)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"to\":null,\"ev\":{\"v\":%d,\"type\":\"resync\",\"reason\":",
					 CHAT_EVENT_VERSION);
	escape_json(&buf, reason);
	appendStringInfoString(&buf, "}}");
	return buf.data;
}

/*
 * Add the envelope env to a payload that holds n envelopes already: the
 * first goes alone, the second wraps both in [...]. False (batch unchanged)
 * when the payload would exceed CHAT_PLAIN_MAX; a first envelope always fits.
 */
bool
ChatEventBatchAdd(StringInfo batch, int n, const char *env, uint32 len)
{
	if (n == 0)
	{
		appendBinaryStringInfo(batch, env, len);
		return true;
	}
	/* n == 1 adds "[", "," and "]"; later ones replace "]" by ",", add "]" */
	if ((Size) batch->len + len + (n == 1 ? 3 : 1) > CHAT_PLAIN_MAX)
		return false;
	if (n == 1)
	{
		enlargeStringInfo(batch, 1);
		memmove(batch->data + 1, batch->data, batch->len + 1);
		batch->data[0] = '[';
		batch->len++;
	}
	else
		batch->len--;
	appendStringInfoChar(batch, ',');
	appendBinaryStringInfo(batch, env, len);
	appendStringInfoChar(batch, ']');
	return true;
}

/* The members of a chat, ascending; returns the count. */
int
ChatMemberIds(int64 chat_id, int64 **users)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		values[1];
	uint64		i;

	ChatPlanOnce(&plan, "SELECT user_id FROM chat.members WHERE chat_id = $1 ORDER BY user_id",
				 1, types);
	values[0] = Int64GetDatum(chat_id);
	ChatExec(plan, values, NULL, false, 0);
	*users = palloc(sizeof(int64) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
		(*users)[i] = ChatGetInt8(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, NULL);
	return (int) SPI_processed;
}
