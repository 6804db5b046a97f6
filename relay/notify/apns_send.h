/* apns_send.h: placeholder until the apns sender lands (push.h). */
#ifndef NOTIFY_APNS_SEND_H
#define NOTIFY_APNS_SEND_H
#include <stdbool.h>
bool		apns_on(void);
int			apns_configure(void);
void		apns_free(void);
#endif
