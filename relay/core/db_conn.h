/*
 * db_conn.h: what db.c (the connections' lifecycle) and db_query.c (the
 * queries on them) share. Not for daemons: they use db.h.
 */
#ifndef CORE_DB_CONN_H
#define CORE_DB_CONN_H

#include "db.h"

#include <sys/types.h>

enum db_state
{
	DB_DOWN,
	DB_CONNECTING,
	DB_SETUP,
	DB_READY,
	DB_BROKEN,
	DB_BACKOFF
};

struct db_conn
{
	int			index;
	bool		listen;			/* the LISTEN connection */
	enum db_state state;
	PGconn	   *conn;
	struct lws *wsi;			/* adopted dup of the socket */
	int			sock;			/* libpq's socket the dup was made of */
	ino_t		sock_ino;		/* and its identity */
	lws_sorted_usec_list_t sul; /* backoff, connect timeout, deferred teardown */
	lws_sorted_usec_list_t write_sul;	/* POLLOUT asked for in WRITEABLE */
	struct db_lookup *lookup;	/* host names being looked up */
	char		hung_addr[64];	/* the address (and port) a connect timed out on */
	char		hung_port[16];
	struct lws *in_writeable;	/* the wsi whose WRITEABLE is running */
	int			attempts;
	bool		was_ready;
	bool		setup_failed;
	struct db_query *head,
			   *tail;			/* in flight, in order */
	int			inflight;
	char		why[256];		/* of the last failure, for the log */
};

struct db_stmt
{
	char	   *sql;
	int			nparams;
};

extern struct db_settings db_cf;
extern struct db_hooks db_on;
extern struct db_conn *db_conns;	/* [0] LISTEN (when there is one), then the pool */
extern int	db_nconns;
extern int	db_first_pool;
extern bool db_stopping;
extern struct db_stmt *db_stmts;
extern int	db_nstmts;

/* db.c */
const char *db_conn_name(const struct db_conn *c);
bool		db_set_state(struct db_conn *c, enum db_state to);
void		db_broken(struct db_conn *c, const char *why);
void		db_want_write(struct db_conn *c);
const char *db_pq_error(struct db_conn *c);

/* db_query.c */
void		db_send_query(struct db_conn *c, struct db_query *q);
void		db_fail_list(struct db_query *q);
void		db_fail_waiting(void);
void		db_collect(struct db_conn *c);
void		db_drain_notifies(struct db_conn *c);
void		db_notice(void *arg, const PGresult *res);
void		db_dispatch(void);
void		db_statements_free(void);

#endif
