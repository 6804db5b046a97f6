/*
 * ws.c: the one lws protocol: HTTP (/healthz, /metrics), the WebSocket
 * upgrade checks (path, Origin, token, limits), and each connection's
 * bounded send queue.
 *
 * Frames are shared: an event going to many connections is one refcounted
 * buffer queued on each. All the queued frames of a connection go out in
 * one write: straight away at the end of a batch (the notifications and
 * answers of one database read, see ws_batch_begin), or under load up to
 * coalesce_ms later, else in SERVER_WRITEABLE. A
 * connection whose queue passes send_queue frames or send_queue_bytes is a
 * reader too slow to keep up: its queue is dropped (memory stays bounded),
 * and it is closed with 1013 as soon as it can take the close frame, or
 * killed after slow_close_timeout seconds.
 */
#include "alloc.h"
#include "auth.h"
#include "config.h"
#include "log.h"
#include "pg.h"
#include "relay.h"
#include "static.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A verified upgrade, handed from CONFIRM_UPGRADE to ESTABLISHED (same call). */
static struct
{
	struct lws *wsi;
	int64_t		user_id;
	int64_t		exp;
}			pending_auth;

static struct conn *all_head;

/*
 * While a batch is open, connections given their first frame are listed
 * here instead of asking lws for WRITEABLE; ws_batch_end() writes to them
 * directly. Most frames then cost one send(), not a send() plus two
 * epoll_ctl() and a trip round the loop.
 */
static bool batching;
static struct conn *dirty_head;

/* Put c on the dirty list (O(1) both ways: a held list can be long). */
static void
dirty_add(struct conn *c)
{
	c->d_next = dirty_head;
	if (dirty_head)
		dirty_head->d_pprev = &c->d_next;
	dirty_head = c;
	c->d_pprev = &dirty_head;
}

static void
dirty_remove(struct conn *c)
{
	*c->d_pprev = c->d_next;
	if (c->d_next)
		c->d_next->d_pprev = c->d_pprev;
	c->d_next = NULL;
	c->d_pprev = NULL;
}

/*
 * Under load (over coalesce_rate frames/s in the last HOLD_WINDOW) the
 * dirty list is written at most every coalesce_ms instead of after every
 * read: frames that come close together share one write (many fewer send()
 * calls at group fan-out) for at most coalesce_ms more latency. Below that
 * rate nothing waits.
 */
#define HOLD_WINDOW	(100 * LWS_US_PER_MS)
static bool holding;			/* the last HOLD_WINDOW was over coalesce_rate */
static lws_sorted_usec_list_t hold_sul;	/* scheduled: it will write the dirty list */
static int64_t rate_since;
static uint64_t rate_frames;

_Static_assert(LWS_PRE >= 10, "a frame header must fit in LWS_PRE");

/*
 * A new frame for len bytes of payload (to be filled at FRAME_PAYLOAD),
 * with its header written: a final, unmasked text frame.
 */
struct frame *
frame_alloc(size_t len)
{
	struct frame *f = xmalloc(sizeof(*f) + LWS_PRE + len);
	unsigned char h[10];
	int			n = 0;

	h[n++] = 0x81;				/* FIN, text */
	if (len < 126)
		h[n++] = (unsigned char) len;
	else if (len < 65536)
	{
		h[n++] = 126;
		h[n++] = (unsigned char) (len >> 8);
		h[n++] = (unsigned char) len;
	}
	else
	{
		h[n++] = 127;
		for (int shift = 56; shift >= 0; shift -= 8)
			h[n++] = (unsigned char) ((uint64_t) len >> shift);
	}
	f->refs = 1;
	f->len = (uint32_t) len;
	f->hlen = (uint8_t) n;
	memcpy(FRAME_WIRE(f), h, (size_t) n);
	return f;
}

/* A new frame holding a copy of data. */
struct frame *
frame_new(const char *data, size_t len)
{
	struct frame *f = frame_alloc(len);

	memcpy(FRAME_PAYLOAD(f), data, len);
	return f;
}

/* Drop one reference. */
void
frame_unref(struct frame *f)
{
	if (--f->refs == 0)
		free(f);
}

/* Drop everything queued. */
static void
queue_free(struct conn *c)
{
	struct qnode *n = c->q_head;

	while (n)
	{
		struct qnode *next = n->next;

		frame_unref(n->f);
		free(n);
		n = next;
	}
	c->q_head = c->q_tail = NULL;
	c->q_len = 0;
	c->q_bytes = 0;
}

