/*
 * email.h: the email channel of dispatch.h: users claimed with
 * chat.email_claim, one digest each (email_message.h) sent over SMTP
 * (email_send.h), results to chat.email_result, the backlog of
 * chat.email_backlog for /metrics. Off (nothing claimed) while smtp_url is
 * empty.
 */
#ifndef NOTIFY_EMAIL_H
#define NOTIFY_EMAIL_H

#include <stdbool.h>

/* Register the statements and the channel (before db_start). */
void		email_init(void);
/* After SIGHUP: on or off, concurrency, the password. */
void		email_configure(void);
/* Emails claimed and not yet reported. */
int			email_in_flight(void);
bool		email_on(void);
void		email_free(void);

#endif
