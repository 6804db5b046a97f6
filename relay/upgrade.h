/*
 * upgrade.h: the checks a WebSocket upgrade passes before it opens (path,
 * Origin, token, limits), and the hand-over of what they verified to the
 * connection (conn.c) that ESTABLISHED opens in the same lws call.
 */
#ifndef RELAY_UPGRADE_H
#define RELAY_UPGRADE_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

/*
 * HTTP_CONFIRM_UPGRADE: 0 to let lws upgrade, else the callback's return
 * after the refusal was written.
 */
int			upgrade_confirm(struct lws *wsi, const char *upgrade);

/* ESTABLISHED: the user id and token expiry that wsi's upgrade verified. */
bool		upgrade_take(struct lws *wsi, int64_t *user_id, int64_t *exp);

/* Is the request's Origin in the allow-list (exact match)? missing_ok decides a request without one. */
bool		origin_allowed(struct lws *wsi, bool missing_ok);

#endif
