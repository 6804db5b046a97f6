/*
 * webhooks.c: the operator's webhook functions: add_webhook,
 * remove_webhook, rotate_webhook_secret, expire_webhook_secrets,
 * enable_webhook, webhooks.
 *
 * A secret is never repeated in an error, a notice or a result; changes of
 * chat.webhooks reach every backend's cache of subscribed types through its
 * trigger (webhook_record.c).
 */
#include "chat.h"
#include "maintain.h"
#include "notify.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "storage/lmgr.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(chat_add_webhook);
PG_FUNCTION_INFO_V1(chat_remove_webhook);
PG_FUNCTION_INFO_V1(chat_rotate_webhook_secret);
PG_FUNCTION_INFO_V1(chat_expire_webhook_secrets);
PG_FUNCTION_INFO_V1(chat_enable_webhook);
PG_FUNCTION_INFO_V1(chat_webhooks);

#define SECRET_PREFIX		"whsec_"
#define SECRET_MIN_BYTES	24
#define SECRET_MAX_BYTES	64

/* A secret is "whsec_" and the base64 of 24 to 64 bytes (the Standard Webhooks form). */
static void
CheckSecret(const char *secret)
{
	unsigned char key[SECRET_MAX_BYTES];
	int			n = -1;

	if (strncmp(secret, SECRET_PREFIX, strlen(SECRET_PREFIX)) == 0)
		n = ChatBase64Decode(secret + strlen(SECRET_PREFIX), false, key, sizeof(key));
	explicit_bzero(key, sizeof(key));
	if (n < SECRET_MIN_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("secret must be \"whsec_\" and the base64 of %d to %d random bytes",
						SECRET_MIN_BYTES, SECRET_MAX_BYTES),
				 errhint("For example: SELECT 'whsec_' || encode(gen_random_bytes(32), 'base64') (pgcrypto).")));
}

/*
 * event_types: NULL for every type, else a non-empty text[] of known type
 * names without NULLs. Sets the bits; *names becomes the canonical list
 * (known order, no repeats), or NULL for every type.
 */
static uint32
EventTypes(FunctionCallInfo fcinfo, int argno, Datum *names)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i,
				k = 0;
	uint32		mask = 0;
	Datum		canon[CHAT_WH_NTYPES];

	*names = (Datum) 0;
	if (PG_ARGISNULL(argno))
		return CHAT_WH_ALL;
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event_types must name at least one type, or be NULL for every type")));
	for (i = 0; i < n; i++)
	{
		char	   *name;
		int			bit;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("event_types must not contain NULL")));
		name = TextDatumGetCString(elems[i]);
		bit = ChatWebhookTypeBit(name);
		if (bit == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown event type \"%s\"", name),
					 errhint("The types are %s.", ChatWebhookTypeList())));
		mask |= bit;
	}
	for (i = 0; i < CHAT_WH_NTYPES; i++)
		if (mask & (1 << i))
			canon[k++] = CStringGetTextDatum(ChatWebhookTypeName(1 << i));
	*names = PointerGetDatum(construct_array(canon, k, TEXTOID, -1, false, TYPALIGN_INT));
	return mask;
}

/* The endpoint_id argument, refused when NULL. */
static Datum
EndpointArg(FunctionCallInfo fcinfo)
{
	ChatRequireArg(fcinfo, 0, "endpoint_id");
	return PG_GETARG_DATUM(0);
}

/* Refuse an endpoint id that does not exist. */
static pg_attribute_noreturn() void
NoEndpoint(Datum endpoint_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("webhook endpoint " INT64_FORMAT " does not exist", DatumGetInt64(endpoint_id))));
}

/* Run a kept one-row statement on an endpoint (inside SPI); refuse a missing endpoint. */
static void
OnEndpoint(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *types, Datum *v)
{
	ChatPlanOnce(slot, sql, nargs, types);
	ChatExec(*slot, v, NULL, false, 0);
	if (SPI_processed != 1)
		NoEndpoint(v[0]);
}

/* add_webhook(url, secret, event_types) → endpoint_id */
Datum
chat_add_webhook(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {TEXTOID, TEXTOID, TEXTARRAYOID, INT4OID};
	Datum		v[4];
	char		nulls[4] = "    ";
	char	   *secret;
	uint32		mask;
	int64		endpoint_id;

	ChatRequireArg(fcinfo, 0, "url");
	ChatRequireArg(fcinfo, 1, "secret");
	ChatCheckUrl("url", text_to_cstring(PG_GETARG_TEXT_PP(0)), false);
	secret = text_to_cstring(PG_GETARG_TEXT_PP(1));
	CheckSecret(secret);
	mask = EventTypes(fcinfo, 2, &v[2]);
	nulls[2] = v[2] == (Datum) 0 ? 'n' : ' ';

	SPI_connect();
	ChatPlanOnce(&plan,
				 "INSERT INTO chat.webhooks (url, secrets, event_types, type_mask) "
				 "VALUES ($1, ARRAY[$2], $3, $4) RETURNING endpoint_id",
				 4, types);
	v[0] = PG_GETARG_DATUM(0);
	v[1] = PG_GETARG_DATUM(1);
	v[3] = Int32GetDatum((int32) mask);
	ChatExec(plan, v, nulls, false, 0);
	endpoint_id = ChatGetInt8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, NULL);
	SPI_finish();
	PG_RETURN_INT64(endpoint_id);
}

/*
 * Hold chat.webhook_deliveries in SHARE mode until commit, so that no
 * transaction records for the endpoint after its deliveries are deleted
 * (webhook_record.c). It waits for the transactions that are recording;
 * like maintenance (locks.c) it never sits in the lock queue for more than
 * chat.maintenance_lock_timeout at a time, where it would hold up every
 * send that records an event: it polls, queues briefly, and tries again.
 */
