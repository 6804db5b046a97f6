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
 * once cannot both believe the other one is still there. A batch upserts
 * its users' rows in ascending user id, in one statement, so concurrent
 * batches cannot deadlock. last_seen is read from the clock once that row
 * lock is held, and version grows by one with every change of a user: a
 * client that receives a presence() reply and an event in either order
 * keeps the one with the higher version. Others see last_seen only rounded
 * down to chat.presence_granularity (ChatCoarseTime).
 *
 * Every change is set-based: whatever the batch's size, a few statements
 * over arrays (LockUsers, then ApplyChanges) rather than a few per user.
 *
 * Dead relays: each relay holds a session advisory lock keyed by its relay id
 * on its LISTEN connection (relay_register, which also records that
 * connection's backend pid). relay_heartbeat, called by every relay
 * periodically, refreshes the caller's row and clears every relay whose
 * heartbeat is older than the grace period and whose lock is free: its
 * process or its database session is gone.
 *
 * Frozen relays (SIGSTOP, a stuck host): the process stops but its session
 * lives, holds the lock, and its LISTEN backend, no longer read, pins the
 * cluster's NOTIFY queue (it grows until NOTIFY fails for everyone). When
 * such a relay is silent for longer than both the sweeper's grace and its
 * own (chat.relays.grace_s, so a peer with a smaller grace cannot cut off
 * live relays), the sweep terminates its LISTEN backend (pid reuse and other
 * databases guarded against) and clears it once the lock is free. This
 * needs the extension's owner to be a superuser (CREATE EXTENSION requires
 * one) or a member of pg_signal_backend and pg_read_all_stats; otherwise the
 * sweep warns and leaves the relay. On waking, the relay finds its LISTEN
 * connection gone, registers again, resyncs its clients and sends its whole
 * presence (relay/presence.c).
 *
 * Going online or offline publishes one `presence` event (events.c) with
 * no recipients, whatever the number of the user's chats: relays send it
 * to the connections that subscribed to the user, and presence() is the
 * subscription's check (contacts.c: contacts only, no block).
 */
#include "chat.h"
#include "events.h"

#include "catalog/pg_type.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(chat_relay_register);
PG_FUNCTION_INFO_V1(chat_relay_heartbeat);
PG_FUNCTION_INFO_V1(chat_relay_gone);
PG_FUNCTION_INFO_V1(chat_presence_update);
PG_FUNCTION_INFO_V1(chat_presence_sync);
PG_FUNCTION_INFO_V1(chat_presence);

/* first key of the relays' advisory locks: 'chat' */
#define CHAT_RELAY_LOCK_NS	1667785076
#define CHAT_RELAY_ID_MAX	200
/* how long a sweep waits for a frozen relay's LISTEN backend to exit */
#define CHAT_RELAY_TERM_WAIT_MS 1000
#define CHAT_PRESENCE_MAX	100000

/*
 * ApplyChanges probes chat.presence once per user. A kept plan made while
 * the table looked empty does that with a sequential scan per user, which
 * at 100,000 users takes minutes; planning at every call costs more than
 * the work for the usual handful of users. So batches up to this many users
 * use a kept plan, larger ones one planned for their size.
 */
#define CHAT_PRESENCE_SMALL	100

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
 * Take the chat.last_seen row lock of every user in on and off (bigint[]),
 * in ascending user id, and stamp last_seen. A
 * statement of its own: the next one must take its snapshot after these
 * locks, so that it sees every change that committed while it waited.
 */
static void
LockUsers(Datum on, Datum off)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8ARRAYOID, INT8ARRAYOID};
	Datum		v[2];

	ChatPlanOnce(&plan,
				 "INSERT INTO chat.last_seen AS l (user_id, last_seen) "
				 "SELECT u, clock_timestamp() FROM (SELECT unnest($1) UNION SELECT unnest($2)) s(u) ORDER BY u "
				 "ON CONFLICT (user_id) DO UPDATE SET last_seen = clock_timestamp(), version = l.version + 1",
				 2, types);
	v[0] = on;
	v[1] = off;
	ChatExec(plan, v, NULL, false, 0);
}

