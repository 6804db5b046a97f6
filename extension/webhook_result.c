/*
 * webhook_result.c: webhook_result, what chat-notify reports after each
 * attempt of a claimed delivery.
 *
 * 2xx deletes the delivery and ends the endpoint's failing; 410 disables
 * the endpoint; anything else is a failed attempt, retried after the next
 * step of the schedule (±10 %), dropped after the last, and an endpoint
 * failing without a success for 72 h is disabled. An event whose last
 * delivery is done is deleted. Locks in order: the endpoint's row, then
 * the event's, then the delivery's (remove_webhook and the claim take the
 * endpoint's first too).
 */
#include "chat.h"
#include "notify.h"

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "mb/pg_wchar.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(chat_webhook_result);

#define ERROR_MAX_BYTES	200
#define FAILING_LIMIT	"72 hours"

/* Seconds before the next attempt after failed attempt n (1-based); after the last: dropped. */
static const int retry_after[] = {5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400};
#define ATTEMPTS_MAX	((int) lengthof(retry_after) + 1)

/* One reported attempt. */
typedef struct Outcome
{
	Datum		endpoint_id;
	Datum		event_id;
	int32		status;
	char	   *error;			/* clipped to ERROR_MAX_BYTES; NULL if none */
} Outcome;

/* Run one kept statement with the result's arguments: $1 endpoint, $2 event, then extra. */
static uint64
Run(SPIPlanPtr *slot, const char *sql, const Outcome *r, int nextra, const Oid *extra_types,
	Datum *extra, const char *extra_nulls)
{
	Oid			types[5] = {INT8OID, INT8OID};
	Datum		v[5];
	char		nulls[6] = "     ";
	int			i;

	Assert(nextra <= 3);
	v[0] = r->endpoint_id;
	v[1] = r->event_id;
	for (i = 0; i < nextra; i++)
	{
		types[2 + i] = extra_types[i];
		v[2 + i] = extra[i];
		nulls[2 + i] = extra_nulls ? extra_nulls[i] : ' ';
	}
	ChatPlanOnce(slot, sql, 2 + nextra, types);
	ChatExec(*slot, v, nulls, false, 0);
	return SPI_processed;
}

/* Delete the delivery, and its event if no other endpoint waits for it; false if it was gone. */
static bool
Finish(const Outcome *r)
{
	static SPIPlanPtr plan_lock = NULL;
	static SPIPlanPtr plan_delete = NULL;
	static SPIPlanPtr plan_event = NULL;
	bool		found;

	/* two endpoints' last deliveries of an event: the second sees the first gone */
	Run(&plan_lock, "SELECT 1 FROM chat.webhook_events WHERE event_id = $2 FOR UPDATE",
		r, 0, NULL, NULL, NULL);
	found = Run(&plan_delete,
				"DELETE FROM chat.webhook_deliveries WHERE event_id = $2 AND endpoint_id = $1",
				r, 0, NULL, NULL, NULL) == 1;
	Run(&plan_event,
		"DELETE FROM chat.webhook_events e WHERE e.event_id = $2 "
		"AND NOT EXISTS (SELECT 1 FROM chat.webhook_deliveries d WHERE d.event_id = $2)",
		r, 0, NULL, NULL, NULL);
	return found;
}

/* Keep the delivery for later (due at delay_s from now), with this attempt's outcome. */
static void
Postpone(const Outcome *r, double delay_s)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[3] = {INT4OID, TEXTOID, FLOAT8OID};
	Datum		v[3];
	char		nulls[3] = "   ";

	v[0] = Int32GetDatum(r->status);
	v[1] = r->error ? CStringGetTextDatum(r->error) : (Datum) 0;
	nulls[1] = r->error ? ' ' : 'n';
	v[2] = Float8GetDatum(delay_s);
	Run(&plan,
		"UPDATE chat.webhook_deliveries SET leased_by = NULL, last_status = $3, last_error = $4, "
		"  next_at = now() + make_interval(secs => $5) "
		"WHERE event_id = $2 AND endpoint_id = $1",
		r, 3, types, v, nulls);
}

/*
 * Disable the endpoint (if enabled): a warning without its URL or secrets,
 * and a webhook_disabled event for the other endpoints that take it.
 */
static void
Disable(const Outcome *r, const char *reason)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {TEXTOID};
	Datum		v[1];

	v[0] = CStringGetTextDatum(reason);
	if (Run(&plan,
			"UPDATE chat.webhooks SET enabled = false, disabled_reason = $3, disabled_at = now() "
			"WHERE endpoint_id = $1 AND enabled",
			r, 1, types, v, NULL) != 1)
		return;
	ereport(WARNING,
			(errmsg("chat: webhook endpoint " INT64_FORMAT " disabled: %s",
					DatumGetInt64(r->endpoint_id), reason),
			 errdetail("Its deliveries wait; SELECT chat.enable_webhook(" INT64_FORMAT ") sends them again.",
					   DatumGetInt64(r->endpoint_id))));
	ChatWebhookDisabled(DatumGetInt64(r->endpoint_id), reason);
}

/*
 * End the endpoint's lease once no delivery of it is leased any more. A
 * delivery whose lease is over (its next_at, the lease's end, has passed:
 * its daemon was killed mid-send) holds nothing: counting it kept every
 * later batch of the endpoint waiting for the endpoint's lease to run out,
 * until the stale ones were claimed again, last (oldest due first).
 */
