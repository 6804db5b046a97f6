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
 * this relay's row fresh and clears dead relays (and cuts off frozen ones,
 * whose LISTEN backend it terminates: extension/presence.c); a frozen relay
 * that wakes finds its LISTEN connection gone and, once it is back, resyncs
 * and sends presence_sync like after any other loss. On SIGTERM relay_gone
 * takes every user of this relay offline (unless connected elsewhere).
 *
 * One update or sync at a time goes down the channel below; the heartbeat
 * runs beside it (a change never waits behind a heartbeat). relay_gone
 * waits until neither is in flight, so it is always this relay's last
 * word: nothing sent before it can commit after it and put back a row it
 * cleared. The channel's lifecycle:
 *
 *                    update or sync sent
 *   start --> P_IDLE ----------------------> P_BUSY
 *               |  |  <----------------------   |
 *               |  |       its answer           | presence_stop (SIGTERM)
 *               |  |                            v
 *               |  +---------------------> P_DRAINING
 *               |   presence_stop, a            | nothing of ours
 *               |   heartbeat in flight         | in flight any more
 *               |                               v
 *               +-----------------------------> P_GONE: relay_gone sent
 *                presence_stop, nothing           |
 *                in flight                        | answered, or it could
 *                                                 v not be sent
 *                                             P_STOPPED
 *
 * pres_set() is the only code that changes the state, and refuses (logs at
 * error) any other edge. What else presence.c keeps is data, not state:
 * the dirty users; need_sync (the next statement must be the whole set,
 * not the changes); in_flight (how many answers the database owes us, the
 * update's and the heartbeat's: DRAINING ends at 0) and heartbeat_out (the
 * heartbeat's part of it: one at a time).
 */
#include "alloc.h"
#include "config.h"
#include "log.h"
#include "db.h"
#include "relay_db.h"
#include "presence.h"
#include "relay.h"
#include "timer.h"
#include "users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIRTY_MAX 200000

enum pres_state
{
	P_IDLE,						/* running, no update in flight */
	P_BUSY,						/* running, an update or a sync in flight */
	P_DRAINING,					/* stopping: relay_gone waits for in_flight == 0 */
	P_GONE,						/* relay_gone in flight */
	P_STOPPED					/* relay_gone answered or given up: the end */
};

static const char *const pres_names[] = {"IDLE", "BUSY", "DRAINING", "GONE", "STOPPED"};

static const bool pres_legal[5][5] = {
	[P_IDLE] = {[P_BUSY] = true, [P_DRAINING] = true, [P_GONE] = true},
	[P_BUSY] = {[P_IDLE] = true, [P_DRAINING] = true},
	[P_DRAINING] = {[P_GONE] = true},
	[P_GONE] = {[P_STOPPED] = true},
};

static enum pres_state state;
static int64_t *dirty;
static int	n_dirty,
			cap_dirty;
static bool need_sync;
static int	in_flight;			/* our statements not answered yet */
static bool heartbeat_out;		/* one of them is the heartbeat */
static lws_sorted_usec_list_t heartbeat_sul;

static void flush(void);
static void send_gone(void);

/* The one transition function of the channel (see the diagram). */
static bool
pres_set(enum pres_state to)
{
	if (!pres_legal[state][to])
	{
		log_error("presence: %s -> %s is not an edge of its lifecycle; refused",
				  pres_names[state], pres_names[to]);
		return false;
	}
	log_debug("presence: %s -> %s", pres_names[state], pres_names[to]);
	state = to;
	if (to == P_GONE)
		send_gone();
	return true;
}

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

static void
query_free(struct db_query *q)
{
	db_query_free_params(q);
	free(q);
}

void
presence_changed(int64_t user_id)
{
	/* stopping: relay_gone clears them all; exiting: nothing goes out */
	if (state >= P_DRAINING || relay_destroying)
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

/* The database answered relay_gone (res NULL: the connection was lost). */
static void
gone_done(struct db_query *q, PGresult *res)
{
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
		log_warn("could not clear this relay's presence; other relays will after presence_grace");
	query_free(q);
	pres_set(P_STOPPED);
}

/* Entering P_GONE: send relay_gone; if it cannot go, that is the end too. */
static void
send_gone(void)
{
	struct db_query *q = xcalloc(1, sizeof(*q));

	q->stmt = relay_sql.relay_gone;
	q->nparams = 1;
	q->params[0] = xstrdup(cf_relay_id);
	q->done = gone_done;
	if (db_submit(q) != 0)
	{
		query_free(q);
		pres_set(P_STOPPED);
	}
}

/* Stopping: once nothing of ours is in flight, relay_gone. */
static void
drained(void)
{
	if (state == P_DRAINING && in_flight == 0)
		pres_set(P_GONE);
}

/* An update or a sync answered (res NULL: the connection was lost). */
static void
update_done(struct db_query *q, PGresult *res)
{
	bool		ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;

	in_flight--;
	if (!ok)
	{
		if (res)
			log_warn("presence update failed: %s", PQresultErrorMessage(res));
		need_sync = true;		/* retried at the next heartbeat */
	}
	query_free(q);
	if (state == P_DRAINING)
		drained();
	else if (pres_set(P_IDLE) && ok)
		flush();
}

/* The heartbeat answered: how many dead relays it cleared. */
static void
heartbeat_done(struct db_query *q, PGresult *res)
{
	in_flight--;
	heartbeat_out = false;
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && atoi(PQgetvalue(res, 0, 0)) > 0)
		log_info("cleared the presence of %s dead relay(s)", PQgetvalue(res, 0, 0));
	else if (res && PQresultStatus(res) != PGRES_TUPLES_OK)
		log_warn("presence heartbeat failed: %s", PQresultErrorMessage(res));
	query_free(q);
	drained();
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

/* The statement of what changed: users now online, users now offline. */
static void
build_update(struct db_query *q)
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
	q->stmt = relay_sql.presence_update;
	q->nparams = 3;
	q->params[1] = sbuf_done(&on);
	q->params[2] = sbuf_done(&off);
}

/* Send what changed (or everything), when the channel is free. */
static void
flush(void)
{
	struct db_query *q;

	if (state != P_IDLE || !db_pool_ready() || !db_listen_ready())
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
		q->stmt = relay_sql.presence_sync;
		q->nparams = 2;
		q->params[1] = sbuf_done(&all);
	}
	else
		build_update(q);
	if (db_submit(q) != 0)
	{
		query_free(q);
		need_sync = true;
		return;
	}
	need_sync = false;
	n_dirty = 0;
	in_flight++;
	pres_set(P_BUSY);
}

