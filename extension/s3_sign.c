/*
 * s3_sign.c: presigned object-store URLs, AWS Signature Version 4 in its
 * query-string form with UNSIGNED-PAYLOAD, and the SQL function s3_presign.
 *
 * The URL is https://host/bucket/key (path style) or https://bucket.host/key
 * (virtual-hosted style). What is signed (AWS "Authenticating Requests:
 * Using Query Parameters"):
 *
 *   canonical request = METHOD \n /encoded/key \n sorted query \n
 *                       name:value\n … \n signed;header;names \n UNSIGNED-PAYLOAD
 *   string to sign    = AWS4-HMAC-SHA256 \n 20130524T000000Z \n
 *                       20130524/region/s3/aws4_request \n hex(sha256(canonical request))
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), "s3"), "aws4_request")
 *
 * HMAC-SHA256 and SHA-256 come from PostgreSQL's common/hmac.h and
 * common/cryptohash.h (OpenSSL underneath when the server is built with it).
 * The secret key never appears in an error message.
 */
#include "chat.h"
#include "s3.h"

#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

PG_FUNCTION_INFO_V1(chat_s3_presign);

#define S3_MAX_KEY_BYTES	1024

/* An endpoint taken apart: scheme, lowercased host, non-default port or 0. */
typedef struct S3Endpoint
{
	bool		https;
	char	   *host;
	int			port;
} S3Endpoint;

/* One query parameter, already percent-encoded. */
typedef struct EncodedParam
{
	char	   *name;
	char	   *value;
} EncodedParam;

/* Refuse an argument with 22023. */
static pg_attribute_noreturn() void
Invalid(const char *msg, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", msg),
			 detail ? errdetail("%s", detail) : 0));
}

/* Percent-encode by the SigV4 rules: unreserved bytes stay, '/' too if asked. */
static void
AppendEncoded(StringInfo buf, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/'))
			appendStringInfoChar(buf, (char) c);
		else
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hex[c >> 4]);
			appendStringInfoChar(buf, hex[c & 15]);
		}
	}
}

/* A palloc'd percent-encoded copy of s. */
static char *
Encoded(const char *s, bool keep_slash)
{
	StringInfoData buf;

	initStringInfo(&buf);
	AppendEncoded(&buf, s, keep_slash);
	return buf.data;
}

/*
 * Parse scheme://host[:port][/]: the only forms an endpoint may take. The
 * host is lowercased, and a default port (80 for http, 443 for https) is
 * dropped, because clients send Host without it.
 */
static void
ParseEndpoint(const char *endpoint, S3Endpoint *ep)
{
	const char *p = endpoint;
	const char *host_start,
			   *host_end;
	char	   *msg = psprintf("endpoint must look like https://host or http://host:port, not \"%s\"", endpoint);
	int			i;

	if (pg_strncasecmp(p, "https://", 8) == 0)
	{
		ep->https = true;
		p += 8;
	}
	else if (pg_strncasecmp(p, "http://", 7) == 0)
	{
		ep->https = false;
		p += 7;
	}
	else
		Invalid(msg, NULL);

	host_start = p;
	if (*p == '[')
	{
		/* IPv6 literal */
		for (p++; *p && *p != ']'; p++)
			if (!isxdigit((unsigned char) *p) && *p != ':' && *p != '.')
				Invalid(msg, NULL);
		if (*p != ']')
			Invalid(msg, NULL);
		p++;
	}
	else
		for (; *p && *p != ':' && *p != '/'; p++)
			if (!isalnum((unsigned char) *p) && *p != '.' && *p != '-')
				Invalid(msg, NULL);
	host_end = p;
	if (host_end == host_start || host_end - host_start > 253)
		Invalid(msg, NULL);

	ep->port = 0;
	if (*p == ':')
	{
		long		port = 0;

		for (p++, i = 0; isdigit((unsigned char) *p); p++, i++)
			if (i < 6)
				port = port * 10 + (*p - '0');
		if (i == 0 || i > 5 || port < 1 || port > 65535)
			Invalid(msg, NULL);
		ep->port = (int) port;
		if (port == (ep->https ? 443 : 80))
			ep->port = 0;
	}
	if (*p == '/')
		p++;
	if (*p != '\0')
		Invalid(msg, "Give the object store's base URL without a path.");

	ep->host = pnstrdup(host_start, host_end - host_start);
	for (i = 0; ep->host[i]; i++)
		ep->host[i] = pg_ascii_tolower(ep->host[i]);
}

