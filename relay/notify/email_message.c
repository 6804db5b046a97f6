/*
 * email_message.c: one digest as a message (email_message.h).
 *
 * Every part is base64 (lines of 76): the text is UTF-8 in any language,
 * and base64 has no line-length, bare CR / LF or leading-dot questions.
 * The Subject is an RFC 2047 encoded word when it is not ASCII. Message
 * text comes only from the claim's body keys, which the extension leaves
 * out when the user's preview is off; it is HTML-escaped in the HTML part
 * and has its control characters replaced in both. The boundary is made
 * of the Message-ID, which is dots, letters and digits: base64 never
 * holds "=_", so it cannot appear in a part.
 */
#include "email_message.h"

#include "utf8.h"

#include "alloc.h"
#include "email_text.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX 300			/* bytes of one message's text shown */
#define B64_LINE 57				/* bytes a 76-character base64 line holds */
#define SUBJECT_WORD 42			/* bytes of one encoded word: 56 characters + 12 */

/* The two parts under way. */
struct parts
{
	FILE	   *text,
			   *html;
	char	   *text_buf,
			   *html_buf;
	size_t		text_len,
				html_len;
	const struct email_text *t;
};

char *
email_subst(const char *tmpl, const char *key, long long value)
{
	char		pat[64],
				num[24];
	size_t		plen,
				nlen;
	char	   *out,
			   *o;
	const char *p;

	snprintf(pat, sizeof(pat), "{%s}", key);
	snprintf(num, sizeof(num), "%lld", value);
	plen = strlen(pat);
	nlen = strlen(num);
	out = o = xmalloc(strlen(tmpl) / plen * nlen + strlen(tmpl) + 1);
	for (p = tmpl; *p;)
	{
		if (strncmp(p, pat, plen) == 0)
		{
			memcpy(o, num, nlen);
			o += nlen;
			p += plen;
		}
		else
			*o++ = *p++;
	}
	*o = '\0';
	return out;
}

/* Text as HTML: & < > " ' escaped, a newline a <br>, controls a space. */
static void
put_html(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '&')
			fputs("&amp;", f);
		else if (c == '<')
			fputs("&lt;", f);
		else if (c == '>')
			fputs("&gt;", f);
		else if (c == '"')
			fputs("&quot;", f);
		else if (c == '\'')
			fputs("&#39;", f);
		else if (c == '\n')
			fputs("<br>\n", f);
		else if (c < 0x20 || c == 0x7f)
			fputc(' ', f);
		else
			fputc(c, f);
	}
}

/* Text as plain text: a newline stays, other controls become a space. */
static void
put_plain(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		fputc(c == '\n' || (c >= 0x20 && c != 0x7f) ? c : ' ', f);
	}
}

/* data as base64 lines of 76 characters; LF in data becomes CRLF first. */
static void
put_base64(FILE *out, const char *data, size_t len)
{
	char	   *crlf = xmalloc(len * 2 + 1);
	size_t		n = 0;
	unsigned char line[B64_LINE / 3 * 4 + 1];

	for (size_t i = 0; i < len; i++)
	{
		if (data[i] == '\r')
			continue;			/* every line break is LF here: made CRLF below */
		if (data[i] == '\n')
			crlf[n++] = '\r';
		crlf[n++] = data[i];
	}
	for (size_t i = 0; i < n; i += B64_LINE)
	{
		EVP_EncodeBlock(line, (const unsigned char *) crlf + i, (int) (n - i < B64_LINE ? n - i : B64_LINE));
		fprintf(out, "%s\r\n", line);
	}
	free(crlf);
}

/* The Subject header: ASCII as it is, else encoded words of whole characters. */
static void
put_subject(FILE *out, const char *subject)
{
	size_t		len = strlen(subject);
	bool		ascii = true;
	unsigned char word[SUBJECT_WORD / 3 * 4 + 8];

	for (size_t i = 0; i < len; i++)
		ascii = ascii && (unsigned char) subject[i] < 0x80;
	if (ascii)
	{
		fprintf(out, "Subject: %s\r\n", subject);
		return;
	}
	fputs("Subject:", out);
	for (size_t i = 0; i < len;)
	{
		size_t		n = utf8_cut(subject + i, len - i, SUBJECT_WORD);

		EVP_EncodeBlock(word, (const unsigned char *) subject + i, (int) n);
		fprintf(out, " =?UTF-8?B?%s?=\r\n", word);	/* a continuation line after the first */
		i += n;
	}
}

