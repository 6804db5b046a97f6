/*
 * notify_prefs.c: set_notify_prefs, notify_prefs.
 *
 * chat.notify_prefs keeps the keys a user set (null values dropped); both
 * functions answer with every key, the defaults filling the rest.
 */
#include "chat.h"
#include "notify.h"

#include "catalog/pg_type.h"
#include "utils/jsonb.h"

PG_FUNCTION_INFO_V1(chat_set_notify_prefs);
PG_FUNCTION_INFO_V1(chat_notify_prefs);

/* Every key with its default (docs/notifications.md, "Preferences"). */
#define PREFS_DEFAULTS \
	"'{\"email\": \"10min\", \"email_address\": null, \"push\": true, \"preview\": true, " \
	"\"language\": \"en\"}'::jsonb"

#define EMAIL_ADDRESS_MAX 254

static const char *const email_modes[] = {"off", "immediately", "10min", "hourly", "daily", NULL};
static const char *const languages[] = {"en", "ru", "sr", NULL};

/* Is the string value v one of names? */
static bool
OneOf(const JsonbValue *v, const char *const *names)
{
	const char *const *n;

	if (v->type != jbvString)
		return false;
	for (n = names; *n; n++)
		if ((int) strlen(*n) == v->val.string.len && memcmp(*n, v->val.string.val, v->val.string.len) == 0)
			return true;
	return false;
}

/* An email address: at most 254 bytes, one '@' with text on both sides, no spaces or control characters. */
static void
CheckEmailAddress(const JsonbValue *v)
{
	const char *s = v->val.string.val;
	int			len = v->val.string.len;
	int			at = -1;
	int			i;

	if (len > EMAIL_ADDRESS_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("email_address is %d bytes long, the limit is %d", len, EMAIL_ADDRESS_MAX)));
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c <= ' ' || c == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("email_address must not contain spaces or control characters")));
		if (c == '@')
		{
			if (at >= 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("email_address must contain one \"@\", not more")));
			at = i;
		}
	}
	if (at <= 0 || at == len - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("email_address must be an address: name@domain")));
}

/* Check the value of one preference key. */
static void
CheckPref(const char *key, const JsonbValue *v)
{
	if (strcmp(key, "email") == 0)
	{
		if (!OneOf(v, email_modes))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("email must be off, immediately, 10min, hourly or daily")));
	}
	else if (strcmp(key, "email_address") == 0)
	{
		if (v->type == jbvString)
			CheckEmailAddress(v);
		else if (v->type != jbvNull)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("email_address must be a string or null")));
	}
	else if (strcmp(key, "push") == 0 || strcmp(key, "preview") == 0)
	{
		if (v->type != jbvBool)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must be true or false", key)));
	}
	else if (strcmp(key, "language") == 0)
	{
		if (!OneOf(v, languages))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("language must be en, ru or sr")));
	}
	else
		elog(ERROR, "chat: preference \"%s\" has no check", key);
}

/* Check every key and value of a prefs argument. */
static void
CheckPrefs(JsonbContainer *obj)
{
	static const char *const keys[] = {"email", "email_address", "push", "preview", "language", NULL};
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	ChatJsonbOnlyKeys(obj, "prefs", keys);
	it = JsonbIteratorInit(obj);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
			CheckPref(key, &v);
	}
}

/* set_notify_prefs(user_id, prefs) → every preference, prefs merged in */
Datum
chat_set_notify_prefs(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, JSONBOID};
	MemoryContext outer = CurrentMemoryContext;
	Jsonb	   *prefs;
	Datum		v[2];
	bool		isnull;
	Jsonb	   *out;

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "prefs");
	prefs = PG_GETARG_JSONB_P(1);
	CheckPrefs(ChatJsonbObjectArg(prefs, "prefs"));

	SPI_connect();
	ChatPlanOnce(&plan,
				 "INSERT INTO chat.notify_prefs AS p (user_id, prefs) VALUES ($1, jsonb_strip_nulls($2)) "
				 "ON CONFLICT (user_id) DO UPDATE SET prefs = jsonb_strip_nulls(p.prefs || $2), updated_at = now() "
				 "RETURNING " PREFS_DEFAULTS " || p.prefs",
				 2, types);
	v[0] = PG_GETARG_DATUM(0);
	v[1] = JsonbPGetDatum(prefs);
	ChatExec(plan, v, NULL, false, 0);
	out = ChatCopyOut(outer, DatumGetJsonbP(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)));
	SPI_finish();
	PG_RETURN_JSONB_P(out);
}

/* notify_prefs(user_id) → every preference */
Datum
chat_notify_prefs(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	MemoryContext outer = CurrentMemoryContext;
	Datum		v[1];
	bool		isnull;
	Jsonb	   *out;

	ChatRequireArg(fcinfo, 0, "user_id");
	v[0] = PG_GETARG_DATUM(0);
	SPI_connect();
	ChatPlanOnce(&plan,
				 "SELECT " PREFS_DEFAULTS " || coalesce((SELECT prefs FROM chat.notify_prefs WHERE user_id = $1), '{}')",
				 1, types);
	ChatExec(plan, v, NULL, true, 1);
	out = ChatCopyOut(outer, DatumGetJsonbP(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)));
	SPI_finish();
	PG_RETURN_JSONB_P(out);
}
