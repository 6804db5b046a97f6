/*
 * api_chat.c: chats and per-user state: open_chat, list_chats, unread_total,
 * set_archived, set_muted, block_user, unblock_user.
 */
#include "chat.h"
#include "events.h"
#include "notify.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(chat_open_chat);
PG_FUNCTION_INFO_V1(chat_list_chats);
PG_FUNCTION_INFO_V1(chat_unread_total);
PG_FUNCTION_INFO_V1(chat_set_archived);
PG_FUNCTION_INFO_V1(chat_set_muted);
PG_FUNCTION_INFO_V1(chat_block_user);
PG_FUNCTION_INFO_V1(chat_unblock_user);

/* The chat opened with exactly these arguments, or 0. */
static int64
FindChat(const char *kind, bool has_context, int64 context_id, int64 user_a, int64 user_b)
{
	static SPIPlanPtr plan_ctx = NULL;
	static SPIPlanPtr plan_direct = NULL;
	static const Oid types[4] = {TEXTOID, INT8OID, INT8OID, INT8OID};
	Datum		v[4];

	ChatPlanOnce(&plan_ctx,
				 "SELECT chat_id FROM chat.chats WHERE kind = $1 AND context_id = $2 "
				 "AND user_a = $3 AND user_b = $4", 4, types);
	ChatPlanOnce(&plan_direct,
				 "SELECT chat_id FROM chat.chats WHERE kind = $1 AND context_id IS NULL "
				 "AND $2 IS NULL AND user_a = $3 AND user_b = $4", 4, types);
	v[0] = CStringGetTextDatum(kind);
	v[1] = Int64GetDatum(context_id);
	v[2] = Int64GetDatum(user_a);
	v[3] = Int64GetDatum(user_b);
	ChatExec(has_context ? plan_ctx : plan_direct, v, has_context ? NULL : " n  ", false, 1);
	return SPI_processed == 1 ? ChatGetInt8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, NULL) : 0;
}

/* Has blocker blocked blocked? */
static bool
IsBlocked(int64 blocker, int64 blocked)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, INT8OID};
	Datum		v[2];

	ChatPlanOnce(&plan, "SELECT 1 FROM chat.blocks WHERE blocker_id = $1 AND blocked_id = $2",
				 2, types);
	v[0] = Int64GetDatum(blocker);
	v[1] = Int64GetDatum(blocked);
	ChatExec(plan, v, NULL, false, 1);
	return SPI_processed == 1;
}

/*
 * chat.max_new_chats_per_hour: refuse (54000) when user_id created that many
 * chats in the last hour. Under a per-user advisory lock, so that parallel
 * opens by one user cannot all pass the count.
 */
static void
CheckNewChatLimit(int64 user_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, INT4OID};
	Datum		v[2];
	bool		isnull;
	int64		n;

	if (chat_max_new_chats_per_hour == 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("new chats are disabled (chat.max_new_chats_per_hour = 0)")));
	ChatLockUser(user_id, CHAT_LOCK_NEW_CHATS);
	ChatPlanOnce(&plan,
				 "SELECT count(*) FROM (SELECT 1 FROM chat.chats WHERE opened_by = $1 "
				 "AND created_at > now() - interval '1 hour' LIMIT $2) l",
				 2, types);
	v[0] = Int64GetDatum(user_id);
	v[1] = Int32GetDatum(chat_max_new_chats_per_hour);
	ChatExec(plan, v, NULL, false, 0);
	n = DatumGetInt64(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (n >= chat_max_new_chats_per_hour)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many new chats: at most %d per hour (chat.max_new_chats_per_hour)",
						chat_max_new_chats_per_hour),
				 errhint("Reopening an existing chat is not limited; wait before starting new ones.")));
}

/*
 * Create the chat and its two members; 0 when a concurrent call created it
 * first. The opener's row is listed at once, the peer's from the first
 * message (send_message), so empty chats cannot fill a stranger's list.
 */