static void
ReleaseLease(const Outcome *r)
{
	static SPIPlanPtr plan = NULL;

	Run(&plan,
		"UPDATE chat.webhooks SET leased_by = NULL, leased_until = NULL "
		"WHERE endpoint_id = $1 AND leased_until IS NOT NULL "
		"AND NOT EXISTS (SELECT 1 FROM chat.webhook_deliveries d "
		"  WHERE d.endpoint_id = $1 AND d.leased_by IS NOT NULL AND d.next_at > now())",
		r, 0, NULL, NULL, NULL);
}

/* Record a failed attempt (status not 2xx nor 410): disabled, dropped or retry. */
static const char *
Failed(const Outcome *r, bool enabled, bool failing_72h, int attempts)
{
	static SPIPlanPtr plan_failing = NULL;
	static SPIPlanPtr plan_dropped = NULL;

	Run(&plan_failing,
		"UPDATE chat.webhooks SET failing_since = now() "
		"WHERE endpoint_id = $1 AND failing_since IS NULL",
		r, 0, NULL, NULL, NULL);
	if (enabled && failing_72h)
	{
		Postpone(r, 0);
		Disable(r, r->status == 0 ? "no success for 72 h (last attempt: no answer)"
				: psprintf("no success for 72 h (last attempt: HTTP %d)", r->status));
		return "disabled";
	}
	if (attempts >= ATTEMPTS_MAX)
	{
		Finish(r);
		Run(&plan_dropped, "UPDATE chat.webhooks SET dropped = dropped + 1 "
			"WHERE endpoint_id = $1", r, 0, NULL, NULL, NULL);
		return "dropped";
	}
	Postpone(r, retry_after[Max(attempts, 1) - 1] * (0.9 + 0.2 * pg_prng_double(&pg_global_prng_state)));
	return "retry";
}

/* The delivery's attempts so far (it is locked); false if there is no such delivery. */
static bool
Attempts(const Outcome *r, int *attempts)
{
	static SPIPlanPtr plan = NULL;
	bool		isnull;

	if (Run(&plan, "SELECT attempts FROM chat.webhook_deliveries WHERE event_id = $2 AND endpoint_id = $1 FOR UPDATE",
			r, 0, NULL, NULL, NULL) != 1)
		return false;
	*attempts = DatumGetInt32(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return true;
}

/* The result's arguments, checked. */
static void
ReadArgs(FunctionCallInfo fcinfo, Outcome *r)
{
	ChatRequireArg(fcinfo, 0, "endpoint_id");
	ChatRequireArg(fcinfo, 1, "event_id");
	ChatRequireArg(fcinfo, 2, "status");
	r->endpoint_id = PG_GETARG_DATUM(0);
	r->event_id = PG_GETARG_DATUM(1);
	r->status = PG_GETARG_INT32(2);
	if (r->status != 0 && (r->status < 100 || r->status > 599))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("status must be an HTTP status (100 to 599) or 0 for no answer, not %d", r->status)));
	r->error = NULL;
	if (!PG_ARGISNULL(3))
	{
		r->error = text_to_cstring(PG_GETARG_TEXT_PP(3));
		r->error[pg_mbcliplen(r->error, strlen(r->error), ERROR_MAX_BYTES)] = '\0';
	}
}

/*
 * webhook_result(endpoint_id, event_id, status, error) → delivered, retry,
 * dropped or disabled; gone when there is no such delivery (its endpoint
 * was removed, or another daemon delivered it after this one's lease ended).
 */
Datum
chat_webhook_result(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan_endpoint = NULL;
	static SPIPlanPtr plan_success = NULL;
	Outcome		r;
	bool		isnull;
	bool		enabled,
				failing_72h;
	int			attempts;
	const char *outcome;

	ReadArgs(fcinfo, &r);
	LockRelationOid(ChatWebhookDeliveriesOid(), RowExclusiveLock);
	SPI_connect();
	if (Run(&plan_endpoint,
			"SELECT enabled, coalesce(failing_since <= now() - interval '" FAILING_LIMIT "', false) "
			"FROM chat.webhooks WHERE endpoint_id = $1 FOR NO KEY UPDATE",
			&r, 0, NULL, NULL, NULL) != 1)
	{
		SPI_finish();
		PG_RETURN_TEXT_P(cstring_to_text("gone"));
	}
	enabled = DatumGetBool(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	failing_72h = DatumGetBool(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

	if (r.status >= 200 && r.status <= 299)
	{
		outcome = Finish(&r) ? "delivered" : "gone";
		Run(&plan_success, "UPDATE chat.webhooks SET failing_since = NULL "
			"WHERE endpoint_id = $1 AND failing_since IS NOT NULL",
			&r, 0, NULL, NULL, NULL);
	}
	else if (r.status == 410)
	{
		if (Attempts(&r, &attempts))
			Postpone(&r, 0);
		Disable(&r, "410 Gone");
		outcome = "disabled";
	}
	else if (!Attempts(&r, &attempts))
		outcome = "gone";
	else
		outcome = Failed(&r, enabled, failing_72h, attempts);
	ReleaseLease(&r);
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(outcome));
}
