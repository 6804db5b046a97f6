/*
 * ws.c: the callback of the relay's one lws protocol ("chat"), which
 * carries both HTTP and WebSocket sessions. It only dispatches: HTTP to
 * http.c, the upgrade checks to upgrade.c, the connection's life to conn.c.
 */
#include "conn.h"
#include "http.h"
#include "peers.h"
#include "relay.h"
#include "upgrade.h"
#include "ws.h"

int
ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct conn *c = user;

	switch (reason)
	{
		case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
			peers_accepted((int) (lws_intptr_t) in);
			return 0;
		case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
			peers_bound(wsi);
			return 0;
		case LWS_CALLBACK_WSI_DESTROY:
			peers_done(wsi);
			return 0;
		case LWS_CALLBACK_HTTP:
			peers_done(wsi);
			if (http_smuggled(wsi))
				return http_refuse(wsi, 400, "Transfer-Encoding with Content-Length, or Content-Length twice");
			return http_request(wsi, c, (const char *) in);
		case LWS_CALLBACK_HTTP_WRITEABLE:
			return http_writeable(wsi, c);
		case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
			peers_done(wsi);
			if (http_smuggled(wsi))
				return http_refuse(wsi, 400, "Transfer-Encoding with Content-Length, or Content-Length twice");
			http_forget(c);
			return upgrade_confirm(wsi, (const char *) in);
		case LWS_CALLBACK_ESTABLISHED:
			return conn_established(wsi, c);
		case LWS_CALLBACK_CLOSED_HTTP:
		case LWS_CALLBACK_CLOSED:
			if (c)
				conn_closed(c);
			return 0;
		case LWS_CALLBACK_SERVER_WRITEABLE:
			return conn_writeable(wsi, c);
		case LWS_CALLBACK_RECEIVE:
			conn_receive(wsi, c, (const char *) in, len);
			return 0;
		default:
			return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}
