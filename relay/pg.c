/*
 * pg.c: libpq on the libwebsockets loop.
 *
 * Each connection is one state machine:
 *
 *   DOWN -> CONNECTING -> SETUP -> READY
 *             |            |        |
 *             +------------+--------+--> BROKEN -> BACKOFF -> CONNECTING
 *
 * CONNECTING drives PQconnectPoll; SETUP runs the connection's set-up
 * (pool: statement_timeout and the prepared statements; LISTEN connection:
 * chat.relay_register, which takes the relay's advisory lock, then LISTEN);
 * READY serves queries. Every connection is in pipeline mode with a Sync
 * after each query, so each query is its own transaction and one failure
 * does not abort the others. BROKEN fails every query in flight (each
 * answered once, with a NULL result) and waits an exponential backoff with
 * jitter before connecting again.
 *
 * The socket is adopted by lws as a raw file, as a dup(): lws closes what it
 * adopts and libpq closes its own. It is adopted again whenever libpq's
 * socket changes (reconnect, or another address tried while connecting).
 */
#include "alloc.h"
#include "config.h"
#include "dblookup.h"
#include "pg.h"
#include "log.h"
#include "relay.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum pg_state
{
	PGC_DOWN,
	PGC_CONNECTING,
	PGC_SETUP,
	PGC_READY,
	PGC_BROKEN,
	PGC_BACKOFF
};

struct pg_conn
{
	int			index;
	bool		listen;			/* the LISTEN connection */
	enum pg_state state;
	PGconn	   *conn;
	struct lws *wsi;			/* adopted dup of the socket */
	int			sock;			/* libpq's socket the dup was made of */
	ino_t		sock_ino;		/* and its identity */
	lws_sorted_usec_list_t sul; /* backoff, connect timeout, deferred failure */
	lws_sorted_usec_list_t write_sul;	/* POLLOUT asked for in WRITEABLE */
	struct db_lookup *lookup;	/* host names being looked up */
	char		hung_addr[64];	/* the address (and port) a connect timed out on */
	char		hung_port[16];
	int64_t		deadline;		/* of this attempt: lookup, connect and set-up */
	struct lws *in_writeable;	/* the wsi whose WRITEABLE is running */
	int			attempts;
	bool		was_ready;
	bool		setup_failed;
	struct pg_query *head,
			   *tail;			/* in flight, in order */
	int			inflight;
};

struct pg_stmt_def
{
	const char *sql;
	int			nparams;
};

