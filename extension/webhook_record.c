/*
 * webhook_record.c: webhook events recorded by the write functions, in
 * their transaction (docs/notifications.md, "Webhook deliveries"); the one
 * file that writes webhook bodies.
 *
 * An event is one chat.webhook_events row (its body exactly as POSTed) and
 * one chat.webhook_deliveries row per enabled endpoint that takes its type,
 * written by one statement. When no enabled endpoint takes the type nothing
 * is done at all, not even a query: each backend keeps the union of the
 * enabled endpoints' types (a bitmask), read by one query on first use and
 * again after chat.webhooks changed. Every change of the columns it depends
 * on fires chat.webhooks_changed(), which sends a relcache invalidation of
 * chat.webhooks at commit; every backend takes it at its next transaction
 * start (or lock) and forgets its mask.
 */
#include "chat.h"
#include "notify.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(chat_webhooks_changed);

static struct
{
	bool		registered;		/* the relcache callback */
	bool		valid;			/* mask is chat.webhooks' */
	uint32		mask;
	Oid			relid;			/* chat.webhooks when mask was read */
	uint64		invals;			/* invalidations seen (any relation or all) */
} cache;

/* Relcache callback: chat.webhooks (or every relation) changed. */
static void
WebhooksInvalidated(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == cache.relid)
	{
		cache.valid = false;
		cache.invals++;
	}
}

/*
 * The event types some enabled endpoint takes (inside SPI). Read with the
 * latest snapshot after locking the table, which takes every invalidation
 * already sent: a change committed before is seen, one committed after
 * sends its invalidation after this read. If one arrives during the read
 * the answer is used once, not kept.
 */
static uint32
SubscribedTypes(void)
{
	static SPIPlanPtr plan = NULL;
	Oid			ns,
				rel;
	uint64		before;
	uint32		mask;
	bool		isnull;
	int			rc;

	if (cache.valid)
		return cache.mask;
	if (!cache.registered)
	{
		CacheRegisterRelcacheCallback(WebhooksInvalidated, (Datum) 0);
		cache.registered = true;
	}
	ns = get_namespace_oid("chat", true);
	rel = OidIsValid(ns) ? get_relname_relid("webhooks", ns) : InvalidOid;
	if (!OidIsValid(rel))
		return 0;				/* an extension without webhooks: nothing to record */
	LockRelationOid(rel, AccessShareLock);
	cache.relid = rel;
	before = cache.invals;
	ChatPlanOnce(&plan, "SELECT coalesce(bit_or(type_mask), 0) FROM chat.webhooks WHERE enabled", 0, NULL);
	rc = SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "chat: reading the webhook types failed: %s", SPI_result_code_string(rc));
	mask = (uint32) DatumGetInt32(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (cache.invals == before)
	{
		cache.mask = mask;
		cache.valid = true;
	}
	return mask;
}

/*
 * chat.webhooks_changed(): the statement trigger of chat.webhooks, on the
 * columns the mask depends on; every backend reads the mask again after
 * this transaction commits (and this one at once).
 */
Datum
chat_webhooks_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "chat: chat.webhooks_changed() is a trigger");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(td->tg_relation));
	return PointerGetDatum(NULL);
}

/* Start a body: {"type":"…","timestamp":"<now, UTC>" */
static void
Begin(StringInfo buf, int type, TimestampTz *at)
{
	static const int utc = 0;
	char		ts[MAXDATELEN + 1];

	*at = GetCurrentTimestamp();
	JsonEncodeDateTime(ts, TimestampTzGetDatum(*at), TIMESTAMPTZOID, &utc);
	initStringInfo(buf);
	appendStringInfo(buf, "{\"type\":\"%s\",\"timestamp\":\"%s\"", ChatWebhookTypeName(type), ts);
}

/*
 * Close the body and record it (inside SPI): the event and a delivery for
 * each enabled endpoint taking type, none of them if there is none.
 */