/* Bucket names: 3 to 63 of a-z 0-9 . -, starting and ending alphanumeric. */
static void
CheckBucket(const char *bucket)
{
	int			len = strlen(bucket);
	int			i;

	for (i = 0; i < len; i++)
		if (!((bucket[i] >= 'a' && bucket[i] <= 'z') || (bucket[i] >= '0' && bucket[i] <= '9') ||
			  bucket[i] == '.' || bucket[i] == '-'))
			break;
	if (len < 3 || len > 63 || i < len || !isalnum((unsigned char) bucket[0]) ||
		!isalnum((unsigned char) bucket[len - 1]))
		Invalid(psprintf("bucket must be an S3 bucket name, not \"%s\"", bucket),
				"Bucket names have 3 to 63 characters: lowercase letters, digits, dots and hyphens.");
}

/* HMAC-SHA256 of data under key into out (32 bytes). */
static void
HmacSha256(const uint8 *key, size_t keylen, const char *data, size_t len, uint8 *out)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (pg_hmac_init(ctx, key, keylen) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_hmac_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
	{
		const char *err = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		elog(ERROR, "chat: HMAC-SHA256 failed: %s", err);
	}
	pg_hmac_free(ctx);
}

/* Lowercase hex SHA-256 of data, appended to buf. */
static void
AppendSha256Hex(StringInfo buf, const char *data, size_t len)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	int			i;

	if (ctx == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
	{
		const char *err = pg_cryptohash_error(ctx);

		pg_cryptohash_free(ctx);
		elog(ERROR, "chat: SHA-256 failed: %s", err);
	}
	pg_cryptohash_free(ctx);
	for (i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		appendStringInfo(buf, "%02x", digest[i]);
}

/* Order query parameters by encoded name, then encoded value. */
static int
ParamCmp(const void *a, const void *b)
{
	const EncodedParam *x = a;
	const EncodedParam *y = b;
	int			c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/* Order headers by name. */
static int
HeaderCmp(const void *a, const void *b)
{
	return strcmp(((const ChatKV *) a)->name, ((const ChatKV *) b)->name);
}

/* A header name: an HTTP token, lowercased; not host, not repeated. */
static char *
HeaderName(const char *name, const ChatKV *seen, int nseen)
{
	char	   *lower = pstrdup(name);
	int			i;

	if (*lower == '\0')
		Invalid("signed header names must not be empty", NULL);
	for (i = 0; lower[i]; i++)
	{
		if (!isalnum((unsigned char) lower[i]) && strchr("!#$%&'*+-.^_`|~", lower[i]) == NULL)
			Invalid(psprintf("\"%s\" is not a valid HTTP header name", name), NULL);
		lower[i] = pg_ascii_tolower(lower[i]);
	}
	if (strcmp(lower, "host") == 0)
		Invalid("host is always signed and cannot be given as a signed header", NULL);
	for (i = 0; i < nseen; i++)
		if (strcmp(seen[i].name, lower) == 0)
			Invalid(psprintf("header \"%s\" is given twice", lower), NULL);
	return lower;
}

/* A header value as SigV4 canonicalises it: trimmed, inner blank runs as one space. */
static char *
HeaderValue(const char *name, const char *value)
{
	StringInfoData buf;
	const char *p;
	bool		blank = false;

	initStringInfo(&buf);
	for (p = value; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c == ' ' || c == '\t')
			blank = true;
		else if (c < 0x20 || c == 0x7f)
			Invalid(psprintf("the value of header \"%s\" contains a control character", name), NULL);
		else
		{
			if (blank && buf.len > 0)
				appendStringInfoChar(&buf, ' ');
			blank = false;
			appendStringInfoChar(&buf, (char) c);
		}
	}
	return buf.data;
}

/* Refuse query parameters that the signature itself sets. */
static void
CheckQueryName(const char *name)
{
	static const char *const reserved[] = {
		"x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires",
		"x-amz-signedheaders", "x-amz-signature", "x-amz-security-token"
	};
	int			i;

	if (*name == '\0')
		Invalid("query parameter names must not be empty", NULL);
	for (i = 0; i < (int) lengthof(reserved); i++)
		if (pg_strcasecmp(name, reserved[i]) == 0)
			Invalid(psprintf("query parameter \"%s\" is set by the signature", name), NULL);
}

/* One presigning in progress: what the steps below fill in, in order. */
typedef struct Presign
{
	const ChatS3Target *t;
	S3Endpoint	ep;
	char	   *method;			/* upper case */
	char		date[9];		/* YYYYMMDD */
	char		amzdate[17];	/* YYYYMMDDTHHMMSSZ */
	char	   *scope;
	StringInfoData host;
	StringInfoData uri;
	ChatKV	   *hdrs;			/* host and the caller's, sorted by name */
	int			nhdrs;
	StringInfoData signed_names;
	EncodedParam *params;		/* sorted */
	int			nparams;
} Presign;

/* Check the arguments and take the dates of `at`. */
static void
PresignCheck(Presign *p, const char *method, const char *key, int expires_s, TimestampTz at)
{
	const ChatS3Target *t = p->t;
	struct pg_tm tm;
	fsec_t		fsec;
	int			i;

	p->method = pstrdup(method);
	for (i = 0; p->method[i]; i++)
		p->method[i] = pg_ascii_toupper(p->method[i]);
	if (strcmp(p->method, "GET") != 0 && strcmp(p->method, "PUT") != 0 &&
		strcmp(p->method, "HEAD") != 0 && strcmp(p->method, "DELETE") != 0)
		Invalid(psprintf("method must be GET, PUT, HEAD or DELETE, not \"%s\"", method), NULL);
	ParseEndpoint(t->endpoint, &p->ep);
	CheckBucket(t->bucket);
	if (t->virtual_host && (p->ep.host[0] == '[' || strspn(p->ep.host, "0123456789.") == strlen(p->ep.host)))
		Invalid("virtual-hosted URLs need an endpoint with a host name, not an IP address", NULL);
	if (*key == '\0')
		Invalid("key must not be empty", NULL);
	if (strlen(key) > S3_MAX_KEY_BYTES)
		Invalid(psprintf("key is %d bytes long, the limit is %d", (int) strlen(key), S3_MAX_KEY_BYTES), NULL);
	if (expires_s < 1 || expires_s > CHAT_S3_MAX_EXPIRES)
		Invalid(psprintf("expires_s must be between 1 and %d (7 days), not %d", CHAT_S3_MAX_EXPIRES, expires_s), NULL);
	if (*t->region == '\0' || strspn(t->region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(t->region))
		Invalid(psprintf("region must be a region name such as us-east-1, not \"%s\"", t->region), NULL);
	if (*t->access_key == '\0')
		Invalid("access_key must not be empty", NULL);
	if (*t->secret_key == '\0')
		Invalid("secret_key must not be empty", NULL);
	if (TIMESTAMP_NOT_FINITE(at) || timestamp2tm(at, NULL, &tm, &fsec, NULL, NULL) != 0 ||
		tm.tm_year < 1000 || tm.tm_year > 9999)
		Invalid("at must be a finite time between the years 1000 and 9999", NULL);
	snprintf(p->date, sizeof(p->date), "%04d%02d%02d", tm.tm_year, tm.tm_mon, tm.tm_mday);
	snprintf(p->amzdate, sizeof(p->amzdate), "%sT%02d%02d%02dZ", p->date, tm.tm_hour, tm.tm_min, tm.tm_sec);
	p->scope = psprintf("%s/%s/s3/aws4_request", p->date, t->region);
}

/* Host and path; the signed headers: host plus the caller's, by name. */
static void
PresignHeaders(Presign *p, const char *key, const ChatKV *headers, int nheaders)
{
	const ChatS3Target *t = p->t;
	int			i;

	initStringInfo(&p->host);
	if (t->virtual_host)
		appendStringInfo(&p->host, "%s.", t->bucket);
	appendStringInfoString(&p->host, p->ep.host);
	if (p->ep.port != 0)
		appendStringInfo(&p->host, ":%d", p->ep.port);
	initStringInfo(&p->uri);
	appendStringInfoChar(&p->uri, '/');
	if (!t->virtual_host)
		appendStringInfo(&p->uri, "%s/", t->bucket);
	AppendEncoded(&p->uri, key, true);

	p->nhdrs = nheaders + 1;
	p->hdrs = palloc(sizeof(ChatKV) * p->nhdrs);
	p->hdrs[0].name = "host";
	p->hdrs[0].value = p->host.data;
	for (i = 0; i < nheaders; i++)
	{
		p->hdrs[i + 1].name = HeaderName(headers[i].name, p->hdrs, i + 1);
		p->hdrs[i + 1].value = HeaderValue(p->hdrs[i + 1].name, headers[i].value);
	}
	qsort(p->hdrs, p->nhdrs, sizeof(ChatKV), HeaderCmp);
	initStringInfo(&p->signed_names);
	for (i = 0; i < p->nhdrs; i++)
		appendStringInfo(&p->signed_names, "%s%s", i > 0 ? ";" : "", p->hdrs[i].name);
}

/* The query: the caller's parameters and the X-Amz-* ones, sorted. */
static void
PresignQuery(Presign *p, const ChatKV *query, int nquery, int expires_s)
{
	EncodedParam *q = palloc(sizeof(EncodedParam) * (nquery + 5));
	int			n = 0;
	int			i;

	for (i = 0; i < nquery; i++)
	{
		CheckQueryName(query[i].name);
		q[n].name = Encoded(query[i].name, false);
		q[n++].value = Encoded(query[i].value, false);
	}
	q[n].name = "X-Amz-Algorithm";
	q[n++].value = "AWS4-HMAC-SHA256";
	q[n].name = "X-Amz-Credential";
	q[n++].value = Encoded(psprintf("%s/%s", p->t->access_key, p->scope), false);
	q[n].name = "X-Amz-Date";
	q[n++].value = p->amzdate;
	q[n].name = "X-Amz-Expires";
	q[n++].value = psprintf("%d", expires_s);
	q[n].name = "X-Amz-SignedHeaders";
	q[n++].value = Encoded(p->signed_names.data, false);
	qsort(q, n, sizeof(EncodedParam), ParamCmp);
	p->params = q;
	p->nparams = n;
}

/* The signature of the canonical request, into sig (secrets wiped). */
static void
PresignSignature(Presign *p, uint8 sig[PG_SHA256_DIGEST_LENGTH])
{
	const ChatS3Target *t = p->t;
	StringInfoData creq,
				sts;
	uint8		k[PG_SHA256_DIGEST_LENGTH];
	size_t		secret_len = strlen(t->secret_key) + 4;
	char	   *secret = palloc(secret_len + 1);
	int			i;

	initStringInfo(&creq);
	appendStringInfo(&creq, "%s\n%s\n", p->method, p->uri.data);
	for (i = 0; i < p->nparams; i++)
		appendStringInfo(&creq, "%s%s=%s", i > 0 ? "&" : "", p->params[i].name, p->params[i].value);
	appendStringInfoChar(&creq, '\n');
	for (i = 0; i < p->nhdrs; i++)
		appendStringInfo(&creq, "%s:%s\n", p->hdrs[i].name, p->hdrs[i].value);
	appendStringInfo(&creq, "\n%s\nUNSIGNED-PAYLOAD", p->signed_names.data);

	initStringInfo(&sts);
	appendStringInfo(&sts, "AWS4-HMAC-SHA256\n%s\n%s\n", p->amzdate, p->scope);
	AppendSha256Hex(&sts, creq.data, creq.len);

	snprintf(secret, secret_len + 1, "AWS4%s", t->secret_key);
	HmacSha256((uint8 *) secret, secret_len, p->date, strlen(p->date), sig);
	explicit_bzero(secret, secret_len);
	pfree(secret);
	HmacSha256(sig, PG_SHA256_DIGEST_LENGTH, t->region, strlen(t->region), k);
	HmacSha256(k, sizeof(k), "s3", 2, sig);
	HmacSha256(sig, PG_SHA256_DIGEST_LENGTH, "aws4_request", 12, k);
	HmacSha256(k, sizeof(k), sts.data, sts.len, sig);
	explicit_bzero(k, sizeof(k));
}

/*
 * A presigned URL: method on bucket/key of the target, valid expires_s
 * seconds from at, requiring the given headers (besides host) and carrying
 * the given extra query parameters (e.g. response-content-disposition).
 */
char *
ChatPresign(const ChatS3Target *t, const char *method, const char *key, int expires_s,
			TimestampTz at, const ChatKV *headers, int nheaders, const ChatKV *query, int nquery)
{
	Presign		p;
	uint8		sig[PG_SHA256_DIGEST_LENGTH];
	StringInfoData url;
	int			i;

	memset(&p, 0, sizeof(p));
	p.t = t;
	PresignCheck(&p, method, key, expires_s, at);
	PresignHeaders(&p, key, headers, nheaders);
	PresignQuery(&p, query, nquery, expires_s);
	PresignSignature(&p, sig);

	/* the canonical query plus the signature */
	initStringInfo(&url);
	appendStringInfo(&url, "%s://%s%s?", p.ep.https ? "https" : "http", p.host.data, p.uri.data);
	for (i = 0; i < p.nparams; i++)
		appendStringInfo(&url, "%s=%s&", p.params[i].name, p.params[i].value);
	appendStringInfoString(&url, "X-Amz-Signature=");
	for (i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		appendStringInfo(&url, "%02x", sig[i]);
	explicit_bzero(sig, sizeof(sig));
	return url.data;
}

/*
 * A jsonb object of name: string-or-number pairs as a ChatKV array (NULL
 * jsonb: none). argname names the argument in errors.
 */
int
ChatJsonbToKV(Jsonb *jb, const char *argname, ChatKV **out)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			n = 0;
	char	   *name = NULL;

	*out = NULL;
	if (jb == NULL)
		return 0;
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		Invalid(psprintf("%s must be a json object", argname), NULL);
	*out = palloc(sizeof(ChatKV) * Max(JB_ROOT_COUNT(jb), 1));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			name = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			(*out)[n].name = name;
			if (v.type == jbvString)
				(*out)[n].value = pnstrdup(v.val.string.val, v.val.string.len);
			else if (v.type == jbvNumeric)
				(*out)[n].value = DatumGetCString(DirectFunctionCall1(numeric_out,
																	  NumericGetDatum(v.val.numeric)));
			else
				Invalid(psprintf("%s values must be strings or numbers", argname), NULL);
			n++;
		}
	}
	return n;
}

