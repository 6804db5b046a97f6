/*
 * event.c: events from LISTEN chat_events to the connections of their
 * recipients.
 *
 * A payload is one event object or an array of them. Each event names its
 * recipients; the frame sent to them is the event without that list (who
 * else receives it is none of a client's business). `resync` has no
 * recipients and goes to everyone. A message, edit or delete whose message
 * did not fit in the payload ("inline": false) is fetched once from the
 * database and then sent with the message inline; events behind it wait,
 * so every chat's events keep their order.
 */
#include "alloc.h"
#include "config.h"
#include "log.h"
#include "pg.h"
#include "relay.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_BACKLOG_MAX 100000

struct pending
{
	struct pending *next;
	json_t	   *ev;
};

static struct pending *p_head,
		   *p_tail;
static int	p_count;
static bool fetching;

static void drain(void);

/* Is any recipient connected here? */
static bool
any_here(json_t *rec)
{
	size_t		i;
	json_t	   *v;

	json_array_foreach(rec, i, v)
		if (json_is_integer(v) && users_find(json_integer_value(v)))
		return true;
	return false;
}

/*
 * The frame of an event: its raw text with the recipients cut out when the
 * payload was this one event, else the event serialized without them.
 */
static struct frame *
event_frame(json_t *ev, const char *raw, size_t rawlen)
{
	static const char key[] = ",\"recipients\":[";
	struct frame *f;
	char	   *s;

	if (raw)
	{
		const char *k = memmem(raw, rawlen, key, sizeof(key) - 1);
		const char *close = k ? memchr(k, ']', rawlen - (size_t) (k - raw)) : NULL;

		if (close)
		{
			size_t		a = (size_t) (k - raw);
			size_t		b = rawlen - (size_t) (close + 1 - raw);

			f = frame_alloc(a + b);
			memcpy(FRAME_PAYLOAD(f), raw, a);
			memcpy(FRAME_PAYLOAD(f) + a, close + 1, b);
			return f;
		}
	}
	json_object_del(ev, "recipients");
	s = json_dumps(ev, JSON_COMPACT);
	if (s == NULL)
		return NULL;
	f = frame_new(s, strlen(s));
	free(s);
	return f;
}

/* Send one event to its recipients here (or to all, for resync). */
static void
route(json_t *ev, const char *raw, size_t rawlen)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	json_t	   *rec;
	struct frame *f;
	size_t		i;
	json_t	   *v;

	if (type && strcmp(type, "resync") == 0)
	{
		char	   *s = json_dumps(ev, JSON_COMPACT);

		metrics.resyncs++;
		log_info("resync from the database: %s", s ? s : "?");
		if (s)
		{
			f = frame_new(s, strlen(s));
			ws_broadcast(f);
			frame_unref(f);
			free(s);
		}
		return;
	}
	rec = json_object_get(ev, "recipients");
	if (!json_is_array(rec))
	{
		metrics.events_bad++;
		return;
	}
	/* the frame is made once a recipient is found here (most are elsewhere) */
	f = NULL;
	json_incref(rec);			/* event_frame may take it out of ev */
	json_array_foreach(rec, i, v)
	{
		struct user *u = json_is_integer(v) ? users_find(json_integer_value(v)) : NULL;

		if (!u)
			continue;
		if (!f && (f = event_frame(ev, raw, rawlen)) == NULL)
			break;
		for (struct conn *c = u->conns; c; c = c->u_next)
			conn_send(c, f);
	}
	if (f)
		frame_unref(f);
	json_decref(rec);
}

/* Does this event need its message fetched (too large for NOTIFY)? */
static bool
needs_fetch(json_t *ev)
{
	const char *type = json_string_value(json_object_get(ev, "type"));

	if (!type || (strcmp(type, "message") && strcmp(type, "edit") && strcmp(type, "delete")))
		return false;
	return json_is_false(json_object_get(ev, "inline")) &&
		json_object_get(ev, "message") == NULL &&
		json_is_integer(json_object_get(ev, "sender_id")) &&
		json_is_integer(json_object_get(ev, "chat_id")) &&
		json_is_integer(json_object_get(ev, "seq")) &&
		any_here(json_object_get(ev, "recipients"));
}

