/*
 * presence.c: this relay's share of the cluster-wide presence
 * (extension/presence.c keeps the table).
 *
 * When a user's first connection opens here or their last one closes, the
 * user is marked dirty; one presence_update at a time carries every dirty
 * user's current state, so changes coalesce under load and reach the
 * database in order. After the LISTEN connection (and with it the relay's
 * advisory lock) comes back, or after a failed update, presence_sync sends
 * the whole set instead. A heartbeat every heartbeat_interval seconds keeps
 * this relay's row fresh and clears dead relays. On SIGTERM relay_gone
 * takes every user of this relay offline (unless connected elsewhere).
 */
#include "alloc.h"
#include "config.h"
#include "log.h"
#include "pg.h"
#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIRTY_MAX 200000

static int64_t *dirty;
static int	n_dirty,
			cap_dirty;
static bool need_sync;
static bool busy;				/* an update or sync in flight */
static bool heartbeat_busy;
static bool stop_requested;
static bool gone_sent;
static bool stopped;
static lws_sorted_usec_list_t heartbeat_sul;

static void flush(void);

/* Growable text buffer for array literals. */
struct sbuf
{
	char	   *s;
	size_t		len,
				cap;
};

/* Append a user id to an array literal under construction. */
static void
sbuf_id(struct sbuf *b, int64_t id)
{
	if (b->len + 24 > b->cap)
	{
		b->cap = b->cap ? b->cap * 2 : 256;
		b->s = xrealloc(b->s, b->cap);
	}
	if (b->len == 0)
		b->s[b->len++] = '{';
	else
		b->s[b->len++] = ',';
	b->len += (size_t) sprintf(b->s + b->len, "%lld", (long long) id);
}

/* Close an array literal (an empty one if nothing was added). */
static char *
sbuf_done(struct sbuf *b)
{
	if (b->len == 0)
		return xstrdup("{}");
	b->s[b->len++] = '}';
	b->s[b->len] = '\0';
	return b->s;
}

/* A user's first connection opened or last one closed. */
void
presence_changed(int64_t user_id)
{
	if (stop_requested)
		return;
	if (n_dirty >= DIRTY_MAX)
	{
		n_dirty = 0;
		need_sync = true;
	}
	else
	{
		if (n_dirty == cap_dirty)
		{
			cap_dirty = cap_dirty ? cap_dirty * 2 : 256;
			dirty = xrealloc(dirty, sizeof(int64_t) * (size_t) cap_dirty);
		}
		dirty[n_dirty++] = user_id;
	}
	flush();
}

/* The database answered relay_gone. */
static void
gone_done(struct pg_query *q, PGresult *res)
{
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
		log_warn("could not clear this relay's presence; other relays will after presence_grace");
	stopped = true;
	pg_query_free_params(q);
	free(q);
}

/* Send relay_gone (once nothing else of ours is in flight). */
static void
send_gone(void)
{
	struct pg_query *q;

	if (gone_sent || busy)
		return;
	gone_sent = true;
	q = xcalloc(1, sizeof(*q));
	q->stmt = S_RELAY_GONE;
	q->nparams = 1;
	q->params[0] = xstrdup(cf_relay_id);
	q->done = gone_done;
	if (pg_submit(q) != 0)
	{
		pg_query_free_params(q);
		free(q);
		stopped = true;
	}
}

/* An update or sync finished. */
static void
update_done(struct pg_query *q, PGresult *res)
{
	busy = false;
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		if (res)
			log_warn("presence update failed: %s", PQresultErrorMessage(res));
		need_sync = true;		/* retried at the next heartbeat */
	}
	pg_query_free_params(q);
	free(q);
	if (stop_requested)
		send_gone();
	else if (res && PQresultStatus(res) == PGRES_TUPLES_OK)
		flush();
}

/* Add a connected user to a sync list. */
static void
add_online(struct user *u, void *arg)
{
	if (u->nconns > 0)
		sbuf_id(arg, u->id);
}

