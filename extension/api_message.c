/*
 * api_message.c: send_message, edit_message, delete_message.
 *
 * Every write of a chat first locks the chat row (ChatLoadAccess with
 * for_update). That lock orders the chat's writers, so seq and rev are the
 * chat's counters plus one: gap-free, and in commit order, because the next
 * writer reads them only after this one committed.
 */
#include "chat.h"
#include "events.h"
#include "notify.h"
#include "partitions.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(chat_send_message);
PG_FUNCTION_INFO_V1(chat_edit_message);
PG_FUNCTION_INFO_V1(chat_delete_message);

/* attachment_ids: a bigint[] of at most 10, no NULLs, no repeats. */
static int
AttachmentIds(FunctionCallInfo fcinfo, int argno, int64 **ids)
{
	int			n = ChatInt8ArrayArg(fcinfo, argno, "attachment_ids", CHAT_MAX_ATTACHMENTS,
									 "a message carries at most %d attachments, not %d", ids);
	int			i,
				j;

	for (i = 0; i < n; i++)
		for (j = 0; j < i; j++)
			if ((*ids)[j] == (*ids)[i])
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("attachment %lld is listed twice", (long long) (*ids)[i])));
	return n;
}

/*
 * Link the sender's pending, unexpired uploads of this chat to the message,
 * in the order given; anything else (someone else's, another chat's, already
 * sent, expired, unknown) refuses the whole send with the chat refusal, so
 * nothing is linked and attachment ids cannot be probed.
 */
static void
LinkAttachments(ChatMessage *msg, const int64 *ids, int n)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {INT8OID, INT8OID, INT8OID, INT8ARRAYOID};
	Datum		values[4];
	Datum	   *elems = palloc(sizeof(Datum) * n);
	uint64		r;
	int			i;

	for (i = 0; i < n; i++)
		elems[i] = Int64GetDatum(ids[i]);
	ChatPlanOnce(&plan,
				 "UPDATE chat.attachments "
				 "SET message_seq = $3, position = array_position($4, attachment_id) - 1 "
				 "WHERE attachment_id = ANY ($4) AND chat_id = $1 AND uploader_id = $2 "
				 "AND message_seq IS NULL AND created_at > now() - make_interval(secs => "
				 "  coalesce((SELECT pending_upload_ttl FROM chat.storage_config WHERE singleton), 86400)) "
				 "RETURNING attachment_id, file_name, content_type, size, position",
				 4, types);
	values[0] = Int64GetDatum(msg->chat_id);
	values[1] = Int64GetDatum(msg->sender_id);
	values[2] = Int64GetDatum(msg->seq);
	values[3] = PointerGetDatum(ChatInt8Array(elems, n));
	ChatExec(plan, values, NULL, false, 0);
	if (SPI_processed != (uint64) n)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("chat not found or access denied"),
				 errdetail("Attachments must be the sender's own pending uploads in this chat.")));

	msg->natt = n;
	msg->att = palloc(sizeof(ChatAttachment) * n);
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int			pos = DatumGetInt16(ChatGetDatum(tup, desc, 5, &isnull));
		ChatAttachment *a;

		if (isnull || pos < 0 || pos >= n)
			elog(ERROR, "chat: attachment position out of range");
		a = &msg->att[pos];
		a->id = ChatGetInt8(tup, desc, 1, NULL);
		a->name = TextDatumGetCString(ChatGetDatum(tup, desc, 2, &isnull));
		a->content_type = TextDatumGetCString(ChatGetDatum(tup, desc, 3, &isnull));
		a->size = ChatGetInt8(tup, desc, 4, NULL);
	}
}

/*
 * A message of this chat sent by sender_id with client_id within
 * chat.idempotency_window. Keyed on the sender too: another member reusing
 * someone's client_id gets a new message, never the other's.
 */
