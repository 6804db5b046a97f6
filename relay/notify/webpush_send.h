/* webpush_send.h: placeholder until the webpush sender lands (push.h). */
#ifndef NOTIFY_WEBPUSH_SEND_H
#define NOTIFY_WEBPUSH_SEND_H
#include <stdbool.h>
bool		webpush_on(void);
int			webpush_configure(void);
void		webpush_free(void);
#endif
