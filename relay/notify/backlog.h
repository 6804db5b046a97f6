/*
 * backlog.h: a channel's backlog for /metrics (backlog.c): one statement
 * answering (due, oldest due in seconds), run at most once at a time, every
 * poll interval.
 */
#ifndef NOTIFY_BACKLOG_H
#define NOTIFY_BACKLOG_H

#include <stdbool.h>

struct backlog
{
	int			stmt;			/* db_statement of the query */
	bool		running;		/* its answer is awaited */
	bool		known;			/* it has answered once */
	double		due;
	double		oldest_s;
};

/* Register the query: SQL answering one row (due, oldest_due_s). */
void		backlog_init(struct backlog *b, const char *sql);

/* Run it unless it is running already; the answer fills b. */
void		backlog_poll(struct backlog *b);

#endif
