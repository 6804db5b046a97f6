/*
 * db.c: libpq on the libwebsockets loop (db.h).
 *
 * Each connection is one state machine, moved only by db_set_state():
 *
 *   DOWN -> CONNECTING -> SETUP -> READY
 *      ^        |            |        |
 *      |        +------------+--------+--> BROKEN -> BACKOFF -> CONNECTING
 *      +-------------------------------------+-----------+   (when stopping)
 *
 * CONNECTING looks the host names up (in a thread, dblookup.c, which wakes
 * the loop when done) and drives PQconnectPoll; SETUP runs the set-up (pool:
 * statement_timeout and the registered statements; LISTEN connection: the
 * register statement, e.g. the relay's advisory lock, then LISTEN); READY
 * serves queries. Every connection is in pipeline mode with a Sync after
 * each query, so each query is its own transaction and one failure does not
 * abort the others. BROKEN fails every query in flight (each answered once,
 * with a NULL result) and waits an exponential backoff with jitter.
 *
 * The socket is adopted by lws as a raw file, as a dup(): lws closes what it
 * adopts and libpq closes its own. It is adopted again whenever libpq's
 * socket changes (reconnect, or another address tried while connecting).
 */
#include "db.h"
#include "db_conn.h"

#include "alloc.h"
#include "dblookup.h"
#include "log.h"
#include "timer.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const state_names[] = {"down", "connecting", "setup", "ready", "broken", "backoff"};

/* The edges db_set_state() accepts: allowed[from] has bit 1 << to. */
#define EDGE(s) (1u << (s))
static const unsigned allowed[] = {
	[DB_DOWN] = EDGE(DB_CONNECTING),
	[DB_CONNECTING] = EDGE(DB_SETUP) | EDGE(DB_BROKEN),
	[DB_SETUP] = EDGE(DB_READY) | EDGE(DB_BROKEN),
	[DB_READY] = EDGE(DB_BROKEN),
	[DB_BROKEN] = EDGE(DB_BACKOFF) | EDGE(DB_DOWN),
	[DB_BACKOFF] = EDGE(DB_CONNECTING) | EDGE(DB_DOWN),
};

struct db_settings db_cf;
struct db_hooks db_on;
static uint64_t reconnects;

/* db's connect_timeout (libpq applies it only to blocking connects), or 10 s */
static lws_usec_t connect_timeout_us;

struct db_conn *db_conns;	/* [0] LISTEN (when there is one), then the pool */
int			db_nconns;
int			db_first_pool;
bool		db_stopping;

/* Lookup threads wake the loop through this, and only while it exists. */
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lws_context *wake_context;

static void connect_start(struct db_conn *c);
static void teardown(lws_sorted_usec_list_t *sul);

/* A name for log lines. */
const char *
db_conn_name(const struct db_conn *c)
{
	static char buf[32];

	if (c->listen)
		return "listen";
	snprintf(buf, sizeof(buf), "pool %d", c->index - db_first_pool + 1);
	return buf;
}

/* Stop watching the socket: the adopted dup is closed by lws. */
static void
unwatch(struct db_conn *c)
{
	timer_cancel(&c->write_sul);
	if (c->wsi)
	{
		lws_set_opaque_user_data(c->wsi, NULL);
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		c->wsi = NULL;
	}
	c->sock = -1;
}

/* Connected again: counted, logged, and the daemon told. */
static void
on_ready(struct db_conn *c)
{
	bool		again = c->was_ready;

	c->attempts = 0;
	c->hung_addr[0] = '\0';
	timer_cancel(&c->sul);
	if (again)
		reconnects++;
	c->was_ready = true;
	log_info("database %s ready%s", db_conn_name(c), again ? " again" : "");
	if (c->listen)
	{
		if (db_on.listen_ready)
			db_on.listen_ready(again);
	}
	else
	{
		db_dispatch();
		if (db_on.pool_ready)
			db_on.pool_ready();
	}
}

/*
 * The one place a connection changes state. An edge not in allowed[] is a
 * bug: it is logged and refused, and the connection stays where it is.
 */
