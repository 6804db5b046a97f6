/*
 * relay_db.h: chat-relay's use of the database client (core/db.h): its
 * settings, its hooks, and the statements it runs besides client requests.
 */
#ifndef RELAY_RELAY_DB_H
#define RELAY_RELAY_DB_H

/* Statement ids (db_statement) of the relay's own queries. */
struct relay_statements
{
	int			fetch;			/* a message too large for its event */
	int			presence_update;
	int			presence_sync;
	int			heartbeat;
	int			relay_gone;
};

extern struct relay_statements relay_sql;

/* Register the statements (requests too) and connect. */
void		relay_db_start(void);
/* After SIGHUP: the database settings that may change. */
void		relay_db_reload(void);

#endif
