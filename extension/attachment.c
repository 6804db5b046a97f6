/*
 * attachment.c: attachment_upload, attachment_url and expire_uploads.
 *
 * Bytes never pass through the database: an upload registers a pending row
 * in chat.attachments and returns a presigned PUT URL whose signature covers
 * the approved content type and exact length, so the object store refuses
 * any other upload. send_message links pending rows to a message
 * (api_message.c); attachment_url mints a presigned GET for members.
 * Pending rows never linked expire; expire_uploads lists their object keys
 * (with presigned DELETE URLs) for the caller to delete from the store.
 */
#include "chat.h"
#include "partitions.h"
#include "s3.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(chat_attachment_upload);
PG_FUNCTION_INFO_V1(chat_attachment_url);
PG_FUNCTION_INFO_V1(chat_expire_uploads);

/* random bytes in an object key */
#define CHAT_KEY_RANDOM_BYTES	16

/* The user's pending uploads that have not expired. */
static int64
PendingUploads(int64 user_id, TimestampTz since)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2];

	ChatPlanOnce(&plan,
				 "SELECT count(*) FROM chat.attachments "
				 "WHERE uploader_id = $1 AND message_seq IS NULL AND created_at > $2",
				 2, types);
	values[0] = Int64GetDatum(user_id);
	values[1] = TimestampTzGetDatum(since);
	ChatExec(plan, values, NULL, true, 1);
	return ChatGetInt8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, NULL);
}

/* A fresh object key made by the server: chat/<chat id>/<128 random bits in hex>. */
static char *
NewObjectKey(int64 chat_id)
{
	uint8		rnd[CHAT_KEY_RANDOM_BYTES];
	StringInfoData buf;
	int			i;

	if (!pg_strong_random(rnd, sizeof(rnd)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random object key")));
	initStringInfo(&buf);
	appendStringInfo(&buf, "chat/%lld/", (long long) chat_id);
	for (i = 0; i < CHAT_KEY_RANDOM_BYTES; i++)
		appendStringInfo(&buf, "%02x", rnd[i]);
	return buf.data;
}

/* Insert the pending row and return its id. */
static int64
InsertPending(int64 chat_id, int64 user_id, const char *key, const char *name,
			  const char *content_type, int64 size)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[6] = {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[6];

	ChatPlanOnce(&plan,
				 "INSERT INTO chat.attachments "
				 "  (chat_id, uploader_id, object_key, file_name, content_type, size) "
				 "VALUES ($1, $2, $3, $4, $5, $6) RETURNING attachment_id",
				 6, types);
	values[0] = Int64GetDatum(chat_id);
	values[1] = Int64GetDatum(user_id);
	values[2] = CStringGetTextDatum(key);
	values[3] = CStringGetTextDatum(name);
	values[4] = CStringGetTextDatum(content_type);
	values[5] = Int64GetDatum(size);
	if (ChatExec(plan, values, NULL, false, 0) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "chat: attachment insert failed");
	return ChatGetInt8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, NULL);
}

/* attachment_upload's answer; headers are Content-Type and Content-Length. */
static Jsonb *
UploadJsonb(int64 attachment_id, const char *url, const ChatKV *headers, TimestampTz expires_at,
			const char *name, int64 size, const char *kind)
{
	JsonbParseState *js = NULL;

	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	ChatJbInt8(&js, "attachment_id", attachment_id);
	ChatJbText(&js, "method", "PUT");
	ChatJbText(&js, "url", url);
	ChatJbKey(&js, "headers");
	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	ChatJbText(&js, headers[0].name, headers[0].value);
	ChatJbText(&js, headers[1].name, headers[1].value);
	pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	ChatJbTimestamp(&js, "expires_at", expires_at);
	ChatJbText(&js, "name", name);
	ChatJbText(&js, "content_type", headers[0].value);
	ChatJbInt8(&js, "size", size);
	ChatJbText(&js, "kind", kind);
	return JsonbValueToJsonb(pushJsonbValue(&js, WJB_END_OBJECT, NULL));
}

/*
 * attachment_upload(user_id, chat_id, file_name, content_type, size) → jsonb
 * {attachment_id, method, url, headers, expires_at, name, content_type, size, kind}
 */
Datum
chat_attachment_upload(PG_FUNCTION_ARGS)
{
	MemoryContext outer = CurrentMemoryContext;
	int64		user_id,
				chat_id,
				size,
				attachment_id;
	char	   *name,
			   *content_type,
			   *kind,
			   *key,
			   *url;
	char		size_text[32];
	ChatStorage st;
	ChatAccess	acc;
	ChatKV		headers[2];
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz expires_at;
	Jsonb	   *json;
	int64		pending;

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "chat_id");
	ChatRequireArg(fcinfo, 2, "file_name");
	ChatRequireArg(fcinfo, 3, "content_type");
	ChatRequireArg(fcinfo, 4, "size");
	user_id = PG_GETARG_INT64(0);
	chat_id = PG_GETARG_INT64(1);
	name = text_to_cstring(PG_GETARG_TEXT_PP(2));
	content_type = ChatNormalizeContentType(text_to_cstring(PG_GETARG_TEXT_PP(3)));
	size = PG_GETARG_INT64(4);
	if (*name == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file_name must not be empty")));
	if (size < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("size must be positive, not %lld", (long long) size)));
	name = ChatCleanFileName(name);

	SPI_connect();
	ChatLoadStorage(&st, true);
	ChatLoadAccess(user_id, chat_id, false, &acc);
	/* an upload is only good for sending, which a block refuses */
	if (acc.blocked)
		ChatDenied();
	kind = ChatCheckUpload(content_type, size, st.max_upload_size);

	ChatLockUser(user_id, CHAT_LOCK_UPLOADS);	/* the pending cap holds */
	pending = PendingUploads(user_id, now - st.pending_upload_ttl * USECS_PER_SEC);
	if (pending >= st.max_pending_uploads)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many pending uploads: %lld, the limit is %d",
						(long long) pending, st.max_pending_uploads),
				 errhint("Send the uploaded attachments with a message, or wait until unsent ones expire.")));

	key = NewObjectKey(chat_id);
	attachment_id = InsertPending(chat_id, user_id, key, name, content_type, size);

	/* the store accepts exactly this type and length under this signature */
	snprintf(size_text, sizeof(size_text), "%lld", (long long) size);
	headers[0].name = "Content-Type";
	headers[0].value = content_type;
	headers[1].name = "Content-Length";
	headers[1].value = size_text;
	url = ChatPresign(&st.public, "PUT", key, st.upload_url_lifetime, now, headers, 2, NULL, 0);
	expires_at = now - now % USECS_PER_SEC + (int64) st.upload_url_lifetime * USECS_PER_SEC;

	json = ChatCopyOut(outer, UploadJsonb(attachment_id, url, headers, expires_at, name, size, kind));
	SPI_finish();
	PG_RETURN_JSONB_P(json);
}