/* The Date header's value, RFC 5322, in UTC (no locale involved). */
static void
rfc5322_date(time_t now, char *buf, size_t cap)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm	tm;

	gmtime_r(&now, &tm);
	snprintf(buf, cap, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
			 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* One message of a chat, in both parts (only with its text: preview on). */
static void
put_message(struct parts *p, const json_t *m)
{
	const json_t *body = json_object_get(m, "body");
	const char *text = json_is_string(body) ? json_string_value(body) : "";
	size_t		len = json_is_string(body) ? json_string_length(body) : 0;
	size_t		shown = utf8_cut(text, len, BODY_MAX);
	long long	sender = (long long) json_integer_value(json_object_get(m, "sender_id"));
	bool		attached = json_integer_value(json_object_get(m, "attachments")) > 0;

	fprintf(p->text, "  %s %lld: ", p->t->user, sender);
	put_plain(p->text, text, shown);
	fprintf(p->text, "%s%s%s\n", shown < len ? "…" : "", attached && len ? " " : "", attached || !len ? p->t->attachment : "");
	fprintf(p->html, "<li><b>%s %lld:</b> ", p->t->user, sender);
	put_html(p->html, text, shown);
	fprintf(p->html, "%s%s%s</li>\n", shown < len ? "…" : "", attached && len ? " " : "", attached || !len ? p->t->attachment : "");
}

/* One chat: who, how many unread, its last messages, the link. */
static void
put_chat(struct parts *p, const json_t *chat, bool preview, const struct email_settings *s)
{
	long long	chat_id = (long long) json_integer_value(json_object_get(chat, "chat_id"));
	const json_t *peer = json_object_get(chat, "peer_id");
	long long	unread = (long long) json_integer_value(json_object_get(chat, "unread"));
	const json_t *msgs = json_object_get(chat, "messages");
	char		title[160];
	size_t		i;
	const json_t *m;

	if (json_is_integer(peer))
		snprintf(title, sizeof(title), "%s %lld", p->t->chat_with, (long long) json_integer_value(peer));
	else
		snprintf(title, sizeof(title), "%s %lld", p->t->chat, chat_id);
	fprintf(p->text, "\n%s\n%s: %lld\n", title, p->t->unread, unread);
	fprintf(p->html, "<h3>%s</h3>\n<p>%s: %lld</p>\n", title, p->t->unread, unread);
	if (preview && json_array_size(msgs) > 0)
	{
		fputs("<ul>\n", p->html);
		json_array_foreach(msgs, i, m)
			put_message(p, m);
		fputs("</ul>\n", p->html);
	}
	if (*s->app_url)
	{
		char	   *url = email_subst(s->app_url, "chat_id", chat_id);

		fprintf(p->text, "%s: %s\n", p->t->open, url);
		fputs("<p><a href=\"", p->html);
		put_html(p->html, url, strlen(url));
		fprintf(p->html, "\">%s</a></p>\n", p->t->open);
		free(url);
	}
}

/* The footer: why this came, how to stop it. */
static void
put_footer(struct parts *p, const char *unsubscribe)
{
	fprintf(p->text, "\n-- \n%s\n%s: %s\n", p->t->why, p->t->unsubscribe, unsubscribe);
	fprintf(p->html, "<hr>\n<p><small>%s <a href=\"", p->t->why);
	put_html(p->html, unsubscribe, strlen(unsubscribe));
	fprintf(p->html, "\">%s</a></small></p>\n</body>\n</html>\n", p->t->unsubscribe);
}

/* Both parts of the claim's chats. */
static void
write_parts(struct parts *p, const json_t *claim, const char *subject, const char *unsubscribe,
			const struct email_settings *s)
{
	const json_t *chats = json_object_get(claim, "chats");
	bool		preview = json_is_true(json_object_get(claim, "preview"));
	size_t		i;
	const json_t *c;

	p->text = open_memstream(&p->text_buf, &p->text_len);
	p->html = open_memstream(&p->html_buf, &p->html_len);
	if (p->text == NULL || p->html == NULL)
		abort();				/* out of memory: alloc.c's policy is to stop */
	fprintf(p->text, "%s\n", p->t->intro);
	fprintf(p->html, "<!DOCTYPE html>\n<html lang=\"%s\">\n<head>\n<meta charset=\"utf-8\">\n"
			"<title>%s</title>\n</head>\n<body>\n<p>%s</p>\n", p->t->lang, subject, p->t->intro);
	json_array_foreach(chats, i, c)
		put_chat(p, c, preview, s);
	put_footer(p, unsubscribe);
	fclose(p->text);
	fclose(p->html);
}

/* Total unread of the claim's chats (the Subject's count). */
static long long
unread_total(const json_t *claim)
{
	long long	total = 0;
	size_t		i;
	const json_t *c;

	json_array_foreach(json_object_get(claim, "chats"), i, c)
		total += (long long) json_integer_value(json_object_get(c, "unread"));
	return total;
}

/* Nothing that could end a header or an address: 0, else -1. */
static int
header_safe(const char *s, const char *also)
{
	if (s == NULL || *s == '\0' || strlen(s) > 254)
		return -1;
	for (const char *c = s; *c; c++)
		if ((unsigned char) *c <= 0x20 || *c == 0x7f || strchr(also, *c))
			return -1;
	return 0;
}

/* The headers; the List-Unsubscribe target in *unsub (caller frees). */
static void
put_headers(FILE *out, const json_t *claim, const char *subject, const char *boundary,
			const struct email_settings *s, char **unsub)
{
	const char *to = json_string_value(json_object_get(claim, "email_address"));
	const char *mid = json_string_value(json_object_get(claim, "message_id"));
	long long	user = (long long) json_integer_value(json_object_get(claim, "user_id"));
	char		date[64];

	rfc5322_date(s->now, date, sizeof(date));
	if (*s->unsubscribe_url)
		*unsub = email_subst(s->unsubscribe_url, "user_id", user);
	else
		xasprintf(unsub, "mailto:%s?subject=unsubscribe", s->from);
	fprintf(out, "From: %s\r\nTo: %s\r\n", s->from, to);
	put_subject(out, subject);
	fprintf(out, "Date: %s\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n", date, mid, strchr(s->from, '@') + 1);
	fprintf(out, "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n", boundary);
	fprintf(out, "List-Unsubscribe: <%s>\r\n", *unsub);
	if (strncmp(*unsub, "https://", 8) == 0)
		fputs("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", out);
	fputs("Auto-Submitted: auto-generated\r\nX-Auto-Response-Suppress: All\r\n\r\n", out);
}

char *
email_message_build(const json_t *claim, const struct email_settings *s, size_t *len, const char **error)
{
	const struct email_text *t = email_text_for(json_string_value(json_object_get(claim, "language")));
	struct parts p = {.t = t};
	char		subject[128],
				boundary[300];
	char	   *unsub = NULL,
			   *out = NULL;
	FILE	   *f;

	if (header_safe(json_string_value(json_object_get(claim, "email_address")), "<>,;\"()[]\\") != 0 ||
		strchr(json_string_value(json_object_get(claim, "email_address")), '@') == NULL)
	{
		*error = "the claim's email address is not one";
		return NULL;
	}
	if (header_safe(json_string_value(json_object_get(claim, "message_id")), "<>@\"()[]\\,;:") != 0)
	{
		*error = "the claim's message_id is not one";
		return NULL;
	}
	snprintf(subject, sizeof(subject), "%s (%lld)", t->subject, unread_total(claim));
	/* at most 70 characters (RFC 2046); unique within the message is enough */
	snprintf(boundary, sizeof(boundary), "=_chat.%.60s", json_string_value(json_object_get(claim, "message_id")));
	f = open_memstream(&out, len);
	if (f == NULL)
		abort();
	put_headers(f, claim, subject, boundary, s, &unsub);
	write_parts(&p, claim, subject, unsub, s);
	fprintf(f, "This is a message in MIME format: a plain text and an HTML part.\r\n\r\n--%s\r\n"
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n", boundary);
	put_base64(f, p.text_buf, p.text_len);
	fprintf(f, "\r\n--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n", boundary);
	put_base64(f, p.html_buf, p.html_len);
	fprintf(f, "\r\n--%s--\r\n", boundary);
	fclose(f);
	free(p.text_buf);
	free(p.html_buf);
	free(unsub);
	return out;
}
