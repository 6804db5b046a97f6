/*
 * events.c: the versioned JSON events of channel chat_events.
 *
 * Every event leaves through ChatPublish, which either stages it for the
 * publisher worker (event_queue.c, publisher.c) or NOTIFYs in the writing
 * transaction. Both deliver only if the transaction commits, and in commit
 * order; with seq assigned under the chat row lock a chat's events arrive in
 * seq order.
 */
#include "chat.h"

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "utils/builtins.h"
#include "utils/json.h"

/*
 * Publish one event payload (at most CHAT_NOTIFY_MAX bytes) of the current
 * transaction: deferred through the shared queue when the library is
 * preloaded and chat.event_mode is deferred, else NOTIFY right here.
 */
void
ChatPublish(const char *payload)
{
	if (chat_event_mode == CHAT_EVENTS_DEFERRED && ChatQueueAvailable())
		ChatQueueStage(payload);
	else
		ChatNotifyDirect(payload);
}

/* NOTIFY chat_events in the current transaction. */
void
ChatNotifyDirect(const char *payload)
{
	Async_Notify(CHAT_EVENT_CHANNEL, payload);
}

/* Start an event object: {"v":1,"type":…,"chat_id":… */
void
ChatEventBegin(StringInfo buf, const char *type, int64 chat_id)
{
	appendStringInfo(buf, "{\"v\":%d,\"type\":\"%s\",\"chat_id\":" INT64_FORMAT,
					 CHAT_EVENT_VERSION, type, chat_id);
}

/* Append ,"recipients":[…] */
void
ChatEventRecipients(StringInfo buf, const int64 *users, int n)
{
	int			i;

	appendStringInfoString(buf, ",\"recipients\":[");
	for (i = 0; i < n; i++)
		appendStringInfo(buf, "%s" INT64_FORMAT, i ? "," : "", users[i]);
	appendStringInfoChar(buf, ']');
}

/*
 * Publish a message, edit or delete event. The message rides inline when the
 * payload fits NOTIFY's limit; otherwise the event carries its ids only
 * ("inline": false) and listeners fetch it.
 */
void
ChatEventMessage(const char *type, const ChatMessage *msg, Jsonb *json,
				 const int64 *recipients, int nrecipients)
{
	StringInfoData buf;
	int			head_len;

	initStringInfo(&buf);
	ChatEventBegin(&buf, type, msg->chat_id);
	appendStringInfo(&buf, ",\"seq\":" INT64_FORMAT ",\"cursor\":" INT64_FORMAT
					 ",\"sender_id\":" INT64_FORMAT,
					 msg->seq, msg->rev, msg->sender_id);
	ChatEventRecipients(&buf, recipients, nrecipients);
	head_len = buf.len;
	appendStringInfoString(&buf, ",\"inline\":true,\"message\":");
	(void) JsonbToCString(&buf, &json->root, VARSIZE(json));
	appendStringInfoChar(&buf, '}');
	if (buf.len > CHAT_NOTIFY_MAX)
	{
		buf.len = head_len;
		buf.data[buf.len] = '\0';
		appendStringInfoString(&buf, ",\"inline\":false}");
	}
	ChatPublish(buf.data);
	pfree(buf.data);
}

/* The members of a chat, except one user when exclude; returns the count. */
int
ChatMemberIds(int64 chat_id, bool exclude, int64 except_user, int64 **users)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		values[1];
	uint64		i;
	int			n = 0;

	ChatPlanOnce(&plan, "SELECT user_id FROM chat.members WHERE chat_id = $1 ORDER BY user_id",
				 1, types);
	values[0] = Int64GetDatum(chat_id);
	ChatExec(plan, values, NULL, false, 0);
	*users = palloc(sizeof(int64) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		int64		u = ChatGetInt8(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, NULL);

		if (!exclude || u != except_user)
			(*users)[n++] = u;
	}
	return n;
}
