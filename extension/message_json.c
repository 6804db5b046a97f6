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
ChatJbKey(JsonbParseState **st, const char *key)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.len = strlen(key);
	v.val.string.val = (char *) key;
	pushJsonbValue(st, WJB_KEY, &v);
}

/* Push key: int64 number. */
void
ChatJbInt8(JsonbParseState **st, const char *key, int64 n)
{
	JsonbValue	v;

	ChatJbKey(st, key);
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(n);
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Push key: string. */
void
ChatJbText(JsonbParseState **st, const char *key, const char *s)
{
	JsonbValue	v;

	ChatJbKey(st, key);
	v.type = jbvString;
	v.val.string.len = strlen(s);
	v.val.string.val = (char *) s;
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Push key: boolean. */
void
ChatJbBool(JsonbParseState **st, const char *key, bool b)
{
	JsonbValue	v;

	ChatJbKey(st, key);
	v.type = jbvBool;
	v.val.boolean = b;
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Push key: null. */
void
ChatJbNull(JsonbParseState **st, const char *key)
{
	JsonbValue	v;

	ChatJbKey(st, key);
	v.type = jbvNull;
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Push key: ISO 8601 timestamp with time zone, as to_jsonb() writes it. */
void
ChatJbTimestamp(JsonbParseState **st, const char *key, TimestampTz ts)
{
	/* allocated: the parse state keeps the pointer until the jsonb is built */
	ChatJbText(st, key, JsonEncodeDateTime(NULL, TimestampTzGetDatum(ts), TIMESTAMPTZOID, NULL));
}

/* A jsonb string value (s is not copied). */
static void
SetString(JsonbValue *v, const char *s)
{
	v->type = jbvString;
	v->val.string.val = (char *) s;
	v->val.string.len = strlen(s);
}

/* A jsonb number value. */
static void
SetInt8(JsonbValue *v, int64 n)
{
	v->type = jbvNumeric;
	v->val.numeric = int64_to_numeric(n);
}

/* The next pair of an object being filled in jsonb key order. */
static JsonbValue *
Pair(JsonbValue *obj, const char *key)
{
	JsonbPair  *p = &obj->val.object.pairs[obj->val.object.nPairs];

	SetString(&p->key, key);
	p->order = obj->val.object.nPairs++;
	return &p->value;
}

/* An empty object with room for n pairs. */
static void
InitObject(JsonbValue *obj, int n)
{
	obj->type = jbvObject;
	obj->val.object.nPairs = 0;
	obj->val.object.pairs = palloc(sizeof(JsonbPair) * n);
}

/*
 * The contract's message object. Built as a JsonbValue tree whose keys are
 * already in jsonb's order (shorter keys first, then bytewise), which
 * JsonbValueToJsonb takes as it is: no push-down parser state and no key
 * sort per object, which matters on pages with many attachments.
 */
Jsonb *
ChatMessageToJsonb(const ChatMessage *msg)
{
	return ChatPageMessageToJsonb(msg, false);
}

/* The same, as the last row of a page cut by the byte budget when more is set. */
Jsonb *
ChatPageMessageToJsonb(const ChatMessage *msg, bool more)
{
	JsonbValue	root;
	JsonbValue *v;
	int			i;

	InitObject(&root, 11);
	SetInt8(Pair(&root, "seq"), msg->seq);
	SetString(Pair(&root, "body"), msg->body);
	if (more)
	{
		v = Pair(&root, "more");
		v->type = jbvBool;
		v->val.boolean = true;
	}
	SetInt8(Pair(&root, "cursor"), msg->rev);
	SetInt8(Pair(&root, "chat_id"), msg->chat_id);
	v = Pair(&root, "deleted");
	v->type = jbvBool;
	v->val.boolean = msg->deleted;
	v = Pair(&root, "client_id");
	if (msg->has_client_id)
		SetString(v, DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&msg->client_id))));
	else
		v->type = jbvNull;
	v = Pair(&root, "edited_at");
	if (msg->has_edited_at)
		SetString(v, JsonEncodeDateTime(NULL, TimestampTzGetDatum(msg->edited_at), TIMESTAMPTZOID, NULL));
	else
		v->type = jbvNull;
	SetInt8(Pair(&root, "sender_id"), msg->sender_id);
	SetString(Pair(&root, "created_at"),
			  JsonEncodeDateTime(NULL, TimestampTzGetDatum(msg->created_at), TIMESTAMPTZOID, NULL));

	v = Pair(&root, "attachments");
	v->type = jbvArray;
	v->val.array.rawScalar = false;
	v->val.array.nElems = msg->natt;
	v->val.array.elems = palloc(sizeof(JsonbValue) * Max(msg->natt, 1));
	for (i = 0; i < msg->natt; i++)
	{
		JsonbValue *a = &v->val.array.elems[i];

		InitObject(a, 4);
		SetInt8(Pair(a, "id"), msg->att[i].id);
		SetString(Pair(a, "name"), msg->att[i].name);
		SetInt8(Pair(a, "size"), msg->att[i].size);
		SetString(Pair(a, "content_type"), msg->att[i].content_type);
	}
	return JsonbValueToJsonb(&root);
}
