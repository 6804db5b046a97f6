/*
 * pg.h: the relay's database connections, all non-blocking on the lws loop:
 * one LISTEN connection and a small pool in pipeline mode for requests.
 */
#ifndef RELAY_PG_H
#define RELAY_PG_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <libwebsockets.h>

/* Prepared statements of every pool connection (SQL in pg.c). */
enum pg_stmt
{
	S_SEND,
	S_EDIT,
	S_DELETE,
	S_HISTORY,
	S_CATCH_UP,
	S_CHATS,
	S_READ,
	S_TYPING,
	S_OPEN,
	S_PRESENCE,
	S_UNREAD,
	S_ARCHIVE,
	S_MUTE,
	S_BLOCK,
	S_UNBLOCK,
	S_UPLOAD,
	S_ATTACHMENT_URL,
	S_PRESENCE_UPDATE,
	S_PRESENCE_SYNC,
	S_HEARTBEAT,
	S_RELAY_GONE,
	S_FETCH,
	S_COUNT,
	/* set-up statements, sent unprepared */
	S_SETUP_TIMEOUT = S_COUNT,
	S_REGISTER,
	S_LISTEN
};

#define PG_MAX_PARAMS 6

struct pg_query;

/*
 * Called exactly once per submitted query: res is the query's result, or
 * NULL when the connection was lost before it completed. The callback owns
 * q (frees it); pg clears res afterwards.
 */
typedef void (*pg_done_fn) (struct pg_query *q, PGresult *res);

struct pg_query
{
	struct pg_query *next;
	int			stmt;
	int			nparams;
	char	   *params[PG_MAX_PARAMS];	/* malloc'd text, NULL for SQL NULL */
	pg_done_fn	done;
	void	   *arg;
	PGresult   *res;
	bool		prepare;		/* set-up: prepare stmt instead of running it */
};

void		pg_start(void);
void		pg_stop(void);
int			pg_submit(struct pg_query *q);
void		pg_query_free_params(struct pg_query *q);
bool		pg_pool_ready(void);
bool		pg_listen_ready(void);
int			pg_pending(void);
const char *pg_stmt_name(int stmt);
int			pg_raw_callback(struct lws *wsi, enum lws_callback_reasons reason);

/* hooks implemented by the rest of the relay */
void		event_notify(const char *payload, size_t len);
void		relay_on_listen_ready(bool again);
void		relay_on_pool_ready(void);

#endif
