/*
 * upgrade.c: every check of a new WebSocket, done at CONFIRM_UPGRADE so a
 * refused client gets an HTTP status with a reason (401, 403, 404, 429,
 * 503) instead of a WebSocket that opens and closes at once. What passes
 * is handed to conn.c through upgrade_take(): lws calls ESTABLISHED for
 * the same wsi within the same service call, so one slot is enough.
 */
#include "alloc.h"
#include "auth.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "relay.h"
#include "upgrade.h"
#include "users.h"

#include <stdlib.h>
#include <string.h>

/* A verified upgrade, handed from CONFIRM_UPGRADE to ESTABLISHED. */
static struct
{
	struct lws *wsi;
	int64_t		user_id;
	int64_t		exp;
}			pending;

bool
origin_allowed(struct lws *wsi, bool missing_ok)
{
	char		origin[512];
	int			n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);

	if (n <= 0)
		return missing_ok;
	if (n >= (int) sizeof(origin) || lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) < 0)
		return false;
	for (int i = 0; i < cf_allow_origin.n; i++)
		if (strcmp(origin, cf_allow_origin.v[i]) == 0)
			return true;
	return false;
}

/*
 * The token of an upgrade: ?access_token=… or "Authorization: Bearer …".
 * Returns a malloc'd copy or NULL; *too_large tells why it is missing.
 */
static char *
upgrade_token(struct lws *wsi, bool *too_large)
{
	size_t		cap = (size_t) cf_max_token + 32;
	char	   *buf = xmalloc(cap);
	const char *v;
	int			n;

	*too_large = false;
	v = lws_get_urlarg_by_name(wsi, "access_token=", buf, (int) cap);
	if (v && *v)
	{
		char	   *tok = xstrdup(v);

		free(buf);
		return tok;
	}
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) > cf_max_token)
		*too_large = true;
	n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
	if (n > 0)
	{
		if ((size_t) n >= cap)
			*too_large = true;
		else if (lws_hdr_copy(wsi, buf, (int) cap, WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
				 strncasecmp(buf, "Bearer ", 7) == 0)
		{
			char	   *tok = xstrdup(buf + 7);

			free(buf);
			return tok;
		}
	}
	free(buf);
	return NULL;
}

/* The token's checks: 0 with *ar filled, else the refusal's return. */
static int
check_token(struct lws *wsi, struct auth_result *ar)
{
	bool		too_large;
	char	   *token = upgrade_token(wsi, &too_large);
	const char *why;
	int			rc;

	if (token == NULL)
	{
		metrics.auth_refused++;
		return http_refuse(wsi, 401, too_large ? "token too large" : "missing token");
	}
	rc = auth_verify(token, strlen(token), ar, &why);
	/* wipe the token from memory as soon as it is checked */
	memset(token, 0, strlen(token));
	free(token);
	if (rc != 0)
	{
		metrics.auth_refused++;
		return http_refuse(wsi, 401, why);
	}
	return 0;
}

int
upgrade_confirm(struct lws *wsi, const char *upgrade)
{
	char		path[64];
	struct auth_result ar;
	struct user *u;
	int			rc;

	if (strcasecmp(upgrade, "websocket") != 0)
		return http_refuse(wsi, 400, "only websocket upgrades");
	if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) < 0 || strcmp(path, "/ws") != 0)
		return http_refuse(wsi, 404, "the WebSocket lives at /ws");
	if (relay_shutting_down)
		return http_refuse(wsi, 503, "relay restarting");
	/* lws would drop an upgrade naming a subprotocol it lacks without a word */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) > 0)
		return http_refuse(wsi, 400, "no subprotocol is spoken here: connect without Sec-WebSocket-Protocol");
	if (!origin_allowed(wsi, cf_allow_no_origin))
	{
		metrics.origin_refused++;
		return http_refuse(wsi, 403, "origin not allowed");
	}
	if ((rc = check_token(wsi, &ar)) != 0)
		return rc;
	if (relay_conns >= cf_max_connections)
		return http_refuse(wsi, 503, "relay full");
	/* connected or lingering: its buckets are remembered either way */
	u = users_peek(ar.user_id);
	if (u && u->nconns >= cf_max_conns_per_user)
		return http_refuse(wsi, 429, "too many connections for this user");
	/* every connect costs presence work for the user's peers: reconnect loops are limited */
	if (u && !bucket_take(&u->upgrade_tokens, &u->upgrade_refill_us, cf_upgrade_rate, cf_upgrade_burst))
	{
		metrics.upgrades_limited++;
		return http_refuse(wsi, 429, "too many new connections for this user: retry later");
	}
	pending.wsi = wsi;
	pending.user_id = ar.user_id;
	pending.exp = ar.exp;
	return 0;
}

bool
upgrade_take(struct lws *wsi, int64_t *user_id, int64_t *exp)
{
	if (pending.wsi != wsi || wsi == NULL)
		return false;
	pending.wsi = NULL;
	*user_id = pending.user_id;
	*exp = pending.exp;
	return true;
}