static int64
CreateChat(const char *kind, bool has_context, int64 context_id, int64 user_a, int64 user_b,
		   int64 opener)
{
	static SPIPlanPtr plan_chat = NULL;
	static SPIPlanPtr plan_members = NULL;
	static const Oid t_chat[5] = {TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID};
	static const Oid t_members[6] = {INT8OID, INT8OID, INT8OID, TEXTOID, TIMESTAMPTZOID, INT8OID};
	bool		direct = strcmp(kind, "direct") == 0;
	Datum		v[6];
	int64		chat_id;
	bool		isnull;

	ChatPlanOnce(&plan_chat,
				 "INSERT INTO chat.chats (kind, context_id, user_a, user_b, opened_by) VALUES ($1, $2, $3, $4, $5) "
				 "ON CONFLICT (kind, context_id, user_a, user_b) DO NOTHING "
				 "RETURNING chat_id, created_at", 5, t_chat);
	v[0] = CStringGetTextDatum(kind);
	v[1] = Int64GetDatum(context_id);
	v[2] = Int64GetDatum(user_a);
	v[3] = Int64GetDatum(user_b);
	v[4] = Int64GetDatum(opener);
	ChatExec(plan_chat, v, has_context ? NULL : " n   ", false, 0);
	if (SPI_processed != 1)
		return 0;
	chat_id = ChatGetInt8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, NULL);
	v[4] = ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

	ChatPlanOnce(&plan_members,
				 "INSERT INTO chat.members (chat_id, user_id, role, sort_at, listed) "
				 "VALUES ($1, $2, $4, $5, $2 = $6), ($1, $3, "
				 "CASE WHEN $4 = 'buyer' THEN 'seller' ELSE $4 END, $5, $3 = $6)", 6, t_members);
	v[0] = Int64GetDatum(chat_id);
	v[1] = Int64GetDatum(user_a);
	v[2] = Int64GetDatum(user_b);
	v[3] = CStringGetTextDatum(direct ? "member" : "buyer");
	v[5] = Int64GetDatum(opener);
	ChatExec(plan_members, v, NULL, false, 0);
	return chat_id;
}

/* Refuse a peer id no user can have (see CHAT_MAX_USER_ID). */
static void
CheckPeerId(int64 peer_id)
{
	if (peer_id < 1 || peer_id > CHAT_MAX_USER_ID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("peer_id must be between 1 and " INT64_FORMAT ", not " INT64_FORMAT,
						CHAT_MAX_USER_ID, peer_id),
				 errhint("User ids are positive and at most 2^53 - 1, the largest integer JavaScript clients hold exactly.")));
}

/* The kind and context_id of an open_chat call are consistent. */
static void
CheckKind(const char *kind, bool has_context)
{
	bool		direct = strcmp(kind, "direct") == 0;

	if (strcmp(kind, "listing") != 0 && strcmp(kind, "product") != 0 && !direct)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown chat kind \"%s\"", kind),
				 errhint("Use listing, product or direct.")));
	if (direct && has_context)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a direct chat has no context_id")));
	if (!direct && !has_context)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a %s chat needs the %s id as context_id", kind, kind)));
}

/*
 * open_chat(user_id, kind, context_id, peer_id) → chat_id: get or create.
 * listing / product: the user is the buyer, the peer the seller; direct:
 * one chat per pair, whichever side opens it.
 */
Datum
chat_open_chat(PG_FUNCTION_ARGS)
{
	int64		user_id,
				peer_id,
				context_id = 0,
				user_a,
				user_b,
				chat_id;
	char	   *kind;
	bool		direct,
				has_context = !PG_ARGISNULL(2);

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "kind");
	ChatRequireArg(fcinfo, 3, "peer_id");
	user_id = PG_GETARG_INT64(0);
	kind = text_to_cstring(PG_GETARG_TEXT_PP(1));
	peer_id = PG_GETARG_INT64(3);
	if (has_context)
		context_id = PG_GETARG_INT64(2);

	CheckKind(kind, has_context);
	CheckPeerId(peer_id);
	direct = strcmp(kind, "direct") == 0;
	if (user_id == peer_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot open a chat with yourself")));
	user_a = direct ? Min(user_id, peer_id) : user_id;
	user_b = direct ? Max(user_id, peer_id) : peer_id;

	SPI_connect();
	chat_id = FindChat(kind, has_context, context_id, user_a, user_b);
	if (chat_id == 0)
	{
		if (IsBlocked(peer_id, user_id))
			ChatDenied();
		CheckNewChatLimit(user_id);
		chat_id = CreateChat(kind, has_context, context_id, user_a, user_b, user_id);
		if (chat_id != 0)
			ChatWebhookChatOpened(chat_id, kind, has_context, context_id, user_a, user_b);
		else
			chat_id = FindChat(kind, has_context, context_id, user_a, user_b);
		if (chat_id == 0)
			elog(ERROR, "chat: chat vanished while being opened");
	}
	SPI_finish();
	PG_RETURN_INT64(chat_id);
}

