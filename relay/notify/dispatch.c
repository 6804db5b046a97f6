/*
 * dispatch.c: claim -> send -> report, for every channel (dispatch.h).
 *
 * A delivery is in flight from its claim until its result is reported (or
 * given up): it counts against its channel's concurrency all that time, so
 * at most that many are ever in memory. When to claim:
 *   - claim_delay_ms after a kick (an event, a resync, a database
 *     connection back): one claim for a burst of events;
 *   - every poll interval, whatever happened (NOTIFY can drop events);
 *   - when room frees, as long as the last claim found something.
 * A poll_only channel (email) claims on the poll and while it finds work
 * only: an event does not make its deliveries due.
 * One claim per channel is in flight at a time, for the room left then.
 *
 * A report that fails (no connection, an error) is tried again every
 * second while the lease lasts; past it another worker may already have
 * taken the delivery, so it is given up (counted: at least once holds,
 * the receiver may see it twice).
 */
#include "dispatch.h"

#include "log.h"
#include "timer.h"

#include <stdio.h>
#include <string.h>

#define MAX_CHANNELS 4
#define REPORT_RETRY_US LWS_US_PER_SEC
/* of the lease, kept back: the database's clock started it a little earlier */
#define LEASE_SLACK_US LWS_US_PER_SEC
#define ERROR_LOG_INTERVAL_US (10 * LWS_US_PER_SEC)

struct dispatch_stats dispatch_stats;

static struct notify_channel *channels[MAX_CHANNELS];
static int	nchannels;
static int64_t poll_us,
			delay_us,
			lease_s;
static lws_sorted_usec_list_t kick_sul,
			poll_sul;
static bool kick_pending;
static bool stopping;			/* SIGTERM: no new claim */
static bool ending;				/* teardown: nothing more is reported */
static int64_t error_logged_at = -ERROR_LOG_INTERVAL_US;

static void report(struct delivery *d);

/* A warning about the database, at most every 10 s. */
static void
warn_db(const char *what, struct notify_channel *ch, PGresult *res)
{
	int64_t		now = lws_now_usecs();
	const char *msg = res ? PQresultErrorMessage(res) : "connection lost";

	if (now - error_logged_at < ERROR_LOG_INTERVAL_US)
		return;
	error_logged_at = now;
	log_warn("%s %s failed: %.*s", ch->name, what, (int) strcspn(msg, "\n"), msg);
}

/* Out of flight: say how it went, unlink, free; room is free again. */
static void
finish(struct delivery *d, const char *outcome)
{
	struct notify_channel *ch = d->ch;

	timer_cancel(&d->retry_sul);
	ch->reported(d, outcome);
	if (d->prev)
		d->prev->next = d->next;
	else
		ch->head = d->next;
	if (d->next)
		d->next->prev = d->prev;
	ch->in_flight--;
	ch->release(d);
	if (ch->found)
		dispatch_kick();
}

static void
on_retry(lws_sorted_usec_list_t *sul)
{
	report(lws_container_of(sul, struct delivery, retry_sul));
}

/* The report again in a second, or given up when the lease is over by then. */
static void
retry_later(struct delivery *d)
{
	dispatch_stats.report_errors++;
	if (!ending && lws_now_usecs() + REPORT_RETRY_US < d->lease_end_us)
	{
		timer_schedule(&d->retry_sul, on_retry, REPORT_RETRY_US);
		return;
	}
	dispatch_stats.results_lost++;
	finish(d, NULL);
}

/* The report's answer: the outcome the database chose, or a retry. */
static void
report_done(struct db_query *q, PGresult *res)
{
	struct delivery *d = q->arg;

	db_query_free(q);
	d->reporting = false;
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
	{
		finish(d, PQgetvalue(res, 0, 0));
		return;
	}
	if (!ending)
		warn_db("result", d->ch, res);
	retry_later(d);
}

/* Report d's status and error. */
static void
report(struct delivery *d)
{
	struct db_query *q;

	if (ending)
	{
		dispatch_stats.results_lost++;
		finish(d, NULL);
		return;
	}
	q = d->ch->report(d, report_done);
	if (db_submit(q) != 0)
	{
		db_query_free(q);
		retry_later(d);
		return;
	}
	d->reporting = true;
}

void
delivery_sent(struct delivery *d, int status, const char *error)
{
	d->sending = false;
	d->status = status;
	snprintf(d->error, sizeof(d->error), "%s", error ? error : "");
	report(d);
}

/* A claimed delivery: in flight, and sent. */
static void
start(struct notify_channel *ch, struct delivery *d, int64_t lease_end)
{
	d->ch = ch;
	d->prev = NULL;
	d->next = ch->head;
	if (ch->head)
		ch->head->prev = d;
	ch->head = d;
	ch->in_flight++;
	d->lease_end_us = lease_end;
	d->sending = true;
	ch->send(d);
}

/* The claim's rows: each a delivery, started at once. */
static void claim(struct notify_channel *ch);

