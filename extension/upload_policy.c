/*
 * upload_policy.c: what an upload may be called and how its name travels:
 * cleaning user-given file names, the allow-list of content types with
 * per-kind size limits (tables chat.upload_types and chat.upload_kinds), and
 * the Content-Disposition a download URL asks the object store to send.
 */
#include "chat.h"
#include "s3.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

/* Longest cleaned file name in bytes: what common file systems accept. */
#define CHAT_FILE_NAME_MAX		255
/* An extension longer than this is not kept when a long name is cut. */
#define CHAT_FILE_EXT_MAX		16
/* How much of a refused content type an error message repeats. */
#define CHAT_ECHO_MAX			100

/*
 * Characters a name must not carry: C0 and C1 controls, DEL, and the
 * invisible format characters that reorder or hide text (bidi overrides and
 * isolates, zero-width characters, BOM), which can make "exe.jpg" read as
 * "gpj.exe".
 */
static bool
IsUnwantedChar(pg_wchar c)
{
	return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) ||
		(c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) ||
		(c >= 0x2066 && c <= 0x2069) || c == 0xfeff;
}

/* The code point of the (server-encoded) character at p, as far as it matters here. */
static pg_wchar
CharAt(const char *p)
{
	if (GetDatabaseEncoding() == PG_UTF8)
		return utf8_to_unicode((const unsigned char *) p);
	/* other encodings: only ASCII controls are recognised */
	return (unsigned char) *p < 0x80 ? (unsigned char) *p : 0x100;
}

/*
 * A user-given file name made safe to store and to hand back: the part after
 * the last / or \, without unwanted characters, trimmed of spaces (and of
 * trailing dots), at most CHAT_FILE_NAME_MAX bytes (the extension is kept
 * when a long name is cut), and "file" when nothing is left.
 */
char *
ChatCleanFileName(const char *name)
{
	const char *p,
			   *base = name;
	StringInfoData buf;
	const char *dot;
	int			len;

	for (p = name; *p; p += pg_mblen(p))
		if (*p == '/' || *p == '\\')
			base = p + 1;

	initStringInfo(&buf);
	for (p = base; *p;)
	{
		int			l = pg_mblen(p);

		if (!IsUnwantedChar(CharAt(p)))
			appendBinaryStringInfo(&buf, p, l);
		p += l;
	}

	/* trim: leading spaces; trailing spaces and dots */
	for (p = buf.data; *p == ' '; p++)
		;
	len = buf.len - (p - buf.data);
	memmove(buf.data, p, len + 1);
	while (len > 0 && (buf.data[len - 1] == ' ' || buf.data[len - 1] == '.'))
		buf.data[--len] = '\0';
	if (len == 0)
		return pstrdup("file");
	if (len <= CHAT_FILE_NAME_MAX)
		return pnstrdup(buf.data, len);

	/* too long: cut the stem on a character boundary, keep a short extension */
	dot = strrchr(buf.data, '.');
	if (dot != NULL && dot != buf.data && strlen(dot) <= CHAT_FILE_EXT_MAX)
	{
		int			ext = strlen(dot);
		int			stem = pg_mbcliplen(buf.data, dot - buf.data, CHAT_FILE_NAME_MAX - ext);

		return psprintf("%.*s%s", stem, buf.data, dot);
	}
	return pnstrdup(buf.data, pg_mbcliplen(buf.data, len, CHAT_FILE_NAME_MAX));
}

/* A content type as compared with the allow-list: trimmed and lowercased. */
char *
ChatNormalizeContentType(const char *content_type)
{
	const char *p = content_type;
	char	   *out;
	int			len,
				i;

	while (*p == ' ' || *p == '\t')
		p++;
	len = strlen(p);
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	out = pnstrdup(p, len);
	for (i = 0; i < len; i++)
		out[i] = pg_ascii_tolower(out[i]);
	return out;
}

/*
 * Look content_type (normalized) up in the allow-list and check size against
 * its kind's limit and the overall limit; refuses with 22023. Returns the kind.
 */
char *
ChatCheckUpload(const char *content_type, int64 size, int64 max_upload_size)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {TEXTOID};
	Datum		values[1];
	char	   *kind;
	int64		limit;
	bool		isnull;

	ChatPlanOnce(&plan,
				 "SELECT t.kind, k.max_size FROM chat.upload_types t "
				 "JOIN chat.upload_kinds k ON k.kind = t.kind WHERE t.content_type = $1",
				 1, types);
	values[0] = CStringGetTextDatum(content_type);
	ChatExec(plan, values, NULL, true, 1);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("content type \"%s\" is not allowed",
						pnstrdup(content_type, pg_mbcliplen(content_type, strlen(content_type), CHAT_ECHO_MAX))),
				 errhint("Allowed types are listed in chat.upload_types (images, video, audio, documents, archives).")));
	kind = TextDatumGetCString(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	limit = Min(ChatGetInt8(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, NULL), max_upload_size);
	if (size > limit)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file is too large: %lld bytes, the limit for %s files is %lld bytes",
						(long long) size, kind, (long long) limit)));
	return kind;
}

/*
 * Content-Disposition for a download: the disposition, an ASCII fallback
 * name (non-ASCII characters, quotes, backslashes and percent signs become
 * "_") and the exact name in RFC 8187 form, filename*=UTF-8''percent-encoded.
 */
char *
ChatContentDisposition(const char *name, bool inline_)
{
	static const char hex[] = "0123456789ABCDEF";
	StringInfoData buf;
	const char *p;
	const char *utf8 = (const char *) pg_server_to_any(name, strlen(name), PG_UTF8);

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s; filename=\"", inline_ ? "inline" : "attachment");
	for (p = utf8; *p;)
	{
		unsigned char c = (unsigned char) *p;
		int			l = pg_utf_mblen((const unsigned char *) p);

		appendStringInfoChar(&buf, (c < 0x80 && c >= 0x20 && c != '"' && c != '\\' && c != '%') ? (char) c : '_');
		p += l;
	}
	appendStringInfoString(&buf, "\"; filename*=UTF-8''");
	for (p = utf8; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (isalnum(c) && c < 0x80)
			appendStringInfoChar(&buf, (char) c);
		else if (strchr("!#$&+-.^_`|~", c) != NULL && c != '\0')
			appendStringInfoChar(&buf, (char) c);
		else
		{
			appendStringInfoChar(&buf, '%');
			appendStringInfoChar(&buf, hex[c >> 4]);
			appendStringInfoChar(&buf, hex[c & 15]);
		}
	}
	return buf.data;
}
