/*
 * event.c: events from LISTEN chat_events to the connections of their
 * recipients.
 *
 * A payload is one envelope or an array of them (core/envelope.h): the
 * recipients, then the event exactly as clients get it, forwarded byte for
 * byte whether it came alone or in a batch. A broadcast (`"to":null`) is
 * only ever a `resync`, which goes to everyone.
 *
 * A message, edit or delete whose message did not fit in the payload
 * ("inline":false) is fetched from the database and sent with the message
 * inline, the very bytes the inline form would have had. Only that chat's
 * later events wait behind the fetch (a chat's order holds); other chats'
 * events go on at once.
 */
#include "alloc.h"
#include "config.h"
#include "conn.h"
#include "db.h"
#include "envelope.h"
#include "event.h"
#include "event_check.h"
#include "frame.h"
#include "log.h"
#include "metrics.h"
#include "relay.h"
#include "relay_db.h"
#include "subscribe.h"
#include "users.h"
#include "writer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_BACKLOG_MAX 100000
#define WAIT_BUCKETS 256
#define BAD_LOG_INTERVAL_US (10 * LWS_US_PER_SEC)

static const char inline_false[] = EVENT_INLINE_FALSE;
static const char inline_true[] = ",\"inline\":true,\"message\":";

/* An event waiting behind its chat's fetch: copies of its bytes and recipients. */
struct pending
{
	struct pending *next;
	char	   *ev;
	size_t		ev_len;
	int64_t    *to;
	size_t		nto;
	bool		fetch;			/* its own message must be fetched first */
	int64_t		seq;
};

/* A chat whose events wait: the head is being fetched. */
struct chat_wait
{
	struct chat_wait *next;		/* in its hash bucket */
	int64_t		chat_id;
	uint64_t	fetch_id;		/* of the fetch in flight */
	struct pending *head,
			   *tail;
};

/* The fetch of a chat's head event: finds its chat again by id. */
struct fetch
{
	struct db_query q;			/* first: db hands it back */
	int64_t		chat_id;
	uint64_t	fetch_id;
};

static struct chat_wait *waits[WAIT_BUCKETS];
static int	n_pending;
static uint64_t last_fetch_id;
static struct envelope_list parsed;
static int64_t bad_logged_at = -BAD_LOG_INTERVAL_US;
static uint64_t bad_unlogged;

static void drain(struct chat_wait *w);

/* Count a payload or event refused, with a warning at most every interval. */
static void
bad(const char *what, size_t len)
{
	int64_t		now = lws_now_usecs();

	metrics.events_bad++;
	if (now - bad_logged_at < BAD_LOG_INTERVAL_US)
	{
		bad_unlogged++;
		return;
	}
	log_warn("%s (%zu bytes) ignored; %llu more since the last warning",
			 what, len, (unsigned long long) bad_unlogged);
	bad_logged_at = now;
	bad_unlogged = 0;
}

static struct chat_wait **
wait_slot(int64_t chat_id)
{
	struct chat_wait **pp = &waits[(uint64_t) chat_id % WAIT_BUCKETS];

	while (*pp && (*pp)->chat_id != chat_id)
		pp = &(*pp)->next;
	return pp;
}

/* Is any recipient connected here? */
static bool
any_here(const int64_t *to, size_t nto)
{
	for (size_t i = 0; i < nto; i++)
		if (users_find(to[i]))
			return true;
	return false;
}

/* Send an event's bytes to its recipients here; the frame is made at the first one. */
static void
route(const char *ev, size_t len, const int64_t *to, size_t nto)
{
	struct frame *f = NULL;

	for (size_t i = 0; i < nto; i++)
	{
		struct user *u = users_find(to[i]);

		if (!u)
			continue;
		if (!f)
			f = frame_new(ev, len);
		for (struct conn *c = u->conns; c; c = c->u_next)
			conn_send(c, f);
	}
	if (f)
		frame_unref(f);
}

