/*
 * push_text.h: the words of a push notification (push_text.c), in the
 * user's language (en, ru, sr; anything else gets en), from the claim's
 * data: the title names the sender, the body is the preview when the user
 * allows it, else what came.
 */
#ifndef NOTIFY_PUSH_TEXT_H
#define NOTIFY_PUSH_TEXT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * The title and body of an alert (malloc'd, UTF-8): data is the claim's
 * {sender_id, count, body?, attachments, language}; the body is cut at a
 * character boundary to at most max_chars characters and max_bytes bytes.
 */
void		push_text_alert(const json_t *data, size_t max_chars, size_t max_bytes, char **title, char **body);

/* s cut in place at a character boundary to at most max_chars and max_bytes. */
void		push_text_cut(char *s, size_t max_chars, size_t max_bytes);

#endif
