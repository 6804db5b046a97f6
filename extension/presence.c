/*
 * presence.c: who is online, across every relay, without a coordinator.
 *
 * chat.presence holds one row per (user, relay) while the user has at least
 * one WebSocket connection on that relay; a user is online while any row
 * exists. Relays report changes in batches (presence_update), replace their
 * whole set after a reconnect (presence_sync) and clear it on a clean exit
 * (relay_gone). chat.last_seen keeps, per user, the time they last came or
 * went, and its row lock serialises every change of one user: each change
 * upserts it first, so two relays dropping a user's last two connections at
 * once cannot both believe the other one is still there. Changes of several
 * users are applied in ascending user id, so concurrent batches cannot
 * deadlock. last_seen is read from the clock once that row lock is held, so
 * it grows with every change of a user: a client that receives a presence()
 * reply and an event in either order keeps the one with the later last_seen.
 *
 * Dead relays: each relay holds a session advisory lock keyed by its relay id
 * on its LISTEN connection (relay_register). relay_heartbeat, called by every
 * relay periodically, refreshes the caller's row and clears every relay whose
 * heartbeat is older than the grace period and whose lock is free: its
 * process or its database session is gone.
 *
 * Going online or offline publishes a `presence` event (events.c) to the users who share a chat with the user.
 */
#include "chat.h"
#include "events.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(relay_register);
PG_FUNCTION_INFO_V1(relay_heartbeat);
PG_FUNCTION_INFO_V1(relay_gone);
PG_FUNCTION_INFO_V1(presence_update);
PG_FUNCTION_INFO_V1(presence_sync);
PG_FUNCTION_INFO_V1(presence);

/* first key of the relays' advisory locks: 'chat' */
#define CHAT_RELAY_LOCK_NS	1667785076
#define CHAT_RELAY_ID_MAX	200
#define CHAT_PRESENCE_MAX	100000

typedef struct PresenceOp
{
	int64		user_id;
	bool		online;
} PresenceOp;

/* Order presence operations by user id (the lock order). */
static int
PresenceOpCmp(const void *a, const void *b)
{
	int64		x = ((const PresenceOp *) a)->user_id;
	int64		y = ((const PresenceOp *) b)->user_id;

	return (x > y) - (x < y);
}

/* The relay id argument: non-null, 1 to CHAT_RELAY_ID_MAX bytes. */
static text *
RelayIdArg(FunctionCallInfo fcinfo, int argno)
{
	text	   *t;

	ChatRequireArg(fcinfo, argno, "relay_id");
	t = PG_GETARG_TEXT_PP(argno);
	if (VARSIZE_ANY_EXHDR(t) < 1 || VARSIZE_ANY_EXHDR(t) > CHAT_RELAY_ID_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("relay_id must be 1 to %d bytes long", CHAT_RELAY_ID_MAX)));
	return t;
}

/* A bigint[] argument as a C array (NULL array: none); no null elements. */
static int
UserIdsArg(FunctionCallInfo fcinfo, int argno, const char *name, int64 **out)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;

	*out = NULL;
	if (PG_ARGISNULL(argno))
		return 0;
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array", name)));
	deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	if (n > CHAT_PRESENCE_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has %d elements, the limit is %d", name, n, CHAT_PRESENCE_MAX)));
	*out = palloc(sizeof(int64) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain null", name)));
		(*out)[i] = DatumGetInt64(elems[i]);
	}
	return n;
}

/* Insert or refresh the relay's row in chat.relays. */
static void
TouchRelay(text *relay_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {TEXTOID};
	Datum		v[1];

	ChatPlanOnce(&plan,
				 "INSERT INTO chat.relays (relay_id) VALUES ($1) "
				 "ON CONFLICT (relay_id) DO UPDATE SET heartbeat_at = now()",
				 1, types);
	v[0] = PointerGetDatum(relay_id);
	ChatExec(plan, v, NULL, false, 0);
}

/*
 * Publish a presence event about user_id to everyone who shares a chat with
 * them, split into several events when the list is long.
 */
