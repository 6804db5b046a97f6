/*
 * db_query.c: the query side of the database client (db.h): statements,
 * the queue of queries waiting for pipeline room, sending, and collecting
 * results in order. The connections' lifecycle is db.c's.
 */
#include "db.h"
#include "db_conn.h"

#include "alloc.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct db_stmt *db_stmts;
int			db_nstmts;
static struct db_query *wait_head,
		   *wait_tail;			/* waiting for pipeline room */
static int	nwait;

/* Answer every query of a list with "connection lost". */
void
db_fail_list(struct db_query *q)
{
	while (q)
	{
		struct db_query *next = q->next;
		PGresult   *res = q->res;

		q->res = NULL;
		q->next = NULL;
		q->done(q, NULL);
		if (res)
			PQclear(res);
		q = next;
	}
}

/* Put a query on the wire (it joins the in-flight list even on failure). */
void
db_send_query(struct db_conn *c, struct db_query *q)
{
	char		name[16];
	int			ok;

	q->next = NULL;
	q->unreplicated = false;
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	c->inflight++;
	if (c->state != DB_SETUP && c->state != DB_READY)
		return;
	snprintf(name, sizeof(name), "s%d", q->stmt);
	if (q->prepare)
		ok = PQsendPrepare(c->conn, name, db_stmts[q->stmt].sql, db_stmts[q->stmt].nparams, NULL);
	else if (q->sql)
		ok = PQsendQueryParams(c->conn, q->sql, q->nparams, NULL,
							   (const char *const *) q->params, NULL, NULL, 0);
	else
		ok = PQsendQueryPrepared(c->conn, name, q->nparams,
								 (const char *const *) q->params, NULL, NULL, 0);
	if (!ok || !PQpipelineSync(c->conn))
	{
		db_broken(c, db_pq_error(c));
		return;
	}
	db_want_write(c);
}

/* Deliver every notification received. */
void
db_drain_notifies(struct db_conn *c)
{
	PGnotify   *n;

	while (c->state == DB_READY && (n = PQnotifies(c->conn)) != NULL)
	{
		if (db_on.notify)
			db_on.notify(n->extra, strlen(n->extra));
		PQfreemem(n);
	}
}

/*
 * PostgreSQL's warning that a commit's wait for the synchronous standby was
 * cancelled (pg_cancel_backend, or the server shutting down): the
 * transaction committed locally but may not be on the standby. Matched on
 * the SQLSTATE and the message (the server's lc_messages must be English,
 * as it is by default): 01000 for a cancel, 57P01 when the backend is
 * being terminated as well.
 */
static bool
is_unreplicated_commit(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);

	if (!state || (strcmp(state, "01000") != 0 && strcmp(state, "57P01") != 0))
		return false;
	return (msg && strstr(msg, "wait for synchronous replication")) ||
		(detail && strstr(detail, "committed locally"));
}

/*
 * libpq's notice receiver on every connection. A notice comes between the
 * results of the query at the head and its Sync (results are collected in
 * order, one query answered per Sync): a commit's warning is the head's.
 */
void
db_notice(void *arg, const PGresult *res)
{
	struct db_conn *c = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (is_unreplicated_commit(res))
	{
		log_warn("database %s: %s: committed locally, maybe not on the synchronous standby",
				 db_conn_name(c), msg ? msg : "");
		if (c->head)
			c->head->unreplicated = true;
		return;
	}
	if (sev && !strcmp(sev, "WARNING"))
		log_warn("database %s: %s: %s", db_conn_name(c), sev, msg ? msg : "");
	else
		log_info("database %s: %s: %s", db_conn_name(c), sev ? sev : "NOTICE", msg ? msg : "");
}

/* The query at the head is complete (its Sync came): answer it. */
static void
answer_head(struct db_conn *c)
{
	struct db_query *q = c->head;
	PGresult   *qres = q->res;

	c->head = q->next;
	if (!c->head)
		c->tail = NULL;
	c->inflight--;
	q->next = NULL;
	q->res = NULL;
	if (qres == NULL)
		qres = PQmakeEmptyPGresult(c->conn, PGRES_FATAL_ERROR);
	q->done(q, qres);
	PQclear(qres);
	if (c->state == DB_SETUP && c->inflight == 0)
	{
		if (c->setup_failed)
			db_broken(c, "set-up failed");
		else
			db_set_state(c, DB_READY);
	}
}