/*
 * attachment_url(user_id, attachment_id, expires_s, inline) → text: a
 * presigned GET. Members of the attachment's chat may have one for an
 * attachment of a message that is not deleted; a pending upload only its
 * uploader. Everyone else gets the chat refusal, whether or not the id exists.
 */
Datum
chat_attachment_url(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	MemoryContext outer = CurrentMemoryContext;
	int64		user_id,
				attachment_id,
				chat_id,
				uploader_id,
				seq;
	int32		expires_s;
	bool		inline_,
				pending,
				isnull;
	ChatStorage st;
	ChatAccess	acc;
	ChatMessage msg;
	ChatPartition *part;
	HeapTuple	tup;
	TupleDesc	desc;
	Datum		values[1];
	char	   *key,
			   *name;
	TimestampTz created_at;
	ChatKV		query[1];
	char	   *url_str;
	MemoryContext spi_cxt;
	text	   *url;

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "attachment_id");
	ChatRequireArg(fcinfo, 3, "inline");
	user_id = PG_GETARG_INT64(0);
	attachment_id = PG_GETARG_INT64(1);
	inline_ = PG_GETARG_BOOL(3);

	SPI_connect();
	ChatLoadStorage(&st, true);
	expires_s = PG_ARGISNULL(2) ? st.default_url_lifetime : PG_GETARG_INT32(2);
	if (expires_s < 1 || expires_s > st.max_url_lifetime)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expires_s must be between 1 and %d, not %d", st.max_url_lifetime, expires_s),
				 errhint("The maximum is chat.storage_config.max_url_lifetime.")));

	ChatPlanOnce(&plan,
				 "SELECT chat_id, uploader_id, message_seq, object_key, file_name, created_at "
				 "FROM chat.attachments WHERE attachment_id = $1",
				 1, types);
	values[0] = Int64GetDatum(attachment_id);
	ChatExec(plan, values, NULL, true, 1);
	if (SPI_processed != 1)
		ChatDenied();
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	chat_id = ChatGetInt8(tup, desc, 1, NULL);
	uploader_id = ChatGetInt8(tup, desc, 2, NULL);
	seq = ChatGetInt8(tup, desc, 3, &pending);
	key = TextDatumGetCString(ChatGetDatum(tup, desc, 4, &isnull));
	name = TextDatumGetCString(ChatGetDatum(tup, desc, 5, &isnull));
	created_at = DatumGetTimestampTz(ChatGetDatum(tup, desc, 6, &isnull));

	ChatLoadAccess(user_id, chat_id, false, &acc);
	if (pending)
	{
		/* not sent yet: the uploader's own, until it expires */
		if (uploader_id != user_id ||
			created_at <= GetCurrentTimestamp() - st.pending_upload_ttl * USECS_PER_SEC)
			ChatDenied();
	}
	else if (!ChatFindMessage(&acc, seq, &part, &msg) || msg.deleted)
		ChatDenied();

	query[0].name = "response-content-disposition";
	query[0].value = ChatContentDisposition(name, inline_);
	url_str = ChatPresign(&st.public, "GET", key, expires_s, GetCurrentTimestamp(), NULL, 0, query, 1);
	spi_cxt = MemoryContextSwitchTo(outer);
	url = cstring_to_text(url_str);
	MemoryContextSwitchTo(spi_cxt);
	SPI_finish();
	PG_RETURN_TEXT_P(url);
}