/* The number of elements of a one-dimensional bigint[] Datum. */
static int
ArrayLength(Datum arr)
{
	ArrayType  *a = DatumGetArrayTypeP(arr);

	return ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
}

/*
 * Users of $2 came to relay $1, users of $3 left it (a user in both: came,
 * then left), their locks held (LockUsers). Rows are added and removed in
 * one statement, which returns, in user id order, each user who came
 * online anywhere or went offline everywhere, with their last_seen and
 * version; users without contacts are left out (nobody may hear of them).
 */
static const char apply_sql[] =
"WITH ops AS ("
"  SELECT user_id, bool_or(coming) AS coming, bool_or(NOT coming) AS going "
"  FROM (SELECT unnest($2), true UNION ALL SELECT unnest($3), false) o(user_id, coming) "
"  GROUP BY user_id), "
"st AS ("
"  SELECT o.*, EXISTS (SELECT 1 FROM chat.presence p WHERE p.user_id = o.user_id AND p.relay_id = $1) AS here, "
"    EXISTS (SELECT 1 FROM chat.presence p WHERE p.user_id = o.user_id AND p.relay_id <> $1) AS elsewhere "
"  FROM ops o), "
"ins AS (INSERT INTO chat.presence (user_id, relay_id) "
"  SELECT user_id, $1 FROM st WHERE coming AND NOT going AND NOT here ON CONFLICT DO NOTHING), "
"del AS (DELETE FROM chat.presence p USING st "
"  WHERE st.going AND st.here AND p.user_id = st.user_id AND p.relay_id = $1), "
"ev AS ("
"  SELECT user_id, true AS online, 1 AS k FROM st WHERE coming AND NOT here AND NOT elsewhere "
"  UNION ALL SELECT user_id, false, 2 FROM st WHERE going AND (here OR coming) AND NOT elsewhere) "
"SELECT ev.user_id, ev.online, l.last_seen, l.version "
"FROM ev JOIN chat.last_seen l ON l.user_id = ev.user_id "
"WHERE EXISTS (SELECT 1 FROM chat.contacts c WHERE c.user_id = ev.user_id) "
"ORDER BY ev.user_id, ev.k";

/* Apply on and off to relay_id (apply_sql) and publish what it returns. */
static void
ApplyChanges(text *relay_id, Datum on, Datum off)
{
	static SPIPlanPtr small = NULL;
	static SPIPlanPtr large = NULL;
	static const Oid types[3] = {TEXTOID, INT8ARRAYOID, INT8ARRAYOID};
	bool		is_small = ArrayLength(on) + ArrayLength(off) <= CHAT_PRESENCE_SMALL;
	Datum		v[3];
	uint64		r;

	if (is_small)
		ChatPlanOnce(&small, apply_sql, 3, types);
	else
		ChatPlanOnceOpts(&large, apply_sql, 3, types, CURSOR_OPT_CUSTOM_PLAN);
	v[0] = PointerGetDatum(relay_id);
	v[1] = on;
	v[2] = off;
	ChatExec(is_small ? small : large, v, NULL, false, 0);
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		ChatEventPresence(ChatGetInt8(tup, desc, 1, NULL),
						  DatumGetBool(ChatGetDatum(tup, desc, 2, &isnull)),
						  DatumGetTimestampTz(ChatGetDatum(tup, desc, 3, &isnull)),
						  ChatGetInt8(tup, desc, 4, NULL));
	}
}

/* Users of on (bigint[]) come to relay_id, users of off leave it. */
static void
ChangePresence(text *relay_id, Datum on, Datum off)
{
	LockUsers(on, off);
	ApplyChanges(relay_id, on, off);
}

/*
 * Make relay_id's rows the set want (bigint[]): users missing come, users
 * not in it go. Returns the number of users that go.
 */