/* The SQL of every statement; parameters are text, cast here. */
static const struct pg_stmt_def stmts[] = {
	[S_SEND] = {"SELECT chat.send_message($1::bigint, $2::bigint, $3::text, $4::uuid, $5::bigint[])", 5},
	[S_EDIT] = {"SELECT chat.edit_message($1::bigint, $2::bigint, $3::bigint, $4::text)", 4},
	[S_DELETE] = {"SELECT chat.delete_message($1::bigint, $2::bigint, $3::bigint)", 3},
	[S_HISTORY] = {"SELECT chat.history($1::bigint, $2::bigint, $3::bigint, coalesce($4::int, 50))", 4},
	[S_CATCH_UP] = {"SELECT chat.catch_up($1::bigint, $2::bigint, $3::bigint, coalesce($4::int, 500))", 4},
	[S_CHATS] = {"SELECT chat.list_chats($1::bigint, $2::text, coalesce($3::int, 50), coalesce($4::bool, false))", 4},
	[S_READ] = {"SELECT chat.mark_read($1::bigint, $2::bigint, $3::bigint)", 3},
	[S_TYPING] = {"SELECT chat.typing($1::bigint, $2::bigint)", 2},
	[S_OPEN] = {"SELECT chat.open_chat($1::bigint, $2::text, $3::bigint, $4::bigint)", 4},
	[S_PRESENCE] = {"SELECT chat.presence($1::bigint, $2::bigint[])", 2},
	[S_UNREAD] = {"SELECT chat.unread_total($1::bigint)", 1},
	[S_ARCHIVE] = {"SELECT chat.set_archived($1::bigint, $2::bigint, $3::bool)", 3},
	[S_MUTE] = {"SELECT chat.set_muted($1::bigint, $2::bigint, $3::bool)", 3},
	[S_BLOCK] = {"SELECT chat.block_user($1::bigint, $2::bigint)", 2},
	[S_UNBLOCK] = {"SELECT chat.unblock_user($1::bigint, $2::bigint)", 2},
	[S_UPLOAD] = {"SELECT chat.attachment_upload($1::bigint, $2::bigint, $3::text, $4::text, $5::bigint)", 5},
	[S_ATTACHMENT_URL] = {"SELECT to_jsonb(chat.attachment_url($1::bigint, $2::bigint, $3::int, coalesce($4::bool, false)))", 4},
	[S_PRESENCE_UPDATE] = {"SELECT chat.presence_update($1::text, $2::bigint[], $3::bigint[])", 3},
	[S_PRESENCE_SYNC] = {"SELECT chat.presence_sync($1::text, $2::bigint[])", 2},
	[S_HEARTBEAT] = {"SELECT chat.relay_heartbeat($1::text, $2::int)", 2},
	[S_RELAY_GONE] = {"SELECT chat.relay_gone($1::text)", 1},
	[S_FETCH] = {"SELECT chat.history($1::bigint, $2::bigint, $3::bigint, 1)", 3},
	[S_SETUP_TIMEOUT] = {"SELECT pg_catalog.set_config('statement_timeout', $1, false)", 1},
	[S_REGISTER] = {"SELECT chat.relay_register($1::text)", 1},
	[S_LISTEN] = {"LISTEN chat_events", 0},
};

static const char *const stmt_names[] = {
	"send", "edit", "delete", "history", "catch_up", "chats", "read", "typing", "open",
	"presence", "unread", "archive", "mute", "block", "unblock", "upload",
	"attachment_url", "presence_update",
	"presence_sync", "heartbeat", "relay_gone", "fetch",
};

/* db's connect_timeout (libpq applies it only to blocking connects), or 10 s */
static lws_usec_t connect_timeout_us;

/* how often a running host lookup is looked at */
#define LOOKUP_POLL_US 2000

static struct pg_conn *conns;	/* [0] LISTEN, [1..] pool */
static int	nconns;
static struct pg_query *wait_head,
		   *wait_tail;			/* waiting for pipeline room */
static int	nwait;
static bool stopping;

static void pg_connect(struct pg_conn *c);
static void pg_dispatch(void);

/* Free the text parameters of a query. */
void
pg_query_free_params(struct pg_query *q)
{
	for (int i = 0; i < q->nparams; i++)
	{
		free(q->params[i]);
		q->params[i] = NULL;
	}
}

/* A name for log lines. */
static const char *
conn_name(const struct pg_conn *c)
{
	static char buf[32];

	if (c->listen)
		return "listen";
	snprintf(buf, sizeof(buf), "pool %d", c->index);
	return buf;
}

/* Stop watching the socket: the adopted dup is closed by lws. */
static void
unwatch(struct pg_conn *c)
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

/* Timer: ask for POLLOUT after a WRITEABLE callback that wanted more. */
static void
write_rearm(lws_sorted_usec_list_t *sul)
{
	struct pg_conn *c = lws_container_of(sul, struct pg_conn, write_sul);

	if (c->wsi)
		lws_callback_on_writable(c->wsi);
}

/*
 * Ask to be told when the socket can take more. Inside that socket's own
 * RAW_WRITEABLE_FILE, lws 4.1 clears POLLOUT after the callback returns,
 * which would undo the request: it is made right after, from a timer.
 */
