/*
 * notify_checks.c: the argument checks devices, preferences and webhooks
 * share: event type names, URLs, strict base64, jsonb objects.
 */
#include "chat.h"
#include "notify.h"

#include "lib/stringinfo.h"

#include <ctype.h>

/* In bit order: CHAT_WH_MESSAGE is "message", and so on. */
static const char *const type_names[CHAT_WH_NTYPES] = {
	"message", "edit", "delete", "read", "chat_opened", "blocked", "webhook_disabled"
};

/* The name of one type bit. */
const char *
ChatWebhookTypeName(int bit)
{
	int			i;

	for (i = 0; i < CHAT_WH_NTYPES; i++)
		if (bit == (1 << i))
			return type_names[i];
	elog(ERROR, "chat: no webhook event type 0x%x", bit);
	return NULL;				/* not reached */
}

/* The bit of a type name, 0 for an unknown one. */
int
ChatWebhookTypeBit(const char *name)
{
	int			i;

	for (i = 0; i < CHAT_WH_NTYPES; i++)
		if (strcmp(name, type_names[i]) == 0)
			return 1 << i;
	return 0;
}

/* "message, edit, …": for hints. */
const char *
ChatWebhookTypeList(void)
{
	StringInfoData s;
	int			i;

	initStringInfo(&s);
	for (i = 0; i < CHAT_WH_NTYPES; i++)
		appendStringInfo(&s, "%s%s", i ? ", " : "", type_names[i]);
	return s.data;
}

/* Refuse url (named what) with 22023 and a reason. */
static pg_attribute_noreturn() void
BadUrl(const char *what, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s must be an %s", what, why)));
}

/* The host[:port] of a URL's authority (len bytes at a) is well formed. */
static void
CheckAuthority(const char *what, const char *a, int len, const char *scheme)
{
	int			i = 0;
	int			host_end;

	if (memchr(a, '@', len))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not carry a user name or password", what),
				 errhint("Receivers authenticate deliveries by their signature.")));
	if (len > 0 && a[0] == '[')
	{
		for (i = 1; i < len && a[i] != ']'; i++)
			if (!isxdigit((unsigned char) a[i]) && a[i] != ':' && a[i] != '.')
				break;
		if (i >= len || a[i] != ']' || i == 1)
			BadUrl(what, psprintf("%s URL with a host", scheme));
		i++;
	}
	else
		for (; i < len && a[i] != ':'; i++)
			if (!isalnum((unsigned char) a[i]) && a[i] != '-' && a[i] != '.' && a[i] != '_')
				BadUrl(what, psprintf("%s URL with a host", scheme));
	host_end = i;
	if (host_end == 0)
		BadUrl(what, psprintf("%s URL with a host", scheme));
	if (i < len)
	{
		long		port = 0;

		if (a[i] != ':' || i + 1 == len || len - i - 1 > 5)
			BadUrl(what, psprintf("%s URL with a host and an optional port", scheme));
		for (i++; i < len; i++)
		{
			if (!isdigit((unsigned char) a[i]))
				BadUrl(what, psprintf("%s URL with a host and an optional port", scheme));
			port = port * 10 + (a[i] - '0');
		}
		if (port < 1 || port > 65535)
			BadUrl(what, psprintf("%s URL with a port from 1 to 65535", scheme));
	}
}

/*
 * A URL that chat-notify may POST to: https:// (or http:// unless
 * https_only), a host, at most CHAT_URL_MAX bytes of printable ASCII.
 */
void
ChatCheckUrl(const char *what, const char *url, bool https_only)
{
	const char *scheme = https_only ? "https://" : "http:// or https://";
	int			len = strlen(url);
	const char *a;
	int			alen;
	int			i;

	if (len > CHAT_URL_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is %d bytes long, the limit is %d", what, len, CHAT_URL_MAX)));
	for (i = 0; i < len; i++)
		if ((unsigned char) url[i] <= ' ' || (unsigned char) url[i] >= 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must be printable ASCII without spaces", what),
					 errhint("Percent-encode other bytes; write host names in punycode.")));
	if (pg_strncasecmp(url, "https://", 8) == 0)
		a = url + 8;
	else if (!https_only && pg_strncasecmp(url, "http://", 7) == 0)
		a = url + 7;
	else
		BadUrl(what, psprintf("%s URL", scheme));
	alen = strcspn(a, "/?#");
	CheckAuthority(what, a, alen, scheme);
}

/* The value of one base64 (or base64url) character, or -1. */
static int
B64Value(char c, bool url_alphabet)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url_alphabet ? '-' : '+'))
		return 62;
	if (c == (url_alphabet ? '_' : '/'))
		return 63;
	return -1;
}

/*
 * Decode base64 (base64url when url_alphabet) strictly: its alphabet only,
 * no spaces, '=' padding optional but then exact. Returns the bytes decoded
 * into out, or -1 when s is not such text or decodes to more than outlen.
 */
int
ChatBase64Decode(const char *s, bool url_alphabet, unsigned char *out, int outlen)
{
	int			len = strlen(s);
	int			n = 0;
	uint32		acc = 0;
	int			bits = 0;
	int			i;

	if (len % 4 == 0 && len >= 4 && s[len - 1] == '=')
		len -= (s[len - 2] == '=') ? 2 : 1;
	if (len % 4 == 1)
		return -1;
	for (i = 0; i < len; i++)
	{
		int			v = B64Value(s[i], url_alphabet);

		if (v < 0)
			return -1;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			if (n == outlen)
				return -1;
			out[n++] = (acc >> bits) & 0xff;
		}
	}
	/* the bits left over are padding: zero in canonical text */
	if ((acc & ((1 << bits) - 1)) != 0)
		return -1;
	return n;
}

/* The root object of a jsonb argument named what, or 22023. */
JsonbContainer *
ChatJsonbObjectArg(Jsonb *jb, const char *what)
{
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a JSON object", what)));
	return &jb->root;
}

/* Refuse a key of object obj (named what) that is not in keys (NULL-terminated). */
void
ChatJsonbOnlyKeys(JsonbContainer *obj, const char *what, const char *const *keys)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		const char *const *k;
		StringInfoData list;

		if (tok != WJB_KEY)
			continue;
		for (k = keys; *k; k++)
			if ((int) strlen(*k) == v.val.string.len && memcmp(*k, v.val.string.val, v.val.string.len) == 0)
				break;
		if (*k)
			continue;
		initStringInfo(&list);
		for (k = keys; *k; k++)
			appendStringInfo(&list, "%s%s", k == keys ? "" : ", ", *k);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown key \"%.*s\" in %s", Min(v.val.string.len, 64), v.val.string.val, what),
				 errhint("The keys are %s.", list.data)));
	}
}

/* The value of key in object obj, or NULL when absent. */
JsonbValue *
ChatJsonbField(JsonbContainer *obj, const char *key)
{
	return getKeyJsonValueFromContainer(obj, key, strlen(key), NULL);
}

/* A string member key of obj (named what), or NULL when absent and not required. */
char *
ChatJsonbString(JsonbContainer *obj, const char *what, const char *key, bool required)
{
	JsonbValue *v = ChatJsonbField(obj, key);

	if (v == NULL && !required)
		return NULL;
	if (v == NULL || v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs \"%s\", a string", what, key)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}