static void
claim_done(struct db_query *q, PGresult *res)
{
	struct notify_channel *ch = q->arg;
	int			asked = ch->claiming;
	int64_t		lease_end = ch->claim_sent_us + lease_s * LWS_US_PER_SEC - LEASE_SLACK_US;
	int			n;

	db_query_free(q);
	ch->claiming = 0;
	if (ending)
		return;					/* the leases end and the rows are claimed again */
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		dispatch_stats.claim_errors++;
		warn_db("claim", ch, res);
		return;
	}
	dispatch_stats.claims++;
	n = PQntuples(res);
	if (n > asked)
		log_warn("%s claim returned %d rows for %d asked: the rest wait for their lease", ch->name, n, asked);
	n = n > asked ? asked : n;
	ch->found = n > 0;
	dispatch_stats.claimed += (uint64_t) n;
	for (int row = 0; row < n; row++)
	{
		struct delivery *d = ch->take(res, row);

		if (d)
			start(ch, d, lease_end);
	}
	/*
	 * A wake-up while this claim was in flight (an event, or a report that
	 * ended an endpoint's lease) may be for rows it could not see yet: claim
	 * once more now, not at the next poll.
	 */
	if (ch->again)
	{
		ch->again = false;
		claim(ch);
	}
}

/* Claim what the channel has room for, unless a claim is under way. */
static void
claim(struct notify_channel *ch)
{
	int			room = ch->concurrency - ch->in_flight;
	struct db_query *q;

	if (ch->claiming > 0)
		ch->again = true;
	if (stopping || ch->claiming > 0 || room <= 0 || !db_pool_ready())
		return;
	q = ch->claim(room, (int) lease_s, claim_done, ch);
	if (db_submit(q) != 0)
	{
		db_query_free(q);
		return;
	}
	ch->claiming = room;
	ch->claim_sent_us = lws_now_usecs();
}

static void
on_kick(lws_sorted_usec_list_t *sul)
{
	(void) sul;
	kick_pending = false;
	for (int i = 0; i < nchannels; i++)
		if (!channels[i]->poll_only || channels[i]->found)
			claim(channels[i]);
}

void
dispatch_kick(void)
{
	if (stopping || kick_pending)
		return;
	kick_pending = true;
	timer_schedule(&kick_sul, on_kick, delay_us > 0 ? delay_us : 1);
}

/* Every poll interval: the channels' own polls, and a claim. */
static void
on_poll(lws_sorted_usec_list_t *sul)
{
	(void) sul;
	for (int i = 0; i < nchannels; i++)
	{
		if (channels[i]->poll)
			channels[i]->poll();
		claim(channels[i]);
	}
	timer_schedule(&poll_sul, on_poll, poll_us);
}

/* A channel's own tick: a claim. */
static void
on_tick(lws_sorted_usec_list_t *sul)
{
	struct notify_channel *ch = lws_container_of(sul, struct notify_channel, tick_sul);

	claim(ch);
	if (ch->tick_us > 0)
		timer_schedule(&ch->tick_sul, on_tick, ch->tick_us);
}

void
dispatch_add(struct notify_channel *ch)
{
	if (nchannels < MAX_CHANNELS)
		channels[nchannels++] = ch;
}

void
dispatch_configure(int poll_s, int claim_delay_ms, int lease)
{
	poll_us = (int64_t) poll_s * LWS_US_PER_SEC;
	delay_us = (int64_t) claim_delay_ms * LWS_US_PER_MS;
	lease_s = lease;
}

void
dispatch_start(int poll_s, int claim_delay_ms, int lease)
{
	dispatch_configure(poll_s, claim_delay_ms, lease);
	/* the first claim comes when the pool is ready (dispatch_kick); this polls */
	timer_schedule(&poll_sul, on_poll, poll_us);
	for (int i = 0; i < nchannels; i++)
		if (channels[i]->tick_us > 0)
			timer_schedule(&channels[i]->tick_sul, on_tick, channels[i]->tick_us);
}

void
dispatch_stop(void)
{
	stopping = true;
	timer_cancel(&kick_sul);
	timer_cancel(&poll_sul);
	for (int i = 0; i < nchannels; i++)
		timer_cancel(&channels[i]->tick_sul);
	kick_pending = false;
}

bool
dispatch_idle(void)
{
	for (int i = 0; i < nchannels; i++)
		if (channels[i]->in_flight > 0 || channels[i]->claiming > 0)
			return false;
	return true;
}

int
dispatch_in_flight(void)
{
	int			n = 0;

	for (int i = 0; i < nchannels; i++)
		n += channels[i]->in_flight;
	return n;
}

/*
 * The first delivery of ch being sent (or, with idle, neither being sent
 * nor reported). Aborting one may end others (a channel stops what waits
 * behind it), so each step starts from the head again: at most
 * concurrency of them, each stopped once.
 */
static struct delivery *
first(struct notify_channel *ch, bool idle)
{
	for (struct delivery *d = ch->head; d; d = d->next)
		if (idle ? !d->sending && !d->reporting : d->sending)
			return d;
	return NULL;
}

void
dispatch_abort(void)
{
	struct delivery *d;

	for (int i = 0; i < nchannels; i++)
		while ((d = first(channels[i], false)) != NULL)
			channels[i]->abort(d);
}

void
dispatch_end(void)
{
	struct delivery *d;

	dispatch_stop();
	ending = true;
	/* stopped sends are given up at once (report() while ending) */
	dispatch_abort();
	for (int i = 0; i < nchannels; i++)
		while ((d = first(channels[i], true)) != NULL)
			finish(d, NULL);	/* was waiting to report again */
}

void
dispatch_free(void)
{
	for (int i = 0; i < nchannels; i++)
		while (channels[i]->head)
			finish(channels[i]->head, NULL);
	nchannels = 0;
}
