/*
 * webhook_claim.c: webhook_claim and webhook_backlog, for chat-notify.
 *
 * A claim leases due deliveries to a worker: their next_at moves to the end
 * of the lease, so no other daemon takes them before (and a daemon killed
 * mid-send leaves them to the next claim after it). The endpoint is leased
 * too: while one daemon has an endpoint's deliveries in hand, no other
 * claims any of that endpoint's, so a chat's events go to an endpoint in
 * order while it answers. Fairness: every endpoint with due deliveries
 * (those waiting longest first) gets its first before any gets a second,
 * and at most per_endpoint each, so a dead endpoint's backlog never crowds
 * out the others.
 */
#include "chat.h"
#include "notify.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(chat_webhook_claim);
PG_FUNCTION_INFO_V1(chat_webhook_backlog);

#define WORKER_MAX		200
#define MAX_ROWS		10000
#define LEASE_MAX_S		86400

/*
 * The claim, one statement. ep: enabled endpoints that are not leased and
 * have a due delivery, longest waiting first, locked (SKIP LOCKED: another
 * daemon's claim in progress keeps its endpoints; an endpoint it leased
 * meanwhile fails the recheck of leased_until). due: up to per_endpoint
 * due deliveries of each, locked, numbered within the endpoint. pick:
 * round-robin over endpoints. Then the leases, and the rows to send, in
 * order per endpoint.
 */
#define CLAIM_SQL \
	"WITH ep AS MATERIALIZED (" \
	"  SELECT w.endpoint_id, w.url, w.secrets FROM chat.webhooks w " \
	"  WHERE w.enabled AND (w.leased_until IS NULL OR w.leased_until <= now()) " \
	"    AND EXISTS (SELECT 1 FROM chat.webhook_deliveries d " \
	"                WHERE d.endpoint_id = w.endpoint_id AND d.next_at <= now()) " \
	"  ORDER BY (SELECT min(d.next_at) FROM chat.webhook_deliveries d " \
	"            WHERE d.endpoint_id = w.endpoint_id AND d.next_at <= now()), w.endpoint_id " \
	"  LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED), " \
	"due AS (" \
	"  SELECT d.event_id, d.endpoint_id, d.next_at, " \
	"    row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_at, d.event_id) AS rn " \
	"  FROM ep CROSS JOIN LATERAL (" \
	"    SELECT x.event_id, x.endpoint_id, x.next_at FROM chat.webhook_deliveries x " \
	"    WHERE x.endpoint_id = ep.endpoint_id AND x.next_at <= now() " \
	"    ORDER BY x.next_at, x.event_id LIMIT $3 FOR UPDATE SKIP LOCKED) d), " \
	"pick AS MATERIALIZED (SELECT * FROM due ORDER BY rn, next_at, event_id LIMIT $2), " \
	"upd AS (" \
	"  UPDATE chat.webhook_deliveries x SET attempts = x.attempts + 1, leased_by = $1, " \
	"    next_at = now() + make_interval(secs => $4) " \
	"  FROM pick WHERE x.event_id = pick.event_id AND x.endpoint_id = pick.endpoint_id " \
	"  RETURNING x.event_id, x.endpoint_id, x.attempts, pick.next_at AS due_at), " \
	"lease AS (" \
	"  UPDATE chat.webhooks w SET leased_by = $1, leased_until = now() + make_interval(secs => $4) " \
	"  WHERE w.endpoint_id IN (SELECT endpoint_id FROM pick)) " \
	"SELECT u.endpoint_id, u.event_id, ep.url, ep.secrets, 'evt_' || u.event_id, e.body, u.attempts " \
	"FROM upd u JOIN ep ON ep.endpoint_id = u.endpoint_id " \
	"JOIN chat.webhook_events e ON e.event_id = u.event_id " \
	"ORDER BY u.endpoint_id, u.due_at, u.event_id"

/* Refuse an int argument outside lo..hi. */
static int32
IntArg(FunctionCallInfo fcinfo, int argno, const char *name, int32 lo, int32 hi)
{
	int32		n;

	ChatRequireArg(fcinfo, argno, name);
	n = PG_GETARG_INT32(argno);
	if (n < lo || n > hi)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between %d and %d, not %d", name, lo, hi, n)));
	return n;
}

/* Copy the rows of the last SPI result into the function's materialized result. */
static void
PutRows(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			natts = rsinfo->setDesc->natts;
	Datum	   *values = palloc(sizeof(Datum) * natts);
	bool	   *nulls = palloc(sizeof(bool) * natts);
	uint64		r;
	int			c;

	if (SPI_tuptable->tupdesc->natts != natts)
		elog(ERROR, "chat: query has %d columns, the result %d", SPI_tuptable->tupdesc->natts, natts);
	for (r = 0; r < SPI_processed; r++)
	{
		for (c = 0; c < natts; c++)
			values[c] = ChatGetDatum(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, c + 1, &nulls[c]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * webhook_claim(worker, max_rows, per_endpoint, lease_s) → (endpoint_id,
 * event_id, url, secrets, webhook_id, body, attempt): due deliveries leased
 * to worker for lease_s seconds; attempt counts from 1.
 */
Datum
chat_webhook_claim(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {TEXTOID, INT4OID, INT4OID, INT4OID};
	Datum		v[4];
	text	   *worker;

	ChatRequireArg(fcinfo, 0, "worker");
	worker = PG_GETARG_TEXT_PP(0);
	if (VARSIZE_ANY_EXHDR(worker) < 1 || VARSIZE_ANY_EXHDR(worker) > WORKER_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("worker must be 1 to %d bytes long", WORKER_MAX)));
	v[0] = PointerGetDatum(worker);
	v[1] = Int32GetDatum(IntArg(fcinfo, 1, "max_rows", 1, MAX_ROWS));
	v[2] = Int32GetDatum(IntArg(fcinfo, 2, "per_endpoint", 1, MAX_ROWS));
	v[3] = Int32GetDatum(IntArg(fcinfo, 3, "lease_s", 1, LEASE_MAX_S));
	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	ChatPlanOnce(&plan, CLAIM_SQL, 4, types);
	ChatExec(plan, v, NULL, false, 0);
	PutRows(fcinfo);
	SPI_finish();
	return (Datum) 0;
}

/*
 * webhook_backlog() → (due, oldest_due_s, dropped): deliveries of enabled
 * endpoints due now (leased ones are not), how long the oldest has waited
 * (0 when none), and the deliveries dropped after their last retry, ever.
 */
Datum
chat_webhook_backlog(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	ChatPlanOnce(&plan,
				 "SELECT count(d.*)::bigint, "
				 "  coalesce(extract(epoch FROM now() - min(d.next_at)), 0)::float8, "
				 "  (SELECT coalesce(sum(dropped), 0)::bigint FROM chat.webhooks) "
				 "FROM chat.webhooks w JOIN chat.webhook_deliveries d ON d.endpoint_id = w.endpoint_id "
				 "  AND d.next_at <= now() "
				 "WHERE w.enabled",
				 0, NULL);
	ChatExec(plan, NULL, NULL, true, 0);
	PutRows(fcinfo);
	SPI_finish();
	return (Datum) 0;
}