/*
 * s3_presign(method, endpoint, bucket, key, expires_s, at, region,
 * access_key, secret_key, virtual_host, signed_headers, query_params) → text
 */
Datum
chat_s3_presign(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {
		"method", "endpoint", "bucket", "key", "expires_s", "at", "region",
		"access_key", "secret_key", "virtual_host"
	};
	ChatS3Target t;
	ChatKV	   *headers,
			   *query;
	int			nheaders,
				nquery,
				i;

	for (i = 0; i < (int) lengthof(names); i++)
		ChatRequireArg(fcinfo, i, names[i]);
	t.endpoint = text_to_cstring(PG_GETARG_TEXT_PP(1));
	t.bucket = text_to_cstring(PG_GETARG_TEXT_PP(2));
	t.region = text_to_cstring(PG_GETARG_TEXT_PP(6));
	t.access_key = text_to_cstring(PG_GETARG_TEXT_PP(7));
	t.secret_key = text_to_cstring(PG_GETARG_TEXT_PP(8));
	t.virtual_host = PG_GETARG_BOOL(9);
	nheaders = ChatJsonbToKV(PG_ARGISNULL(10) ? NULL : PG_GETARG_JSONB_P(10), "signed_headers", &headers);
	nquery = ChatJsonbToKV(PG_ARGISNULL(11) ? NULL : PG_GETARG_JSONB_P(11), "query_params", &query);
	PG_RETURN_TEXT_P(cstring_to_text(ChatPresign(&t, text_to_cstring(PG_GETARG_TEXT_PP(0)),
												 text_to_cstring(PG_GETARG_TEXT_PP(3)),
												 PG_GETARG_INT32(4), PG_GETARG_TIMESTAMPTZ(5),
												 headers, nheaders, query, nquery)));
}