/*
 * expire_uploads(at, max_rows) → jsonb {expired, bucket, objects, more}:
 * delete up to max_rows pending uploads older than the pending TTL at `at`
 * and list their object keys, with presigned DELETE URLs for the internal
 * endpoint when storage is configured. Delete the objects, then commit; a
 * store answers a DELETE of a missing object with success, so retrying after
 * a failure is safe.
 */
Datum
chat_expire_uploads(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TIMESTAMPTZOID, INT4OID};
	MemoryContext outer = CurrentMemoryContext;
	TimestampTz at;
	int32		max_rows;
	ChatStorage st;
	bool		can_sign;
	Datum		values[2];
	JsonbParseState *js = NULL;
	JsonbValue *res;
	Jsonb	   *json;
	TimestampTz now = GetCurrentTimestamp();
	uint64		r,
				n;

	ChatRequireArg(fcinfo, 0, "at");
	ChatRequireArg(fcinfo, 1, "max_rows");
	at = PG_GETARG_TIMESTAMPTZ(0);
	max_rows = PG_GETARG_INT32(1);
	if (max_rows < 1 || max_rows > 100000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows must be between 1 and 100000, not %d", max_rows)));
	if (TIMESTAMP_NOT_FINITE(at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at must be a finite time")));

	SPI_connect();
	ChatLoadStorage(&st, false);
	can_sign = st.internal.endpoint && st.internal.bucket && st.internal.access_key && st.internal.secret_key;

	/* picked once: as an IN (…) subquery it could be run again per row, past max_rows */
	ChatPlanOnce(&plan,
				 "WITH picked AS MATERIALIZED ("
				 "  SELECT attachment_id FROM chat.attachments "
				 "  WHERE message_seq IS NULL AND created_at <= $1 "
				 "  ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
				 "DELETE FROM chat.attachments a USING picked "
				 "WHERE a.attachment_id = picked.attachment_id AND a.message_seq IS NULL "
				 "RETURNING a.attachment_id, a.chat_id, a.object_key",
				 2, types);
	values[0] = TimestampTzGetDatum(at - st.pending_upload_ttl * USECS_PER_SEC);
	values[1] = Int32GetDatum(max_rows);
	ChatExec(plan, values, NULL, false, 0);
	n = SPI_processed;

	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	ChatJbInt8(&js, "expired", (int64) n);
	if (st.internal.bucket)
		ChatJbText(&js, "bucket", st.internal.bucket);
	else
		ChatJbNull(&js, "bucket");
	ChatJbKey(&js, "objects");
	pushJsonbValue(&js, WJB_BEGIN_ARRAY, NULL);
	for (r = 0; r < n; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *key = TextDatumGetCString(ChatGetDatum(tup, desc, 3, &isnull));

		pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
		ChatJbInt8(&js, "attachment_id", ChatGetInt8(tup, desc, 1, NULL));
		ChatJbInt8(&js, "chat_id", ChatGetInt8(tup, desc, 2, NULL));
		ChatJbText(&js, "object_key", key);
		if (can_sign)
			ChatJbText(&js, "delete_url",
				   ChatPresign(&st.internal, "DELETE", key, st.default_url_lifetime, now, NULL, 0, NULL, 0));
		pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&js, WJB_END_ARRAY, NULL);
	ChatJbBool(&js, "more", n == (uint64) max_rows);
	res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	json = ChatCopyOut(outer, JsonbValueToJsonb(res));
	SPI_finish();
	PG_RETURN_JSONB_P(json);
}
