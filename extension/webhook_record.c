/*
 * webhook_record.c: webhook events recorded by the write functions, in
 * their transaction (docs/notifications.md, "Webhook deliveries"); the one
 * file that writes webhook bodies.
 *
 * An event is one chat.webhook_events row (its body exactly as POSTed) and
 * one chat.webhook_deliveries row per enabled endpoint that takes its type,
 * written by one statement. Each backend keeps the enabled endpoints and
 * the types they take (and their union, a bitmask), read by one query on
 * first use and again after chat.webhooks changed: when no endpoint takes
 * a type nothing is done at all, not even a query, and otherwise the
 * endpoints need no query either. Every change of the columns this depends
 * on fires chat.webhooks_changed(), which sends a relcache invalidation of
 * chat.webhooks at commit; every backend takes it at its next transaction
 * start (or new lock) and forgets what it kept.
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
#include "utils/memutils.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(chat_webhooks_changed);

/* An enabled endpoint and the types it takes. */
typedef struct Endpoint
{
	int64		id;
	uint32		mask;
} Endpoint;

static struct
{
	bool		registered;		/* the relcache callback */
	bool		valid;			/* what follows is chat.webhooks' */
	uint32		mask;			/* the union of the endpoints' */
	int			n;
	Endpoint   *endpoints;		/* in cxt, by id */
	MemoryContext cxt;
	Oid			relid;			/* chat.webhooks when read */
	Oid			deliveries;		/* chat.webhook_deliveries then */
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

/* Copy the endpoints of the last SPI result (endpoint_id, type_mask) into the cache. */
static void
KeepEndpoints(void)
{
	uint64		i;
	bool		isnull;

	if (cache.cxt == NULL)
		cache.cxt = AllocSetContextCreate(TopMemoryContext, "chat webhook endpoints",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(cache.cxt);
	cache.n = (int) SPI_processed;
	cache.endpoints = MemoryContextAlloc(cache.cxt, sizeof(Endpoint) * Max(cache.n, 1));
	cache.mask = 0;
	for (i = 0; i < SPI_processed; i++)
	{
		cache.endpoints[i].id = ChatGetInt8(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, NULL);
		cache.endpoints[i].mask = (uint32) DatumGetInt32(ChatGetDatum(SPI_tuptable->vals[i],
																	  SPI_tuptable->tupdesc, 2, &isnull));
		cache.mask |= cache.endpoints[i].mask;
	}
}

/*
 * The event types some enabled endpoint takes (inside SPI), read again
 * when chat.webhooks changed. Read with the latest snapshot after locking
 * the table, which takes every invalidation already sent: a change
 * committed before is seen, one committed after sends its invalidation
 * after this read. If one arrives during the read, the answer serves this
 * call only.
 */
static uint32
SubscribedTypes(void)
{
	static SPIPlanPtr plan = NULL;
	Oid			ns,
				rel;
	uint64		before;
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
	cache.deliveries = get_relname_relid("webhook_deliveries", ns);
	before = cache.invals;
	ChatPlanOnce(&plan, "SELECT endpoint_id, type_mask FROM chat.webhooks WHERE enabled ORDER BY endpoint_id",
				 0, NULL);
	rc = SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot, true, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "chat: reading the webhook endpoints failed: %s", SPI_result_code_string(rc));
	KeepEndpoints();
	cache.valid = cache.invals == before;
	return cache.mask;
}

/*
 * Lock chat.webhook_deliveries as a writer, before the endpoints are
 * trusted: remove_webhook holds it in SHARE mode until it commits, so an
 * endpoint it removes is either seen removed here (the lock, if new, takes
 * the invalidation) or has its new deliveries deleted by it.
 */
static void
LockDeliveries(void)
{
	if (!OidIsValid(cache.deliveries))
		elog(ERROR, "chat: chat.webhook_deliveries is missing");
	LockRelationOid(cache.deliveries, RowExclusiveLock);
}

/*
 * The oid of chat.webhook_deliveries, which remove_webhook locks in SHARE
 * mode: it waits for every transaction that recorded deliveries and keeps
 * new ones out until it commits. Writers that also lock an endpoint's row
 * take ROW EXCLUSIVE on it first, so that they and remove_webhook lock in
 * the same order.
 */
Oid
ChatWebhookDeliveriesOid(void)
{
	Oid			rel = get_relname_relid("webhook_deliveries", get_namespace_oid("chat", false));

	if (!OidIsValid(rel))
		elog(ERROR, "chat: chat.webhook_deliveries is missing");
	return rel;
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
 * Close the body and record it (inside SPI): the event, and a delivery for
 * each enabled endpoint taking type; nothing if there is none.
 */
static void
Record(StringInfo buf, int type, bool has_chat, int64 chat_id, TimestampTz at)
{
	static SPIPlanPtr plan_one = NULL;
	static SPIPlanPtr plan_many = NULL;
	static const Oid t_one[5] = {TEXTOID, INT8OID, TEXTOID, TIMESTAMPTZOID, INT8OID};
	static const Oid t_many[5] = {TEXTOID, INT8OID, TEXTOID, TIMESTAMPTZOID, INT8ARRAYOID};
	Datum		v[5];
	char		nulls[5] = "     ";
	Datum	   *ids;
	int			n = 0;
	int			i;

	LockDeliveries();
	if ((SubscribedTypes() & type) == 0)
		return;
	ids = palloc(sizeof(Datum) * cache.n);
	for (i = 0; i < cache.n; i++)
		if (cache.endpoints[i].mask & type)
			ids[n++] = Int64GetDatum(cache.endpoints[i].id);

	appendStringInfoChar(buf, '}');
	v[0] = CStringGetTextDatum(ChatWebhookTypeName(type));
	v[1] = Int64GetDatum(chat_id);
	nulls[1] = has_chat ? ' ' : 'n';
	v[2] = PointerGetDatum(cstring_to_text_with_len(buf->data, buf->len));
	v[3] = TimestampTzGetDatum(at);
	if (n == 1)
	{
		ChatPlanOnce(&plan_one,
					 "WITH e AS (INSERT INTO chat.webhook_events (type, chat_id, body, created_at) "
					 "  VALUES ($1, $2, $3, $4) RETURNING event_id) "
					 "INSERT INTO chat.webhook_deliveries (event_id, endpoint_id, next_at) "
					 "SELECT e.event_id, $5, $4 FROM e",
					 5, t_one);
		v[4] = ids[0];
		ChatExec(plan_one, v, nulls, false, 0);
	}
	else
	{
		ChatPlanOnce(&plan_many,
					 "WITH e AS (INSERT INTO chat.webhook_events (type, chat_id, body, created_at) "
					 "  VALUES ($1, $2, $3, $4) RETURNING event_id) "
					 "INSERT INTO chat.webhook_deliveries (event_id, endpoint_id, next_at) "
					 "SELECT e.event_id, x, $4 FROM e CROSS JOIN unnest($5) AS x",
					 5, t_many);
		v[4] = PointerGetDatum(ChatInt8Array(ids, n));
		ChatExec(plan_many, v, nulls, false, 0);
	}
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