/* The fetched message arrived: inline it, send, go on with the backlog. */
static void
fetch_done(struct pg_query *q, PGresult *res)
{
	struct pending *p = p_head;

	fetching = false;
	if (p && p->ev == q->arg)
	{
		if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		{
			json_t	   *m = json_loads(PQgetvalue(res, 0, 0), 0, NULL);

			if (m)
			{
				json_object_set_new(p->ev, "message", m);
				json_object_set_new(p->ev, "inline", json_true());
			}
		}
		else
			log_warn("could not fetch a message too large for its event; sent without it");
		p_head = p->next;
		if (!p_head)
			p_tail = NULL;
		p_count--;
		route(p->ev, NULL, 0);
		json_decref(p->ev);
		free(p);
	}
	/* (the backlog may have been dropped meanwhile: then nothing is sent) */
	json_decref(q->arg);
	pg_query_free_params(q);
	free(q);
	drain();
}

/* Start fetching the message of ev; false if the database is unavailable. */
static bool
start_fetch(json_t *ev)
{
	struct pg_query *q = xcalloc(1, sizeof(*q));

	q->stmt = S_FETCH;
	q->nparams = 3;
	q->done = fetch_done;
	/* held by the query: a backlog dropped meanwhile cannot free it for another */
	q->arg = json_incref(ev);
	if (asprintf(&q->params[0], "%lld", (long long) json_integer_value(json_object_get(ev, "sender_id"))) < 0 ||
		asprintf(&q->params[1], "%lld", (long long) json_integer_value(json_object_get(ev, "chat_id"))) < 0 ||
		asprintf(&q->params[2], "%lld", (long long) json_integer_value(json_object_get(ev, "seq")) + 1) < 0 ||
		pg_submit(q) != 0)
	{
		json_decref(ev);
		pg_query_free_params(q);
		free(q);
		return false;
	}
	metrics.fetches++;
	fetching = true;
	return true;
}

/* Send what waits, up to the next event that needs a fetch. */
static void
drain(void)
{
	while (p_head && !fetching)
	{
		struct pending *p = p_head;

		if (needs_fetch(p->ev) && start_fetch(p->ev))
			return;
		p_head = p->next;
		if (!p_head)
			p_tail = NULL;
		p_count--;
		route(p->ev, NULL, 0);
		json_decref(p->ev);
		free(p);
	}
}

/* Queue an event behind a fetch. */
static void
backlog(json_t *ev)
{
	struct pending *p;

	if (p_count >= EVENT_BACKLOG_MAX)
	{
		log_warn("event backlog full while fetching; dropping it and sending resync");
		event_free();
		event_resync("relay_backlog");
		return;
	}
	p = xmalloc(sizeof(*p));
	p->next = NULL;
	p->ev = json_incref(ev);
	if (p_tail)
		p_tail->next = p;
	else
		p_head = p;
	p_tail = p;
	p_count++;
}

/* One event of a payload. */
static void
one_event(json_t *ev, const char *raw, size_t rawlen)
{
	if (!json_is_object(ev))
	{
		metrics.events_bad++;
		return;
	}
	metrics.events_in++;
	if (p_head || needs_fetch(ev))
	{
		backlog(ev);
		drain();
		return;
	}
	route(ev, raw, rawlen);
}

/* A NOTIFY payload from chat_events. */
void
event_notify(const char *payload, size_t len)
{
	json_t	   *doc = json_loadb(payload, len, 0, NULL);
	size_t		i;
	json_t	   *ev;

	if (doc == NULL)
	{
		metrics.events_bad++;
		log_warn("unreadable event payload (%zu bytes) ignored", len);
		return;
	}
	if (json_is_array(doc))
		json_array_foreach(doc, i, ev)
			one_event(ev, NULL, 0);
	else
		one_event(doc, payload, len);
	json_decref(doc);
}

/* Tell every client to catch up. */
void
event_resync(const char *reason)
{
	char		buf[128];
	int			n = snprintf(buf, sizeof(buf), "{\"v\":1,\"type\":\"resync\",\"reason\":\"%s\"}", reason);
	struct frame *f = frame_new(buf, (size_t) n);

	metrics.resyncs++;
	ws_broadcast(f);
	frame_unref(f);
}

/* Drop the backlog. */
void
event_free(void)
{
	while (p_head)
	{
		struct pending *p = p_head;

		p_head = p->next;
		json_decref(p->ev);
		free(p);
	}
	p_tail = NULL;
	p_count = 0;
}
