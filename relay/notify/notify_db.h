/*
 * notify_db.h: chat-notify on the database client (core/db.h) and the
 * sealed channel (core/channel.h): its settings, and what it does when
 * events arrive or its connections come back: claim (dispatch_kick).
 */
#ifndef NOTIFY_NOTIFY_DB_H
#define NOTIFY_NOTIFY_DB_H

#include <libwebsockets.h>

/* Connect (the channels registered their statements before). */
void		notify_db_start(struct lws_context *context, struct lws_vhost *vhost, const char *raw_protocol);
/* After SIGHUP: the database settings that may change. */
void		notify_db_reload(void);
/* After db_stop: what the event filter keeps. */
void		notify_db_free(void);

#endif