/* "{1,2,3}": the recipients connected here, for the database to check. */
static char *
here_array(const int64_t *to, size_t nto)
{
	char	   *s = xmalloc(2 + nto * 21);
	size_t		n = 0;

	s[n++] = '{';
	for (size_t i = 0; i < nto; i++)
		if (users_find(to[i]))
			n += (size_t) sprintf(s + n, "%s%lld", n > 1 ? "," : "", (long long) to[i]);
	s[n++] = '}';
	s[n] = '\0';
	return s;
}

/* Parse a bigint[] text "{1,2}" into at most max ids; their count. */
static size_t
id_array(const char *s, int64_t *ids, size_t max)
{
	size_t		n = 0;

	if (*s == '{')
		s++;
	while (n < max && *s && *s != '}')
	{
		char	   *end;
		long long	v = strtoll(s, &end, 10);

		if (end == s)
			break;
		ids[n++] = v;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

/* Route an event with its fetched message in place of "inline":false, to these users. */
static void
route_inlined(const struct pending *p, const char *msg, size_t msg_len, const int64_t *to, size_t nto)
{
	size_t		head = p->ev_len - (sizeof(inline_false) - 1);
	size_t		len = head + (sizeof(inline_true) - 1) + msg_len + 1;
	char	   *s = xmalloc(len);

	memcpy(s, p->ev, head);
	memcpy(s + head, inline_true, sizeof(inline_true) - 1);
	memcpy(s + head + sizeof(inline_true) - 1, msg, msg_len);
	s[len - 1] = '}';
	route(s, len, to, nto);
	free(s);
}

static void
pending_free(struct pending *p)
{
	free(p->ev);
	free(p->to);
	free(p);
	n_pending--;
}

/* Take the head event off a chat's list (and the chat off the table when empty). */
static struct pending *
pop(struct chat_wait *w)
{
	struct pending *p = w->head;

	w->head = p->next;
	if (!w->head)
	{
		*wait_slot(w->chat_id) = w->next;
		free(w);
	}
	return p;
}

/* The fetched message arrived (or not): send the head event, go on with its chat. */
static void
fetch_done(struct db_query *q, PGresult *res)
{
	struct fetch *fe = (struct fetch *) q;
	struct chat_wait *w = *wait_slot(fe->chat_id);

	/* the backlog may have been dropped meanwhile: then nothing is sent */
	if (w && w->fetch_id == fe->fetch_id)
	{
		struct pending *p = w->head;
		bool		more;
		bool		got = res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
			!PQgetisnull(res, 0, 0) && PQgetlength(res, 0, 0) > 0;

		if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 0)
			;					/* no recipient here is a member: nothing to send */
		else if (got)
		{
			int64_t    *members = xmalloc((p->nto ? p->nto : 1) * sizeof(int64_t));
			size_t		n = id_array(PQgetvalue(res, 0, 1), members, p->nto);

			route_inlined(p, PQgetvalue(res, 0, 0), (size_t) PQgetlength(res, 0, 0), members, n);
			free(members);
		}
		else
		{
			log_warn("could not fetch a message too large for its event; sent without it");
			route(p->ev, p->ev_len, p->to, p->nto);
		}
		more = p->next != NULL;
		pending_free(pop(w));	/* frees w when it was the last */
		if (more)
			drain(w);
	}
	db_query_free_params(q);
	free(fe);
}

/* Start fetching the message of a chat's head event; false if the database is unavailable. */
static bool
start_fetch(struct chat_wait *w)
{
	struct fetch *fe = xcalloc(1, sizeof(*fe));
	struct pending *p = w->head;

	fe->q.stmt = relay_sql.fetch;
	fe->q.nparams = 3;
	fe->q.done = fetch_done;
	fe->chat_id = w->chat_id;
	fe->fetch_id = w->fetch_id = ++last_fetch_id;
	xasprintf(&fe->q.params[0], "%lld", (long long) w->chat_id);
	xasprintf(&fe->q.params[1], "%lld", (long long) p->seq);
	fe->q.params[2] = here_array(p->to, p->nto);
	if (db_submit(&fe->q) != 0)
	{
		db_query_free_params(&fe->q);
		free(fe);
		return false;
	}
	metrics.fetches++;
	return true;
}

/* Send a chat's waiting events up to the next one that needs a fetch. */
static void
drain(struct chat_wait *w)
{
	for (;;)
	{
		struct pending *p = w->head;
		bool		last = p->next == NULL;

		if (p->fetch && start_fetch(w))
			return;
		route(p->ev, p->ev_len, p->to, p->nto);
		pending_free(pop(w));
		if (last)
			return;
	}
}

/* Queue an event of chat_id behind that chat's fetch (made when there is none). */
static void
enqueue(int64_t chat_id, const struct envelope *e, bool fetch, json_t *ev)
{
	struct chat_wait **slot = wait_slot(chat_id);
	struct chat_wait *w = *slot;
	struct pending *p;

	if (n_pending >= EVENT_BACKLOG_MAX)
	{
		log_warn("event backlog full while fetching; dropping it and sending resync");
		event_free();
		event_resync("relay_backlog");
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->ev = xmalloc(e->ev_len);
	memcpy(p->ev, e->ev, e->ev_len);
	p->ev_len = e->ev_len;
	p->to = xmalloc((e->nto ? e->nto : 1) * sizeof(int64_t));
	if (e->nto)
		memcpy(p->to, e->to, e->nto * sizeof(int64_t));
	p->nto = e->nto;
	p->fetch = fetch;
	p->seq = json_integer_value(json_object_get(ev, "seq"));
	n_pending++;
	if (w)
	{
		w->tail->next = p;
		w->tail = p;
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->chat_id = chat_id;
	w->head = w->tail = p;
	*slot = w;
	drain(w);
}

/* One event of a payload. */
static void
one_event(const struct envelope *e)
{
	struct event_info ei;
	enum event_route r = event_check(e, &ei);
	bool		fetch;

	if (r == EVR_BAD)
	{
		bad("malformed event", e->ev_len);
		json_decref(ei.ev);
		return;
	}
	metrics.events_in++;
	if (r == EVR_BROADCAST)
	{
		struct frame *f = frame_new(e->ev, e->ev_len);

		metrics.resyncs++;
		log_info("resync from the database: %.*s", (int) (e->ev_len < 200 ? e->ev_len : 200), e->ev);
		ws_broadcast(f);
		frame_unref(f);
	}
	else if (r == EVR_PRESENCE)
		subscribe_route(ei.user_id, e->ev, e->ev_len);
	else if (r == EVR_BLOCK)
		subscribe_drop_pair(ei.user_id, ei.other_id);
	else if (r == EVR_CHAT &&
			 ((fetch = ei.fetchable && any_here(e->to, e->nto)) || *wait_slot(ei.chat_id)))
		enqueue(ei.chat_id, e, fetch, ei.ev);
	else
		route(e->ev, e->ev_len, e->to, e->nto);
	json_decref(ei.ev);
}

/* A NOTIFY payload from chat_events. */
void
event_notify(const char *payload, size_t len)
{
	metrics.notifications_in++;
	if (envelope_parse(payload, len, &parsed) != 0)
	{
		bad("unreadable event payload", len);
		return;
	}
	for (size_t i = 0; i < parsed.n; i++)
		one_event(&parsed.v[i]);
}

/* Tell every client to catch up. */
void
event_resync(const char *reason)
{
	char		buf[128];
	int			n = snprintf(buf, sizeof(buf), "{\"v\":1,\"type\":\"resync\",\"reason\":\"%s\"}", reason);
	struct frame *f;

	if (n < 0 || (size_t) n >= sizeof(buf))
		return;					/* reasons are short constants: cannot happen */
	f = frame_new(buf, (size_t) n);

	metrics.resyncs++;
	ws_broadcast(f);
	frame_unref(f);
}

/* Drop every waiting event (a fetch still in flight then finds no chat). */
void
event_free(void)
{
	for (int b = 0; b < WAIT_BUCKETS; b++)
		while (waits[b])
		{
			struct chat_wait *w = waits[b];

			waits[b] = w->next;
			while (w->head)
			{
				struct pending *p = w->head;

				w->head = p->next;
				pending_free(p);
			}
			free(w);
		}
	n_pending = 0;
}

/* At exit. */
void
event_shutdown(void)
{
	event_free();
	envelope_list_free(&parsed);
}