static void
LockOutRecorders(void)
{
	Oid			rel = ChatWebhookDeliveriesOid();

	while (!ChatLockWithin(rel, ShareLock, chat_maintenance_lock_timeout))
		ChatSleepMs(50);
}

/* remove_webhook(endpoint_id): the endpoint, its deliveries, and events no other endpoint waits for */
Datum
chat_remove_webhook(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan_endpoint = NULL;
	static SPIPlanPtr plan_rest = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		v[1];

	v[0] = EndpointArg(fcinfo);
	LockOutRecorders();
	SPI_connect();
	OnEndpoint(&plan_endpoint, "DELETE FROM chat.webhooks WHERE endpoint_id = $1", 1, types, v);
	/* the statement's snapshot still shows the deliveries it deletes: hence <> $1 */
	ChatPlanOnce(&plan_rest,
				 "WITH d AS (DELETE FROM chat.webhook_deliveries WHERE endpoint_id = $1 RETURNING event_id) "
				 "DELETE FROM chat.webhook_events e WHERE e.event_id IN (SELECT event_id FROM d) "
				 "AND NOT EXISTS (SELECT 1 FROM chat.webhook_deliveries x "
				 "  WHERE x.event_id = e.event_id AND x.endpoint_id <> $1)",
				 1, types);
	ChatExec(plan_rest, v, NULL, false, 0);
	SPI_finish();
	PG_RETURN_VOID();
}

/* rotate_webhook_secret(endpoint_id, secret): the new one first, the previous one kept */
Datum
chat_rotate_webhook_secret(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, TEXTOID};
	Datum		v[2];
	bool		isnull;

	v[0] = EndpointArg(fcinfo);
	ChatRequireArg(fcinfo, 1, "secret");
	CheckSecret(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	v[1] = PG_GETARG_DATUM(1);
	SPI_connect();
	OnEndpoint(&plan,
			   "WITH old AS (SELECT secrets[1] AS cur FROM chat.webhooks WHERE endpoint_id = $1 FOR UPDATE) "
			   "UPDATE chat.webhooks w SET secrets = CASE WHEN old.cur = $2 THEN w.secrets ELSE ARRAY[$2, old.cur] END "
			   "FROM old WHERE w.endpoint_id = $1 RETURNING old.cur = $2",
			   2, types, v);
	if (DatumGetBool(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the new secret is the endpoint's current one")));
	SPI_finish();
	PG_RETURN_VOID();
}

/* expire_webhook_secrets(endpoint_id): sign with the newest secret only */
Datum
chat_expire_webhook_secrets(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		v[1];

	v[0] = EndpointArg(fcinfo);
	SPI_connect();
	OnEndpoint(&plan, "UPDATE chat.webhooks SET secrets = secrets[1:1] WHERE endpoint_id = $1",
			   1, types, v);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * enable_webhook(endpoint_id): after a 410 or 72 h of failures; its waiting
 * deliveries are due at once and start their retries afresh. An enabled
 * endpoint is left as it is.
 */
Datum
chat_enable_webhook(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan_state = NULL;
	static SPIPlanPtr plan_enable = NULL;
	static SPIPlanPtr plan_due = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		v[1];
	bool		isnull;

	v[0] = EndpointArg(fcinfo);
	LockRelationOid(ChatWebhookDeliveriesOid(), RowExclusiveLock);
	SPI_connect();
	OnEndpoint(&plan_state, "SELECT enabled FROM chat.webhooks WHERE endpoint_id = $1 FOR UPDATE",
			   1, types, v);
	if (!DatumGetBool(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
	{
		OnEndpoint(&plan_enable,
				   "UPDATE chat.webhooks SET enabled = true, disabled_reason = NULL, disabled_at = NULL, "
				   "  failing_since = NULL, leased_by = NULL, leased_until = NULL WHERE endpoint_id = $1",
				   1, types, v);
		ChatPlanOnce(&plan_due,
					 "UPDATE chat.webhook_deliveries SET next_at = now(), attempts = 0, leased_by = NULL "
					 "WHERE endpoint_id = $1",
					 1, types);
		ChatExec(plan_due, v, NULL, false, 0);
	}
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * webhooks() → one object per endpoint, never a secret: endpoint_id, url,
 * event_types (null: all), enabled, disabled_reason, failing_since,
 * pending (deliveries waiting), and the extras secrets (how many sign),
 * dropped, created_at.
 */
Datum
chat_webhooks(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	Tuplestorestate *ts = ChatSrfBegin(fcinfo);
	bool		isnull;
	uint64		i;

	SPI_connect();
	ChatPlanOnce(&plan,
				 "SELECT jsonb_build_object('endpoint_id', w.endpoint_id, 'url', w.url, "
				 "  'event_types', to_jsonb(w.event_types), 'enabled', w.enabled, "
				 "  'disabled_reason', w.disabled_reason, 'failing_since', w.failing_since, "
				 "  'pending', (SELECT count(*) FROM chat.webhook_deliveries d WHERE d.endpoint_id = w.endpoint_id), "
				 "  'secrets', cardinality(w.secrets), 'dropped', w.dropped, 'created_at', w.created_at) "
				 "FROM chat.webhooks w ORDER BY w.endpoint_id",
				 0, NULL);
	ChatExec(plan, NULL, NULL, true, 0);
	for (i = 0; i < SPI_processed; i++)
		ChatSrfPut(fcinfo, ts, DatumGetJsonbP(ChatGetDatum(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)));
	SPI_finish();
	return (Datum) 0;
}
