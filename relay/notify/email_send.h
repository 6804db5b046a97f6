/*
 * email_send.h: the SMTP side of the email channel: a claimed digest's
 * message sent with libcurl on the shared loop (curl_loop.h), its outcome
 * classified (email_send.c). The channel's SQL side is email.c's.
 */
#ifndef NOTIFY_EMAIL_SEND_H
#define NOTIFY_EMAIL_SEND_H

#include "curl_loop.h"
#include "dispatch.h"

#include <stdint.h>

struct email
{
	struct delivery d;			/* first: dispatch.c's part */
	int64_t		user_id;
	int			attempt;
	char	   *message_id;
	char	   *rcpt;			/* the address */
	char		domain[128];	/* the address's domain, for log lines */
	char	   *covered;		/* [{chat_id, up_to_seq}] of the claim, JSON */
	char	   *msg;			/* the message; NULL: it could not be made */
	const char *msg_error;		/* why not */
	size_t		msg_len,
				msg_off;		/* read by curl so far */
	struct curl_slist *rcpts;
	struct curl_xfer xfer;
	int64_t		started_us;
};

/* The channel's send and abort (dispatch.h). */
void		email_send(struct delivery *d);
void		email_abort(struct delivery *d);

/* Read smtp_password_file (at start and on SIGHUP): 0, or -1 (logged; kept as it was). */
int			email_send_configure(void);
void		email_send_free(void);

#endif