bool
db_set_state(struct db_conn *c, enum db_state to)
{
	enum db_state from = c->state;

	if (!(allowed[from] & EDGE(to)))
	{
		log_error("database %s: refused state change %s -> %s",
				  db_conn_name(c), state_names[from], state_names[to]);
		return false;
	}
	c->state = to;
	switch (to)
	{
		case DB_READY:
			on_ready(c);
			break;
		case DB_BROKEN:
			if (!db_stopping && from == DB_READY)
				log_warn("database %s lost: %s", db_conn_name(c), c->why);
			else if (!db_stopping)
				log_warn("database %s: cannot connect: %s", db_conn_name(c), c->why);

			/*
			 * Stop watching now: a failed socket stays readable (error,
			 * hang-up), and under libev a descriptor always ready keeps lws
			 * from running its timers, the teardown among them. The teardown
			 * runs from the loop right after, so that no caller is left
			 * holding the connection.
			 */
			unwatch(c);
			timer_schedule(&c->sul, teardown, 1);
			break;
		default:
			break;
	}
	return true;
}

/* Mark a connection broken (once: a later failure of the same attempt is moot). */
void
db_broken(struct db_conn *c, const char *why)
{
	if (c->state != DB_CONNECTING && c->state != DB_SETUP && c->state != DB_READY)
		return;
	snprintf(c->why, sizeof(c->why), "%s", why);
	db_set_state(c, DB_BROKEN);
}

/* Timer: ask for POLLOUT after a WRITEABLE callback that wanted more. */
static void
write_rearm(lws_sorted_usec_list_t *sul)
{
	struct db_conn *c = lws_container_of(sul, struct db_conn, write_sul);

	if (c->wsi)
		lws_callback_on_writable(c->wsi);
}

/*
 * Ask to be told when the socket can take more. Inside that socket's own
 * RAW_WRITEABLE_FILE, lws 4.1 clears POLLOUT after the callback returns,
 * which would undo the request: it is made right after, from a timer.
 */
void
db_want_write(struct db_conn *c)
{
	if (!c->wsi)
		return;
	if (c->in_writeable == c->wsi)
		timer_schedule(&c->write_sul, write_rearm, 1);	/* runs after the callback */
	else
		lws_callback_on_writable(c->wsi);
}

/* Make sure lws watches libpq's current socket. */
static int
watch(struct db_conn *c)
{
	int			sock = PQsocket(c->conn);
	lws_adopt_desc_t info;
	struct stat st;
	int			fd;

	if (sock < 0 || fstat(sock, &st) != 0)
		return -1;

	/*
	 * The same number is not the same socket: trying the next address,
	 * libpq closes its socket and the new one often gets the same number.
	 */
	if (c->wsi && c->sock == sock && c->sock_ino == st.st_ino)
		return 0;
	unwatch(c);
	fd = dup(sock);
	if (fd < 0)
		return -1;
	memset(&info, 0, sizeof(info));
	info.vh = db_cf.vhost;
	info.type = LWS_ADOPT_RAW_FILE_DESC;
	info.fd.filefd = fd;
	info.vh_prot_name = db_cf.raw_protocol;
	info.opaque = c;
	c->wsi = lws_adopt_descriptor_vhost_via_info(&info);
	if (c->wsi == NULL)
		return -1;
	c->sock = sock;
	c->sock_ino = st.st_ino;
	return 0;
}


/* Timer: connect again after the backoff. */
static void
backoff_done(lws_sorted_usec_list_t *sul)
{
	struct db_conn *c = lws_container_of(sul, struct db_conn, sul);

	if (!db_stopping && db_set_state(c, DB_CONNECTING))
		connect_start(c);
}

/* The next backoff: exponential from backoff_min_ms, with jitter. */
static int
backoff_ms(struct db_conn *c)
{
	int			shift = c->attempts < 16 ? c->attempts : 16;

	/* in 64 bits: 600,000 ms << 16 does not fit an int */
	int			delay = (int64_t) db_cf.backoff_min_ms << shift > db_cf.backoff_max_ms ?
		db_cf.backoff_max_ms : db_cf.backoff_min_ms << shift;

	/* jitter: somewhere in the upper half of the delay */
	return delay / 2 + (int) ((unsigned) rand() % (unsigned) (delay / 2 + 1));
}

