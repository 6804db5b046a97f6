/*
 * maintain_report.c: the jsonb report of a maintenance run.
 */
#include "chat.h"
#include "maintain_run.h"

/* Push a JSON array of strings. */
static void
ChatJbStrings(JsonbParseState **st, const char *key, List *list)
{
	ListCell   *lc;
	JsonbValue	v;

	ChatJbKey(st, key);
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, list)
	{
		v.type = jbvString;
		v.val.string.val = lfirst(lc);
		v.val.string.len = strlen(v.val.string.val);
		pushJsonbValue(st, WJB_ELEM, &v);
	}
	pushJsonbValue(st, WJB_END_ARRAY, NULL);
}

/* Push a JSON array of notes. */
static void
ChatJbNotes(JsonbParseState **st, const char *key, List *list, bool with_rows)
{
	ListCell   *lc;

	ChatJbKey(st, key);
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, list)
	{
		MaintNote  *n = lfirst(lc);

		pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
		ChatJbText(st, "partition", n->partition);
		if (with_rows)
			ChatJbInt8(st, "rows", n->rows);
		else
		{
			ChatJbText(st, "action", n->action);
			ChatJbText(st, "reason", n->reason);
		}
		pushJsonbValue(st, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(st, WJB_END_ARRAY, NULL);
}

/* The report of a run. */
Jsonb *
ChatMaintReport(MaintRun *run, long ms)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	ChatJbTimestamp(&st, "at", run->at);
	ChatJbInt8(&st, "premake_months", run->premake);
	ChatJbInt8(&st, "retention_months", run->retention);
	ChatJbText(&st, "retention_action", run->action == CHAT_RETENTION_DROP ? "drop" : "detach");
	ChatJbStrings(&st, "created", run->created);
	ChatJbInt8(&st, "moved_rows", run->moved);
	ChatJbNotes(&st, "rescued", run->rescued, true);
	ChatJbStrings(&st, "dropped", run->dropped);
	ChatJbStrings(&st, "archived", run->archived);
	ChatJbStrings(&st, "attachment_keys", run->keys);
	ChatJbNotes(&st, "deferred", run->deferred, false);
	ChatJbNotes(&st, "skipped", run->skipped, false);
	ChatJbInt8(&st, "duration_ms", ms);
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}
