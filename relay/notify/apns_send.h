/*
 * apns_send.h: the APNs sender (apns_send.c; apns_send and apns_abort are
 * push.h's), HTTP/2 with an ES256 provider token (apns_token.h).
 */
#ifndef NOTIFY_APNS_SEND_H
#define NOTIFY_APNS_SEND_H

#include <stdbool.h>

/* An auth key is loaded. */
bool		apns_on(void);
/* Load, or reload on SIGHUP, apns_key_file and its ids: 0, or -1 (logged, the old kept). */
int			apns_configure(void);
void		apns_free(void);

#endif