static void
Record(StringInfo buf, int type, bool has_chat, int64 chat_id, TimestampTz at)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[5] = {TEXTOID, INT8OID, TEXTOID, TIMESTAMPTZOID, INT4OID};
	Datum		v[5];
	char		nulls[5] = "     ";

	appendStringInfoChar(buf, '}');
	ChatPlanOnce(&plan,
				 "WITH e AS (INSERT INTO chat.webhook_events (type, chat_id, body, created_at) "
				 "  SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM chat.webhooks w "
				 "    WHERE w.enabled AND (w.type_mask & $5) <> 0) "
				 "  RETURNING event_id) "
				 "INSERT INTO chat.webhook_deliveries (event_id, endpoint_id, next_at) "
				 "SELECT e.event_id, w.endpoint_id, $4 FROM e CROSS JOIN chat.webhooks w "
				 "WHERE w.enabled AND (w.type_mask & $5) <> 0",
				 5, types);
	v[0] = CStringGetTextDatum(ChatWebhookTypeName(type));
	v[1] = Int64GetDatum(chat_id);
	nulls[1] = has_chat ? ' ' : 'n';
	v[2] = PointerGetDatum(cstring_to_text_with_len(buf->data, buf->len));
	v[3] = TimestampTzGetDatum(at);
	v[4] = Int32GetDatum(type);
	ChatExec(plan, v, nulls, false, 0);
	pfree(buf->data);
}

/* A message, edit or delete: the message object as the API returned it. */
void
ChatWebhookMessage(const char *type_name, const ChatMessage *msg, Jsonb *json)
{
	int			type = ChatWebhookTypeBit(type_name);
	StringInfoData buf;
	TimestampTz at;

	Assert(type == CHAT_WH_MESSAGE || type == CHAT_WH_EDIT || type == CHAT_WH_DELETE);
	if ((SubscribedTypes() & type) == 0)
		return;
	Begin(&buf, type, &at);
	appendStringInfo(&buf, ",\"chat_id\":" INT64_FORMAT ",\"seq\":" INT64_FORMAT
					 ",\"cursor\":" INT64_FORMAT ",\"sender_id\":" INT64_FORMAT ",\"message\":",
					 msg->chat_id, msg->seq, msg->rev, msg->sender_id);
	(void) JsonbToCString(&buf, &json->root, VARSIZE(json));
	Record(&buf, type, true, msg->chat_id, at);
}

/* user_id has read chat_id up to seq. */
void
ChatWebhookRead(int64 chat_id, int64 user_id, int64 seq)
{
	StringInfoData buf;
	TimestampTz at;

	if ((SubscribedTypes() & CHAT_WH_READ) == 0)
		return;
	Begin(&buf, CHAT_WH_READ, &at);
	appendStringInfo(&buf, ",\"chat_id\":" INT64_FORMAT ",\"user_id\":" INT64_FORMAT
					 ",\"seq\":" INT64_FORMAT, chat_id, user_id, seq);
	Record(&buf, CHAT_WH_READ, true, chat_id, at);
}

/* open_chat created chat_id; user_ids ascending. */
void
ChatWebhookChatOpened(int64 chat_id, const char *kind, bool has_context, int64 context_id,
					  int64 user_a, int64 user_b)
{
	StringInfoData buf;
	TimestampTz at;

	if ((SubscribedTypes() & CHAT_WH_CHAT_OPENED) == 0)
		return;
	Begin(&buf, CHAT_WH_CHAT_OPENED, &at);
	appendStringInfo(&buf, ",\"chat_id\":" INT64_FORMAT ",\"kind\":", chat_id);
	escape_json(&buf, kind);
	if (has_context)
		appendStringInfo(&buf, ",\"context_id\":" INT64_FORMAT, context_id);
	else
		appendStringInfoString(&buf, ",\"context_id\":null");
	appendStringInfo(&buf, ",\"user_ids\":[" INT64_FORMAT "," INT64_FORMAT "]",
					 Min(user_a, user_b), Max(user_a, user_b));
	Record(&buf, CHAT_WH_CHAT_OPENED, true, chat_id, at);
}

/* user_id blocked other_id (a new block only). */
void
ChatWebhookBlocked(int64 user_id, int64 other_id)
{
	StringInfoData buf;
	TimestampTz at;

	if ((SubscribedTypes() & CHAT_WH_BLOCKED) == 0)
		return;
	Begin(&buf, CHAT_WH_BLOCKED, &at);
	appendStringInfo(&buf, ",\"user_id\":" INT64_FORMAT ",\"other_id\":" INT64_FORMAT,
					 user_id, other_id);
	Record(&buf, CHAT_WH_BLOCKED, false, 0, at);
}

/* endpoint_id was disabled (it no longer takes events itself). */
void
ChatWebhookDisabled(int64 endpoint_id, const char *reason)
{
	StringInfoData buf;
	TimestampTz at;

	if ((SubscribedTypes() & CHAT_WH_DISABLED) == 0)
		return;
	Begin(&buf, CHAT_WH_DISABLED, &at);
	appendStringInfo(&buf, ",\"endpoint_id\":" INT64_FORMAT ",\"reason\":", endpoint_id);
	escape_json(&buf, reason);
	Record(&buf, CHAT_WH_DISABLED, false, 0, at);
}