/* Timer, after BROKEN: answer its queries, close it, schedule the reconnect. */
static void
teardown(lws_sorted_usec_list_t *sul)
{
	struct db_conn *c = lws_container_of(sul, struct db_conn, sul);
	struct db_query *q = c->head;
	int			delay;

	c->head = c->tail = NULL;
	c->inflight = 0;
	db_set_state(c, db_stopping ? DB_DOWN : DB_BACKOFF);
	unwatch(c);
	db_lookup_free(c->lookup);
	c->lookup = NULL;
	if (c->conn)
	{
		PQfinish(c->conn);
		c->conn = NULL;
	}
	db_fail_list(q);
	if (!db_pool_ready())
		db_fail_waiting();		/* nobody left to serve them */
	if (db_stopping)
		return;
	delay = backoff_ms(c);
	c->attempts++;
	log_info("database %s: reconnecting in %d ms", db_conn_name(c), delay);
	timer_schedule(&c->sul, backoff_done, (lws_usec_t) delay * 1000);
	db_dispatch();
}

/* The first line of libpq's error message. */
const char *
db_pq_error(struct db_conn *c)
{
	static char buf[256];
	const char *m = c->conn ? PQerrorMessage(c->conn) : "out of memory";
	size_t		n = strcspn(m, "\n");

	snprintf(buf, sizeof(buf), "%.*s", (int) (n < sizeof(buf) ? n : sizeof(buf) - 1), m);
	return buf;
}


/* Result of a set-up step. */
static void
setup_done(struct db_query *q, PGresult *res)
{
	struct db_conn *c = q->arg;

	if (res)
	{
		ExecStatusType st = PQresultStatus(res);

		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		{
			log_error("database %s set-up failed: %s", db_conn_name(c), PQresultErrorMessage(res));
			c->setup_failed = true;
		}
		else if (c->listen && db_cf.listen_setup_sql && q->sql == db_cf.listen_setup_sql &&
				 db_on.listen_setup && !db_on.listen_setup(res))
			c->setup_failed = true;
		else if (c->listen && db_cf.register_sql && q->sql == db_cf.register_sql &&
				 (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0))
		{
			log_error("%s; retrying", db_cf.register_refused ? db_cf.register_refused : "registration refused");
			c->setup_failed = true;
		}
	}
	db_query_free(q);
}

/* A set-up step for connection c: a statement to prepare, or text to run. */
static void
setup_step(struct db_conn *c, int stmt, const char *sql, const char *param)
{
	struct db_query *q = db_query_new(stmt, param ? 1 : 0, setup_done, c);

	q->prepare = sql == NULL;
	q->sql = sql;
	if (param)
		db_param(q, 0, param);
	db_send_query(c, q);
}

/* Connected: enter pipeline mode and send the set-up. */
static void
start_setup(struct db_conn *c)
{
	char		timeout[32];

	if (PQsetnonblocking(c->conn, 1) != 0 || !PQenterPipelineMode(c->conn))
	{
		db_broken(c, db_pq_error(c));
		return;
	}
	db_set_state(c, DB_SETUP);
	c->setup_failed = false;
	if (c->listen)
	{
		static char listen_sql[128];

		if (db_cf.register_sql)
			setup_step(c, 0, db_cf.register_sql, db_cf.register_arg);
		if (db_cf.listen_setup_sql)
			setup_step(c, 0, db_cf.listen_setup_sql, NULL);
		snprintf(listen_sql, sizeof(listen_sql), "LISTEN %s", db_cf.listen_channel);
		setup_step(c, 0, listen_sql, NULL);
		return;
	}
	snprintf(timeout, sizeof(timeout), "%ds", db_cf.statement_timeout);
	setup_step(c, 0, "SELECT pg_catalog.set_config('statement_timeout', $1, false)", timeout);
	for (int s = 0; s < db_nstmts; s++)
		setup_step(c, s, NULL, NULL);
}

