/*
 * dispatch.h: the life of a delivery, whatever its channel (webhooks,
 * email; push next): claim -> send asynchronously -> report the result.
 *
 * A channel (struct notify_channel) says how to claim its due deliveries
 * (a query leasing up to `room` of them to this worker), how to take one
 * claimed row, how to send it, and how to report how it went. dispatch.c
 * does the rest, the same for every channel: when to claim (an event, a
 * resync, the poll, room freed), how many (never more than the channel's
 * concurrency in flight, so memory is bounded whatever the backlog), the
 * report and its retries while the lease lasts, and the shutdown (no new
 * claim; the sends in flight finish or are stopped, and are reported).
 */
#ifndef NOTIFY_DISPATCH_H
#define NOTIFY_DISPATCH_H

#include <libpq-fe.h>
#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"

/* The error text a result carries at most (the extension's bound). */
#define DELIVERY_ERROR_MAX 200

struct notify_channel;

/* What dispatch.c keeps of a delivery; a channel's own struct starts with it. */
struct delivery
{
	struct notify_channel *ch;
	struct delivery *prev,
			   *next;			/* the channel's deliveries in flight */
	int64_t		lease_end_us;	/* lws_now_usecs() past which another worker may take it */
	bool		sending;		/* between send and delivery_sent */
	bool		reporting;		/* its report is in the database's hands */
	int			status;			/* the outcome: a status (HTTP's), 0 for no answer */
	char		error[DELIVERY_ERROR_MAX + 1];	/* empty: none */
	lws_sorted_usec_list_t retry_sul;	/* the report, again */
};

struct notify_channel
{
	const char *name;			/* in log lines */
	int			concurrency;	/* deliveries in flight at most; the channel may change it */
	/* a claim of at most room deliveries leased for lease_s, answered to done with arg */
	struct db_query *(*claim) (int room, int lease_s, db_done_fn done, void *arg);
	/* one claimed row as a new delivery; NULL when the row is unusable (logged) */
	struct delivery *(*take) (PGresult *res, int row);
	/* start sending d; the channel calls delivery_sent(d, …) once, later */
	void		(*send) (struct delivery *d);
	/* stop d's send now: delivery_sent is called before this returns */
	void		(*abort) (struct delivery *d);
	/* the report of d's status and error, answered to done (its arg: d) */
	struct db_query *(*report) (struct delivery *d, db_done_fn done);
	/* what the report answered (NULL: it could not be reported), before release */
	void		(*reported) (struct delivery *d, const char *outcome);
	void		(*release) (struct delivery *d);
	/*
	 * Claims only every poll interval and while its last claim found work,
	 * not on events: its deliveries come due with time (email's delays),
	 * and a claim that scans costs the database more than an event is worth.
	 */
	bool		poll_only;
	/* every poll interval (e.g. the backlog for /metrics); may be NULL */
	void		(*poll) (void);
	/*
	 * Also claims every tick_us (0: only on events and polls): push comes
	 * due with time (seconds after the message), and a claim that finds
	 * nothing costs two index probes.
	 */
	int64_t		tick_us;
	/* dispatch.c's */
	int			in_flight;		/* claimed, not yet reported */
	int64_t		claim_sent_us;	/* when the claim in flight was sent */
	int			claiming;		/* room asked by the claim in flight, 0: none */
	bool		found;			/* the last claim found work: claim again as room frees */
	bool		again;			/* asked to claim while a claim was in flight: once more after it */
	struct delivery *head;
	lws_sorted_usec_list_t tick_sul;
};

struct dispatch_stats
{
	uint64_t	claims;			/* claim queries answered */
	uint64_t	claim_errors;	/* claim queries that failed */
	uint64_t	claimed;		/* deliveries claimed */
	uint64_t	report_errors;	/* reports that failed (retried while the lease lasts) */
	uint64_t	results_lost;	/* deliveries whose result was never reported (the lease retries them) */
};

extern struct dispatch_stats dispatch_stats;

/* Add a channel (before dispatch_start). */
void		dispatch_add(struct notify_channel *ch);
/* Claim every poll_s seconds, and claim_delay_ms after a kick; leases of lease_s. */
void		dispatch_start(int poll_s, int claim_delay_ms, int lease_s);
void		dispatch_configure(int poll_s, int claim_delay_ms, int lease_s);

/* Something may be due (an event, a resync, a connection back): claim soon. */
void		dispatch_kick(void);

/* The channel's send of d has ended; error NULL or "" for none. */
void		delivery_sent(struct delivery *d, int status, const char *error);

/* SIGTERM: claim no more. */
void		dispatch_stop(void);
/* Nothing is in flight. */
bool		dispatch_idle(void);
/* Past the shutdown's bound: stop the sends in flight (they are reported). */
void		dispatch_abort(void);
/* Deliveries in flight, all channels. */
int			dispatch_in_flight(void);

/* Before db_stop: stop what is left, report nothing more. */
void		dispatch_end(void);
/* After db_stop: free what is left. */
void		dispatch_free(void);

#endif
