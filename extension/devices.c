/*
 * devices.c: register_device, unregister_device.
 *
 * A device is a push token: a browser's Web Push subscription, an FCM
 * registration token or an APNs device token. The token is the key: the
 * same one registered again is the same device, and registered by another
 * user it moves to them (a device changes hands at sign-in).
 */
#include "chat.h"
#include "notify.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include <ctype.h>

PG_FUNCTION_INFO_V1(chat_register_device);
PG_FUNCTION_INFO_V1(chat_unregister_device);

#define FCM_TOKEN_MAX	4096
#define APNS_TOKEN_HEX	64
#define P256DH_BYTES	65		/* an uncompressed P-256 point */
#define AUTH_BYTES		16

/* A token checked: its key (address) and what is stored (token). */
typedef struct Device
{
	char	   *address;
	Jsonb	   *token;
} Device;

/* Check that key of webpush keys is base64url of exactly n bytes; returns the text. */
static char *
PushKey(JsonbContainer *keys, const char *key, int n)
{
	char	   *s = ChatJsonbString(keys, "webpush token keys", key, true);
	unsigned char buf[P256DH_BYTES + 1];
	int			got = ChatBase64Decode(s, true, buf, sizeof(buf));

	if (got != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webpush token keys.%s must be base64url of %d bytes", key, n)));
	if (n == P256DH_BYTES && buf[0] != 0x04)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webpush token keys.p256dh must be an uncompressed P-256 point (its first byte 0x04)")));
	return s;
}

/* webpush: PushSubscription.toJSON(); the endpoint is the key. */
static void
WebPush(JsonbContainer *obj, Device *dev)
{
	static const char *const top[] = {"endpoint", "keys", "expirationTime", NULL};
	static const char *const keynames[] = {"p256dh", "auth", NULL};
	JsonbValue *keys;
	char	   *p256dh,
			   *auth;
	JsonbParseState *st = NULL;

	ChatJsonbOnlyKeys(obj, "a webpush token", top);
	dev->address = ChatJsonbString(obj, "a webpush token", "endpoint", true);
	ChatCheckUrl("the webpush endpoint", dev->address, true);
	keys = ChatJsonbField(obj, "keys");
	if (keys == NULL || keys->type != jbvBinary || !JsonContainerIsObject(keys->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a webpush token needs \"keys\", an object with p256dh and auth")));
	ChatJsonbOnlyKeys(keys->val.binary.data, "webpush token keys", keynames);
	p256dh = PushKey(keys->val.binary.data, "p256dh", P256DH_BYTES);
	auth = PushKey(keys->val.binary.data, "auth", AUTH_BYTES);

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	ChatJbText(&st, "endpoint", dev->address);
	ChatJbKey(&st, "keys");
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	ChatJbText(&st, "p256dh", p256dh);
	ChatJbText(&st, "auth", auth);
	pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	dev->token = JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

/* fcm: {"token": 1 to 4,096 bytes of [A-Za-z0-9:_-]}. */
static void
Fcm(JsonbContainer *obj, Device *dev)
{
	static const char *const top[] = {"token", NULL};
	JsonbParseState *st = NULL;
	const char *p;
	int			len;

	ChatJsonbOnlyKeys(obj, "an fcm token", top);
	dev->address = ChatJsonbString(obj, "an fcm token", "token", true);
	len = strlen(dev->address);
	for (p = dev->address; *p; p++)
		if (!isalnum((unsigned char) *p) && *p != ':' && *p != '_' && *p != '-')
			break;
	if (len == 0 || len > FCM_TOKEN_MAX || *p)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an fcm token must be 1 to %d characters of A-Z, a-z, 0-9, ':', '_' and '-'",
						FCM_TOKEN_MAX)));
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	ChatJbText(&st, "token", dev->address);
	dev->token = JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