static int
SyncRelay(text *relay_id, Datum want)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TEXTOID, INT8ARRAYOID};
	Datum		v[2];
	Datum		on,
				off;
	bool		isnull;

	ChatPlanOnce(&plan,
				 "SELECT ARRAY(SELECT unnest($2) EXCEPT SELECT user_id FROM chat.presence WHERE relay_id = $1), "
				 "  ARRAY(SELECT user_id FROM chat.presence WHERE relay_id = $1 EXCEPT SELECT unnest($2))",
				 2, types);
	v[0] = PointerGetDatum(relay_id);
	v[1] = want;
	ChatExec(plan, v, NULL, false, 0);
	on = ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	off = ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	ChangePresence(relay_id, on, off);
	return ArrayLength(off);
}

/* Clear every row of a relay (offline events as due) and forget it. */
static int
ClearRelay(text *relay_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {TEXTOID};
	Datum		v[1];
	int			n = SyncRelay(relay_id, PointerGetDatum(construct_empty_array(INT8OID)));

	ChatPlanOnce(&plan, "DELETE FROM chat.relays WHERE relay_id = $1", 1, types);
	v[0] = PointerGetDatum(relay_id);
	ChatExec(plan, v, NULL, false, 0);
	return n;
}

/*
 * Record the caller as relay_id's LISTEN connection: its backend pid and
 * the time it registered (the sweep terminates that backend only if it
 * started before then: a pid reused by a later backend is left alone).
 */
static void
RegisterRelay(text *relay_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {TEXTOID};
	Datum		v[1];

	ChatPlanOnce(&plan,
				 "INSERT INTO chat.relays (relay_id, listen_pid, registered_at) "
				 "VALUES ($1, pg_catalog.pg_backend_pid(), now()) "
				 "ON CONFLICT (relay_id) DO UPDATE SET heartbeat_at = now(), "
				 "  listen_pid = EXCLUDED.listen_pid, registered_at = EXCLUDED.registered_at",
				 1, types);
	v[0] = PointerGetDatum(relay_id);
	ChatExec(plan, v, NULL, false, 0);
}

/*
 * relay_register(relay_id): take the relay's session advisory lock (on the
 * relay's LISTEN connection) and record it with this backend's pid; false
 * when another live session holds the lock (a relay with the same id, or a
 * sweep clearing it now).
 */
Datum
chat_relay_register(PG_FUNCTION_ARGS)
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
		RegisterRelay(relay_id);
	SPI_finish();
	PG_RETURN_BOOL(locked);
}

/* The caller's heartbeat, with the grace it sweeps others with. */
static void
TouchRelayGrace(text *relay_id, int32 grace)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TEXTOID, INT4OID};
	Datum		v[2];

	ChatPlanOnce(&plan,
				 "INSERT INTO chat.relays (relay_id, grace_s) VALUES ($1, $2) "
				 "ON CONFLICT (relay_id) DO UPDATE SET heartbeat_at = now(), grace_s = EXCLUDED.grace_s",
				 2, types);
	v[0] = PointerGetDatum(relay_id);
	v[1] = Int32GetDatum(grace);
	ChatExec(plan, v, NULL, false, 0);
}

/*
 * Try relay_id's advisory lock for this transaction: true when it is free
 * (its LISTEN session is gone), and then held until we commit, so the
 * relay cannot register again while we clear it.
 */
