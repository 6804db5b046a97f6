/*
 * db.h: a daemon's PostgreSQL connections, all non-blocking on the lws loop:
 * one LISTEN connection and a small pool in pipeline mode for queries.
 * Nothing here knows what the queries are for: a daemon registers its
 * statements, submits queries by statement id and gets each answered once.
 */
#ifndef CORE_DB_H
#define CORE_DB_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <libwebsockets.h>

#define DB_MAX_PARAMS 6

struct db_query;

/*
 * Called exactly once per submitted query: res is the query's result, or
 * NULL when the connection was lost before it completed. The callback owns
 * q (frees it); db clears res afterwards.
 */
typedef void (*db_done_fn) (struct db_query *q, PGresult *res);

struct db_query
{
	struct db_query *next;
	int			stmt;			/* from db_statement() */
	int			nparams;
	char	   *params[DB_MAX_PARAMS];	/* malloc'd text, NULL for SQL NULL */
	db_done_fn	done;
	void	   *arg;
	/*
	 * Set by db before done: the commit came with PostgreSQL's warning that
	 * the wait for the synchronous standby was cancelled. The transaction
	 * committed here but may not have been replicated: a failover now may
	 * lose it, so it must not be acknowledged as durable.
	 */
	bool		unreplicated;
	/* db's own */
	PGresult   *res;
	const char *sql;			/* set-up: run this text, unprepared */
	bool		prepare;		/* set-up: prepare stmt instead of running it */
};

struct db_settings
{
	const char *conninfo;
	const char *application_name;	/* the LISTEN connection adds " listen" */
	int			pool_size;
	int			pipeline_depth; /* queries in flight per connection */
	int			statement_timeout;	/* seconds */
	int			max_pending;	/* queries waiting for room before refusal */
	int			backoff_min_ms;
	int			backoff_max_ms;
	const char *listen_channel; /* NULL: no LISTEN connection */
	/* run before LISTEN with register_arg; the connection serves only if it returns true */
	const char *register_sql;
	const char *register_arg;
	const char *register_refused;	/* logged when it returns false */
	/* run next, before LISTEN; its result goes to db_hooks.listen_setup */
	const char *listen_setup_sql;
	struct lws_context *context;	/* woken when a host lookup is done */
	struct lws_vhost *vhost;	/* where the sockets are adopted */
	const char *raw_protocol;	/* the vhost's protocol of raw descriptors */
};

/* What the daemon is told; any may be NULL. */
struct db_hooks
{
	void		(*io_begin) (void); /* around the handling of one socket event */
	void		(*io_end) (void);
	void		(*notify) (const char *payload, size_t len);
	/* the result of listen_setup_sql; false: the set-up failed (retried) */
	bool		(*listen_setup) (PGresult *res);
	void		(*listen_ready) (bool again);	/* again: after a loss */
	void		(*pool_ready) (void);
};

/* Register a statement, prepared on every pool connection; before db_start. */
int			db_statement(const char *sql, int nparams);

void		db_start(const struct db_settings *settings, const struct db_hooks *hooks);
/* A reload: the settings that may change while running (max_pending). */
void		db_configure(const struct db_settings *settings);
void		db_stop(void);

/*
 * Run a query on the pool: 0 when accepted (done will be called exactly
 * once), -1 when the database is unavailable or too many are waiting (q is
 * untouched and stays the caller's).
 */
int			db_submit(struct db_query *q);
/* A new query of stmt; its parameters are set with db_param / db_paramf. */
struct db_query *db_query_new(int stmt, int nparams, db_done_fn done, void *arg);
void		db_param(struct db_query *q, int i, const char *value);
void		db_paramf(struct db_query *q, int i, const char *fmt,...) __attribute__((format(printf, 3, 4)));
void		db_query_free(struct db_query *q);
void		db_query_free_params(struct db_query *q);

bool		db_pool_ready(void);
bool		db_listen_ready(void);
int			db_pending(void);
uint64_t	db_reconnects(void);

/* The daemon's raw-descriptor callback hands every other reason here. */
int			db_raw_callback(struct lws *wsi, enum lws_callback_reasons reason);

#endif
