/*
 * message_json.c: a chat.messages row as a C struct and as the jsonb message
 * object of the contract, with its attachments loaded in one query per page.
 */
#include "chat.h"

#include "catalog/pg_type.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/json.h"
#include "utils/numeric.h"

/* Read a seq range rather than a list while it is under this many seqs per message. */
#define CHAT_ATTACHMENT_RANGE_SLACK	4

/* Read a row selected with CHAT_MESSAGE_COLS into msg (current context). */
void
ChatMessageFromTuple(HeapTuple tup, TupleDesc desc, ChatMessage *msg)
{
	bool		isnull;
	Datum		d;

	msg->chat_id = ChatGetInt8(tup, desc, 1, NULL);
	msg->seq = ChatGetInt8(tup, desc, 2, NULL);
	msg->rev = ChatGetInt8(tup, desc, 3, NULL);
	msg->sender_id = ChatGetInt8(tup, desc, 4, NULL);
	msg->body = TextDatumGetCString(ChatGetDatum(tup, desc, 5, &isnull));
	d = ChatGetDatum(tup, desc, 6, &isnull);
	msg->has_client_id = !isnull;
	if (!isnull)
		memcpy(&msg->client_id, DatumGetUUIDP(d), sizeof(pg_uuid_t));
	msg->created_at = DatumGetTimestampTz(ChatGetDatum(tup, desc, 7, &isnull));
	d = ChatGetDatum(tup, desc, 8, &isnull);
	msg->has_edited_at = !isnull;
	msg->edited_at = isnull ? 0 : DatumGetTimestampTz(d);
	msg->deleted = DatumGetBool(ChatGetDatum(tup, desc, 9, &isnull));
	msg->n_attachments = DatumGetInt16(ChatGetDatum(tup, desc, 10, &isnull));
	msg->natt = 0;
	msg->att = NULL;
}

/* Push an object key. */
void
JbKey(JsonbParseState **st, const char *key)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.len = strlen(key);
	v.val.string.val = (char *) key;
	pushJsonbValue(st, WJB_KEY, &v);
}