static void
want_write(struct pg_conn *c)
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
watch(struct pg_conn *c)
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
	info.vh = relay_vhost;
	info.type = LWS_ADOPT_RAW_FILE_DESC;
	info.fd.filefd = fd;
	info.vh_prot_name = "chat-raw";
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
fail_list(struct pg_query *q)
{
	while (q)
	{
		struct pg_query *next = q->next;
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
	struct pg_conn *c = lws_container_of(sul, struct pg_conn, sul);

	if (!stopping)
		pg_connect(c);
}

/*
 * Tear a broken connection down (deferred so that no caller is left holding
 * it): answer its queries, close it, schedule the reconnect.
 */
static void
broken_now(lws_sorted_usec_list_t *sul)
{
	struct pg_conn *c = lws_container_of(sul, struct pg_conn, sul);
	struct pg_query *q = c->head;
	int			delay,
				shift;

	c->head = c->tail = NULL;
	c->inflight = 0;
	c->state = stopping ? PGC_DOWN : PGC_BACKOFF;
	unwatch(c);
	db_lookup_free(c->lookup);
	c->lookup = NULL;
	if (c->conn)
	{
		PQfinish(c->conn);
		c->conn = NULL;
	}
	fail_list(q);
	if (!pg_pool_ready())
	{
		/* nobody left to serve the waiting queries */
		struct pg_query *w = wait_head;

		wait_head = wait_tail = NULL;
		nwait = 0;
		fail_list(w);
	}
	if (stopping)
		return;
	shift = c->attempts < 16 ? c->attempts : 16;
	/* in 64 bits: 600,000 ms << 16 does not fit an int */
	delay = (int64_t) cf_backoff_min_ms << shift > cf_backoff_max_ms ?
		cf_backoff_max_ms : cf_backoff_min_ms << shift;
	/* jitter: somewhere in the upper half of the delay */
	delay = delay / 2 + (int) ((unsigned) rand() % (unsigned) (delay / 2 + 1));
	c->attempts++;
	log_info("database %s: reconnecting in %d ms", conn_name(c), delay);
	timer_schedule(&c->sul, backoff_done, (lws_usec_t) delay * 1000);
	pg_dispatch();
}

/* Mark a connection broken; the teardown runs from the loop right after. */
static void
pg_broken(struct pg_conn *c, const char *why)
{
	if (c->state == PGC_BROKEN || c->state == PGC_BACKOFF || c->state == PGC_DOWN)
		return;
	if (c->state == PGC_READY)
		log_warn("database %s lost: %s", conn_name(c), why);
	else
		log_warn("database %s: cannot connect: %s", conn_name(c), why);
	c->state = PGC_BROKEN;
	/*
	 * Stop watching now: a failed socket stays readable (error, hang-up),
	 * and under libev a descriptor always ready keeps lws from running its
	 * timers, this teardown among them.
	 */
	unwatch(c);
	timer_schedule(&c->sul, broken_now, 1);
}

/* The first line of libpq's error message. */
static const char *
pq_error(struct pg_conn *c)
{
	static char buf[256];
	const char *m = c->conn ? PQerrorMessage(c->conn) : "out of memory";
	size_t		n = strcspn(m, "\n");

	snprintf(buf, sizeof(buf), "%.*s", (int) (n < sizeof(buf) ? n : sizeof(buf) - 1), m);
	return buf;
}

/* Put a query on the wire (it joins the in-flight list even on failure). */
static void
pg_send(struct pg_conn *c, struct pg_query *q)
{
	const struct pg_stmt_def *d = &stmts[q->stmt];
	char		name[16];
	int			ok;

	q->next = NULL;
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	c->inflight++;
	if (c->state != PGC_SETUP && c->state != PGC_READY)
		return;
	snprintf(name, sizeof(name), "s%d", q->stmt);
	if (q->prepare)
		ok = PQsendPrepare(c->conn, name, d->sql, d->nparams, NULL);
	else if (q->stmt >= S_COUNT)
		ok = PQsendQueryParams(c->conn, d->sql, q->nparams, NULL,
							   (const char *const *) q->params, NULL, NULL, 0);
	else
		ok = PQsendQueryPrepared(c->conn, name, q->nparams,
								 (const char *const *) q->params, NULL, NULL, 0);
	if (!ok || !PQpipelineSync(c->conn))
	{
		pg_broken(c, pq_error(c));
		return;
	}
	want_write(c);
}

/* Result of a set-up step. */
static void
setup_done(struct pg_query *q, PGresult *res)
{
	struct pg_conn *c = q->arg;

	if (res)
	{
		ExecStatusType st = PQresultStatus(res);

		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		{
			log_error("database %s set-up failed: %s", conn_name(c), PQresultErrorMessage(res));
			c->setup_failed = true;
		}
		else if (q->stmt == S_REGISTER && strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		{
			log_error("relay id \"%s\" is held by another live relay (or being cleared); retrying",
					  cf_relay_id);
			c->setup_failed = true;
		}
	}
	pg_query_free_params(q);
	free(q);
}

/* A set-up step for connection c. */
static void
setup_step(struct pg_conn *c, int stmt, bool prepare, const char *param)
{
	struct pg_query *q = xcalloc(1, sizeof(*q));

	q->stmt = stmt;
	q->prepare = prepare;
	q->done = setup_done;
	q->arg = c;
	if (param)
	{
		q->nparams = 1;
		q->params[0] = xstrdup(param);
	}
	pg_send(c, q);
}

/* Connected: enter pipeline mode and send the set-up. */
static void
start_setup(struct pg_conn *c)
{
	char		timeout[32];

	if (PQsetnonblocking(c->conn, 1) != 0 || !PQenterPipelineMode(c->conn))
	{
		pg_broken(c, pq_error(c));
		return;
	}
	c->state = PGC_SETUP;
	c->setup_failed = false;
	if (c->listen)
	{
		setup_step(c, S_REGISTER, false, cf_relay_id);
		setup_step(c, S_LISTEN, false, NULL);
		return;
	}
	snprintf(timeout, sizeof(timeout), "%ds", cf_statement_timeout);
	setup_step(c, S_SETUP_TIMEOUT, false, timeout);
	for (int s = 0; s < S_COUNT; s++)
		setup_step(c, s, true, NULL);
}

/* Set-up finished: the connection serves. */
static void
became_ready(struct pg_conn *c)
{
	bool		again = c->was_ready;

	c->state = PGC_READY;
	c->attempts = 0;
	c->hung_addr[0] = '\0';
	timer_cancel(&c->sul);
	if (again)
		metrics.db_reconnects++;
	c->was_ready = true;
	log_info("database %s ready%s", conn_name(c), again ? " again" : "");
	if (c->listen)
		relay_on_listen_ready(again);
	else
	{
		pg_dispatch();
		relay_on_pool_ready();
	}
}

/* Connect or set-up taking too long. */
static void
connect_timeout(lws_sorted_usec_list_t *sul)
{
	struct pg_conn *c = lws_container_of(sul, struct pg_conn, sul);

	if (c->state == PGC_CONNECTING && c->conn && PQhostaddr(c->conn))
	{
		snprintf(c->hung_addr, sizeof(c->hung_addr), "%s", PQhostaddr(c->conn));
		snprintf(c->hung_port, sizeof(c->hung_port), "%s", PQport(c->conn) ? PQport(c->conn) : "");
	}
	if (c->state == PGC_CONNECTING || c->state == PGC_SETUP)
		pg_broken(c, "timeout");
}

/*
 * Start connecting (non-blocking), given the addresses of the host names
 * when they were looked up: after dbname, they override its host.
 */
static void
connect_now(struct pg_conn *c)
{
	const char *kw[10] = {
		"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
		"application_name", "dbname"
	};
	const char *val[10] = {"1", "10", "5", "3", NULL, cf_db};
	int			n = 6;

	val[4] = c->listen ? "chat-relay listen" : "chat-relay";
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
	{
		pg_broken(c, pq_error(c));
		return;
	}
	if (watch(c) != 0)
	{
		pg_broken(c, "cannot watch the socket");
		return;
	}
	timer_schedule(&c->sul, connect_timeout, c->deadline > lws_now_usecs() ? c->deadline - lws_now_usecs() : 1);
	/* before the first PQconnectPoll, behave as if it asked to write */
	want_write(c);
}

/* Timer: has the lookup of the host names finished? */
static void
lookup_poll(lws_sorted_usec_list_t *sul)
{
	struct pg_conn *c = lws_container_of(sul, struct pg_conn, sul);
	const char *error;

	if (!db_lookup_done(c->lookup))
	{
		if (lws_now_usecs() > c->deadline)
			pg_broken(c, "timeout looking the host up");
		else
			timer_schedule(&c->sul, lookup_poll, LOOKUP_POLL_US);
		return;
	}
	error = db_lookup_error(c->lookup);
	if (error)
		pg_broken(c, error);
	else
		connect_now(c);
}

/* Connect: look the host names up first (in a thread) if there are any. */
static void
pg_connect(struct pg_conn *c)
{
	const char *error;

	c->state = PGC_CONNECTING;
	c->deadline = lws_now_usecs() + connect_timeout_us;
	c->lookup = db_lookup_start(cf_db, c->hung_addr, c->hung_port, &error);
	if (error)
		pg_broken(c, error);
	else if (c->lookup == NULL)
		connect_now(c);
	else
		timer_schedule(&c->sul, lookup_poll, LOOKUP_POLL_US);
}

/* Advance PQconnectPoll. */
static void
poll_connect(struct pg_conn *c)
{
	switch (PQconnectPoll(c->conn))
	{
		case PGRES_POLLING_FAILED:
			pg_broken(c, pq_error(c));
			return;
		case PGRES_POLLING_OK:
			if (watch(c) != 0)
			{
				pg_broken(c, "cannot watch the socket");
				return;
			}
			start_setup(c);
			return;
		case PGRES_POLLING_WRITING:
			if (watch(c) != 0)
				pg_broken(c, "cannot watch the socket");
			else
				want_write(c);
			return;
		default:
			if (watch(c) != 0)
				pg_broken(c, "cannot watch the socket");
			return;
	}
}

/* Deliver every notification received. */
static void
drain_notifies(struct pg_conn *c)
{
	PGnotify   *n;

	while (c->state == PGC_READY && (n = PQnotifies(c->conn)) != NULL)
	{
		metrics.notifications_in++;
		event_notify(n->extra, strlen(n->extra));
		PQfreemem(n);
	}
}

/*
 * Collect results: per query, its result, a NULL, then the Sync's result,
 * at which point the query is answered.
 */
static void
collect(struct pg_conn *c)
{
	int			nulls = 0;

	while (c->head && (c->state == PGC_READY || c->state == PGC_SETUP))
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
			struct pg_query *q = c->head;
			PGresult   *qres = q->res;

			PQclear(res);
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
			if (c->state == PGC_SETUP && c->inflight == 0)
			{
				if (c->setup_failed)
					pg_broken(c, "set-up failed");
				else
					became_ready(c);
			}
			continue;
		}
		if (c->head->res == NULL)
			c->head->res = res;
		else
			PQclear(res);
	}
}

