/*
 * http.h: the relay's plain HTTP side: its own endpoints (/livez, /healthz,
 * /metrics), the dispatch of every other path to static.c, and refusals of
 * upgrades written as whole HTTP/1.1 responses.
 */
#ifndef RELAY_HTTP_H
#define RELAY_HTTP_H

#include <libwebsockets.h>
#include <stdbool.h>

struct conn;

/* LWS_CALLBACK_HTTP: answer path. */
int			http_request(struct lws *wsi, struct conn *c, const char *path);

/* The same on the admin address: /livez, /healthz, /metrics, else 404. */
int			http_admin_request(struct lws *wsi, struct conn *c, const char *path);

/* LWS_CALLBACK_HTTP_WRITEABLE: the body of the response under way. */
int			http_writeable(struct lws *wsi, struct conn *c);

/* Drop a response not written yet (the request became an upgrade). */
void		http_forget(struct conn *c);

/*
 * Refuse an upgrade with status and why (also the body); returns the
 * callback's return value (nonzero: the connection closes).
 */
int			http_refuse(struct lws *wsi, unsigned int status, const char *why);

/* Both Transfer-Encoding and Content-Length, or two Content-Lengths. */
bool		http_smuggled(struct lws *wsi);

#endif