/* Push key: int64 number. */
void
JbInt8(JsonbParseState **st, const char *key, int64 n)
{
	JsonbValue	v;

	JbKey(st, key);
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(n);
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Push key: string. */
void
JbText(JsonbParseState **st, const char *key, const char *s)
{
	JsonbValue	v;

	JbKey(st, key);
	v.type = jbvString;
	v.val.string.len = strlen(s);
	v.val.string.val = (char *) s;
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Push key: boolean. */
void
JbBool(JsonbParseState **st, const char *key, bool b)
{
	JsonbValue	v;

	JbKey(st, key);
	v.type = jbvBool;
	v.val.boolean = b;
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Push key: null. */
void
JbNull(JsonbParseState **st, const char *key)
{
	JsonbValue	v;

	JbKey(st, key);
	v.type = jbvNull;
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Push key: ISO 8601 timestamp with time zone, as to_jsonb() writes it. */
void
JbTimestamp(JsonbParseState **st, const char *key, TimestampTz ts)
{
	/* allocated: the parse state keeps the pointer until the jsonb is built */
	JbText(st, key, JsonEncodeDateTime(NULL, TimestampTzGetDatum(ts), TIMESTAMPTZOID, NULL));
}

/* The contract's message object. */
Jsonb *
ChatMessageToJsonb(const ChatMessage *msg)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;
	int			i;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	JbInt8(&st, "chat_id", msg->chat_id);
	JbInt8(&st, "seq", msg->seq);
	JbInt8(&st, "cursor", msg->rev);
	JbInt8(&st, "sender_id", msg->sender_id);
	JbText(&st, "body", msg->body);
	JbTimestamp(&st, "created_at", msg->created_at);
	if (msg->has_edited_at)
		JbTimestamp(&st, "edited_at", msg->edited_at);
	else
		JbNull(&st, "edited_at");
	JbBool(&st, "deleted", msg->deleted);
	if (msg->has_client_id)
		JbText(&st, "client_id",
			   DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&msg->client_id))));
	else
		JbNull(&st, "client_id");

	JbKey(&st, "attachments");
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (i = 0; i < msg->natt; i++)
	{
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		JbInt8(&st, "id", msg->att[i].id);
		JbText(&st, "name", msg->att[i].name);
		JbText(&st, "content_type", msg->att[i].content_type);
		JbInt8(&st, "size", msg->att[i].size);
		pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);

	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* Order message pointers by seq. */
static int
MsgSeqCmp(const void *a, const void *b)
{
	int64		x = (*(ChatMessage *const *) a)->seq;
	int64		y = (*(ChatMessage *const *) b)->seq;

	return (x > y) - (x < y);
}

/* The message with this seq among with[0..n), sorted by seq, or NULL. */
static ChatMessage *
FindSeq(ChatMessage **with, int n, int64 seq)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (with[mid]->seq == seq)
			return with[mid];
		if (with[mid]->seq < seq)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/*
 * Attach attachment metadata to the messages of one chat that have any, with
 * one query for the whole page (never one per message). Deleted messages
 * show none. A page whose seqs lie close together (every history page)
 * reads one index range; scattered seqs are looked up with = ANY. Both are
 * kept as generic plans, and neither sorts: each row names its message
 * (found by binary search) and its place in it (position). Rows of other
 * messages in a range (deleted ones) are skipped.
 */
void
ChatLoadAttachments(ChatMessage *msgs, int n)
{
	static SPIPlanPtr plan_range = NULL;
	static SPIPlanPtr plan_any = NULL;
	static const Oid types_range[3] = {INT8OID, INT8OID, INT8OID};
	static const Oid types_any[2] = {INT8OID, INT8ARRAYOID};
	ChatMessage **with;
	Datum	   *seqs;
	int			nwith = 0;
	int			i,
				k;
	int64		lo,
				hi;
	Datum		values[3];
	uint64		r;

	with = palloc(sizeof(ChatMessage *) * Max(n, 1));
	for (i = 0; i < n; i++)
		if (msgs[i].n_attachments > 0 && !msgs[i].deleted)
		{
			msgs[i].att = palloc0(sizeof(ChatAttachment) * msgs[i].n_attachments);
			with[nwith++] = &msgs[i];
		}
	if (nwith == 0)
		return;
	qsort(with, nwith, sizeof(ChatMessage *), MsgSeqCmp);

	lo = with[0]->seq;
	hi = with[nwith - 1]->seq;
	values[0] = Int64GetDatum(with[0]->chat_id);
	if (hi - lo < (int64) nwith * CHAT_ATTACHMENT_RANGE_SLACK)
	{
		/* a history page, mostly: one index range */
		ChatPlanOnceOpts(&plan_range,
						 "SELECT message_seq, position, attachment_id, file_name, content_type, size "
						 "FROM chat.attachments WHERE chat_id = $1 AND message_seq BETWEEN $2 AND $3 "
						 "AND message_seq IS NOT NULL",
						 3, types_range, CURSOR_OPT_GENERIC_PLAN);
		values[1] = Int64GetDatum(lo);
		values[2] = Int64GetDatum(hi);
		ChatExec(plan_range, values, NULL, true, 0);
	}
	else
	{
		/* scattered seqs (catch_up after old edits): look each up */
		seqs = palloc(sizeof(Datum) * nwith);
		for (i = 0; i < nwith; i++)
			seqs[i] = Int64GetDatum(with[i]->seq);
		ChatPlanOnceOpts(&plan_any,
						 "SELECT message_seq, position, attachment_id, file_name, content_type, size "
						 "FROM chat.attachments WHERE chat_id = $1 AND message_seq = ANY ($2)",
						 2, types_any, CURSOR_OPT_GENERIC_PLAN);
		values[1] = PointerGetDatum(construct_array(seqs, nwith, INT8OID, 8, true, TYPALIGN_DOUBLE));
		ChatExec(plan_any, values, NULL, true, 0);
	}

	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		ChatMessage *msg = FindSeq(with, nwith, ChatGetInt8(tup, desc, 1, NULL));
		ChatAttachment *a;
		bool		isnull;
		Datum		d;
		int			pos;

		if (msg == NULL)
			continue;
		d = ChatGetDatum(tup, desc, 2, &isnull);
		pos = isnull ? -1 : DatumGetInt16(d);
		if (pos < 0 || pos >= msg->n_attachments || msg->att[pos].name != NULL)
			continue;
		a = &msg->att[pos];
		a->id = ChatGetInt8(tup, desc, 3, NULL);
		a->name = TextDatumGetCString(ChatGetDatum(tup, desc, 4, &isnull));
		a->content_type = TextDatumGetCString(ChatGetDatum(tup, desc, 5, &isnull));
		a->size = ChatGetInt8(tup, desc, 6, NULL);
	}

	/* close any gap (there is none unless rows were changed by hand) */
	for (i = 0; i < nwith; i++)
	{
		ChatMessage *msg = with[i];

		for (k = 0; k < msg->n_attachments; k++)
			if (msg->att[k].name != NULL)
				msg->att[msg->natt++] = msg->att[k];
	}
}
