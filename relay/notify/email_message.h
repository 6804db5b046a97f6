/*
 * email_message.h: the digest of one claimed user as an RFC 5322 message
 * (email_message.c): headers, a multipart/alternative of a text/plain and
 * a text/html part (UTF-8, base64), in the user's language (email_text.h).
 */
#ifndef NOTIFY_EMAIL_MESSAGE_H
#define NOTIFY_EMAIL_MESSAGE_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

struct email_settings
{
	const char *from;			/* name@domain */
	const char *unsubscribe_url;	/* {user_id} replaced; "": a mailto: to from */
	const char *app_url;		/* {chat_id} replaced; "": no link */
	time_t		now;			/* the Date */
};

/*
 * The message of claim (one row of chat.email_claim), CRLF line endings,
 * every line at most 78 characters but the List-Unsubscribe header (the
 * URL is the operator's); NULL with *error set when the claim cannot make
 * one (a bad address or Message-ID: nothing is sent).
 */
char	   *email_message_build(const json_t *claim, const struct email_settings *s, size_t *len,
								const char **error);

/* "{key}" in tmpl replaced by value, every time (a new string). */
char	   *email_subst(const char *tmpl, const char *key, long long value);

#endif
