/*
 * webpush_send.h: the Web Push sender (webpush_send.c): a push encrypted
 * for its subscription (webpush_crypt.h), signed for its push service
 * (vapid.h) and POSTed to the subscription's endpoint (RFC 8030). Its
 * send and abort are push.h's webpush_send and webpush_abort.
 */
#ifndef NOTIFY_WEBPUSH_SEND_H
#define NOTIFY_WEBPUSH_SEND_H

#include "push.h"

#include <stdbool.h>

/* A VAPID key is loaded: Web Push devices can be sent to. */
bool		webpush_on(void);

/*
 * Load (at start) or reload (SIGHUP) cf_vapid_key_file with
 * cf_vapid_subject: 0, or -1 (logged; a key loaded before is kept). No
 * key file set: 0 and Web Push off.
 */
int			webpush_configure(void);

void		webpush_free(void);

#endif
