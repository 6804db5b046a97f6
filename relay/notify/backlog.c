/*
 * backlog.c: the backlog gauges of a channel (webhook_backlog,
 * email_backlog), read every poll interval.
 */
#include "backlog.h"

#include "db.h"

#include <libpq-fe.h>
#include <stdlib.h>

static void
backlog_done(struct db_query *q, PGresult *res)
{
	struct backlog *b = q->arg;

	db_query_free(q);
	b->running = false;
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		return;
	b->known = true;
	b->due = strtod(PQgetvalue(res, 0, 0), NULL);
	b->oldest_s = PQgetisnull(res, 0, 1) ? 0 : strtod(PQgetvalue(res, 0, 1), NULL);
}

void
backlog_init(struct backlog *b, const char *sql)
{
	b->stmt = db_statement(sql, 0);
}

void
backlog_poll(struct backlog *b)
{
	struct db_query *q;

	if (b->running)
		return;
	q = db_query_new(b->stmt, 0, backlog_done, b);
	if (db_submit(q) != 0)
		db_query_free(q);
	else
		b->running = true;
}