/* Words sent with a close code. */
static const char *
close_words(uint16_t code)
{
	switch (code)
	{
		case 1008:
			return "token expired";
		case 1012:
			return "relay restarting";
		case 1013:
			return "too slow a reader";
		default:
			return "closing";
	}
}

/* Close a connection with code after what is being written now. */
void
conn_close(struct conn *c, uint16_t code)
{
	if (!c->established || c->close_code)
		return;
	c->close_code = code;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, cf_slow_close_timeout);
	lws_callback_on_writable(c->wsi);
}

/* Queue a frame; a full queue closes the connection with 1013. */
void
conn_send(struct conn *c, struct frame *f)
{
	struct qnode *n;

	if (!c->established || c->close_code || relay_destroying)
		return;
	if (c->q_len >= (uint32_t) cf_send_queue ||
		(uint64_t) c->q_bytes + f->len > (uint64_t) cf_send_queue_bytes)
	{
		metrics.queue_drops++;
		log_info("user %lld: send queue full (%u frames, %u bytes), closing with 1013",
				 (long long) c->user->id, c->q_len, c->q_bytes);
		queue_free(c);
		conn_close(c, 1013);
		return;
	}
	n = xmalloc(sizeof(*n));
	n->next = NULL;
	n->f = f;
	f->refs++;
	if (c->q_tail)
		c->q_tail->next = n;
	else
		c->q_head = n;
	c->q_tail = n;
	c->q_bytes += f->len;
	if (c->q_len++ == 0)
	{
		/* held, then emptied in WRITEABLE: it is on the list already */
		if (!batching)
			lws_callback_on_writable(c->wsi);
		else if (!c->d_pprev)
			dirty_add(c);
	}
}

/* Queue a frame made from a string. */
void
conn_send_str(struct conn *c, const char *s, size_t len)
{
	struct frame *f = frame_new(s, len);

	conn_send(c, f);
	frame_unref(f);
}

/* Queue a frame made from a format (whatever its length). */
void
conn_sendf(struct conn *c, const char *fmt,...)
{
	va_list		ap;
	char	   *s;
	int			n;

	va_start(ap, fmt);
	n = xvasprintf(&s, fmt, ap);
	va_end(ap);
	conn_send_str(c, s, (size_t) n);
	free(s);
}

/* Queue a frame on every connection. */
void
ws_broadcast(struct frame *f)
{
	for (struct conn *c = all_head; c; c = c->a_next)
		conn_send(c, f);
}

/* Close every connection with code. */
void
ws_close_all(uint16_t code)
{
	for (struct conn *c = all_head; c; c = c->a_next)
		conn_close(c, code);
}

/* Every second: close connections whose token expired. */
void
ws_tick(void)
{
	int64_t		now = (int64_t) time(NULL);

	for (struct conn *c = all_head; c; c = c->a_next)
		if (!c->close_code && now >= c->exp + cf_jwt_leeway)
		{
			log_info("user %lld: token expired, closing with 1008", (long long) c->user->id);
			conn_close(c, 1008);
		}
}

