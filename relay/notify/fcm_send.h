/*
 * fcm_send.h: the FCM sender (fcm_send.c; fcm_send and fcm_abort are
 * push.h's), FCM HTTP v1 with an OAuth2 token (fcm_auth.h).
 */
#ifndef NOTIFY_FCM_SEND_H
#define NOTIFY_FCM_SEND_H

#include <stdbool.h>

/* A service account is loaded. */
bool		fcm_on(void);
/* Load, or reload on SIGHUP, fcm_service_account_file: 0, or -1 (logged, the old kept). */
int			fcm_configure(void);
void		fcm_free(void);

#endif
