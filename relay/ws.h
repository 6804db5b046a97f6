/*
 * ws.h: the callback of the relay's one lws protocol (ws.c), for the
 * protocol table in main.c.
 */
#ifndef RELAY_WS_H
#define RELAY_WS_H

#include <libwebsockets.h>

int			ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
						void *user, void *in, size_t len);

#endif