/* Timer: the heartbeat (one at a time), and the retry of a failed update. */
static void
heartbeat(lws_sorted_usec_list_t *sul)
{
	(void) sul;
	if (!heartbeat_out && db_pool_ready() && db_listen_ready())
	{
		struct db_query *q = xcalloc(1, sizeof(*q));

		q->stmt = relay_sql.heartbeat;
		q->nparams = 2;
		q->params[0] = xstrdup(cf_relay_id);
		xasprintf(&q->params[1], "%d", cf_presence_grace);
		q->done = heartbeat_done;
		if (db_submit(q) == 0)
		{
			heartbeat_out = true;
			in_flight++;
		}
		else
			query_free(q);
	}
	flush();
	timer_schedule(&heartbeat_sul, heartbeat,
				   (lws_usec_t) cf_heartbeat_interval * LWS_US_PER_SEC);
}

void
presence_db_ready(void)
{
	need_sync = true;
	flush();
}

void
presence_kick(void)
{
	flush();
}

void
presence_start(void)
{
	timer_schedule(&heartbeat_sul, heartbeat,
				   (lws_usec_t) cf_heartbeat_interval * LWS_US_PER_SEC);
}

void
presence_stop(void)
{
	timer_cancel(&heartbeat_sul);
	if (state == P_IDLE && in_flight == 0)
		pres_set(P_GONE);
	else if (state == P_IDLE || state == P_BUSY)
		pres_set(P_DRAINING);
	/* else stopping already */
}

bool
presence_stopped(void)
{
	return state == P_STOPPED;
}

void
presence_free(void)
{
	timer_cancel(&heartbeat_sul);
	free(dirty);
	dirty = NULL;
	n_dirty = cap_dirty = 0;
}