/* Connect or set-up taking too long. */
static void
connect_timeout(lws_sorted_usec_list_t *sul)
{
	struct db_conn *c = lws_container_of(sul, struct db_conn, sul);

	if (c->state == DB_CONNECTING && c->lookup)
	{
		db_broken(c, "timeout looking the host up");
		return;
	}
	if (c->state == DB_CONNECTING && c->conn && PQhostaddr(c->conn))
	{
		snprintf(c->hung_addr, sizeof(c->hung_addr), "%s", PQhostaddr(c->conn));
		snprintf(c->hung_port, sizeof(c->hung_port), "%s", PQport(c->conn) ? PQport(c->conn) : "");
	}
	db_broken(c, "timeout");
}

/*
 * Start connecting (non-blocking), given the addresses of the host names
 * when they were looked up: after dbname, they override its host.
 */
static void
connect_now(struct db_conn *c)
{
	char		appname[128];
	const char *kw[10] = {
		"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
		"application_name", "dbname"
	};
	const char *val[10] = {"1", "10", "5", "3", appname, db_cf.conninfo};
	int			n = 6;

	snprintf(appname, sizeof(appname), "%s%s", db_cf.application_name, c->listen ? " listen" : "");
	if (c->lookup)
	{
		const char *host,
				   *hostaddr,
				   *port;

		db_lookup_lists(c->lookup, &host, &hostaddr, &port);
		log_debug("database %s: host %s looked up: %s", db_conn_name(c), host, hostaddr);
		kw[n] = "host";
		val[n++] = host;
		kw[n] = "hostaddr";
		val[n++] = hostaddr;
		if (port)
		{
			kw[n] = "port";
			val[n++] = port;
		}
	}
	kw[n] = val[n] = NULL;
	c->conn = PQconnectStartParams(kw, val, 1);
	if (c->conn)
		PQsetNoticeReceiver(c->conn, db_notice, c);
	db_lookup_free(c->lookup);	/* libpq keeps copies */
	c->lookup = NULL;
	if (c->conn == NULL || PQstatus(c->conn) == CONNECTION_BAD)
		db_broken(c, db_pq_error(c));
	else if (watch(c) != 0)
		db_broken(c, "cannot watch the socket");
	else
		db_want_write(c);			/* before the first PQconnectPoll, as if it asked to write */
}

/* A lookup thread finished: lws wakes up with EVENT_WAIT_CANCELLED. */
static void
wake_loop(void)
{
	pthread_mutex_lock(&wake_lock);
	if (wake_context)
		lws_cancel_service(wake_context);
	pthread_mutex_unlock(&wake_lock);
}

/* The loop was woken: connect those whose lookup is done. */
static void
lookups_check(void)
{
	for (int i = 0; i < db_nconns; i++)
	{
		struct db_conn *c = &db_conns[i];
		const char *error;

		if (c->state != DB_CONNECTING || !c->lookup || !db_lookup_done(c->lookup))
			continue;
		error = db_lookup_error(c->lookup);
		if (error)
			db_broken(c, error);
		else
			connect_now(c);
	}
}

/* Connect: look the host names up first (in a thread) if there are any. */
static void
connect_start(struct db_conn *c)
{
	const char *error;

	/* one deadline for the whole attempt: lookup, connect and set-up */
	timer_schedule(&c->sul, connect_timeout, connect_timeout_us);
	c->lookup = db_lookup_start(db_cf.conninfo, c->hung_addr, c->hung_port, wake_loop, &error);
	if (error)
		db_broken(c, error);
	else if (c->lookup == NULL)
		connect_now(c);
}

/* Advance PQconnectPoll. */
static void
poll_connect(struct db_conn *c)
{
	PostgresPollingStatusType st = PQconnectPoll(c->conn);

	if (st == PGRES_POLLING_FAILED)
		db_broken(c, db_pq_error(c));
	else if (watch(c) != 0)
		db_broken(c, "cannot watch the socket");
	else if (st == PGRES_POLLING_OK)
		start_setup(c);
	else if (st == PGRES_POLLING_WRITING)
		db_want_write(c);
}




