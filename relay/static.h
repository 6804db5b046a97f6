/*
 * static.h: the relay's plain HTTP extras: static files from the `www`
 * folder (static.c) and development tokens (devtoken.c). http.c hands every
 * HTTP request that is not /livez, /healthz or /metrics to www_http.
 */
#ifndef RELAY_STATIC_H
#define RELAY_STATIC_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

struct conn;

/*
 * Answer an HTTP request for path if it is ours (a file under `www`, or
 * /dev/token); *rc is then the callback's return value. False: not ours.
 */
bool		www_http(struct lws *wsi, struct conn *c, const char *path, int *rc);

/* At start: check the www folder, warn when development tokens are on. */
void		www_startup(void);

/*
 * Send an HTTP response: status, content type, the security headers and
 * extra (lines "name: value\r\n", may be NULL); the body (malloc'd with
 * LWS_PRE bytes of headroom, taken over) is written when writeable.
 */
int			www_reply(struct lws *wsi, struct conn *c, unsigned int status, const char *ctype,
					  unsigned char *body, size_t len, const char *cache, bool csp);

/* A body buffer with LWS_PRE headroom holding s (len set). */
unsigned char *www_body(const char *s, size_t *len);

/* devtoken.c: GET /dev/token?user=N. */
int			devtoken_http(struct lws *wsi, struct conn *c);

#endif