/* Socket readable or writable. */
static void
pg_io(struct pg_conn *c, bool readable)
{
	int			flushed;

	if (c->state == PGC_CONNECTING)
	{
		poll_connect(c);
		return;
	}
	if (c->state != PGC_SETUP && c->state != PGC_READY)
		return;
	if (readable && !PQconsumeInput(c->conn))
	{
		pg_broken(c, pq_error(c));
		return;
	}
	flushed = PQflush(c->conn);
	if (flushed < 0)
	{
		pg_broken(c, pq_error(c));
		return;
	}
	if (flushed == 1)
		want_write(c);
	if (c->listen)
		drain_notifies(c);
	collect(c);
	if (c->state == PGC_READY && c->listen)
		drain_notifies(c);
	if (!c->listen)
		pg_dispatch();
}

/* lws callbacks of an adopted database socket. */
int
pg_raw_callback(struct lws *wsi, enum lws_callback_reasons reason)
{
	struct pg_conn *c = lws_get_opaque_user_data(wsi);

	switch (reason)
	{
		case LWS_CALLBACK_RAW_RX_FILE:
		case LWS_CALLBACK_RAW_WRITEABLE_FILE:
			if (c == NULL)
				return -1;
			/* what one read brings goes out in one write per connection */
			ws_batch_begin();
			if (reason == LWS_CALLBACK_RAW_WRITEABLE_FILE)
				c->in_writeable = wsi;
			pg_io(c, reason == LWS_CALLBACK_RAW_RX_FILE);
			c->in_writeable = NULL;
			ws_batch_end();
			return 0;
		case LWS_CALLBACK_RAW_CLOSE_FILE:
			if (c && c->wsi == wsi)
			{
				c->wsi = NULL;
				c->sock = -1;
				pg_broken(c, "socket closed");
			}
			return 0;
		default:
			return 0;
	}
}

