/*
 * admin.h: a daemon's admin address: a listening socket on its own lws
 * vhost that serves GET /livez, /healthz and /metrics and nothing else
 * (chat-relay's metrics_listen, chat-notify's listen).
 */
#ifndef CORE_ADMIN_H
#define CORE_ADMIN_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

struct admin_hooks
{
	/* /healthz: its JSON body (malloc'd), *ok: 200 (else 503) */
	char	   *(*health) (bool *ok);
	/* /metrics: Prometheus text after headroom free bytes, *len its length */
	char	   *(*metrics) (size_t *len, size_t headroom);
	/* optional: the daemon's count of handshakes per address */
	void		(*accepted) (int fd);
	void		(*bound) (struct lws *wsi);
	void		(*done) (struct lws *wsi);
	/* seconds a connection may take for its headers */
	unsigned int handshake_timeout;
};

/* Listen on host:port in ctx; 0, or -1 when it cannot (logged by the caller). */
int			admin_listen(struct lws_context *ctx, const char *host, int port,
						 const struct admin_hooks *hooks);

/*
 * Refuse a request (an upgrade) with status and why (also the body),
 * written whole as HTTP/1.1; the callback's return value (nonzero: the
 * connection closes).
 */
int			http_refuse(struct lws *wsi, unsigned int status, const char *why);

/*
 * A request whose length is ambiguous: Transfer-Encoding and
 * Content-Length both, or Content-Length twice.
 */
bool		http_smuggled(struct lws *wsi);

#endif
