/*
 * admin.c: the admin address (admin.h). /livez is 200 while the process
 * and its loop run; /healthz is the daemon's (200 or 503, a JSON body);
 * /metrics is Prometheus text. GET only: HEAD would get a body, read as
 * the next response on a kept-alive connection. Nothing else is served
 * here: no WebSocket upgrade, no files. The counters say what a daemon
 * does and refuses, which the public has no need to know, so the address
 * can stay private (a management network, loopback).
 */
#include "admin.h"

#include "alloc.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The response under way on one admin connection (lws zeroes it). */
struct admin_session
{
	unsigned char *body;		/* LWS_PRE headroom first */
	size_t		len;
};

static struct admin_hooks hooks;

/* The reason phrase of a status. */
static const char *
reason_phrase(unsigned int status)
{
	switch (status)
	{
		case 400:
			return "Bad Request";
		case 401:
			return "Unauthorized";
		case 403:
			return "Forbidden";
		case 404:
			return "Not Found";
		case 429:
			return "Too Many Requests";
		default:
			return "Service Unavailable";
	}
}

/*
 * The response is written whole here (lws_return_http_status would answer
 * HTTP/1.0 at this stage, which WebSocket clients reject as malformed),
 * then the connection closes.
 */
int
http_refuse(struct lws *wsi, unsigned int status, const char *why)
{
	unsigned char buf[LWS_PRE + 512];
	int			n;

	log_info("upgrade refused (%u): %s", status, why);
	n = snprintf((char *) buf + LWS_PRE, sizeof(buf) - LWS_PRE,
				 "HTTP/1.1 %u %s\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\n"
				 "connection: close\r\ncache-control: no-store\r\n\r\n%.300s\n",
				 status, reason_phrase(status), (strlen(why) < 300 ? strlen(why) : 300) + 1, why);
	if (lws_write(wsi, buf + LWS_PRE, (size_t) n, LWS_WRITE_HTTP_HEADERS) != n)
		return -1;
	return 1;
}

/*
 * lws 4.1 would take the body of such a request as the next request
 * (request smuggling behind a proxy that reads the other length); RFC 9112
 * 6.3 lets a server reject it.
 */
bool
http_smuggled(struct lws *wsi)
{
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
		return false;
	return lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 ||
		lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, 1) > 0;
}

/* Add one header line; nonzero when the buffer is full. */
static int
add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p, unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *) name, (const unsigned char *) value,
									   (int) strlen(value), p, end);
}

/* Send the status line and headers; body (taken over) follows when writeable. */
static int
reply(struct lws *wsi, struct admin_session *s, unsigned int status, const char *ctype,
	  unsigned char *body, size_t len)
{
	unsigned char hdr[LWS_PRE + 1024];
	unsigned char *start = hdr + LWS_PRE,
			   *p = start,
			   *end = hdr + sizeof(hdr) - 1;

	free(s->body);
	s->body = body;
	s->len = len;
	if (lws_add_http_common_headers(wsi, status, ctype, (lws_filepos_t) len, &p, end) ||
		add_header(wsi, "cache-control:", "no-store", &p, end) ||
		add_header(wsi, "x-content-type-options:", "nosniff", &p, end) ||
		add_header(wsi, "referrer-policy:", "no-referrer", &p, end) ||
		(status == 405 && add_header(wsi, "allow:", "GET", &p, end)) ||
		lws_finalize_write_http_header(wsi, start, &p, end))
		return 1;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
	{
		/* not a GET: lws waits for a body and calls no HTTP_WRITEABLE; HEAD gets no body */
		bool		head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
		int			m = head ? 0 : lws_write(wsi, body + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);

		free(s->body);
		s->body = NULL;
		if (m < 0)
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	lws_callback_on_writable(wsi);
	return 0;
}

/* A body buffer with LWS_PRE headroom holding text (freed by the caller). */
static unsigned char *
body_of(const char *text, size_t *len)
{
	unsigned char *b;

	*len = strlen(text);
	b = xmalloc(LWS_PRE + *len + 1);
	memcpy(b + LWS_PRE, text, *len);
	return b;
}

/* A short plain-text or JSON answer. */
static int
reply_text(struct lws *wsi, struct admin_session *s, unsigned int status, const char *ctype, const char *text)
{
	size_t		len;
	unsigned char *b = body_of(text, &len);

	return reply(wsi, s, status, ctype, b, len);
}

/* GET path. */
static int
serve(struct lws *wsi, struct admin_session *s, const char *path)
{
	bool		get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
	bool		ours = !strcmp(path, "/livez") || !strcmp(path, "/healthz") || !strcmp(path, "/metrics");

	if (!ours)
		return reply_text(wsi, s, 404, "text/plain", "not found\n");
	if (!get)
		return reply_text(wsi, s, 405, "text/plain", "GET only\n");
	if (!strcmp(path, "/livez"))
		return reply_text(wsi, s, 200, "application/json", "{\"status\":\"alive\"}\n");
	if (!strcmp(path, "/healthz"))
	{
		bool		ok = false;
		char	   *text = hooks.health(&ok);
		int			rc = reply_text(wsi, s, ok ? 200 : 503, "application/json", text);

		free(text);
		return rc;
	}
	{
		size_t		len;
		unsigned char *b = (unsigned char *) hooks.metrics(&len, LWS_PRE);

		return reply(wsi, s, 200, "text/plain; version=0.0.4", b, len);
	}
}

/* LWS_CALLBACK_HTTP_WRITEABLE: the body of the response under way. */
static int
writeable(struct lws *wsi, struct admin_session *s)
{
	int			m;

	if (!s || !s->body)
		return 0;
	m = lws_write(wsi, s->body + LWS_PRE, s->len, LWS_WRITE_HTTP_FINAL);
	free(s->body);
	s->body = NULL;
	if (m < 0)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* The handshake accounting hooks, when the daemon has them. */
static void
handshake_done(struct lws *wsi)
{
	if (hooks.done)
		hooks.done(wsi);
}

static int
admin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct admin_session *s = user;

	switch (reason)
	{
		case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
			if (hooks.accepted)
				hooks.accepted((int) (lws_intptr_t) in);
			return 0;
		case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
			if (hooks.bound)
				hooks.bound(wsi);
			return 0;
		case LWS_CALLBACK_WSI_DESTROY:
			handshake_done(wsi);
			return 0;
		case LWS_CALLBACK_HTTP:
			handshake_done(wsi);
			if (http_smuggled(wsi))
				return http_refuse(wsi, 400, "Transfer-Encoding with Content-Length, or Content-Length twice");
			return serve(wsi, s, (const char *) in);
		case LWS_CALLBACK_HTTP_WRITEABLE:
			return writeable(wsi, s);
		case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
			handshake_done(wsi);
			return http_refuse(wsi, 404, "no WebSocket on the admin address");
		case LWS_CALLBACK_CLOSED_HTTP:
			if (s)
			{
				free(s->body);
				s->body = NULL;
			}
			return 0;
		default:
			return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static struct lws_protocols admin_protocols[] = {
	{"admin", admin_callback, sizeof(struct admin_session), 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0}
};

int
admin_listen(struct lws_context *ctx, const char *host, int port, const struct admin_hooks *h)
{
	struct lws_context_creation_info info;

	hooks = *h;
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = host;
	info.protocols = admin_protocols;
	info.vhost_name = "admin";
	/* short: a silent socket holds a header slot this long at most */
	info.timeout_secs = hooks.handshake_timeout;
	info.timeout_secs_ah_idle = hooks.handshake_timeout;
	return lws_create_vhost(ctx, &info) ? 0 : -1;
}