/* A list_chats cursor: "<sort_at µs>:<chat_id>". */
static void
ParseListCursor(const char *s, TimestampTz *at, int64 *chat_id)
{
	char	   *end;
	long long	a,
				c;

	errno = 0;
	a = strtoll(s, &end, 10);
	if (errno == 0 && end != s && *end == ':')
	{
		const char *rest = end + 1;

		c = strtoll(rest, &end, 10);
		if (errno == 0 && end != rest && *end == '\0')
		{
			*at = (TimestampTz) a;
			*chat_id = (int64) c;
			return;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("before must be a cursor returned by list_chats, not \"%s\"", s)));
}

/* Push key: the peer ids of a bigint[] column. */
static void
PushPeerIds(JsonbParseState **st, Datum arr)
{
	int64	   *peers;
	int			n = ChatInt8ArrayValues(DatumGetArrayTypeP(arr), "peer_ids", &peers);
	int			i;

	ChatJbKey(st, "peer_ids");
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
	for (i = 0; i < n; i++)
	{
		JsonbValue	elem;

		elem.type = jbvNumeric;
		elem.val.numeric = int64_to_numeric(peers[i]);
		pushJsonbValue(st, WJB_ELEM, &elem);
	}
	pushJsonbValue(st, WJB_END_ARRAY, NULL);
}