/* Socket readable or writable. */
static void
conn_io(struct db_conn *c, bool readable)
{
	int			flushed;

	if (c->state == DB_CONNECTING)
	{
		poll_connect(c);
		return;
	}
	if (c->state != DB_SETUP && c->state != DB_READY)
		return;
	if (readable && !PQconsumeInput(c->conn))
	{
		db_broken(c, db_pq_error(c));
		return;
	}
	flushed = PQflush(c->conn);
	if (flushed < 0)
	{
		db_broken(c, db_pq_error(c));
		return;
	}
	if (flushed == 1)
		db_want_write(c);
	if (c->listen)
		db_drain_notifies(c);
	db_collect(c);
	if (c->listen)
		db_drain_notifies(c);
	else
		db_dispatch();
}

/* lws callbacks of an adopted database socket, and the loop's wake-ups. */
int
db_raw_callback(struct lws *wsi, enum lws_callback_reasons reason)
{
	struct db_conn *c;

	switch (reason)
	{
		case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
			lookups_check();
			return 0;
		case LWS_CALLBACK_RAW_RX_FILE:
		case LWS_CALLBACK_RAW_WRITEABLE_FILE:
			if ((c = lws_get_opaque_user_data(wsi)) == NULL)
				return -1;
			if (db_on.io_begin)
				db_on.io_begin();
			if (reason == LWS_CALLBACK_RAW_WRITEABLE_FILE)
				c->in_writeable = wsi;
			conn_io(c, reason == LWS_CALLBACK_RAW_RX_FILE);
			c->in_writeable = NULL;
			if (db_on.io_end)
				db_on.io_end();
			return 0;
		case LWS_CALLBACK_RAW_CLOSE_FILE:
			c = lws_get_opaque_user_data(wsi);
			if (c && c->wsi == wsi)
			{
				c->wsi = NULL;
				c->sock = -1;
				db_broken(c, "socket closed");
			}
			return 0;
		default:
			return 0;
	}
}












uint64_t
db_reconnects(void)
{
	return reconnects;
}


void
db_configure(const struct db_settings *settings)
{
	db_cf.max_pending = settings->max_pending;
}

/* Open every connection. */
void
db_start(const struct db_settings *settings, const struct db_hooks *hooks)
{
	PQconninfoOption *opts = PQconninfoParse(settings->conninfo, NULL);

	db_cf = *settings;
	if (hooks)
		db_on = *hooks;
	connect_timeout_us = 10 * LWS_US_PER_SEC;
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, "connect_timeout") && o->val && atoi(o->val) > 0)
			connect_timeout_us = (lws_usec_t) (atoi(o->val) < 2 ? 2 : atoi(o->val)) * LWS_US_PER_SEC;
	PQconninfoFree(opts);
	pthread_mutex_lock(&wake_lock);
	wake_context = db_cf.context;
	pthread_mutex_unlock(&wake_lock);
	db_first_pool = db_cf.listen_channel ? 1 : 0;
	db_nconns = db_first_pool + db_cf.pool_size;
	db_conns = xcalloc((size_t) db_nconns, sizeof(*db_conns));
	for (int i = 0; i < db_nconns; i++)
	{
		db_conns[i].index = i;
		db_conns[i].listen = i < db_first_pool;
		db_conns[i].sock = -1;
		db_set_state(&db_conns[i], DB_CONNECTING);
		connect_start(&db_conns[i]);
	}
}

/* Close everything; queries still waiting are answered as lost. */
void
db_stop(void)
{
	pthread_mutex_lock(&wake_lock);
	wake_context = NULL;
	pthread_mutex_unlock(&wake_lock);
	db_stopping = true;
	for (int i = 0; i < db_nconns; i++)
	{
		struct db_conn *c = &db_conns[i];

		timer_cancel(&c->sul);
		if (c->state == DB_BACKOFF)
			db_set_state(c, DB_DOWN);
		else if (c->state != DB_DOWN)
		{
			if (c->state != DB_BROKEN)
				db_broken(c, "stopping");
			timer_cancel(&c->sul);
			teardown(&c->sul);
		}
	}
	db_fail_waiting();
	free(db_conns);
	db_conns = NULL;
	db_nconns = 0;
	db_statements_free();
}
