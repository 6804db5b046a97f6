/*
 * db.c: libpq on the libwebsockets loop (db.h).
 *
 * Each connection is one state machine, moved only by set_state():
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

enum db_state
{
	DB_DOWN,
	DB_CONNECTING,
	DB_SETUP,
	DB_READY,
	DB_BROKEN,
	DB_BACKOFF
};

static const char *const state_names[] = {"down", "connecting", "setup", "ready", "broken", "backoff"};

/* The edges set_state() accepts: allowed[from] has bit 1 << to. */
#define EDGE(s) (1u << (s))
static const unsigned allowed[] = {
	[DB_DOWN] = EDGE(DB_CONNECTING),
	[DB_CONNECTING] = EDGE(DB_SETUP) | EDGE(DB_BROKEN),
	[DB_SETUP] = EDGE(DB_READY) | EDGE(DB_BROKEN),
	[DB_READY] = EDGE(DB_BROKEN),
	[DB_BROKEN] = EDGE(DB_BACKOFF) | EDGE(DB_DOWN),
	[DB_BACKOFF] = EDGE(DB_CONNECTING) | EDGE(DB_DOWN),
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

static struct db_settings S;
static struct db_hooks H;
static struct db_stmt *stmts;
static int	nstmts;
static uint64_t reconnects;

/* db's connect_timeout (libpq applies it only to blocking connects), or 10 s */
static lws_usec_t connect_timeout_us;

static struct db_conn *conns;	/* [0] LISTEN (when there is one), then the pool */
static int	nconns;
static int	first_pool;
static struct db_query *wait_head,
		   *wait_tail;			/* waiting for pipeline room */
static int	nwait;
static bool stopping;

/* Lookup threads wake the loop through this, and only while it exists. */
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lws_context *wake_context;

static void connect_start(struct db_conn *c);
static void dispatch(void);
static void teardown(lws_sorted_usec_list_t *sul);

/* A name for log lines. */
static const char *
conn_name(const struct db_conn *c)
{
	static char buf[32];

	if (c->listen)
		return "listen";
	snprintf(buf, sizeof(buf), "pool %d", c->index - first_pool + 1);
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
	log_info("database %s ready%s", conn_name(c), again ? " again" : "");
	if (c->listen)
	{
		if (H.listen_ready)
			H.listen_ready(again);
	}
	else
	{
		dispatch();
		if (H.pool_ready)
			H.pool_ready();
	}
}

/*
 * The one place a connection changes state. An edge not in allowed[] is a
 * bug: it is logged and refused, and the connection stays where it is.
 */
static bool
set_state(struct db_conn *c, enum db_state to)
{
	enum db_state from = c->state;

	if (!(allowed[from] & EDGE(to)))
	{
		log_error("database %s: refused state change %s -> %s",
				  conn_name(c), state_names[from], state_names[to]);
		return false;
	}
	c->state = to;
	switch (to)
	{
		case DB_READY:
			on_ready(c);
			break;
		case DB_BROKEN:
			if (!stopping && from == DB_READY)
				log_warn("database %s lost: %s", conn_name(c), c->why);
			else if (!stopping)
				log_warn("database %s: cannot connect: %s", conn_name(c), c->why);

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
static void
broken(struct db_conn *c, const char *why)
{
	if (c->state != DB_CONNECTING && c->state != DB_SETUP && c->state != DB_READY)
		return;
	snprintf(c->why, sizeof(c->why), "%s", why);
	set_state(c, DB_BROKEN);
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
static void
want_write(struct db_conn *c)
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
	info.vh = S.vhost;
	info.type = LWS_ADOPT_RAW_FILE_DESC;
	info.fd.filefd = fd;
	info.vh_prot_name = S.raw_protocol;
	info.opaque = c;
	c->wsi = lws_adopt_descriptor_vhost_via_info(&info);
	if (c->wsi == NULL)
		return -1;
	c->sock = sock;
	c->sock_ino = st.st_ino;
	return 0;
}

/* Answer every query of a list with "connection lost". */
static void
fail_list(struct db_query *q)
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

/* Timer: connect again after the backoff. */
static void
backoff_done(lws_sorted_usec_list_t *sul)
{
	struct db_conn *c = lws_container_of(sul, struct db_conn, sul);

	if (!stopping && set_state(c, DB_CONNECTING))
		connect_start(c);
}

/* The next backoff: exponential from backoff_min_ms, with jitter. */
static int
backoff_ms(struct db_conn *c)
{
	int			shift = c->attempts < 16 ? c->attempts : 16;

	/* in 64 bits: 600,000 ms << 16 does not fit an int */
	int			delay = (int64_t) S.backoff_min_ms << shift > S.backoff_max_ms ?
		S.backoff_max_ms : S.backoff_min_ms << shift;

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
	set_state(c, stopping ? DB_DOWN : DB_BACKOFF);
	unwatch(c);
	db_lookup_free(c->lookup);
	c->lookup = NULL;
	if (c->conn)
	{
		PQfinish(c->conn);
		c->conn = NULL;
	}
	fail_list(q);
	if (!db_pool_ready())
	{
		/* nobody left to serve the waiting queries */
		struct db_query *w = wait_head;

		wait_head = wait_tail = NULL;
		nwait = 0;
		fail_list(w);
	}
	if (stopping)
		return;
	delay = backoff_ms(c);
	c->attempts++;
	log_info("database %s: reconnecting in %d ms", conn_name(c), delay);
	timer_schedule(&c->sul, backoff_done, (lws_usec_t) delay * 1000);
	dispatch();
}

/* The first line of libpq's error message. */
static const char *
pq_error(struct db_conn *c)
{
	static char buf[256];
	const char *m = c->conn ? PQerrorMessage(c->conn) : "out of memory";
	size_t		n = strcspn(m, "\n");

	snprintf(buf, sizeof(buf), "%.*s", (int) (n < sizeof(buf) ? n : sizeof(buf) - 1), m);
	return buf;
}

/* Put a query on the wire (it joins the in-flight list even on failure). */
static void
send_query(struct db_conn *c, struct db_query *q)
{
	char		name[16];
	int			ok;

	q->next = NULL;
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
		ok = PQsendPrepare(c->conn, name, stmts[q->stmt].sql, stmts[q->stmt].nparams, NULL);
	else if (q->sql)
		ok = PQsendQueryParams(c->conn, q->sql, q->nparams, NULL,
							   (const char *const *) q->params, NULL, NULL, 0);
	else
		ok = PQsendQueryPrepared(c->conn, name, q->nparams,
								 (const char *const *) q->params, NULL, NULL, 0);
	if (!ok || !PQpipelineSync(c->conn))
	{
		broken(c, pq_error(c));
		return;
	}
	want_write(c);
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
			log_error("database %s set-up failed: %s", conn_name(c), PQresultErrorMessage(res));
			c->setup_failed = true;
		}
		else if (q->sql == S.register_sql && strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		{
			log_error("%s; retrying", S.register_refused ? S.register_refused : "registration refused");
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
	send_query(c, q);
}

/* Connected: enter pipeline mode and send the set-up. */
static void
start_setup(struct db_conn *c)
{
	char		timeout[32];

	if (PQsetnonblocking(c->conn, 1) != 0 || !PQenterPipelineMode(c->conn))
	{
		broken(c, pq_error(c));
		return;
	}
	set_state(c, DB_SETUP);
	c->setup_failed = false;
	if (c->listen)
	{
		static char listen_sql[128];

		if (S.register_sql)
			setup_step(c, 0, S.register_sql, S.register_arg);
		snprintf(listen_sql, sizeof(listen_sql), "LISTEN %s", S.listen_channel);
		setup_step(c, 0, listen_sql, NULL);
		return;
	}
	snprintf(timeout, sizeof(timeout), "%ds", S.statement_timeout);
	setup_step(c, 0, "SELECT pg_catalog.set_config('statement_timeout', $1, false)", timeout);
	for (int s = 0; s < nstmts; s++)
		setup_step(c, s, NULL, NULL);
}

/* Connect or set-up taking too long. */
static void
connect_timeout(lws_sorted_usec_list_t *sul)
{
	struct db_conn *c = lws_container_of(sul, struct db_conn, sul);

	if (c->state == DB_CONNECTING && c->lookup)
	{
		broken(c, "timeout looking the host up");
		return;
	}
	if (c->state == DB_CONNECTING && c->conn && PQhostaddr(c->conn))
	{
		snprintf(c->hung_addr, sizeof(c->hung_addr), "%s", PQhostaddr(c->conn));
		snprintf(c->hung_port, sizeof(c->hung_port), "%s", PQport(c->conn) ? PQport(c->conn) : "");
	}
	broken(c, "timeout");
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
	const char *val[10] = {"1", "10", "5", "3", appname, S.conninfo};
	int			n = 6;

	snprintf(appname, sizeof(appname), "%s%s", S.application_name, c->listen ? " listen" : "");
	if (c->lookup)
	{
		const char *host,
				   *hostaddr,
				   *port;

		db_lookup_lists(c->lookup, &host, &hostaddr, &port);
		log_debug("database %s: host %s looked up: %s", conn_name(c), host, hostaddr);
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
	db_lookup_free(c->lookup);	/* libpq keeps copies */
	c->lookup = NULL;
	if (c->conn == NULL || PQstatus(c->conn) == CONNECTION_BAD)
		broken(c, pq_error(c));
	else if (watch(c) != 0)
		broken(c, "cannot watch the socket");
	else
		want_write(c);			/* before the first PQconnectPoll, as if it asked to write */
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
	for (int i = 0; i < nconns; i++)
	{
		struct db_conn *c = &conns[i];
		const char *error;

		if (c->state != DB_CONNECTING || !c->lookup || !db_lookup_done(c->lookup))
			continue;
		error = db_lookup_error(c->lookup);
		if (error)
			broken(c, error);
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
	c->lookup = db_lookup_start(S.conninfo, c->hung_addr, c->hung_port, wake_loop, &error);
	if (error)
		broken(c, error);
	else if (c->lookup == NULL)
		connect_now(c);
}

/* Advance PQconnectPoll. */
static void
poll_connect(struct db_conn *c)
{
	PostgresPollingStatusType st = PQconnectPoll(c->conn);

	if (st == PGRES_POLLING_FAILED)
		broken(c, pq_error(c));
	else if (watch(c) != 0)
		broken(c, "cannot watch the socket");
	else if (st == PGRES_POLLING_OK)
		start_setup(c);
	else if (st == PGRES_POLLING_WRITING)
		want_write(c);
}

/* Deliver every notification received. */
static void
drain_notifies(struct db_conn *c)
{
	PGnotify   *n;

	while (c->state == DB_READY && (n = PQnotifies(c->conn)) != NULL)
	{
		if (H.notify)
			H.notify(n->extra, strlen(n->extra));
		PQfreemem(n);
	}
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
			broken(c, "set-up failed");
		else
			set_state(c, DB_READY);
	}
}

/*
 * Collect results: per query, its result, a NULL, then the Sync's result,
 * at which point the query is answered.
 */
static void
collect(struct db_conn *c)
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
		broken(c, pq_error(c));
		return;
	}
	flushed = PQflush(c->conn);
	if (flushed < 0)
	{
		broken(c, pq_error(c));
		return;
	}
	if (flushed == 1)
		want_write(c);
	if (c->listen)
		drain_notifies(c);
	collect(c);
	if (c->listen)
		drain_notifies(c);
	else
		dispatch();
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
			if (H.io_begin)
				H.io_begin();
			if (reason == LWS_CALLBACK_RAW_WRITEABLE_FILE)
				c->in_writeable = wsi;
			conn_io(c, reason == LWS_CALLBACK_RAW_RX_FILE);
			c->in_writeable = NULL;
			if (H.io_end)
				H.io_end();
			return 0;
		case LWS_CALLBACK_RAW_CLOSE_FILE:
			c = lws_get_opaque_user_data(wsi);
			if (c && c->wsi == wsi)
			{
				c->wsi = NULL;
				c->sock = -1;
				broken(c, "socket closed");
			}
			return 0;
		default:
			return 0;
	}
}

/* The ready pool connection with the most room, or NULL. */
static struct db_conn *
pick(void)
{
	struct db_conn *best = NULL;

	for (int i = first_pool; i < nconns; i++)
		if (conns[i].state == DB_READY && conns[i].inflight < S.pipeline_depth &&
			(!best || conns[i].inflight < best->inflight))
			best = &conns[i];
	return best;
}

/* Move waiting queries to connections with room. */
static void
dispatch(void)
{
	struct db_conn *c;

	while (wait_head && (c = pick()) != NULL)
	{
		struct db_query *q = wait_head;

		wait_head = q->next;
		if (!wait_head)
			wait_tail = NULL;
		nwait--;
		send_query(c, q);
	}
}

int
db_submit(struct db_query *q)
{
	struct db_conn *c;

	if (stopping || !db_pool_ready())
		return -1;
	c = pick();
	if (c && !wait_head)
	{
		send_query(c, q);
		return 0;
	}
	if (nwait >= S.max_pending)
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
	for (int i = first_pool; i < nconns; i++)
		if (conns[i].state == DB_READY)
			return true;
	return false;
}

bool
db_listen_ready(void)
{
	return first_pool == 1 && conns[0].state == DB_READY;
}

int
db_pending(void)
{
	return nwait;
}

uint64_t
db_reconnects(void)
{
	return reconnects;
}

int
db_statement(const char *sql, int nparams)
{
	stmts = xrealloc(stmts, sizeof(*stmts) * (size_t) (nstmts + 1));
	stmts[nstmts].sql = xstrdup(sql);
	stmts[nstmts].nparams = nparams;
	return nstmts++;
}

void
db_configure(const struct db_settings *settings)
{
	S.max_pending = settings->max_pending;
}

/* Open every connection. */
void
db_start(const struct db_settings *settings, const struct db_hooks *hooks)
{
	PQconninfoOption *opts = PQconninfoParse(settings->conninfo, NULL);

	S = *settings;
	if (hooks)
		H = *hooks;
	connect_timeout_us = 10 * LWS_US_PER_SEC;
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, "connect_timeout") && o->val && atoi(o->val) > 0)
			connect_timeout_us = (lws_usec_t) (atoi(o->val) < 2 ? 2 : atoi(o->val)) * LWS_US_PER_SEC;
	PQconninfoFree(opts);
	pthread_mutex_lock(&wake_lock);
	wake_context = S.context;
	pthread_mutex_unlock(&wake_lock);
	first_pool = S.listen_channel ? 1 : 0;
	nconns = first_pool + S.pool_size;
	conns = xcalloc((size_t) nconns, sizeof(*conns));
	for (int i = 0; i < nconns; i++)
	{
		conns[i].index = i;
		conns[i].listen = i < first_pool;
		conns[i].sock = -1;
		set_state(&conns[i], DB_CONNECTING);
		connect_start(&conns[i]);
	}
}

/* Close everything; queries still waiting are answered as lost. */
void
db_stop(void)
{
	pthread_mutex_lock(&wake_lock);
	wake_context = NULL;
	pthread_mutex_unlock(&wake_lock);
	stopping = true;
	for (int i = 0; i < nconns; i++)
	{
		struct db_conn *c = &conns[i];

		timer_cancel(&c->sul);
		if (c->state == DB_BACKOFF)
			set_state(c, DB_DOWN);
		else if (c->state != DB_DOWN)
		{
			if (c->state != DB_BROKEN)
				broken(c, "stopping");
			timer_cancel(&c->sul);
			teardown(&c->sul);
		}
	}
	fail_list(wait_head);
	wait_head = wait_tail = NULL;
	nwait = 0;
	free(conns);
	conns = NULL;
	nconns = 0;
	for (int s = 0; s < nstmts; s++)
		free(stmts[s].sql);
	free(stmts);
	stmts = NULL;
	nstmts = 0;
}
