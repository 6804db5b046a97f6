/*
 * api_member.c: read state and typing: mark_read, typing.
 */
#include "chat.h"
#include "events.h"
#include "notify.h"

#include "catalog/pg_type.h"

PG_FUNCTION_INFO_V1(chat_mark_read);
PG_FUNCTION_INFO_V1(chat_typing);

/* The read state of one member as jsonb. */
static Jsonb *
ReadState(int64 chat_id, int64 user_id, int64 read_seq, int64 unread)
{
	JsonbParseState *st = NULL;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	ChatJbInt8(&st, "chat_id", chat_id);
	ChatJbInt8(&st, "user_id", user_id);
	ChatJbInt8(&st, "read_seq", read_seq);
	ChatJbInt8(&st, "unread", unread);
	return JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

/*
 * mark_read(user_id, chat_id, seq): move the read cursor forward, never back
 * and never past the last message; the other members get a read receipt.
 * Every message after a member's cursor is someone else's (sending moves the
 * sender's cursor), so unread drops by exactly the distance moved; computed
 * from the row itself, it stays right under concurrent sends. Reading
 * everything leaves nothing pending for an email digest (pending_since);
 * after a partial read the oldest pending time stays. Read to its end, no
 * push is due any more, and one shown is cleared by a silent push
 * (chat.push_state, sql/notify_push.sql), in the same statement: one key
 * probe, nothing for a user without a device.
 */
Datum
chat_mark_read(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan_move = NULL;
	static SPIPlanPtr plan_get = NULL;
	static const Oid types[3] = {INT8OID, INT8OID, INT8OID};
	MemoryContext outer = CurrentMemoryContext;
	int64		user_id,
				chat_id,
				seq;
	ChatAccess	acc;
	Datum		v[3];
	int64		read_seq,
				unread;
	bool		moved;
	Jsonb	   *json;

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "chat_id");
	ChatRequireArg(fcinfo, 2, "seq");
	user_id = PG_GETARG_INT64(0);
	chat_id = PG_GETARG_INT64(1);
	seq = PG_GETARG_INT64(2);
	if (seq < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("seq must not be negative, not %lld", (long long) seq)));

	SPI_connect();
	ChatLoadAccess(user_id, chat_id, false, &acc);
	ChatPlanOnce(&plan_move,
				 "WITH m AS (UPDATE chat.members SET unread = greatest(0, unread - ($3 - read_seq)), read_seq = $3, "
				 "  pending_since = CASE WHEN unread - ($3 - read_seq) > 0 THEN pending_since END "
				 "  WHERE chat_id = $1 AND user_id = $2 AND read_seq < $3 RETURNING read_seq, unread), "
				 "p AS (UPDATE chat.push_state SET pending_since = NULL, clear = shown, "
				 "  due_at = CASE WHEN shown THEN now() END "
				 "  WHERE user_id = $2 AND chat_id = $1 AND (shown OR pending_since IS NOT NULL) "
				 "  AND EXISTS (SELECT FROM m WHERE m.unread = 0)) "
				 "SELECT read_seq, unread::bigint FROM m",
				 3, types);
	ChatPlanOnce(&plan_get,
				 "SELECT read_seq, unread::bigint FROM chat.members WHERE chat_id = $1 AND user_id = $2",
				 2, types);
	v[0] = Int64GetDatum(chat_id);
	v[1] = Int64GetDatum(user_id);
	v[2] = Int64GetDatum(Min(seq, acc.last_seq));
	ChatExec(plan_move, v, NULL, false, 0);
	moved = SPI_processed == 1;
	if (!moved)
		ChatExec(plan_get, v, NULL, false, 0);
	if (SPI_processed != 1)
		ChatDenied();
	read_seq = ChatGetInt8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, NULL);
	unread = ChatGetInt8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, NULL);

	if (moved)
	{
		int64	   *members;
		int			n = ChatMemberIds(chat_id, &members);

		ChatEventRead(chat_id, user_id, read_seq, members, n);
		ChatWebhookRead(chat_id, user_id, read_seq);
	}
	json = ChatCopyOut(outer, ReadState(chat_id, user_id, read_seq, unread));
	SPI_finish();
	PG_RETURN_JSONB_P(json);
}

/* typing(user_id, chat_id): an event to the other members (none in a block with user_id), nothing stored */
Datum
chat_typing(PG_FUNCTION_ARGS)
{
	int64		user_id,
				chat_id;
	ChatAccess	acc;
	int64	   *others;
	int			n;

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "chat_id");
	user_id = PG_GETARG_INT64(0);
	chat_id = PG_GETARG_INT64(1);

	SPI_connect();
	ChatLoadAccess(user_id, chat_id, false, &acc);
	if (acc.blocked)
		ChatDenied();
	n = ChatTypingRecipients(chat_id, user_id, &others);
	if (n > 0)
		ChatEventTyping(chat_id, user_id, others, n);
	SPI_finish();
	PG_RETURN_VOID();
}