static bool
TryRelayLock(text *relay_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT4OID, TEXTOID};
	Datum		v[2];
	bool		isnull;

	ChatPlanOnce(&plan, "SELECT pg_catalog.pg_try_advisory_xact_lock($1, pg_catalog.hashtext($2))", 2, types);
	v[0] = Int32GetDatum(CHAT_RELAY_LOCK_NS);
	v[1] = PointerGetDatum(relay_id);
	ChatExec(plan, v, NULL, false, 0);
	return DatumGetBool(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* May the extension's owner see and signal other roles' backends? */
static bool
MaySignalBackends(void)
{
	static SPIPlanPtr plan = NULL;
	bool		isnull;

	ChatPlanOnce(&plan,
				 "SELECT pg_catalog.pg_has_role('pg_signal_backend', 'USAGE') "
				 "  AND pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')",
				 0, NULL);
	ChatExec(plan, NULL, NULL, true, 0);
	return DatumGetBool(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * relay_id is silent for longer than grace and its own grace, but its
 * session holds its lock: the relay is frozen (SIGSTOP, a stuck host), and
 * its LISTEN backend, which no longer reads, holds the cluster's NOTIFY
 * queue. Terminate that backend, if it is still the one that registered
 * (this database, started before the registration) and not us, waiting up
 * to CHAT_RELAY_TERM_WAIT_MS for it to exit. True when it did.
 */
static bool
TerminateListener(text *relay_id, int32 grace)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[3] = {TEXTOID, INT4OID, INT8OID};
	Datum		v[3];
	bool		isnull;
	int32		pid;
	bool		gone;

	ChatPlanOnce(&plan,
				 "SELECT a.pid, pg_catalog.pg_terminate_backend(a.pid, $3) "
				 "FROM chat.relays r, LATERAL pg_catalog.pg_stat_get_activity(r.listen_pid) a "
				 "WHERE r.relay_id = $1 AND r.listen_pid IS NOT NULL "
				 "  AND r.heartbeat_at < now() - pg_catalog.make_interval(secs => greatest($2, coalesce(r.grace_s, 0))) "
				 "  AND a.pid = r.listen_pid AND a.pid <> pg_catalog.pg_backend_pid() "
				 "  AND a.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()) "
				 "  AND a.backend_start < r.registered_at",
				 3, types);
	v[0] = PointerGetDatum(relay_id);
	v[1] = Int32GetDatum(grace);
	v[2] = Int64GetDatum(CHAT_RELAY_TERM_WAIT_MS);
	ChatExec(plan, v, NULL, false, 0);
	if (SPI_processed == 0)
	{
		if (!MaySignalBackends())
			ereport(WARNING,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("chat: relay \"%s\" is silent but its session is alive, and the extension's owner may not terminate it",
							text_to_cstring(relay_id)),
					 errhint("The owner of extension chat needs to be a superuser, or a member of pg_signal_backend and pg_read_all_stats.")));
		return false;
	}
	pid = DatumGetInt32(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	gone = DatumGetBool(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	ereport(LOG,
			(errmsg("chat: terminated%s the LISTEN backend %d of relay \"%s\", silent for more than %d s",
					gone ? "" : " (not yet exited)", pid, text_to_cstring(relay_id), grace)));
	return gone;
}

/*
 * Sweep one relay silent for longer than the grace: clear it if its lock
 * is free; if not and it is overdue (past its own grace too), terminate
 * its LISTEN backend and clear it once that lock is free. True if cleared.
 */
static bool
SweepRelay(text *relay_id, bool overdue, int32 grace)
{
	bool		frozen = !TryRelayLock(relay_id);

	if (frozen && (!overdue || !TerminateListener(relay_id, grace) || !TryRelayLock(relay_id)))
		return false;			/* alive, or left to the next sweep */
	ClearRelay(relay_id);
	ereport(LOG, (errmsg("chat: cleared the presence of %s relay \"%s\"",
						 frozen ? "frozen" : "dead", text_to_cstring(relay_id))));
	return true;
}

/*
 * relay_heartbeat(relay_id, grace_s): refresh the caller's heartbeat, then
 * sweep every other relay silent for more than grace_s seconds
 * (SweepRelay). Returns the number of relays cleared.
 */
Datum
chat_relay_heartbeat(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan_stale = NULL;
	static const Oid types[2] = {TEXTOID, INT4OID};
	text	   *relay_id = RelayIdArg(fcinfo, 0);
	int32		grace;
	Datum		v[2];
	text	  **stale;
	bool	   *overdue;
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
	TouchRelayGrace(relay_id, grace);
	ChatPlanOnce(&plan_stale,
				 "SELECT relay_id, heartbeat_at < now() - pg_catalog.make_interval(secs => greatest($2, coalesce(grace_s, 0))) "
				 "FROM chat.relays WHERE relay_id <> $1 "
				 "AND heartbeat_at < now() - pg_catalog.make_interval(secs => $2) ORDER BY relay_id",
				 2, types);
	v[0] = PointerGetDatum(relay_id);
	v[1] = Int32GetDatum(grace);
	ChatExec(plan_stale, v, NULL, false, 0);
	n = SPI_processed;
	stale = palloc(sizeof(text *) * Max(n, 1));
	overdue = palloc(sizeof(bool) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		d = ChatGetDatum(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		stale[i] = DatumGetTextPCopy(d);
		overdue[i] = DatumGetBool(ChatGetDatum(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	for (i = 0; i < n; i++)
		if (SweepRelay(stale[i], overdue[i], grace))
			cleared++;
	SPI_finish();
	PG_RETURN_INT32(cleared);
}

/* relay_gone(relay_id): a relay stops; its users go offline unless seen elsewhere. */
Datum
chat_relay_gone(PG_FUNCTION_ARGS)
{
	text	   *relay_id = RelayIdArg(fcinfo, 0);
	int			n;

	SPI_connect();
	n = ClearRelay(relay_id);
	SPI_finish();
	PG_RETURN_INT32(n);
}

/* A bigint[] argument of at most CHAT_PRESENCE_MAX users; NULL: none. */
static Datum
UserIdsArg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	(void) ChatInt8ArrayArg(fcinfo, argno, name, CHAT_PRESENCE_MAX, NULL, NULL);
	return PG_ARGISNULL(argno) ? PointerGetDatum(construct_empty_array(INT8OID)) : PG_GETARG_DATUM(argno);
}

/*
 * presence_update(relay_id, online, offline): users who got their first
 * connection on this relay, and users who lost their last one.
 */
Datum
chat_presence_update(PG_FUNCTION_ARGS)
{
	text	   *relay_id = RelayIdArg(fcinfo, 0);
	Datum		on = UserIdsArg(fcinfo, 1, "online");
	Datum		off = UserIdsArg(fcinfo, 2, "offline");

	SPI_connect();
	TouchRelay(relay_id);
	ChangePresence(relay_id, on, off);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * presence_sync(relay_id, online): the relay's complete set of online users
 * (after a reconnect): rows not in it go, missing ones come.
 */
Datum
chat_presence_sync(PG_FUNCTION_ARGS)
{
	text	   *relay_id = RelayIdArg(fcinfo, 0);
	Datum		want = UserIdsArg(fcinfo, 1, "online");

	SPI_connect();
	TouchRelay(relay_id);
	(void) SyncRelay(relay_id, want);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * presence(user_id, user_ids): {user_id, online, last_seen, version} of
 * each of user_ids that user_id may see (CHAT_SEES_PRESENCE_SQL: themselves
 * or a contact with no block); others are left out, so presence cannot be
 * probed for strangers. last_seen is the coarse one, also for oneself, so
 * that every copy of a change looks the same.
 */
Datum
chat_presence(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, INT8ARRAYOID};
	Tuplestorestate *ts;
	int64		user_id;
	Datum		v[2];
	uint64		i;

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "user_ids");
	user_id = PG_GETARG_INT64(0);
	(void) ChatInt8ArrayArg(fcinfo, 1, "user_ids", CHAT_MAX_PAGE, NULL, NULL);
	ts = ChatSrfBegin(fcinfo);

	SPI_connect();
	ChatPlanOnce(&plan,
				 "SELECT u.id, EXISTS (SELECT 1 FROM chat.presence p WHERE p.user_id = u.id), "
				 "  l.last_seen, coalesce(l.version, 0) "
				 "FROM (SELECT DISTINCT id FROM unnest($2) AS x(id)) u "
				 "LEFT JOIN chat.last_seen l ON l.user_id = u.id "
				 "WHERE " CHAT_SEES_PRESENCE_SQL("$1", "u.id") " ORDER BY u.id",
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
		ChatJbInt8(&st, "user_id", ChatGetInt8(tup, desc, 1, NULL));
		ChatJbBool(&st, "online", DatumGetBool(ChatGetDatum(tup, desc, 2, &isnull)));
		seen = ChatGetDatum(tup, desc, 3, &isnull);
		if (isnull)
			ChatJbNull(&st, "last_seen");
		else
			ChatJbTimestamp(&st, "last_seen", ChatCoarseTime(DatumGetTimestampTz(seen)));
		ChatJbInt8(&st, "version", ChatGetInt8(tup, desc, 4, NULL));
		row = JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
		ChatSrfPut(fcinfo, ts, row);
	}
	SPI_finish();
	return (Datum) 0;
}
