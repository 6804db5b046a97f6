/*
 * email_text.h: the words of an email digest, one table per language
 * (email_text.c): en, ru, sr (Latin script); anything else gets en.
 */
#ifndef NOTIFY_EMAIL_TEXT_H
#define NOTIFY_EMAIL_TEXT_H

struct email_text
{
	const char *lang;			/* the Content-Language */
	const char *subject;		/* followed by " (N)", N the unread count */
	const char *intro;			/* the first line */
	const char *chat_with;		/* "... user N" of a direct chat */
	const char *chat;			/* "... N" of another chat */
	const char *unread;			/* "...: N" */
	const char *user;			/* a message's sender: "... N" */
	const char *attachment;		/* a message without text, or with attachments */
	const char *open;			/* the link to the chat */
	const char *unsubscribe;	/* the footer's link */
	const char *why;			/* the footer: why this mail came */
};

/* The table of language (en when unknown or NULL). */
const struct email_text *email_text_for(const char *language);

#endif