static void
PublishPresence(int64 user_id, bool online, TimestampTz last_seen)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		v[1];
	uint64		n,
				i;
	int64	   *peers;

	ChatPlanOnce(&plan,
				 "SELECT DISTINCT m2.user_id FROM chat.members m1 "
				 "JOIN chat.members m2 ON m2.chat_id = m1.chat_id "
				 "WHERE m1.user_id = $1 AND m2.user_id <> $1",
				 1, types);
	v[0] = Int64GetDatum(user_id);
	ChatExec(plan, v, NULL, false, 0);
	n = SPI_processed;
	if (n == 0)
		return;
	peers = palloc(sizeof(int64) * n);
	for (i = 0; i < n; i++)
		peers[i] = ChatGetInt8(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, NULL);
	ChatEventPresence(user_id, online, last_seen, peers, (int) n);
	pfree(peers);
}

/*
 * Apply one change of one (user, relay) pair under the user's lock; publish
 * when the user as a whole came online or went offline.
 */
static void
ApplyPresence(text *relay_id, int64 user_id, bool online)
{
	static SPIPlanPtr plan_lock = NULL;
	static SPIPlanPtr plan_add = NULL;
	static SPIPlanPtr plan_del = NULL;
	static SPIPlanPtr plan_any = NULL;
	static const Oid types[2] = {INT8OID, TEXTOID};
	Datum		v[2];
	TimestampTz now;
	bool		isnull;
	bool		changed;
	uint64		rows;

	ChatPlanOnce(&plan_lock,
				 "INSERT INTO chat.last_seen AS l (user_id, last_seen) VALUES ($1, clock_timestamp()) "
				 "ON CONFLICT (user_id) DO UPDATE SET last_seen = clock_timestamp() RETURNING l.last_seen",
				 1, types);
	ChatPlanOnce(&plan_add,
				 "INSERT INTO chat.presence (user_id, relay_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
				 2, types);
	ChatPlanOnce(&plan_del,
				 "DELETE FROM chat.presence WHERE user_id = $1 AND relay_id = $2",
				 2, types);
	ChatPlanOnce(&plan_any,
				 "SELECT count(*) FROM chat.presence WHERE user_id = $1",
				 1, types);
	v[0] = Int64GetDatum(user_id);
	v[1] = PointerGetDatum(relay_id);

	ChatExec(plan_lock, v, NULL, false, 0);
	now = DatumGetTimestampTz(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	ChatExec(online ? plan_add : plan_del, v, NULL, false, 0);
	changed = SPI_processed == 1;
	if (!changed)
		return;
	ChatExec(plan_any, v, NULL, false, 0);
	rows = (uint64) ChatGetInt8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, NULL);
	/* online: this is the first row; offline: no row is left */
	if ((online && rows == 1) || (!online && rows == 0))
		PublishPresence(user_id, online, now);
}

/* Apply a batch of operations in user id order. */
static void
ApplyAll(text *relay_id, PresenceOp *ops, int n)
{
	int			i;

	qsort(ops, n, sizeof(PresenceOp), PresenceOpCmp);
	for (i = 0; i < n; i++)
		ApplyPresence(relay_id, ops[i].user_id, ops[i].online);
}

/* Every user id that relay_id currently has online, ascending. */
static int
RelayUsers(text *relay_id, int64 **users)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {TEXTOID};
	Datum		v[1];
	uint64		i;

	ChatPlanOnce(&plan,
				 "SELECT user_id FROM chat.presence WHERE relay_id = $1 ORDER BY user_id",
				 1, types);
	v[0] = PointerGetDatum(relay_id);
	ChatExec(plan, v, NULL, false, 0);
	*users = palloc(sizeof(int64) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
		(*users)[i] = ChatGetInt8(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, NULL);
	return (int) SPI_processed;
}

/* Clear every row of a relay (offline events as due) and forget it. */
static int
ClearRelay(text *relay_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {TEXTOID};
	Datum		v[1];
	int64	   *users;
	int			n = RelayUsers(relay_id, &users);
	int			i;

	for (i = 0; i < n; i++)
		ApplyPresence(relay_id, users[i], false);
	ChatPlanOnce(&plan, "DELETE FROM chat.relays WHERE relay_id = $1", 1, types);
	v[0] = PointerGetDatum(relay_id);
	ChatExec(plan, v, NULL, false, 0);
	return n;
}

