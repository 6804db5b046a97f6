/*
 * api_read.c: history and catch_up, read partition by partition (partitions.c).
 */
#include "chat.h"
#include "partitions.h"

#include "catalog/pg_type.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(chat_history);
PG_FUNCTION_INFO_V1(chat_catch_up);

/* Rows collected from several partitions. */
typedef struct MessageList
{
	ChatMessage *items;
	int			n;
	int			cap;
} MessageList;

/* Append the rows of the last SPI result. */
static void
CollectRows(MessageList *list)
{
	uint64		r;

	for (r = 0; r < SPI_processed; r++)
	{
		if (list->n == list->cap)
		{
			list->cap = Max(list->cap * 2, 16);
			list->items = list->items
				? repalloc(list->items, sizeof(ChatMessage) * list->cap)
				: palloc(sizeof(ChatMessage) * list->cap);
		}
		ChatMessageFromTuple(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, &list->items[list->n++]);
	}
}

/* Newest first. */
static int
SeqDesc(const void *a, const void *b)
{
	int64		x = ((const ChatMessage *) a)->seq;
	int64		y = ((const ChatMessage *) b)->seq;

	return (x < y) - (x > y);
}

/* Oldest change first. */
static int
RevAsc(const void *a, const void *b)
{
	int64		x = ((const ChatMessage *) a)->rev;
	int64		y = ((const ChatMessage *) b)->rev;

	return (x > y) - (x < y);
}

/*
 * Emit up to limit messages of the list, with their attachments, as rows.
 * Each message is built in a context reset after the tuplestore copied it:
 * a page's garbage would otherwise grow the heap, and the C library would
 * give it back and fault it in again on every call.
 */
static void
EmitMessages(FunctionCallInfo fcinfo, Tuplestorestate *ts, MessageList *list, int limit)
{
	int			n = Min(list->n, limit);
	int			i;
	MemoryContext tmp,
				old;

	ChatLoadAttachments(list->items, n);
	tmp = AllocSetContextCreate(CurrentMemoryContext, "chat message json", ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < n; i++)
	{
		Jsonb	   *json;

		old = MemoryContextSwitchTo(tmp);
		json = ChatMessageToJsonb(&list->items[i]);
		MemoryContextSwitchTo(old);
		ChatSrfPut(fcinfo, ts, json);
		MemoryContextReset(tmp);
	}
	MemoryContextDelete(tmp);
}

/*
 * history(user_id, chat_id, before_seq, page_size): messages before
 * before_seq, newest first. Partitions are read newest first and only until
 * the page is full; seq rises with created_at within a chat, so older
 * partitions hold only older messages. The default partition may hold any
 * month, so its rows are merged in. Partitions are read with one snapshot
 * taken after their locks (ChatPartitionsForRead), so that rows moved by
 * partition maintenance are seen exactly once.
 */
Datum
chat_history(PG_FUNCTION_ARGS)
{
	int64		user_id,
				chat_id,
				before;
	int32		page_size;
	Tuplestorestate *ts;
	ChatAccess	acc;
	ChatPartition **parts;
	int			nparts,
				i;
	MessageList list = {0};
	Datum		values[3];

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "chat_id");
	ChatRequireArg(fcinfo, 3, "page_size");
	user_id = PG_GETARG_INT64(0);
	chat_id = PG_GETARG_INT64(1);
	before = PG_ARGISNULL(2) ? PG_INT64_MAX : PG_GETARG_INT64(2);
	page_size = PG_GETARG_INT32(3);
	if (before < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("before_seq must be positive, not %lld", (long long) before)));
	ChatCheckPageSize(page_size);
	ts = ChatSrfBegin(fcinfo);

	SPI_connect();
	ChatLoadAccess(user_id, chat_id, false, &acc);
	if (acc.has_last_message && before > 1)
	{
		nparts = ChatPartitionsForRead(&parts);
		values[0] = Int64GetDatum(chat_id);
		values[1] = Int64GetDatum(before);
		for (i = 0; i < nparts; i++)
		{
			ChatPartition *p = parts[i];

			if (!ChatPartitionOverlaps(p, acc.created_at, acc.last_message_at))
				continue;
			if (!p->is_default && list.n >= page_size)
				continue;
			values[2] = Int64GetDatum(page_size - (p->is_default ? 0 : list.n));
			ChatExec(ChatPartitionPlan(p, PP_HISTORY), values, NULL, true, 0);
			CollectRows(&list);
			if (p->is_default && SPI_processed > 0)
				qsort(list.items, list.n, sizeof(ChatMessage), SeqDesc);
		}
		EmitMessages(fcinfo, ts, &list, page_size);
		PopActiveSnapshot();
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * catch_up(user_id, chat_id, after, page_size): every message created,
 * edited or deleted after cursor `after`, oldest change first. Edits can
 * touch old messages, so every partition the chat lived in is asked.
 */
Datum
chat_catch_up(PG_FUNCTION_ARGS)
{
	int64		user_id,
				chat_id,
				after;
	int32		page_size;
	Tuplestorestate *ts;
	ChatAccess	acc;
	ChatPartition **parts;
	int			nparts,
				i;
	MessageList list = {0};
	Datum		values[3];

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "chat_id");
	ChatRequireArg(fcinfo, 2, "after");
	ChatRequireArg(fcinfo, 3, "page_size");
	user_id = PG_GETARG_INT64(0);
	chat_id = PG_GETARG_INT64(1);
	after = PG_GETARG_INT64(2);
	page_size = PG_GETARG_INT32(3);
	if (after < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("after must be 0 or a cursor returned earlier, not %lld", (long long) after)));
	ChatCheckPageSize(page_size);
	ts = ChatSrfBegin(fcinfo);

	SPI_connect();
	ChatLoadAccess(user_id, chat_id, false, &acc);
	/* the common reconnect: nothing changed, no partition touched */
	if (acc.has_last_message && after < acc.last_rev)
	{
		nparts = ChatPartitionsForRead(&parts);
		values[0] = Int64GetDatum(chat_id);
		values[1] = Int64GetDatum(after);
		values[2] = Int64GetDatum(page_size);
		for (i = 0; i < nparts; i++)
		{
			if (!ChatPartitionOverlaps(parts[i], acc.created_at, acc.last_message_at))
				continue;
			ChatExec(ChatPartitionPlan(parts[i], PP_CATCH_UP), values, NULL, true, 0);
			CollectRows(&list);
		}
		if (list.n > 1)
			qsort(list.items, list.n, sizeof(ChatMessage), RevAsc);
		EmitMessages(fcinfo, ts, &list, page_size);
		PopActiveSnapshot();
	}
	SPI_finish();
	return (Datum) 0;
}
