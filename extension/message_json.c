/*
 * message_json.c: a chat.messages row as a C struct and as the jsonb message
 * object of the contract (attachments are loaded by attachment_read.c).
 */
#include "chat.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/json.h"
#include "utils/numeric.h"

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
