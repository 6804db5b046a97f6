/*
 * maintain_report.c: the jsonb report of a maintenance run.
 */
#include "chat.h"
#include "maintain_run.h"

/* Push a JSON array of strings. */
static void
JbStrings(JsonbParseState **st, const char *key, List *list)
{
	ListCell   *lc;
	JsonbValue	v;

	JbKey(st, key);
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
JbNotes(JsonbParseState **st, const char *key, List *list, bool with_rows)
{
	ListCell   *lc;

	JbKey(st, key);
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, list)
	{
		MaintNote  *n = lfirst(lc);

		pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
		JbText(st, "partition", n->partition);
		if (with_rows)
			JbInt8(st, "rows", n->rows);
		else
		{
			JbText(st, "action", n->action);
			JbText(st, "reason", n->reason);
		}
		pushJsonbValue(st, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(st, WJB_END_ARRAY, NULL);
}

/* The report of a run. */
Jsonb *
MaintReport(MaintRun *run, long ms)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	JbTimestamp(&st, "at", run->at);
	JbInt8(&st, "premake_months", run->premake);
	JbInt8(&st, "retention_months", run->retention);
	JbText(&st, "retention_action", run->action == CHAT_RETENTION_DROP ? "drop" : "detach");
	JbStrings(&st, "created", run->created);
	JbInt8(&st, "moved_rows", run->moved);
	JbNotes(&st, "rescued", run->rescued, true);
	JbStrings(&st, "dropped", run->dropped);
	JbStrings(&st, "archived", run->archived);
	JbStrings(&st, "attachment_keys", run->keys);
	JbNotes(&st, "deferred", run->deferred, false);
	JbNotes(&st, "skipped", run->skipped, false);
	JbInt8(&st, "duration_ms", ms);
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}
