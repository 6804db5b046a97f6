/*
 * checks.c: argument validation and the membership check every call starts with.
 */
#include "chat.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"

/* Refuse a NULL argument with 22023 naming it. */
void
ChatRequireArg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null", name)));
}

/* Page sizes are 1 to CHAT_MAX_PAGE. */
void
ChatCheckPageSize(int32 page_size)
{
	if (page_size < 1 || page_size > CHAT_MAX_PAGE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("page_size must be between 1 and %d, not %d", CHAT_MAX_PAGE, page_size)));
}

/* A body is not blank (unless allowed) and at most chat.max_body_length characters. */
void
ChatCheckBody(const char *body, bool allow_empty)
{
	int			len = strlen(body);
	int			chars;
	const char *p;

	if (!allow_empty)
	{
		for (p = body; *p && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'); p++)
			;
		if (*p == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("message body must not be empty")));
	}
	/* bytes bound characters from above: count only when it matters */
	if (len > chat_max_body_length)
	{
		chars = pg_mbstrlen_with_len(body, len);
		if (chars > chat_max_body_length)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("message body is %d characters long, the limit is %d", chars, chat_max_body_length),
					 errhint("The limit is set by chat.max_body_length.")));
	}
}

/*
 * The one refusal for a chat that does not exist, a non-member and a blocked
 * sender: same SQLSTATE, same words, so chat ids cannot be probed.
 */
void
ChatDenied(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("chat not found or access denied")));
}

/*
 * Check that user_id is a member of chat_id and read the chat's summary;
 * for_update takes the chat row lock that orders every write of the chat.
 */
void
ChatLoadAccess(int64 user_id, int64 chat_id, bool for_update, ChatAccess *acc)
{
	static SPIPlanPtr plan_read = NULL;
	static SPIPlanPtr plan_lock = NULL;
	static const Oid types[2] = {INT8OID, INT8OID};
#define ACCESS_SQL \
	"SELECT c.created_at, c.last_message_at, c.last_seq, c.last_rev, " \
	CHAT_IS_BLOCKED_SQL("c.chat_id", "$2") " FROM chat.chats c " \
	"WHERE c.chat_id = $1 AND " CHAT_IS_MEMBER_SQL("$1", "$2")
	SPIPlanPtr	plan;
	Datum		values[2];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	ChatPlanOnce(&plan_read, ACCESS_SQL, 2, types);
	ChatPlanOnce(&plan_lock, ACCESS_SQL " FOR UPDATE OF c", 2, types);
	plan = for_update ? plan_lock : plan_read;

	values[0] = Int64GetDatum(chat_id);
	values[1] = Int64GetDatum(user_id);
	ChatExec(plan, values, NULL, !for_update, 1);
	if (SPI_processed != 1)
		ChatDenied();

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	acc->chat_id = chat_id;
	acc->created_at = DatumGetTimestampTz(ChatGetDatum(tup, desc, 1, &isnull));
	acc->last_message_at = DatumGetTimestampTz(ChatGetDatum(tup, desc, 2, &isnull));
	acc->has_last_message = !isnull;
	acc->last_seq = ChatGetInt8(tup, desc, 3, NULL);
	acc->last_rev = ChatGetInt8(tup, desc, 4, NULL);
	acc->blocked = DatumGetBool(ChatGetDatum(tup, desc, 5, &isnull));
}