/* The ready pool connection with the most room, or NULL. */
static struct pg_conn *
pick(void)
{
	struct pg_conn *best = NULL;

	for (int i = 1; i < nconns; i++)
		if (conns[i].state == PGC_READY && conns[i].inflight < cf_pipeline_depth &&
			(!best || conns[i].inflight < best->inflight))
			best = &conns[i];
	return best;
}

/* Move waiting queries to connections with room. */
static void
pg_dispatch(void)
{
	struct pg_conn *c;

	while (wait_head && (c = pick()) != NULL)
	{
		struct pg_query *q = wait_head;

		wait_head = q->next;
		if (!wait_head)
			wait_tail = NULL;
		nwait--;
		pg_send(c, q);
	}
}

/*
 * Run a query on the pool: 0 when accepted (done will be called exactly
 * once), -1 when the database is unavailable or too many are waiting (q is
 * untouched and stays the caller's).
 */
int
pg_submit(struct pg_query *q)
{
	struct pg_conn *c;

	if (stopping || !pg_pool_ready())
		return -1;
	c = pick();
	if (c && !wait_head)
	{
		pg_send(c, q);
		return 0;
	}
	if (nwait >= cf_max_pending)
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

/* Is any pool connection ready? */
bool
pg_pool_ready(void)
{
	for (int i = 1; i < nconns; i++)
		if (conns[i].state == PGC_READY)
			return true;
	return false;
}

/* Is the LISTEN connection listening? */
bool
pg_listen_ready(void)
{
	return nconns > 0 && conns[0].state == PGC_READY;
}

/* Queries waiting for pipeline room. */
int
pg_pending(void)
{
	return nwait;
}

/* Open every connection. */
void
pg_start(void)
{
	PQconninfoOption *opts = PQconninfoParse(cf_db, NULL);

	connect_timeout_us = 10 * LWS_US_PER_SEC;
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (!strcmp(o->keyword, "connect_timeout") && o->val && atoi(o->val) > 0)
			connect_timeout_us = (lws_usec_t) (atoi(o->val) < 2 ? 2 : atoi(o->val)) * LWS_US_PER_SEC;
	PQconninfoFree(opts);
	nconns = 1 + cf_pool_size;
	conns = xcalloc((size_t) nconns, sizeof(*conns));
	for (int i = 0; i < nconns; i++)
	{
		conns[i].index = i;
		conns[i].listen = i == 0;
		conns[i].sock = -1;
		pg_connect(&conns[i]);
	}
}

/* Close everything; queries still waiting are answered as lost. */
void
pg_stop(void)
{
	stopping = true;
	for (int i = 0; i < nconns; i++)
	{
		struct pg_conn *c = &conns[i];

		timer_cancel(&c->sul);
		if (c->state == PGC_DOWN)
			continue;
		c->state = PGC_BROKEN;
		broken_now(&c->sul);
	}
	fail_list(wait_head);
	wait_head = wait_tail = NULL;
	nwait = 0;
	free(conns);
	conns = NULL;
	nconns = 0;
}

/* Name of a statement for metrics and logs. */
const char *
pg_stmt_name(int stmt)
{
	return stmt >= 0 && stmt < S_COUNT ? stmt_names[stmt] : "setup";
}