static bool
FindByClientId(const ChatAccess *acc, int64 sender_id, pg_uuid_t *client_id, ChatMessage *msg)
{
	ChatPartition **parts;
	int			n = ChatPartitions(&parts);
	TimestampTz since = GetCurrentTimestamp() - (int64) chat_idempotency_window * USECS_PER_SEC;
	Datum		values[3];
	int			i;

	if (!acc->has_last_message)
		return false;
	values[0] = Int64GetDatum(acc->chat_id);
	values[1] = UUIDPGetDatum(client_id);
	values[2] = Int64GetDatum(sender_id);
	for (i = 0; i < n; i++)
	{
		if (!ChatPartitionOverlaps(parts[i], Max(since, acc->created_at), acc->last_message_at))
			continue;
		ChatExec(ChatPartitionPlan(parts[i], PP_BY_CLIENT_ID), values, NULL, false, 1);
		if (SPI_processed == 1)
		{
			ChatMessageFromTuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, msg);
			return true;
		}
	}
	return false;
}

/* Bytes of the first CHAT_PREVIEW_CHARS characters of body. */
static Datum
Preview(const char *body)
{
	int			len = strlen(body);

	return PointerGetDatum(cstring_to_text_with_len(body, pg_mbcharcliplen(body, len, CHAT_PREVIEW_CHARS)));
}

/*
 * Lock the chat row and take the next seq and rev in one statement, refusing
 * a non-member, a sender blocked by a member and a missing chat alike. The
 * summary (last message, preview) is set here too; created_at rises with seq
 * even if the clock steps back, which history relies on.
 */
static void
LockAndAdvance(ChatMessage *msg, ChatAccess *acc)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[3] = {INT8OID, INT8OID, TEXTOID};
	Datum		v[3];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	ChatPlanOnce(&plan,
				 "UPDATE chat.chats c SET last_seq = c.last_seq + 1, last_rev = c.last_rev + 1, "
				 "  last_message_at = greatest(clock_timestamp(), c.last_message_at, c.created_at), "
				 "  last_sender_id = $2, last_preview = $3, last_deleted = false "
				 "WHERE c.chat_id = $1 AND " CHAT_IS_MEMBER_SQL("$1", "$2")
				 " AND NOT " CHAT_IS_BLOCKED_SQL("$1", "$2")
				 " RETURNING c.last_seq, c.last_rev, c.last_message_at, c.created_at",
				 3, types);
	v[0] = Int64GetDatum(msg->chat_id);
	v[1] = Int64GetDatum(msg->sender_id);
	v[2] = Preview(msg->body);
	ChatExec(plan, v, NULL, false, 0);
	if (SPI_processed != 1)
		ChatDenied();
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	msg->seq = ChatGetInt8(tup, desc, 1, NULL);
	msg->rev = ChatGetInt8(tup, desc, 2, NULL);
	msg->created_at = DatumGetTimestampTz(ChatGetDatum(tup, desc, 3, &isnull));
	acc->chat_id = msg->chat_id;
	acc->last_seq = msg->seq;
	acc->last_rev = msg->rev;
	acc->has_last_message = true;
	acc->last_message_at = msg->created_at;
	acc->created_at = DatumGetTimestampTz(ChatGetDatum(tup, desc, 4, &isnull));
	acc->blocked = false;
}

/*
 * Undo LockAndAdvance for a send that turned out to be a retry: the chat row
 * is still locked by us, so the previous counters and summary are exact.
 */
