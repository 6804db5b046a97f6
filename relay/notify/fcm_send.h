/* fcm_send.h: placeholder until the fcm sender lands (push.h). */
#ifndef NOTIFY_FCM_SEND_H
#define NOTIFY_FCM_SEND_H
#include <stdbool.h>
bool		fcm_on(void);
int			fcm_configure(void);
void		fcm_free(void);
#endif
