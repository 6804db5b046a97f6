/*
 * http.h: the relay's plain HTTP side: its own endpoints (/livez, /healthz,
 * /metrics), the dispatch of every other path to static.c. Refusals of
 * upgrades (http_refuse) and the ambiguous-length check (http_smuggled)
 * are core/admin.h's, which the admin address uses too.
 */
#ifndef RELAY_HTTP_H
#define RELAY_HTTP_H

#include <libwebsockets.h>
#include <stdbool.h>

#include "admin.h"

struct conn;

/* LWS_CALLBACK_HTTP: answer path. */
int			http_request(struct lws *wsi, struct conn *c, const char *path);

/* The body of /healthz (malloc'd), for both addresses; *ok: 200, else 503. */
char	   *http_health(bool *ok);

/* LWS_CALLBACK_HTTP_WRITEABLE: the body of the response under way. */
int			http_writeable(struct lws *wsi, struct conn *c);

/* Drop a response not written yet (the request became an upgrade). */
void		http_forget(struct conn *c);

#endif
