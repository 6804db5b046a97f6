/*
 * webhook.h: the webhook channel of dispatch.h: claimed rows of
 * chat.webhook_claim POSTed, signed, to their endpoints (http_client.h),
 * results to chat.webhook_result, the backlog for /metrics.
 */
#ifndef NOTIFY_WEBHOOK_H
#define NOTIFY_WEBHOOK_H

/* Register the statements and the channel (before db_start). */
void		webhook_init(void);
/* After SIGHUP: concurrency, timeout, body cap, proxy. */
void		webhook_configure(void);
/* Webhook deliveries claimed and not yet reported. */
int			webhook_in_flight(void);

#endif
