/*
 * admin.h: the admin address (metrics_listen): a second listening socket,
 * its own lws vhost, serving /metrics, /healthz and /livez only.
 */
#ifndef RELAY_ADMIN_H
#define RELAY_ADMIN_H

#include <libwebsockets.h>

/* Listen on host:port in ctx; 0, or -1 when it cannot (logged by main). */
int			admin_listen(struct lws_context *ctx, const char *host, int port);

#endif
