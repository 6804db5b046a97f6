/*
 * http.c: what the relay answers over plain HTTP.
 *
 * /livez is 200 while the process and its loop run, whatever the database
 * (a load balancer's liveness check: restarting a relay would not bring the
 * database back). /healthz is 200 only while the relay can serve (LISTEN
 * and a pool connection up, not shutting down): take it out of rotation
 * otherwise. /metrics is Prometheus text (metrics.c). These three answer
 * GET only: HEAD would get a body, read as the next response on a
 * kept-alive connection. Any other path is static.c's (files, /dev/token)
 * or 404. With metrics_listen set, the admin address (core/admin.c) serves
 * the three and nothing else, and the main port answers /metrics with 404.
 */
#include "alloc.h"
#include "config.h"
#include "conn.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "relay.h"
#include "relay_db.h"
#include "static.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A short plain-text answer. */
static int
text(struct lws *wsi, struct conn *c, unsigned int status, const char *s)
{
	size_t		len;
	unsigned char *body = www_body(s, &len);

	return www_reply(wsi, c, status, "text/plain", body, len, "no-store", false);
}

/* The body of /healthz (malloc'd); *ok: this relay can serve clients now. */
char *
http_health(bool *ok)
{
	bool		up = db_listen_ready() && db_pool_ready();
	json_t	   *id = json_string(cf_relay_id);
	char	   *ids = json_dumps(id, JSON_ENCODE_ANY);
	char	   *full;

	*ok = up && !relay_shutting_down;
	xasprintf(&full,
			  "{\"status\":\"%s\",\"database\":\"%s\",\"listening\":%s,\"pool\":%s,"
			  "\"connections\":%d,\"users\":%d,\"shutting_down\":%s,\"relay_id\":%s}\n",
			  *ok ? "ok" : "unavailable", up ? "up" : "down",
			  db_listen_ready() ? "true" : "false", db_pool_ready() ? "true" : "false",
			  relay_conns, relay_users, relay_shutting_down ? "true" : "false",
			  ids ? ids : "null");
	free(ids);
	json_decref(id);
	return full;
}

/* GET /healthz: can this relay serve clients now? */
static int
healthz(struct lws *wsi, struct conn *c)
{
	bool		ok;
	char	   *full = http_health(&ok);
	unsigned char *body;
	size_t		len;

	body = www_body(full, &len);
	free(full);
	return www_reply(wsi, c, ok ? 200 : 503, "application/json", body, len, "no-store", false);
}

/* GET /livez: the process and its loop run. */
static int
livez(struct lws *wsi, struct conn *c)
{
	size_t		len;
	unsigned char *body = www_body("{\"status\":\"alive\"}\n", &len);

	return www_reply(wsi, c, 200, "application/json", body, len, "no-store", false);
}

/* GET /metrics: Prometheus text. */
static int
metrics_page(struct lws *wsi, struct conn *c)
{
	size_t		len;
	unsigned char *body = (unsigned char *) metrics_render(&len, LWS_PRE);

	return www_reply(wsi, c, 200, "text/plain; version=0.0.4", body, len, "no-store", false);
}

/* /livez, /healthz and, with metrics, /metrics; false: path is none of them. */
static bool
own_endpoint(struct lws *wsi, struct conn *c, const char *path, bool metrics, int *rc)
{
	bool		get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
	int			(*serve) (struct lws *, struct conn *);

	if (strcmp(path, "/livez") == 0)
		serve = livez;
	else if (strcmp(path, "/healthz") == 0)
		serve = healthz;
	else if (metrics && strcmp(path, "/metrics") == 0)
		serve = metrics_page;
	else
		return false;
	*rc = get ? serve(wsi, c) : text(wsi, c, 405, "GET only\n");
	return true;
}

int
http_request(struct lws *wsi, struct conn *c, const char *path)
{
	bool		admin_elsewhere = *cf_metrics_listen != '\0';
	int			rc;

	if (own_endpoint(wsi, c, path, !admin_elsewhere, &rc))
		return rc;
	/* metrics_listen set: the metrics are for the admin address only */
	if (admin_elsewhere && strcmp(path, "/metrics") == 0)
		return text(wsi, c, 404, "not found\n");
	if (www_http(wsi, c, path, &rc))	/* static.c: files under www, /dev/token */
		return rc;
	return text(wsi, c, 404, "not found\n");
}

int
http_writeable(struct lws *wsi, struct conn *c)
{
	int			m;

	if (!c || !c->http_body)
		return 0;
	m = lws_write(wsi, c->http_body + LWS_PRE, c->http_len, LWS_WRITE_HTTP_FINAL);
	free(c->http_body);
	c->http_body = NULL;
	if (m < 0)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

void
http_forget(struct conn *c)
{
	if (c)
	{
		free(c->http_body);
		c->http_body = NULL;
	}
}