/* Compare user ids for qsort. */
static int
cmp_id(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

/* Send what changed (or everything), one statement at a time. */
static void
flush(void)
{
	struct pg_query *q;

	if (busy || stop_requested || !pg_pool_ready() || !pg_listen_ready())
		return;
	if (!need_sync && n_dirty == 0)
		return;
	q = xcalloc(1, sizeof(*q));
	q->done = update_done;
	q->params[0] = xstrdup(cf_relay_id);
	if (need_sync)
	{
		struct sbuf all = {0};

		users_foreach(add_online, &all);
		q->stmt = S_PRESENCE_SYNC;
		q->nparams = 2;
		q->params[1] = sbuf_done(&all);
	}
	else
	{
		struct sbuf on = {0},
					off = {0};

		qsort(dirty, (size_t) n_dirty, sizeof(int64_t), cmp_id);
		for (int i = 0; i < n_dirty; i++)
		{
			struct user *u;

			if (i > 0 && dirty[i] == dirty[i - 1])
				continue;
			u = users_find(dirty[i]);
			sbuf_id(u && u->nconns > 0 ? &on : &off, dirty[i]);
		}
		q->stmt = S_PRESENCE_UPDATE;
		q->nparams = 3;
		q->params[1] = sbuf_done(&on);
		q->params[2] = sbuf_done(&off);
	}
	if (pg_submit(q) != 0)
	{
		pg_query_free_params(q);
		free(q);
		need_sync = true;
		return;
	}
	need_sync = false;
	n_dirty = 0;
	busy = true;
}

/* The heartbeat answered: how many dead relays it cleared. */
static void
heartbeat_done(struct pg_query *q, PGresult *res)
{
	heartbeat_busy = false;
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && atoi(PQgetvalue(res, 0, 0)) > 0)
		log_info("cleared the presence of %s dead relay(s)", PQgetvalue(res, 0, 0));
	else if (res && PQresultStatus(res) != PGRES_TUPLES_OK)
		log_warn("presence heartbeat failed: %s", PQresultErrorMessage(res));
	pg_query_free_params(q);
	free(q);
}

/* Timer: heartbeat, sweep, and retry of a failed update. */
static void
heartbeat(lws_sorted_usec_list_t *sul)
{
	(void) sul;
	if (stop_requested)
		return;
	if (!heartbeat_busy && pg_pool_ready() && pg_listen_ready())
	{
		struct pg_query *q = xcalloc(1, sizeof(*q));

		q->stmt = S_HEARTBEAT;
		q->nparams = 2;
		q->params[0] = xstrdup(cf_relay_id);
		if (asprintf(&q->params[1], "%d", cf_presence_grace) < 0)
			q->params[1] = NULL;
		q->done = heartbeat_done;
		if (pg_submit(q) == 0)
			heartbeat_busy = true;
		else
		{
			pg_query_free_params(q);
			free(q);
		}
	}
	flush();
	timer_schedule(&heartbeat_sul, heartbeat,
					 (lws_usec_t) cf_heartbeat_interval * LWS_US_PER_SEC);
}

/* The LISTEN connection (and the relay's lock) is back: send the whole set. */
void
presence_db_ready(void)
{
	need_sync = true;
	flush();
}

/* A pool connection is ready: send what waits. */
void
presence_kick(void)
{
	flush();
}

/* Start the heartbeat. */
void
presence_start(void)
{
	timer_schedule(&heartbeat_sul, heartbeat,
					 (lws_usec_t) cf_heartbeat_interval * LWS_US_PER_SEC);
}

/* SIGTERM: clear this relay's presence. */
void
presence_stop(void)
{
	if (stop_requested)
		return;
	stop_requested = true;
	timer_cancel(&heartbeat_sul);
	send_gone();
}

/* Has relay_gone been answered (or given up)? */
bool
presence_stopped(void)
{
	return stopped;
}

/* Free the dirty list. */
void
presence_free(void)
{
	timer_cancel(&heartbeat_sul);
	free(dirty);
	dirty = NULL;
	n_dirty = cap_dirty = 0;
}
