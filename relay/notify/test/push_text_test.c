/*
 * push_text_test.c: the words of a push (push_text.c) alone: the title,
 * the preview or what came in each language, folded counts, the cut at a
 * character boundary. Exit 0 when every check holds.
 */
#include "push_text.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	failures;

static void
check(const char *what, int ok)
{
	printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	failures += !ok;
}

/* The words of data (JSON text); compared with title and body. */
static void
words(const char *what, const char *data, const char *title, const char *body)
{
	json_t	   *d = json_loads(data, 0, NULL);
	char	   *t,
			   *b;

	push_text_alert(d, 1000, 2000, &t, &b);
	if (strcmp(t, title) != 0 || strcmp(b, body) != 0)
		printf("     got title \"%s\", body \"%s\"\n", t, b);
	check(what, strcmp(t, title) == 0 && strcmp(b, body) == 0);
	free(t);
	free(b);
	json_decref(d);
}

int
main(void)
{
	char		s[64];

	words("a preview", "{\"sender_id\": 42, \"count\": 1, \"body\": \"Is it for sale?\"}", "User 42", "Is it for sale?");
	words("no preview", "{\"sender_id\": 42, \"count\": 1}", "User 42", "New message");
	words("folded, no preview", "{\"sender_id\": 42, \"count\": 3}", "User 42", "New messages: 3");
	words("folded, with the newest", "{\"sender_id\": 42, \"count\": 3, \"body\": \"three\"}", "User 42", "New messages: 3\nthree");
	words("attachment only, en", "{\"sender_id\": 7, \"count\": 1, \"body\": \"\", \"attachments\": 1}", "User 7", "Attachment");
	words("attachment only, ru", "{\"sender_id\": 7, \"count\": 1, \"body\": \"\", \"attachments\": 2, \"language\": \"ru\"}",
		  "Пользователь 7", "Вложение");
	words("attachment only, sr", "{\"sender_id\": 7, \"count\": 1, \"body\": \"\", \"language\": \"sr\"}", "Korisnik 7", "Prilog");
	words("no preview, ru", "{\"sender_id\": 7, \"count\": 1, \"language\": \"ru\"}", "Пользователь 7", "Новое сообщение");
	words("an unknown language is en", "{\"sender_id\": 7, \"count\": 2, \"language\": \"xx\"}", "User 7", "New messages: 2");

	strcpy(s, "жжжж");
	push_text_cut(s, 3, 100);
	check("cut to 3 characters of 2 bytes", strcmp(s, "жжж") == 0);
	strcpy(s, "жжжж");
	push_text_cut(s, 100, 5);
	check("cut to 5 bytes: 2 characters, never half of one", strcmp(s, "жж") == 0);
	strcpy(s, "abc");
	push_text_cut(s, 100, 100);
	check("short enough: unchanged", strcmp(s, "abc") == 0);
	printf("%d failure(s)\n", failures);
	return failures != 0;
}
