/*
 * conn.c: a WebSocket connection, from its upgrade to its close, and the
 * one place where its lifecycle moves.
 *
 *                 ESTABLISHED                 conn_close(code)
 *   CONN_HTTP ------------------> CONN_OPEN ------------------> CONN_CLOSING
 *       |       (upgrade checked)     |      (expired token 1008,      |
 *       |                             |       slow reader 1013,        |
 *       |                             |       SIGTERM 1012)            |
 *       | CLOSED_HTTP, or CLOSED      | CLOSED: the peer closed,       | CLOSED: close frame
 *       | of an upgrade that never    | ping timeout, socket error     | sent, peer gone, or
 *       | opened                      |                                | slow_close_timeout
 *       v                             v                                v
 *   CONN_CLOSED <---------------------+--------------------------------+
 *
 * conn_set_state() is the only code that changes c->state. Each edge does
 * all its work there: entering OPEN links the connection into the list of
 * all connections and its user's, counts it (relay_conns, relay_users,
 * connections_total) and reports a user's first connection to presence;
 * entering CLOSING drops the queue (only the close frame is owed, so memory
 * stays bounded whatever the reason); leaving for CLOSED undoes conn_index,
 * detaches unanswered requests and frees the rest. Any other edge (back to HTTP, out of CLOSED, OPEN twice)
 * is a bug: it is logged at error and refused, the connection unchanged.
 * Callers ask only for edges of the diagram: a second conn_close() or a
 * frame for a closing connection is not a transition, just ignored.
 */
#include "alloc.h"
#include "config.h"
#include "conn.h"
#include "frame.h"
#include "log.h"
#include "metrics.h"
#include "presence.h"
#include "relay.h"
#include "request.h"
#include "subscribe.h"
#include "upgrade.h"
#include "users.h"
#include "writer.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct conn *all_head;	/* OPEN and CLOSING connections */

static const char *const state_names[] = {"HTTP", "OPEN", "CLOSING", "CLOSED"};

/* The edges of the diagram above: legal[from][to]. */
static const bool legal[4][4] = {
	[CONN_HTTP] = {[CONN_OPEN] = true, [CONN_CLOSED] = true},
	[CONN_OPEN] = {[CONN_CLOSING] = true, [CONN_CLOSED] = true},
	[CONN_CLOSING] = {[CONN_CLOSED] = true},
};

/* Entering OPEN: c->user is the user's entry (users_get). */
static void
conn_index(struct conn *c)
{
	struct user *u = c->user;

	c->u_prev = NULL;
	c->u_next = u->conns;
	if (u->conns)
		u->conns->u_prev = c;
	u->conns = c;
	c->a_prev = NULL;
	c->a_next = all_head;
	if (all_head)
		all_head->a_prev = c;
	all_head = c;
	relay_conns++;
	metrics.connections_total++;
	if (++u->nconns == 1)
	{
		relay_users++;
		presence_changed(u->id);
	}
}

/* Leaving OPEN or CLOSING for CLOSED: undo conn_index, free what it held. */
static void
conn_unindex(struct conn *c)
{
	struct user *u = c->user;

	writer_forget(c);
	request_detach_all(c);
	subscribe_drop_conn(c);
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
	c->u_prev = c->u_next = c->a_prev = c->a_next = NULL;
	relay_conns--;
	if (--u->nconns == 0)
	{
		relay_users--;
		presence_changed(u->id);
		users_release(u);
	}
	c->user = NULL;
}

/* The one transition function (see the diagram). False: refused. */
static bool
conn_set_state(struct conn *c, enum conn_state to)
{
	enum conn_state from = c->state;

	if ((unsigned) from > CONN_CLOSED || !legal[from][to])
	{
		log_error("connection %p: %s -> %s is not an edge of its lifecycle; refused",
				  (void *) c, (unsigned) from <= CONN_CLOSED ? state_names[from] : "?",
				  state_names[to]);
		return false;
	}
	log_debug("connection %p: %s -> %s", (void *) c, state_names[from], state_names[to]);
	if (from == CONN_HTTP)
	{
		free(c->http_body);		/* a response never written: moot now */
		c->http_body = NULL;
	}
	c->state = to;
	if (to == CONN_OPEN)
		conn_index(c);
	else if (to == CONN_CLOSING)
	{
		writer_forget(c);		/* only the close frame goes out now */
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, cf_slow_close_timeout);
		lws_callback_on_writable(c->wsi);
	}
	else if (to == CONN_CLOSED && from != CONN_HTTP)
		conn_unindex(c);
	return true;
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

void
conn_close(struct conn *c, uint16_t code)
{
	if (c->state != CONN_OPEN)
		return;					/* closing already (the first code stays), or not a WebSocket */
	c->close_code = code;
	conn_set_state(c, CONN_CLOSING);
}

/*
 * All the queues together at max_total_queue_bytes: close the largest, the
 * likeliest slow reader, until f fits. Each close drops a queue that is
 * not empty, so this ends, at the latest when c is the largest. True: c
 * itself was closed.
 */