/*
 * relay_register(relay_id): take the relay's session advisory lock (on the
 * relay's LISTEN connection) and record it; false when another live session
 * holds the lock (a relay with the same id, or a sweep clearing it now).
 */
Datum
relay_register(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT4OID, TEXTOID};
	text	   *relay_id = RelayIdArg(fcinfo, 0);
	Datum		v[2];
	bool		isnull;
	bool		locked;

	SPI_connect();
	ChatPlanOnce(&plan, "SELECT pg_catalog.pg_try_advisory_lock($1, pg_catalog.hashtext($2))", 2, types);
	v[0] = Int32GetDatum(CHAT_RELAY_LOCK_NS);
	v[1] = PointerGetDatum(relay_id);
	ChatExec(plan, v, NULL, false, 0);
	locked = DatumGetBool(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (locked)
		TouchRelay(relay_id);
	SPI_finish();
	PG_RETURN_BOOL(locked);
}

/*
 * relay_heartbeat(relay_id, grace_s): refresh the caller's heartbeat, then
 * clear every other relay silent for more than grace_s seconds whose lock is
 * free. Returns the number of relays cleared.
 */
Datum
relay_heartbeat(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan_stale = NULL;
	static SPIPlanPtr plan_lock = NULL;
	static const Oid types[2] = {TEXTOID, INT4OID};
	static const Oid lock_types[2] = {INT4OID, TEXTOID};
	text	   *relay_id = RelayIdArg(fcinfo, 0);
	int32		grace;
	Datum		v[2];
	text	  **stale;
	uint64		n,
				i;
	int			cleared = 0;

	ChatRequireArg(fcinfo, 1, "grace_s");
	grace = PG_GETARG_INT32(1);
	if (grace < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("grace_s must not be negative, not %d", grace)));

	SPI_connect();
	TouchRelay(relay_id);
	ChatPlanOnce(&plan_stale,
				 "SELECT relay_id FROM chat.relays WHERE relay_id <> $1 "
				 "AND heartbeat_at < now() - make_interval(secs => $2) ORDER BY relay_id",
				 2, types);
	ChatPlanOnce(&plan_lock,
				 "SELECT pg_catalog.pg_try_advisory_xact_lock($1, pg_catalog.hashtext($2))",
				 2, lock_types);
	v[0] = PointerGetDatum(relay_id);
	v[1] = Int32GetDatum(grace);
	ChatExec(plan_stale, v, NULL, false, 0);
	n = SPI_processed;
	stale = palloc(sizeof(text *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		d = ChatGetDatum(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		stale[i] = DatumGetTextPCopy(d);
	}
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		v[0] = Int32GetDatum(CHAT_RELAY_LOCK_NS);
		v[1] = PointerGetDatum(stale[i]);
		ChatExec(plan_lock, v, NULL, false, 0);
		if (!DatumGetBool(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			continue;			/* its session is alive */
		ClearRelay(stale[i]);
		cleared++;
		ereport(LOG, (errmsg("chat: cleared the presence of dead relay \"%s\"",
							 text_to_cstring(stale[i]))));
	}
	SPI_finish();
	PG_RETURN_INT32(cleared);
}

/* relay_gone(relay_id): a relay stops; its users go offline unless seen elsewhere. */
Datum
relay_gone(PG_FUNCTION_ARGS)
{
	text	   *relay_id = RelayIdArg(fcinfo, 0);
	int			n;

	SPI_connect();
	n = ClearRelay(relay_id);
	SPI_finish();
	PG_RETURN_INT32(n);
}

/*
 * presence_update(relay_id, online, offline): users who got their first
 * connection on this relay, and users who lost their last one.
 */
Datum
presence_update(PG_FUNCTION_ARGS)
{
	text	   *relay_id = RelayIdArg(fcinfo, 0);
	int64	   *on,
			   *off;
	int			n_on = UserIdsArg(fcinfo, 1, "online", &on);
	int			n_off = UserIdsArg(fcinfo, 2, "offline", &off);
	PresenceOp *ops = palloc(sizeof(PresenceOp) * Max(n_on + n_off, 1));
	int			i;

	for (i = 0; i < n_on; i++)
		ops[i] = (PresenceOp) {on[i], true};
	for (i = 0; i < n_off; i++)
		ops[n_on + i] = (PresenceOp) {off[i], false};
	SPI_connect();
	TouchRelay(relay_id);
	ApplyAll(relay_id, ops, n_on + n_off);
	SPI_finish();
	PG_RETURN_VOID();
}

/* Binary search of a sorted int64 array. */
static bool
Contains(const int64 *a, int n, int64 x)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (a[mid] == x)
			return true;
		if (a[mid] < x)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

/* Compare two int64 for qsort. */
static int
Int64Cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * presence_sync(relay_id, online): the relay's complete set of online users
 * (after a reconnect): rows not in it go, missing ones come.
 */
Datum
presence_sync(PG_FUNCTION_ARGS)
{
	text	   *relay_id = RelayIdArg(fcinfo, 0);
	int64	   *want,
			   *have;
	int			n_want = UserIdsArg(fcinfo, 1, "online", &want);
	int			n_have;
	PresenceOp *ops;
	int			n = 0,
				i;

	qsort(want, n_want, sizeof(int64), Int64Cmp);
	SPI_connect();
	TouchRelay(relay_id);
	n_have = RelayUsers(relay_id, &have);
	ops = palloc(sizeof(PresenceOp) * Max(n_want + n_have, 1));
	for (i = 0; i < n_have; i++)
		if (!Contains(want, n_want, have[i]))
			ops[n++] = (PresenceOp) {have[i], false};
	for (i = 0; i < n_want; i++)
		if ((i == 0 || want[i] != want[i - 1]) && !Contains(have, n_have, want[i]))
			ops[n++] = (PresenceOp) {want[i], true};
	ApplyAll(relay_id, ops, n);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * presence(user_id, user_ids): {user_id, online, last_seen} of each of
 * user_ids that is user_id or shares a chat with them; others are left out,
 * so presence cannot be probed for strangers.
 */
Datum
presence(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, INT8ARRAYOID};
	Tuplestorestate *ts;
	int64		user_id;
	int64	   *ids;
	int			n;
	Datum		v[2];
	uint64		i;

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "user_ids");
	user_id = PG_GETARG_INT64(0);
	n = UserIdsArg(fcinfo, 1, "user_ids", &ids);
	if (n > CHAT_MAX_PAGE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user_ids has %d elements, the limit is %d", n, CHAT_MAX_PAGE)));
	ts = ChatSrfBegin(fcinfo);

	SPI_connect();
	ChatPlanOnce(&plan,
				 "SELECT u.id, EXISTS (SELECT 1 FROM chat.presence p WHERE p.user_id = u.id), l.last_seen "
				 "FROM (SELECT DISTINCT id FROM unnest($2) AS x(id)) u "
				 "LEFT JOIN chat.last_seen l ON l.user_id = u.id "
				 "WHERE u.id = $1 OR EXISTS (SELECT 1 FROM chat.members m1 "
				 "JOIN chat.members m2 ON m2.chat_id = m1.chat_id "
				 "WHERE m1.user_id = $1 AND m2.user_id = u.id) ORDER BY u.id",
				 2, types);
	v[0] = Int64GetDatum(user_id);
	v[1] = PG_GETARG_DATUM(1);
	ChatExec(plan, v, NULL, true, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		JsonbParseState *st = NULL;
		bool		isnull;
		Datum		seen;
		Jsonb	   *row;

		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		JbInt8(&st, "user_id", ChatGetInt8(tup, desc, 1, NULL));
		JbBool(&st, "online", DatumGetBool(ChatGetDatum(tup, desc, 2, &isnull)));
		seen = ChatGetDatum(tup, desc, 3, &isnull);
		if (isnull)
			JbNull(&st, "last_seen");
		else
			JbTimestamp(&st, "last_seen", DatumGetTimestampTz(seen));
		row = JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
		ChatSrfPut(fcinfo, ts, row);
	}
	SPI_finish();
	return (Datum) 0;
}
