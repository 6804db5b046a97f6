/*
 * push_text.c: the words of a push (push_text.h). As in email_text.c, a
 * count stands after a colon, never inside a phrase: no plural forms to
 * get wrong (Russian and Serbian have three).
 */
#include "push_text.h"

#include "alloc.h"
#include "utf8.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct push_words
{
	const char *lang;
	const char *user;			/* the title: "User 42" */
	const char *message;		/* one message, no preview */
	const char *messages;		/* "New messages: 3" */
	const char *attachment;		/* a message without text */
};

static const struct push_words words[] = {
	{"en", "User", "New message", "New messages", "Attachment"},
	{"ru", "Пользователь", "Новое сообщение", "Новые сообщения", "Вложение"},
	{"sr", "Korisnik", "Nova poruka", "Nove poruke", "Prilog"},
};

static const struct push_words *
words_for(const char *language)
{
	for (size_t i = 0; language && i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(words[i].lang, language) == 0)
			return &words[i];
	return &words[0];
}

void
push_text_cut(char *s, size_t max_chars, size_t max_bytes)
{
	size_t		len = utf8_chars(s, strlen(s), max_chars);

	s[utf8_cut(s, len, max_bytes)] = '\0';
}

void
push_text_alert(const json_t *data, size_t max_chars, size_t max_bytes, char **title, char **body)
{
	const struct push_words *w = words_for(json_string_value(json_object_get(data, "language")));
	const char *text = json_string_value(json_object_get(data, "body"));
	json_int_t	count = json_integer_value(json_object_get(data, "count"));
	json_int_t	sender = json_integer_value(json_object_get(data, "sender_id"));
	bool		preview = json_object_get(data, "body") != NULL;
	const char *what;
	char	   *b;
	size_t		len;

	*title = xmalloc(strlen(w->user) + 24);
	sprintf(*title, "%s %" JSON_INTEGER_FORMAT, w->user, sender);
	if (preview)
		what = text && *text ? text : w->attachment;
	else
		what = count > 1 ? NULL : w->message;
	len = strlen(w->messages) + (what ? strlen(what) : 0) + 32;
	b = xmalloc(len);
	if (count > 1 && what)
		snprintf(b, len, "%s: %" JSON_INTEGER_FORMAT "\n%s", w->messages, count, what);
	else if (count > 1)
		snprintf(b, len, "%s: %" JSON_INTEGER_FORMAT, w->messages, count);
	else
		snprintf(b, len, "%s", what);
	push_text_cut(b, max_chars, max_bytes);
	*body = b;
}
