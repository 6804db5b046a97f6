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
 * Put up to want of the list's messages in the page, with their attachments.
 * The list holds want rows and, when there are more, one more: it tells
 * whether the last row put is followed by one over the byte budget. Each
 * message is built in a context reset after the tuplestore copied it: a
 * page's garbage would otherwise grow the heap, and the C library would
 * give it back and fault it in again on every call. Returns the rows put.
 */
static int
EmitMessages(FunctionCallInfo fcinfo, Tuplestorestate *ts, ChatPage *page, MessageList *list, int want)
{
	int			n = Min(list->n, want);
	int			i;
	int64		next;
	MemoryContext tmp,
				old;

	ChatLoadAttachments(list->items, Min(list->n, want + 1));
	tmp = AllocSetContextCreate(CurrentMemoryContext, "chat message json", ALLOCSET_DEFAULT_SIZES);
	next = n > 0 ? ChatMessageJsonBytes(&list->items[0]) : -1;
	for (i = 0; i < n; i++)
	{
		int64		this = next;
		bool		last;
		Jsonb	   *json;

		next = i + 1 < list->n ? ChatMessageJsonBytes(&list->items[i + 1]) : -1;
		last = ChatPageStopsAfter(page, this, next);
		old = MemoryContextSwitchTo(tmp);
		json = ChatPageMessageToJsonb(&list->items[i], last);
		MemoryContextSwitchTo(old);
		ChatSrfPut(fcinfo, ts, json);
		MemoryContextReset(tmp);
		if (last)
		{
			i++;
			break;
		}
	}
	MemoryContextDelete(tmp);
	return i;
}

/*
 * Up to limit messages of the chat before seq `before`, newest first, into
 * list (emptied first). seq rises with created_at within a chat, so older
 * partitions hold only older messages, and partitions are read newest
 * first only until the list is full; the default partition may hold any
 * month, so its rows are merged in.
 */
static void
FetchHistory(ChatPartition **parts, int nparts, const ChatAccess *acc, int64 before, int limit,
			 MessageList *list)
{
	Datum		values[3];
	int			i;

	list->n = 0;
	values[0] = Int64GetDatum(acc->chat_id);
	values[1] = Int64GetDatum(before);
	for (i = 0; i < nparts; i++)
	{
		ChatPartition *p = parts[i];

		if (!ChatPartitionOverlaps(p, acc->created_at, acc->last_message_at))
			continue;
		if (!p->is_default && list->n >= limit)
			continue;
		values[2] = Int64GetDatum(limit - (p->is_default ? 0 : list->n));
		ChatExec(ChatPartitionPlan(p, PP_HISTORY), values, NULL, true, 0);
		CollectRows(list);
		if (p->is_default && SPI_processed > 0)
			qsort(list->items, list->n, sizeof(ChatMessage), SeqDesc);
		SPI_freetuptable(SPI_tuptable);
	}
	list->n = Min(list->n, limit);
}

/*
 * Up to limit changes of the chat after cursor `after`, oldest first, into
 * list (emptied first). Edits can touch old messages, so every partition
 * the chat lived in is asked for its first limit, and they are merged.
 */
static void
FetchCatchUp(ChatPartition **parts, int nparts, const ChatAccess *acc, int64 after, int limit,
			 MessageList *list)
{
	Datum		values[3];
	int			i;

	list->n = 0;
	values[0] = Int64GetDatum(acc->chat_id);
	values[1] = Int64GetDatum(after);
	values[2] = Int64GetDatum(limit);
	for (i = 0; i < nparts; i++)
	{
		if (!ChatPartitionOverlaps(parts[i], acc->created_at, acc->last_message_at))
			continue;
		ChatExec(ChatPartitionPlan(parts[i], PP_CATCH_UP), values, NULL, true, 0);
		CollectRows(list);
		SPI_freetuptable(SPI_tuptable);
	}
	if (list->n > 1)
		qsort(list->items, list->n, sizeof(ChatMessage), RevAsc);
	list->n = Min(list->n, limit);
}

/*
 * Fill a page batch by batch (ChatPageNextBatch), each read one row
 * further than it puts unless it ends the page: the page stops at page_size, at the byte budget or
 * at the end, and reads about what it returns. A batch continues from the
 * last row put (seq for history, rev for catch_up), so nothing is skipped
 * or read twice. Partitions are read with one snapshot taken after their
 * locks (ChatPartitionsForRead), so that rows moved by partition
 * maintenance are seen exactly once, however many batches.
 */
static void
FillPage(FunctionCallInfo fcinfo, Tuplestorestate *ts, const ChatAccess *acc, int64 from,
		 int page_size, bool history)
{
	ChatPartition **parts;
	int			nparts = ChatPartitionsForRead(&parts);
	MessageList list = {0};
	ChatPage	page = {page_size, 0, 0, false};

	for (;;)
	{
		int			want = ChatPageNextBatch(&page, CHAT_PAGE_FIRST_BATCH);
		/* no look-ahead for a batch that ends the page: no older partition read for it */
		int			read = want + (page.rows + want < page.size ? 1 : 0);
		int			put;

		if (history)
			FetchHistory(parts, nparts, acc, from, read, &list);
		else
			FetchCatchUp(parts, nparts, acc, from, read, &list);
		put = EmitMessages(fcinfo, ts, &page, &list, want);
		if (page.stopped || put < want || list.n <= want || page.rows >= page.size)
			break;
		from = history ? list.items[put - 1].seq : list.items[put - 1].rev;
	}
	PopActiveSnapshot();
}

/*
 * history(user_id, chat_id, before_seq, page_size): messages before
 * before_seq, newest first, at most page_size of them and at most
 * chat.page_max_bytes of JSON (FillPage).
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
		FillPage(fcinfo, ts, &acc, before, page_size, true);
	SPI_finish();
	return (Datum) 0;
}

/*
 * catch_up(user_id, chat_id, after, page_size): every message created,
 * edited or deleted after cursor `after`, oldest change first, in pages
 * bounded like history's.
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
		FillPage(fcinfo, ts, &acc, after, page_size, false);
	SPI_finish();
	return (Datum) 0;
}