/* GET /healthz and /metrics. */
static int
http_request(struct lws *wsi, struct conn *c, const char *path)
{
	size_t		len;
	unsigned char *body;
	bool		ours = strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0;

	/* HEAD would get the body too, and other methods have no meaning here */
	if (ours && lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
	{
		body = www_body("GET only\n", &len);
		return www_reply(wsi, c, 405, "text/plain", body, len, "no-store", false);
	}
	if (strcmp(path, "/healthz") == 0)
	{
		bool		up = pg_listen_ready() && pg_pool_ready();
		json_t	   *id = json_string(cf_relay_id);
		char	   *ids = json_dumps(id, JSON_ENCODE_ANY);
		char	   *full;

		xasprintf(&full,
				  "{\"status\":\"%s\",\"database\":\"%s\",\"listening\":%s,\"pool\":%s,"
				  "\"connections\":%d,\"users\":%d,\"shutting_down\":%s,\"relay_id\":%s}\n",
				  up && !relay_shutting_down ? "ok" : "unavailable", up ? "up" : "down",
				  pg_listen_ready() ? "true" : "false", pg_pool_ready() ? "true" : "false",
				  relay_conns, relay_users, relay_shutting_down ? "true" : "false",
				  ids ? ids : "null");
		free(ids);
		json_decref(id);
		body = www_body(full, &len);
		free(full);
		return www_reply(wsi, c, up && !relay_shutting_down ? 200 : 503, "application/json",
						 body, len, "no-store", false);
	}
	if (strcmp(path, "/metrics") == 0)
	{
		body = (unsigned char *) metrics_render(&len, LWS_PRE);
		return www_reply(wsi, c, 200, "text/plain; version=0.0.4", body, len,
						 "no-store", false);
	}
	{
		int			rc;

		if (www_http(wsi, c, path, &rc))	/* static.c: files under www, /dev/token */
			return rc;
	}
	body = www_body("not found\n", &len);
	return www_reply(wsi, c, 404, "text/plain", body, len, "no-store", false);
}

/*
 * Refuse an upgrade with an HTTP status. The response is written whole here
 * (lws_return_http_status would answer HTTP/1.0 at this stage, which
 * WebSocket clients reject as malformed), then the connection closes.
 */
static int
refuse(struct lws *wsi, unsigned int status, const char *why)
{
	unsigned char buf[LWS_PRE + 512];
	const char *reason;
	int			n;

	switch (status)
	{
		case 400:
			reason = "Bad Request";
			break;
		case 401:
			reason = "Unauthorized";
			break;
		case 403:
			reason = "Forbidden";
			break;
		case 404:
			reason = "Not Found";
			break;
		case 429:
			reason = "Too Many Requests";
			break;
		default:
			reason = "Service Unavailable";
			break;
	}
	log_info("upgrade refused (%u): %s", status, why);
	n = snprintf((char *) buf + LWS_PRE, sizeof(buf) - LWS_PRE,
				 "HTTP/1.1 %u %s\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\n"
				 "connection: close\r\ncache-control: no-store\r\n\r\n%.300s\n",
				 status, reason, (strlen(why) < 300 ? strlen(why) : 300) + 1, why);
	if (lws_write(wsi, buf + LWS_PRE, (size_t) n, LWS_WRITE_HTTP_HEADERS) != n)
		return -1;
	return 1;
}

/* Is the request's Origin in the allow-list (exact match)? missing_ok decides a request without one. */
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

/* CONFIRM_UPGRADE: every check of a new WebSocket, answered with a status. */
static int
confirm_upgrade(struct lws *wsi, const char *upgrade)
{
	char		path[64];
	char	   *token;
	bool		too_large;
	struct auth_result ar;
	const char *why;
	struct user *u;
	int			rc;

	if (strcasecmp(upgrade, "websocket") != 0)
		return refuse(wsi, 400, "only websocket upgrades");
	if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) < 0 || strcmp(path, "/ws") != 0)
		return refuse(wsi, 404, "the WebSocket lives at /ws");
	if (relay_shutting_down)
		return refuse(wsi, 503, "relay restarting");
	/* lws would drop an upgrade naming a subprotocol it lacks without a word */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) > 0)
		return refuse(wsi, 400, "no subprotocol is spoken here: connect without Sec-WebSocket-Protocol");
	if (!origin_allowed(wsi, cf_allow_no_origin))
	{
		metrics.origin_refused++;
		return refuse(wsi, 403, "origin not allowed");
	}
	token = upgrade_token(wsi, &too_large);
	if (token == NULL)
	{
		metrics.auth_refused++;
		return refuse(wsi, 401, too_large ? "token too large" : "missing token");
	}
	rc = auth_verify(token, strlen(token), &ar, &why);
	/* wipe the token from memory as soon as it is checked */
	memset(token, 0, strlen(token));
	free(token);
	if (rc != 0)
	{
		metrics.auth_refused++;
		return refuse(wsi, 401, why);
	}
	if (relay_conns >= cf_max_connections)
		return refuse(wsi, 503, "relay full");
	u = users_find(ar.user_id);
	if (u && u->nconns >= cf_max_conns_per_user)
		return refuse(wsi, 429, "too many connections for this user");
	pending_auth.wsi = wsi;
	pending_auth.user_id = ar.user_id;
	pending_auth.exp = ar.exp;
	return 0;
}

/* A WebSocket is up: index it and say welcome. */
static int
established(struct lws *wsi, struct conn *c)
{
	struct user *u;
	json_t	   *rid;
	char	   *rids;

	if (pending_auth.wsi != wsi)
		return -1;				/* not through confirm_upgrade: cannot happen */
	pending_auth.wsi = NULL;
	memset(c, 0, sizeof(*c));
	c->wsi = wsi;
	c->exp = pending_auth.exp;
	u = users_get(pending_auth.user_id);
	c->user = u;
	c->established = 1;
	c->u_next = u->conns;
	if (u->conns)
		u->conns->u_prev = c;
	u->conns = c;
	u->nconns++;
	c->a_next = all_head;
	if (all_head)
		all_head->a_prev = c;
	all_head = c;
	relay_conns++;
	metrics.connections_total++;
	if (u->nconns == 1)
		presence_changed(u->id);
	if (u->nconns > cf_max_conns_per_user)
	{
		conn_close(c, 1008);
		return 0;
	}
	rid = json_string(cf_relay_id);
	rids = json_dumps(rid, JSON_ENCODE_ANY);
	conn_sendf(c, "{\"type\":\"welcome\",\"v\":1,\"user_id\":%lld,\"relay_id\":%s,\"expires_at\":%lld,"
			   "\"limits\":{\"rate\":%g,\"burst\":%d,\"max_frame\":%d}}",
			   (long long) u->id, rids ? rids : "null", (long long) c->exp,
			   cf_rate, cf_burst, cf_max_frame);
	free(rids);
	json_decref(rid);
	log_debug("user %lld connected (%d on this relay)", (long long) u->id, u->nconns);
	return 0;
}