/*
 * Collect results: per query, its result, a NULL, then the Sync's result,
 * at which point the query is answered.
 */
void
db_collect(struct db_conn *c)
{
	int			nulls = 0;

	while (c->head && (c->state == DB_READY || c->state == DB_SETUP))
	{
		PGresult   *res;

		if (PQisBusy(c->conn))
			break;
		res = PQgetResult(c->conn);
		if (res == NULL)
		{
			if (++nulls > 1)
				break;
			continue;
		}
		nulls = 0;
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC)
		{
			PQclear(res);
			answer_head(c);
		}
		else if (c->head->res == NULL)
			c->head->res = res;
		else
			PQclear(res);
	}
}

/* The ready pool connection with the most room, or NULL. */
static struct db_conn *
pick(void)
{
	struct db_conn *best = NULL;

	for (int i = db_first_pool; i < db_nconns; i++)
		if (db_conns[i].state == DB_READY && db_conns[i].inflight < db_cf.pipeline_depth &&
			(!best || db_conns[i].inflight < best->inflight))
			best = &db_conns[i];
	return best;
}

/* Move waiting queries to connections with room. */
void
db_dispatch(void)
{
	struct db_conn *c;

	while (wait_head && (c = pick()) != NULL)
	{
		struct db_query *q = wait_head;

		wait_head = q->next;
		if (!wait_head)
			wait_tail = NULL;
		nwait--;
		db_send_query(c, q);
	}
}

int
db_submit(struct db_query *q)
{
	struct db_conn *c;

	if (db_stopping || !db_pool_ready())
		return -1;
	c = pick();
	if (c && !wait_head)
	{
		db_send_query(c, q);
		return 0;
	}
	if (nwait >= db_cf.max_pending)
		return -1;
	q->next = NULL;
	if (wait_tail)
		wait_tail->next = q;
	else
		wait_head = q;
	wait_tail = q;
	nwait++;
	return 0;
}

struct db_query *
db_query_new(int stmt, int nparams, db_done_fn done, void *arg)
{
	struct db_query *q = xcalloc(1, sizeof(*q));

	q->stmt = stmt;
	q->nparams = nparams;
	q->done = done;
	q->arg = arg;
	return q;
}

void
db_param(struct db_query *q, int i, const char *value)
{
	free(q->params[i]);
	q->params[i] = value ? xstrdup(value) : NULL;
}

void
db_paramf(struct db_query *q, int i, const char *fmt,...)
{
	va_list		ap;

	free(q->params[i]);
	va_start(ap, fmt);
	xvasprintf(&q->params[i], fmt, ap);
	va_end(ap);
}

void
db_query_free_params(struct db_query *q)
{
	for (int i = 0; i < DB_MAX_PARAMS; i++)
	{
		free(q->params[i]);
		q->params[i] = NULL;
	}
}

void
db_query_free(struct db_query *q)
{
	db_query_free_params(q);
	free(q);
}

bool
db_pool_ready(void)
{
	for (int i = db_first_pool; i < db_nconns; i++)
		if (db_conns[i].state == DB_READY)
			return true;
	return false;
}

bool
db_listen_ready(void)
{
	return db_first_pool == 1 && db_conns[0].state == DB_READY;
}

int
db_pending(void)
{
	return nwait;
}

int
db_statement(const char *sql, int nparams)
{
	db_stmts = xrealloc(db_stmts, sizeof(*db_stmts) * (size_t) (db_nstmts + 1));
	db_stmts[db_nstmts].sql = xstrdup(sql);
	db_stmts[db_nstmts].nparams = nparams;
	return db_nstmts++;
}

/* Answer every waiting query with "connection lost". */
void
db_fail_waiting(void)
{
	struct db_query *w = wait_head;

	wait_head = wait_tail = NULL;
	nwait = 0;
	db_fail_list(w);
}

void
db_statements_free(void)
{
	for (int s = 0; s < db_nstmts; s++)
		free(db_stmts[s].sql);
	free(db_stmts);
	db_stmts = NULL;
	db_nstmts = 0;
}