/* apns: {"token": 64 hex digits, "environment": "production" | "sandbox"}. */
static void
Apns(JsonbContainer *obj, Device *dev)
{
	static const char *const top[] = {"token", "environment", NULL};
	JsonbParseState *st = NULL;
	char	   *env;
	int			i;

	ChatJsonbOnlyKeys(obj, "an apns token", top);
	dev->address = ChatJsonbString(obj, "an apns token", "token", true);
	for (i = 0; dev->address[i] && isxdigit((unsigned char) dev->address[i]); i++)
		dev->address[i] = tolower((unsigned char) dev->address[i]);
	if (i != APNS_TOKEN_HEX || dev->address[i])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an apns token must be %d hexadecimal digits", APNS_TOKEN_HEX)));
	env = ChatJsonbString(obj, "an apns token", "environment", false);
	if (env == NULL)
		env = "production";
	if (strcmp(env, "production") != 0 && strcmp(env, "sandbox") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an apns token's environment must be production or sandbox, not \"%s\"", env)));
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	ChatJbText(&st, "token", dev->address);
	ChatJbText(&st, "environment", env);
	dev->token = JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

/* Refuse a user id no user can have (see CHAT_MAX_USER_ID). */
static void
CheckUserId(int64 user_id)
{
	if (user_id < 1 || user_id > CHAT_MAX_USER_ID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("user_id must be between 1 and " INT64_FORMAT ", not " INT64_FORMAT,
						CHAT_MAX_USER_ID, user_id)));
}

/* register_device(user_id, kind, token) → device_id */
Datum
chat_register_device(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {INT8OID, TEXTOID, TEXTOID, JSONBOID};
	int64		user_id;
	char	   *kind;
	JsonbContainer *obj;
	Device		dev;
	Datum		v[4];
	int64		device_id;

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "kind");
	ChatRequireArg(fcinfo, 2, "token");
	user_id = PG_GETARG_INT64(0);
	kind = text_to_cstring(PG_GETARG_TEXT_PP(1));
	CheckUserId(user_id);
	obj = ChatJsonbObjectArg(PG_GETARG_JSONB_P(2), "token");
	if (strcmp(kind, "webpush") == 0)
		WebPush(obj, &dev);
	else if (strcmp(kind, "fcm") == 0)
		Fcm(obj, &dev);
	else if (strcmp(kind, "apns") == 0)
		Apns(obj, &dev);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown device kind \"%s\"", kind),
				 errhint("Use webpush, fcm or apns.")));

	SPI_connect();
	ChatPlanOnce(&plan,
				 "INSERT INTO chat.devices AS d (user_id, kind, address, token, address_hash) "
				 "VALUES ($1, $2, $3, $4, sha256(convert_to($3, 'UTF8'))) "
				 "ON CONFLICT (kind, address_hash) DO UPDATE SET user_id = excluded.user_id, "
				 "  address = excluded.address, token = excluded.token, updated_at = now() "
				 "RETURNING d.device_id",
				 4, types);
	v[0] = Int64GetDatum(user_id);
	v[1] = CStringGetTextDatum(kind);
	v[2] = CStringGetTextDatum(dev.address);
	v[3] = JsonbPGetDatum(dev.token);
	ChatExec(plan, v, NULL, false, 0);
	if (SPI_processed != 1)
		elog(ERROR, "chat: device insert returned %llu rows", (unsigned long long) SPI_processed);
	device_id = ChatGetInt8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, NULL);
	SPI_finish();
	PG_RETURN_INT64(device_id);
}

/*
 * unregister_device(user_id, device_id): one's own devices only; another's
 * and a missing one get the one access refusal.
 */
Datum
chat_unregister_device(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, INT8OID};
	Datum		v[2];

	ChatRequireArg(fcinfo, 0, "user_id");
	ChatRequireArg(fcinfo, 1, "device_id");
	v[0] = PG_GETARG_DATUM(0);
	v[1] = PG_GETARG_DATUM(1);
	SPI_connect();
	ChatPlanOnce(&plan, "DELETE FROM chat.devices WHERE user_id = $1 AND device_id = $2", 2, types);
	ChatExec(plan, v, NULL, false, 0);
	if (SPI_processed != 1)
		ChatDenied();
	SPI_finish();
	PG_RETURN_VOID();
}