/* A WebSocket is gone: unindex it and free what it held. */
static void
closed(struct conn *c)
{
	struct user *u = c->user;

	if (!c->established)
		return;
	c->established = 0;
	if (c->d_pprev)
		dirty_remove(c);
	request_detach_all(c);
	queue_free(c);
	free(c->rx);
	c->rx = NULL;
	if (c->u_prev)
		c->u_prev->u_next = c->u_next;
	else
		u->conns = c->u_next;
	if (c->u_next)
		c->u_next->u_prev = c->u_prev;
	if (c->a_prev)
		c->a_prev->a_next = c->a_next;
	else
		all_head = c->a_next;
	if (c->a_next)
		c->a_next->a_prev = c->a_prev;
	relay_conns--;
	if (--u->nconns == 0)
	{
		presence_changed(u->id);
		users_release(u);
	}
}

static unsigned char *wbuf;		/* LWS_PRE headroom, then several frames */
static size_t wcap;

/*
 * Write the queued frames in one system call however many a burst brought
 * (whole frames, up to WRITE_BATCH bytes, at least one). They are framed
 * already, so they go out as raw bytes; lws keeps what the socket does not
 * take and sends it before the next WRITEABLE. -1 if the connection failed.
 */
static int
write_queued(struct conn *c)
{
	struct qnode *q;
	unsigned char *out;
	size_t		total = 0;
	int			n = 0;

	for (q = c->q_head; q && (n == 0 || total + FRAME_WIRE_LEN(q->f) <= WRITE_BATCH); q = q->next)
	{
		total += FRAME_WIRE_LEN(q->f);
		n++;
	}
	if (n == 1)
		out = FRAME_WIRE(c->q_head->f); /* the shared buffer, no copy */
	else
	{
		size_t		used = 0;

		if (LWS_PRE + total > wcap)
		{
			wcap = LWS_PRE + total;
			wbuf = xrealloc(wbuf, wcap);
		}
		for (q = c->q_head; used < total; q = q->next)
		{
			memcpy(wbuf + LWS_PRE + used, FRAME_WIRE(q->f), FRAME_WIRE_LEN(q->f));
			used += FRAME_WIRE_LEN(q->f);
		}
		out = wbuf + LWS_PRE;
	}
	if (lws_write(c->wsi, out, total, LWS_WRITE_HTTP) < (int) total)
		return -1;

	while (n-- > 0)
	{
		struct qnode *head = c->q_head;

		c->q_head = head->next;
		if (!c->q_head)
			c->q_tail = NULL;
		c->q_len--;
		c->q_bytes -= head->f->len;
		metrics.frames_out++;
		metrics.bytes_out += head->f->len;
		frame_unref(head->f);
		free(head);
	}
	if (c->q_head)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* SERVER_WRITEABLE: the close frame, or queued frames. */
static int
writeable(struct lws *wsi, struct conn *c)
{
	if (!c->established)
		return 0;
	if (c->close_code)
	{
		const char *w = close_words(c->close_code);

		lws_close_reason(wsi, (enum lws_close_status) c->close_code,
						 (unsigned char *) w, strlen(w));
		return -1;
	}
	if (!c->q_head)
		return 0;
	return write_queued(c);
}

/* Open a batch: frames queued from now on wait for ws_batch_end(). */
void
ws_batch_begin(void)
{
	batching = true;
}

/*
 * Write to every connection that was given frames. A connection closing
 * meanwhile gets its close frame in WRITEABLE, and so does one whose last
 * write lws still holds in part: writing more now would move the frames
 * from the bounded queue into lws's unbounded buffer (a slow reader would
 * never be found out), or put them after a close frame lws is still
 * sending. One whose socket failed is closed by lws at once.
 */
static void
flush_dirty(void)
{
	while (dirty_head)
	{
		struct conn *c = dirty_head;

		dirty_remove(c);
		if (!c->q_head)			/* dropped: a reader too slow (1013) */
			continue;
		if (c->close_code || lws_partial_buffered(c->wsi))
			lws_callback_on_writable(c->wsi);
		else if (write_queued(c) < 0)
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	}
}

static void
held_flush(lws_sorted_usec_list_t *sul)
{
	(void) sul;
	flush_dirty();
}

/*
 * Close the batch: write now, or under load (more than coalesce_rate
 * frames/s over the last HOLD_WINDOW) at most coalesce_ms from now, so that
 * a connection given several frames meanwhile gets them in one write.
 */
void
ws_batch_end(void)
{
	int64_t		now = lws_now_usecs();

	batching = false;
	if (now - rate_since >= HOLD_WINDOW)
	{
		holding = cf_coalesce_rate > 0 &&
			(metrics.frames_out - rate_frames) * LWS_US_PER_SEC > (uint64_t) cf_coalesce_rate * (uint64_t) (now - rate_since);
		rate_since = now;
		rate_frames = metrics.frames_out;
	}
	else if (cf_coalesce_rate == 0)
		holding = false;		/* turned off by a reload: at once */
	if (!dirty_head)
		return;
	if (holding)
	{
		if (lws_dll2_is_detached(&hold_sul.list))
		{
			metrics.held_writes++;
			timer_schedule(&hold_sul, held_flush, (lws_usec_t) cf_coalesce_ms * LWS_US_PER_MS);
		}
		return;
	}
	flush_dirty();
}

/* Before the context goes: no held write may fire. */
void
ws_stop(void)
{
	timer_cancel(&hold_sul);
}

/* The write buffer's memory, at exit. */
void
ws_free(void)
{
	free(wbuf);
	wbuf = NULL;
	wcap = 0;
}

/* Receive a piece of a message; whole messages go to request.c. */
static void
receive(struct lws *wsi, struct conn *c, const char *in, size_t len)
{
	bool		first = lws_is_first_fragment(wsi);
	bool		final = lws_is_final_fragment(wsi);

	if (!c->established || c->close_code)
		return;
	if (first)
	{
		free(c->rx);
		c->rx = NULL;
		c->rx_len = 0;
		c->rx_binary = lws_frame_is_binary(wsi) ? 1 : 0;
		c->rx_too_large = 0;
		if (final)
		{
			request_message(c, in, len, c->rx_binary, len > (size_t) cf_max_frame);
			return;
		}
	}
	if (!c->rx_too_large)
	{
		if ((size_t) c->rx_len + len > (size_t) cf_max_frame)
		{
			c->rx_too_large = 1;
			free(c->rx);
			c->rx = NULL;
			c->rx_len = 0;
		}
		else
		{
			c->rx = xrealloc(c->rx, c->rx_len + len + 1);
			memcpy(c->rx + c->rx_len, in, len);
			c->rx_len += (uint32_t) len;
		}
	}
	if (final)
	{
		request_message(c, c->rx ? c->rx : "", c->rx_len, c->rx_binary, c->rx_too_large);
		free(c->rx);
		c->rx = NULL;
		c->rx_len = 0;
	}
}

/* The protocol callback. */
int
ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct conn *c = user;

	switch (reason)
	{
		case LWS_CALLBACK_HTTP:
			return http_request(wsi, c, (const char *) in);
		case LWS_CALLBACK_HTTP_WRITEABLE:
			if (c && c->http_body)
			{
				int			m = lws_write(wsi, c->http_body + LWS_PRE, c->http_len, LWS_WRITE_HTTP_FINAL);

				free(c->http_body);
				c->http_body = NULL;
				if (m < 0)
					return -1;
				if (lws_http_transaction_completed(wsi))
					return -1;
			}
			return 0;
		case LWS_CALLBACK_CLOSED_HTTP:
			if (c)
			{
				free(c->http_body);
				c->http_body = NULL;
			}
			return 0;
		case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
			if (c)
			{
				free(c->http_body);
				c->http_body = NULL;
			}
			return confirm_upgrade(wsi, (const char *) in);
		case LWS_CALLBACK_ESTABLISHED:
			return established(wsi, c);
		case LWS_CALLBACK_CLOSED:
			closed(c);
			return 0;
		case LWS_CALLBACK_SERVER_WRITEABLE:
			return writeable(wsi, c);
		case LWS_CALLBACK_RECEIVE:
			receive(wsi, c, (const char *) in, len);
			return 0;
		default:
			return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}