static void
Retreat(ChatAccess *acc)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[5] = {INT8OID, TIMESTAMPTZOID, INT8OID, TEXTOID, BOOLOID};
	Datum		v[5];
	char		nulls[5] = "     ";
	ChatMessage prev;
	ChatPartition *part;

	acc->last_seq--;
	if (acc->last_seq > 0 && ChatFindMessage(acc, acc->last_seq, &part, &prev))
	{
		v[1] = TimestampTzGetDatum(prev.created_at);
		v[2] = Int64GetDatum(prev.sender_id);
		v[3] = Preview(prev.body);
		v[4] = BoolGetDatum(prev.deleted);
	}
	else
	{
		/* the retried message was the chat's first: no summary before it */
		memset(nulls + 1, 'n', 3);
		v[4] = BoolGetDatum(false);
	}
	ChatPlanOnce(&plan,
				 "UPDATE chat.chats SET last_seq = last_seq - 1, last_rev = last_rev - 1, "
				 "  last_message_at = $2, last_sender_id = $3, last_preview = $4, last_deleted = $5 "
				 "WHERE chat_id = $1",
				 5, types);
	v[0] = Int64GetDatum(acc->chat_id);
	ChatExec(plan, v, nulls, false, 0);
}

/* Store a new message and update the members' state. */
static void
StoreMessage(ChatMessage *msg, int64 **recipients, int *nrecipients)
{
	static SPIPlanPtr plan_insert = NULL;
	static SPIPlanPtr plan_members = NULL;
	static const Oid t_insert[8] = {INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID, UUIDOID,
	TIMESTAMPTZOID, INT2OID};
	static const Oid t_members[6] = {INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID, INT4OID, INT4OID};
	Datum		v[8];
	char		nulls[8] = "        ";
	uint64		i;

	ChatPlanOnce(&plan_insert,
				 "INSERT INTO chat.messages (chat_id, seq, rev, sender_id, body, client_id, created_at, n_attachments) "
				 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
				 8, t_insert);
	v[0] = Int64GetDatum(msg->chat_id);
	v[1] = Int64GetDatum(msg->seq);
	v[2] = Int64GetDatum(msg->rev);
	v[3] = Int64GetDatum(msg->sender_id);
	v[4] = CStringGetTextDatum(msg->body);
	v[5] = msg->has_client_id ? UUIDPGetDatum(&msg->client_id) : (Datum) 0;
	nulls[5] = msg->has_client_id ? ' ' : 'n';
	v[6] = TimestampTzGetDatum(msg->created_at);
	v[7] = Int16GetDatum(msg->n_attachments);
	if (ChatExec(plan_insert, v, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "chat: message insert failed");

	/*
	 * Sending reads the chat up to one's own message, and marks the sender
	 * as having sent here; the second column says it is their first. For
	 * email digests the others' pending_since becomes this message's time
	 * unless an older pending one is kept; one pending for more than 7 days
	 * is never emailed (chat.email_claim's window), so it restarts here
	 * rather than keep the chat silent for good. A recipient with a push
	 * device gets a due push (chat.push_state, sql/notify_push.sql): after
	 * chat.push_delay, or chat.push_interval after the last alert of the
	 * chat; one already pending stays as it is (later messages fold in).
	 * The sender has read the chat: their own shown alert is cleared, as
	 * mark_read does (api_member.c).
	 */
	ChatPlanOnce(&plan_members,
				 "WITH prev AS (SELECT sent FROM chat.members WHERE chat_id = $1 AND user_id = $2), "
				 "m AS (UPDATE chat.members SET sort_at = $4, listed = true, sent = sent OR user_id = $2, "
				 "  unread = CASE WHEN user_id = $2 THEN 0 ELSE unread + 1 END, "
				 "  read_seq = CASE WHEN user_id = $2 THEN $3 ELSE read_seq END, "
				 "  pending_since = CASE WHEN user_id = $2 THEN NULL "
				 "    WHEN pending_since > $4 - interval '7 days' THEN pending_since ELSE $4 END "
				 "WHERE chat_id = $1 RETURNING user_id), "
				 "p AS (INSERT INTO chat.push_state AS s (user_id, chat_id, pending_since, due_at) "
				 "  SELECT m.user_id, $1, $4, $4 + make_interval(secs => $5) FROM m "
				 "  WHERE m.user_id <> $2 AND EXISTS (SELECT FROM chat.devices AS d WHERE d.user_id = m.user_id) "
				 "  ON CONFLICT (user_id, chat_id) DO UPDATE SET pending_since = excluded.pending_since, clear = false, "
				 "    due_at = greatest(excluded.due_at, s.pushed_at + make_interval(secs => $6)) "
				 "  WHERE s.pending_since IS NULL), "
				 "q AS (UPDATE chat.push_state SET pending_since = NULL, clear = shown, "
				 "  due_at = CASE WHEN shown THEN now() END "
				 "  WHERE user_id = $2 AND chat_id = $1 AND (shown OR pending_since IS NOT NULL)) "
				 "SELECT user_id, NOT coalesce((SELECT sent FROM prev), true) "
				 "FROM m ORDER BY user_id",	/* events want them ascending */
				 6, t_members);
	v[0] = Int64GetDatum(msg->chat_id);
	v[1] = Int64GetDatum(msg->sender_id);
	v[2] = Int64GetDatum(msg->seq);
	v[3] = TimestampTzGetDatum(msg->created_at);
	v[4] = Int32GetDatum(chat_push_delay);
	v[5] = Int32GetDatum(chat_push_interval);
	ChatExec(plan_members, v, NULL, false, 0);
	*nrecipients = (int) SPI_processed;
	*recipients = palloc(sizeof(int64) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
		(*recipients)[i] = ChatGetInt8(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, NULL);
	if (SPI_processed > 0)
	{
		bool		isnull;

		if (DatumGetBool(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)))
			ChatAddContacts(msg->chat_id, msg->sender_id);
	}
}

/* send_message(user_id, chat_id, body, client_id, attachment_ids) → message */
Datum
chat_send_message(PG_FUNCTION_ARGS)
{
	MemoryContext outer = CurrentMemoryContext;
	ChatAccess	acc;
	ChatMessage msg;
	int64	   *att_ids;
	int			natt;
	int64	   *recipients;
	int			nrecipients;
	Jsonb	   *json;

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "chat_id");
	ChatRequireArg(fcinfo, 2, "body");
	memset(&msg, 0, sizeof(msg));
	msg.sender_id = PG_GETARG_INT64(0);
	msg.chat_id = PG_GETARG_INT64(1);
	msg.body = text_to_cstring(PG_GETARG_TEXT_PP(2));
	msg.has_client_id = !PG_ARGISNULL(3);
	if (msg.has_client_id)
		memcpy(&msg.client_id, PG_GETARG_UUID_P(3), sizeof(pg_uuid_t));
	natt = AttachmentIds(fcinfo, 4, &att_ids);
	ChatCheckBody(msg.body, natt > 0);

	SPI_connect();
	LockAndAdvance(&msg, &acc);

	if (msg.has_client_id)
	{
		ChatMessage first;

		/* under the chat lock, so two concurrent retries cannot both store */
		if (FindByClientId(&acc, msg.sender_id, &msg.client_id, &first))
		{
			/* a retry: answer with the first message, store and announce nothing */
			Retreat(&acc);
			ChatLoadAttachments(&first, 1);
			json = ChatCopyOut(outer, ChatMessageToJsonb(&first));
			SPI_finish();
			PG_RETURN_JSONB_P(json);
		}
	}
	msg.n_attachments = natt;

	StoreMessage(&msg, &recipients, &nrecipients);
	if (natt > 0)
		LinkAttachments(&msg, att_ids, natt);

	json = ChatMessageToJsonb(&msg);
	ChatEventMessage("message", &msg, json, recipients, nrecipients);
	ChatWebhookMessage("message", &msg, json);
	json = ChatCopyOut(outer, json);
	SPI_finish();
	PG_RETURN_JSONB_P(json);
}