/* Push key: the chat's last message (columns 9 to 13), or null. */
static void
PushLastMessage(JsonbParseState **st, HeapTuple tup, TupleDesc desc)
{
	bool		isnull;

	if (ChatGetInt8(tup, desc, 9, NULL) == 0)
	{
		ChatJbNull(st, "last_message");
		return;
	}
	ChatJbKey(st, "last_message");
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	ChatJbInt8(st, "seq", ChatGetInt8(tup, desc, 9, NULL));
	ChatJbInt8(st, "sender_id", ChatGetInt8(tup, desc, 11, NULL));
	ChatJbText(st, "preview", TextDatumGetCString(ChatGetDatum(tup, desc, 12, &isnull)));
	ChatJbTimestamp(st, "created_at", DatumGetTimestampTz(ChatGetDatum(tup, desc, 10, &isnull)));
	ChatJbBool(st, "deleted", DatumGetBool(ChatGetDatum(tup, desc, 13, &isnull)));
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/*
 * At most how many bytes a row of list_chats' query takes as a chat object
 * in JSON text: its strings escaped, 22 per peer id, and room for every
 * key, number, timestamp and boolean (the "more" key too).
 */
static int64
ListRowBytes(HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	Datum		d;
	int64		n = 640;

	n += ChatJsonStringBytes(TextDatumGetCString(ChatGetDatum(tup, desc, 7, &isnull)));
	d = ChatGetDatum(tup, desc, 12, &isnull);
	if (!isnull)
		n += ChatJsonStringBytes(TextDatumGetCString(d));
	d = ChatGetDatum(tup, desc, 14, &isnull);
	if (!isnull)
	{
		ArrayType  *a = DatumGetArrayTypeP(d);

		n += 22 * (int64) ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	}
	return n;
}

/* One row of list_chats' query as the contract's chat object (more: the last of a page cut by bytes). */
static Jsonb *
ListRow(HeapTuple tup, TupleDesc desc, bool more)
{
	JsonbParseState *st = NULL;
	bool		isnull;
	int64		chat_id = ChatGetInt8(tup, desc, 1, NULL);
	TimestampTz sort_at = DatumGetTimestampTz(ChatGetDatum(tup, desc, 2, &isnull));
	int64		context_id;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	ChatJbInt8(&st, "chat_id", chat_id);
	ChatJbText(&st, "kind", TextDatumGetCString(ChatGetDatum(tup, desc, 7, &isnull)));
	context_id = ChatGetInt8(tup, desc, 8, &isnull);
	if (isnull)
		ChatJbNull(&st, "context_id");
	else
		ChatJbInt8(&st, "context_id", context_id);
	PushPeerIds(&st, ChatGetDatum(tup, desc, 14, &isnull));
	PushLastMessage(&st, tup, desc);
	ChatJbInt8(&st, "unread", DatumGetInt32(ChatGetDatum(tup, desc, 3, &isnull)));
	ChatJbInt8(&st, "read_seq", ChatGetInt8(tup, desc, 6, NULL));
	ChatJbBool(&st, "archived", DatumGetBool(ChatGetDatum(tup, desc, 4, &isnull)));
	ChatJbBool(&st, "muted", DatumGetBool(ChatGetDatum(tup, desc, 5, &isnull)));
	ChatJbTimestamp(&st, "last_activity", sort_at);
	ChatJbText(&st, "cursor", psprintf(INT64_FORMAT ":" INT64_FORMAT, (int64) sort_at, chat_id));
	if (more)
		ChatJbBool(&st, "more", true);
	return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

/*
 * Put the rows of list_chats' open cursor in the page, read in batches
 * (ChatPageNextBatch). A row is put once the next is read, so that the last
 * before the byte budget says "more"; the held row is a copy, the batch it
 * came from is freed.
 */
static void
ListPage(FunctionCallInfo fcinfo, Tuplestorestate *ts, Portal portal, int page_size)
{
	ChatPage	page = {page_size, 0, 0, false};
	TupleDesc	desc = NULL;
	HeapTuple	held = NULL;
	int64		held_bytes = 0;
	uint64		r;

	while (!page.stopped)
	{
		SPI_cursor_fetch(portal, true, ChatPageNextBatch(&page, CHAT_PAGE_FIRST_BATCH));
		if (SPI_processed == 0)
			break;
		if (desc == NULL)
			desc = CreateTupleDescCopy(SPI_tuptable->tupdesc);
		for (r = 0; r < SPI_processed && !page.stopped; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			int64		bytes = ListRowBytes(tup, desc);

			if (held)
				ChatSrfPut(fcinfo, ts, ListRow(held, desc, ChatPageStopsAfter(&page, held_bytes, bytes)));
			held = page.stopped ? NULL : SPI_copytuple(tup);
			held_bytes = bytes;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	if (held)
		ChatSrfPut(fcinfo, ts, ListRow(held, desc, false));
}

/*
 * list_chats(user_id, before, page_size, archived): the user's chats by last
 * activity, newest first; one index range on members, no message read. A
 * page is bounded in bytes too (chat.page_max_bytes): group chats with many
 * members are large rows.
 */
Datum
chat_list_chats(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[5] = {INT8OID, BOOLOID, TIMESTAMPTZOID, INT8OID, INT8OID};
	int64		user_id;
	int32		page_size;
	TimestampTz before_at = DT_NOEND;
	int64		before_id = PG_INT64_MAX;
	Tuplestorestate *ts;
	Datum		v[5];
	Portal		portal;

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 2, "page_size");
	ChatRequireArg(fcinfo, 3, "archived");
	user_id = PG_GETARG_INT64(0);
	page_size = PG_GETARG_INT32(2);
	ChatCheckPageSize(page_size);
	if (!PG_ARGISNULL(1))
		ParseListCursor(text_to_cstring(PG_GETARG_TEXT_PP(1)), &before_at, &before_id);
	ts = ChatSrfBegin(fcinfo);

	SPI_connect();
	ChatPlanOnce(&plan,
				 "SELECT m.chat_id, m.sort_at, m.unread, m.archived, m.muted, m.read_seq, "
				 "       c.kind, c.context_id, c.last_seq, c.last_message_at, c.last_sender_id, "
				 "       c.last_preview, c.last_deleted, "
				 "       ARRAY(SELECT o.user_id FROM chat.members o "
				 "             WHERE o.chat_id = m.chat_id AND o.user_id <> $1 ORDER BY o.user_id) "
				 "FROM chat.members m JOIN chat.chats c ON c.chat_id = m.chat_id "
				 "WHERE m.user_id = $1 AND m.archived = $2 AND m.listed AND (m.sort_at, m.chat_id) < ($3, $4) "
				 "ORDER BY m.sort_at DESC, m.chat_id DESC LIMIT $5",
				 5, types);
	v[0] = Int64GetDatum(user_id);
	v[1] = BoolGetDatum(PG_GETARG_BOOL(3));
	v[2] = TimestampTzGetDatum(before_at);
	v[3] = Int64GetDatum(before_id);
	v[4] = Int64GetDatum(page_size);
	portal = SPI_cursor_open(NULL, plan, v, NULL, true);
	ListPage(fcinfo, ts, portal, page_size);
	SPI_cursor_close(portal);
	SPI_finish();
	return (Datum) 0;
}

/* unread_total(user_id) → unread messages over the user's chats that are not muted */
Datum
chat_unread_total(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		v[1];
	int64		total;

	ChatRequireArg(fcinfo, 0, "user_id");
	v[0] = PG_GETARG_DATUM(0);
	SPI_connect();
	ChatPlanOnce(&plan,
				 "SELECT coalesce(sum(unread), 0)::bigint FROM chat.members "
				 "WHERE user_id = $1 AND NOT muted", 1, types);
	ChatExec(plan, v, NULL, true, 1);
	total = ChatGetInt8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, NULL);
	SPI_finish();
	PG_RETURN_INT64(total);
}

/* Set one boolean flag of the user's membership; refuse non-members. */
static Datum
SetMemberFlag(FunctionCallInfo fcinfo, SPIPlanPtr *slot, const char *sql, const char *name)
{
	static const Oid types[3] = {INT8OID, INT8OID, BOOLOID};
	Datum		v[3];

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "chat_id");
	ChatRequireArg(fcinfo, 2, name);
	v[0] = PG_GETARG_DATUM(1);
	v[1] = PG_GETARG_DATUM(0);
	v[2] = PG_GETARG_DATUM(2);
	SPI_connect();
	ChatPlanOnce(slot, sql, 3, types);
	ChatExec(*slot, v, NULL, false, 0);
	if (SPI_processed != 1)
		ChatDenied();
	SPI_finish();
	PG_RETURN_VOID();
}

/* set_archived(user_id, chat_id, archived): per user */
Datum
chat_set_archived(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;

	return SetMemberFlag(fcinfo, &plan,
						 "UPDATE chat.members SET archived = $3 WHERE chat_id = $1 AND user_id = $2",
						 "archived");
}

/* set_muted(user_id, chat_id, muted): per user; muted chats leave unread_total */
Datum
chat_set_muted(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;

	return SetMemberFlag(fcinfo, &plan,
						 "UPDATE chat.members SET muted = $3 WHERE chat_id = $1 AND user_id = $2",
						 "muted");
}

/*
 * Insert or delete a block of other_id by user_id. A new block also tells
 * the relays to drop the presence subscriptions between the two; a block
 * that was not there before is a webhook event.
 */
static Datum
ChangeBlock(FunctionCallInfo fcinfo, SPIPlanPtr *slot, const char *sql, bool blocking)
{
	static const Oid types[2] = {INT8OID, INT8OID};
	Datum		v[2];
	bool		inserted;

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "other_id");
	if (PG_GETARG_INT64(0) == PG_GETARG_INT64(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot block or unblock yourself")));
	v[0] = PG_GETARG_DATUM(0);
	v[1] = PG_GETARG_DATUM(1);
	SPI_connect();
	ChatPlanOnce(slot, sql, 2, types);
	ChatExec(*slot, v, NULL, false, 0);
	inserted = blocking && SPI_processed == 1;
	if (blocking)
		ChatEventBlock(PG_GETARG_INT64(0), PG_GETARG_INT64(1));
	if (inserted)
		ChatWebhookBlocked(PG_GETARG_INT64(0), PG_GETARG_INT64(1));
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * block_user(user_id, other_id): other_id can no longer send to user_id,
 * and neither sees the other's presence or typing
 */
Datum
chat_block_user(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;

	return ChangeBlock(fcinfo, &plan,
					   "INSERT INTO chat.blocks (blocker_id, blocked_id) VALUES ($1, $2) "
					   "ON CONFLICT DO NOTHING", true);
}

/* unblock_user(user_id, other_id) */
Datum
chat_unblock_user(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;

	return ChangeBlock(fcinfo, &plan,
					   "DELETE FROM chat.blocks WHERE blocker_id = $1 AND blocked_id = $2", false);
}
