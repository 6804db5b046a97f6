/*
 * admin.c: the admin address. With metrics_listen set, /metrics moves to a
 * vhost of its own, on an address that can stay private (a management
 * network, loopback), and the main port answers it with 404: the counters
 * say how many users are connected and what is refused, which the public
 * has no need to know. /healthz and /livez answer on both, since load
 * balancers check the main port. Nothing else is served here: no WebSocket
 * upgrade, no static files, no /dev/token.
 *
 * Its sockets share the context's header slots with the main port, so the
 * per-address handshake limit (peers.c) applies to them too.
 */
#include "admin.h"
#include "config.h"
#include "conn.h"
#include "http.h"
#include "peers.h"

#include <string.h>

static int
admin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
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
			return http_admin_request(wsi, c, (const char *) in);
		case LWS_CALLBACK_HTTP_WRITEABLE:
			return http_writeable(wsi, c);
		case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
			peers_done(wsi);
			return http_refuse(wsi, 404, "no WebSocket on the admin address");
		case LWS_CALLBACK_CLOSED_HTTP:
			http_forget(c);
			return 0;
		default:
			return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

/* Its session data is a struct conn too: http.c keeps the response there. */
static struct lws_protocols admin_protocols[] = {
	{"chat-admin", admin_callback, sizeof(struct conn), 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0}
};

int
admin_listen(struct lws_context *ctx, const char *host, int port)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = host;
	info.protocols = admin_protocols;
	info.vhost_name = "admin";
	/* as short as the main port's: a silent socket holds a header slot */
	info.timeout_secs = (unsigned int) cf_handshake_timeout;
	info.timeout_secs_ah_idle = (unsigned int) cf_handshake_timeout;
	return lws_create_vhost(ctx, &info) ? 0 : -1;
}