/*
 * After an edit or delete: the chat's change counter, and its summary when
 * the message is the chat's last.
 */
static void
Summarize(const ChatMessage *msg, bool is_delete)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[5] = {INT8OID, INT8OID, INT8OID, TEXTOID, BOOLOID};
	Datum		v[5];

	ChatPlanOnce(&plan,
				 "UPDATE chat.chats SET last_rev = $2, "
				 "  last_preview = CASE WHEN last_seq = $3 THEN $4 ELSE last_preview END, "
				 "  last_deleted = CASE WHEN last_seq = $3 THEN $5 ELSE last_deleted END "
				 "WHERE chat_id = $1",
				 5, types);
	v[0] = Int64GetDatum(msg->chat_id);
	v[1] = Int64GetDatum(msg->rev);
	v[2] = Int64GetDatum(msg->seq);
	v[3] = Preview(msg->body);
	v[4] = BoolGetDatum(is_delete);
	ChatExec(plan, v, NULL, false, 0);
}

/*
 * Change a message: new body (edit) or body cleared and deleted (delete).
 * Only its sender may; a deleted message stays deleted.
 */
static Datum
ChangeMessage(FunctionCallInfo fcinfo, bool is_delete)
{
	MemoryContext outer = CurrentMemoryContext;
	int64		user_id,
				chat_id,
				seq;
	char	   *body = NULL;
	ChatAccess	acc;
	ChatMessage msg;
	ChatPartition *part;
	Datum		v[6];
	int64	   *recipients;
	int			nrecipients;
	Jsonb	   *json;

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "chat_id");
	ChatRequireArg(fcinfo, 2, "seq");
	user_id = PG_GETARG_INT64(0);
	chat_id = PG_GETARG_INT64(1);
	seq = PG_GETARG_INT64(2);
	if (!is_delete)
	{
		ChatRequireArg(fcinfo, 3, "body");
		body = text_to_cstring(PG_GETARG_TEXT_PP(3));
		ChatCheckBody(body, false);
	}

	SPI_connect();
	ChatLoadAccess(user_id, chat_id, true, &acc);
	/* a blocked sender may delete but not rewrite what the blocker sees */
	if (acc.blocked && !is_delete)
		ChatDenied();
	if (!ChatFindMessage(&acc, seq, &part, &msg))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("message %lld does not exist in this chat", (long long) seq)));
	if (msg.sender_id != user_id)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the sender can %s a message", is_delete ? "delete" : "edit")));
	if (msg.deleted)
	{
		if (!is_delete)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("message %lld is deleted and cannot be edited", (long long) seq)));
		/* deleting twice changes nothing and announces nothing */
		json = ChatCopyOut(outer, ChatMessageToJsonb(&msg));
		SPI_finish();
		PG_RETURN_JSONB_P(json);
	}

	v[0] = Int64GetDatum(chat_id);
	v[1] = Int64GetDatum(seq);
	v[2] = CStringGetTextDatum(is_delete ? "" : body);
	v[3] = TimestampTzGetDatum(GetCurrentTimestamp());
	v[4] = BoolGetDatum(is_delete);
	v[5] = Int64GetDatum(acc.last_rev + 1);
	ChatExec(ChatPartitionPlan(part, PP_UPDATE), v, NULL, false, 0);
	if (SPI_processed != 1)
		elog(ERROR, "chat: message %lld vanished under the chat lock", (long long) seq);
	ChatMessageFromTuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, &msg);

	Summarize(&msg, is_delete);

	ChatLoadAttachments(&msg, 1);
	json = ChatMessageToJsonb(&msg);
	nrecipients = ChatMemberIds(chat_id, &recipients);
	ChatEventMessage(is_delete ? "delete" : "edit", &msg, json, recipients, nrecipients);
	ChatWebhookMessage(is_delete ? "delete" : "edit", &msg, json);
	json = ChatCopyOut(outer, json);
	SPI_finish();
	PG_RETURN_JSONB_P(json);
}

/* edit_message(user_id, chat_id, seq, body) → message */
Datum
chat_edit_message(PG_FUNCTION_ARGS)
{
	return ChangeMessage(fcinfo, false);
}

/* delete_message(user_id, chat_id, seq) → message */
Datum
chat_delete_message(PG_FUNCTION_ARGS)
{
	return ChangeMessage(fcinfo, true);
}
