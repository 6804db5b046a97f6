/*
 * webhook_send.h: the HTTP side of the webhook channel: a claimed webhook
 * in order behind the earlier ones of its chat, signed, POSTed, its answer
 * classified (webhook_send.c). The channel's SQL side is webhook.c's.
 */
#ifndef NOTIFY_WEBHOOK_SEND_H
#define NOTIFY_WEBHOOK_SEND_H

#include "dispatch.h"
#include "http_client.h"
#include "metrics.h"

#include <stdbool.h>
#include <stdint.h>

struct webhook
{
	struct delivery d;			/* first: dispatch.c's part */
	int64_t		endpoint_id;
	int64_t		event_id;
	int64_t		chat_id;		/* the body's, 0: none (blocked, webhook_disabled) */
	int			attempt;
	char	   *url;
	char	   *secrets;		/* space separated, newest first */
	char	   *webhook_id;
	char	   *body;
	size_t		body_len;
	char		host[128];		/* for log lines */
	/* the chat's order: the one in flight before this one, and after */
	struct webhook *before,
			   *after;
	struct webhook *t_prev,
			   *t_next;			/* webhooks being sent or waiting to be */
	bool		waiting;		/* behind before, not sent yet */
	lws_sorted_usec_list_t wait_sul;	/* sent anyway when the lease runs short */
	struct curl_slist *headers;
	struct http_request req;
	int64_t		started_us;
	enum webhook_reason reason; /* when it failed */
};

/*
 * The channel's send and abort (dispatch.h). A webhook of a chat whose
 * earlier event to the same endpoint is still being sent waits for it.
 */
void		webhook_send(struct delivery *d);
void		webhook_abort(struct delivery *d);

#endif