static bool
make_room(struct conn *c)
{
	struct conn *v = writer_largest(c);

	metrics.total_queue_drops++;
	log_info("user %lld: send queues hold %llu bytes, at max_total_queue_bytes: "
			 "closing the largest (%u frames, %u bytes) with 1013",
			 (long long) v->user->id, (unsigned long long) writer_total_bytes(), v->q_len, v->q_bytes);
	conn_close(v, 1013);
	if (v != c && v->q_head)
	{
		/* cannot happen (closing drops the queue): never loop on it */
		log_error("connection %p kept its queue when closed", (void *) v);
		conn_close(c, 1013);
		return true;
	}
	return v == c;
}

void
conn_send(struct conn *c, struct frame *f)
{
	enum writer_push r;

	if (c->state != CONN_OPEN || relay_destroying)
		return;
	while ((r = writer_push(c, f)) == WRITER_OVER_TOTAL)
		if (make_room(c))
			return;
	if (r == WRITER_FULL)
	{
		metrics.queue_drops++;
		log_info("user %lld: send queue full (%u frames, %u bytes), closing with 1013",
				 (long long) c->user->id, c->q_len, c->q_bytes);
		conn_close(c, 1013);
	}
}

void
conn_send_str(struct conn *c, const char *s, size_t len)
{
	struct frame *f = frame_new(s, len);

	conn_send(c, f);
	frame_unref(f);
}

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

void
ws_broadcast(struct frame *f)
{
	for (struct conn *c = all_head; c; c = c->a_next)
		conn_send(c, f);
}

void
conn_close_all(uint16_t code)
{
	for (struct conn *c = all_head; c; c = c->a_next)
		conn_close(c, code);
}

void
conn_tick(void)
{
	int64_t		now = (int64_t) time(NULL);

	for (struct conn *c = all_head; c; c = c->a_next)
		if (c->state == CONN_OPEN && now >= c->exp + cf_jwt_leeway)
		{
			log_info("user %lld: token expired, closing with 1008", (long long) c->user->id);
			conn_close(c, 1008);
		}
}

/*
 * vapid_public_key is empty or what PushManager.subscribe takes as
 * applicationServerKey: base64url (unpadded) of a 65-byte uncompressed
 * P-256 point, 87 characters, the first 'B' (its byte 0x04).
 */
int
conn_check_vapid(void)
{
	size_t		len = strlen(cf_vapid_public_key);

	if (len == 0)
		return 0;
	if (len != 87 || cf_vapid_public_key[0] != 'B' ||
		strspn(cf_vapid_public_key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != len)
	{
		log_error("vapid_public_key must be the base64url (no padding) of an uncompressed P-256 public key: "
				  "87 characters starting with B");
		return -1;
	}
	return 0;
}

/*
 * Say welcome: who the token is for, until when, the limits, and the Web
 * Push key when there is one.
 */
static void
welcome(struct conn *c)
{
	json_t	   *rid = json_string(cf_relay_id);
	char	   *rids = json_dumps(rid, JSON_ENCODE_ANY);

	/* the key is checked (conn_check_vapid): base64url needs no escaping */
	conn_sendf(c, "{\"type\":\"welcome\",\"v\":1,\"user_id\":%lld,\"relay_id\":%s,\"expires_at\":%lld,"
			   "\"limits\":{\"rate\":%g,\"burst\":%d,\"max_frame\":%d}%s%s%s}",
			   (long long) c->user->id, rids ? rids : "null", (long long) c->exp,
			   cf_rate, cf_burst, cf_max_frame,
			   *cf_vapid_public_key ? ",\"vapid_public_key\":\"" : "", cf_vapid_public_key,
			   *cf_vapid_public_key ? "\"" : "");
	free(rids);
	json_decref(rid);
}

/* ESTABLISHED: the upgrade checked by upgrade.c becomes an open WebSocket. */
int
conn_established(struct lws *wsi, struct conn *c)
{
	int64_t		user_id,
				exp;

	if (!upgrade_take(wsi, &user_id, &exp))
		return -1;				/* not through upgrade_confirm: cannot happen */
	/* what the HTTP part left (a response body) goes with the edge */
	c->wsi = wsi;
	c->exp = exp;
	c->user = users_get(user_id);
	if (!conn_set_state(c, CONN_OPEN))
		return -1;
	if (c->user->nconns > cf_max_conns_per_user)
	{
		conn_close(c, 1008);
		return 0;
	}
	welcome(c);
	log_debug("user %lld connected (%d on this relay)", (long long) c->user->id, c->user->nconns);
	return 0;
}

/* CLOSED / CLOSED_HTTP: whatever state it was in, the connection is gone. */
void
conn_closed(struct conn *c)
{
	conn_set_state(c, CONN_CLOSED);
}

/* SERVER_WRITEABLE: the close frame, or queued frames. */
int
conn_writeable(struct lws *wsi, struct conn *c)
{
	if (c->state == CONN_CLOSING)
	{
		const char *w = close_words(c->close_code);

		lws_close_reason(wsi, (enum lws_close_status) c->close_code,
						 (unsigned char *) w, strlen(w));
		return -1;
	}
	if (c->state != CONN_OPEN)
		return 0;
	return writer_write(c);
}

/* Receive a piece of a message; whole messages go to request.c. */
void
conn_receive(struct lws *wsi, struct conn *c, const char *in, size_t len)
{
	bool		first = lws_is_first_fragment(wsi);
	bool		final = lws_is_final_fragment(wsi);

	if (c->state != CONN_OPEN)
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
