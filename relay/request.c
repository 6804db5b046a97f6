/*
 * request.c: client requests. Each text frame is one JSON object with a
 * `type` and an `id` of the client's choosing; it is checked (rate limits,
 * shape, types), mapped to one SQL function of the extension with the user
 * id of the verified token, and answered exactly once with `ok` or `error`.
 */
#include "request.h"
#include "request_parse.h"

#include "alloc.h"
#include "auth.h"
#include "config.h"
#include "conn.h"
#include "db.h"
#include "frame.h"
#include "log.h"
#include "metrics.h"
#include "relay.h"
#include "subscribe.h"
#include "users.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const err_names[REQUEST_ERROR_CODES] = {
	"unauthorized", "forbidden", "invalid", "rate_limited", "too_large", "unavailable", "internal"
};

_Static_assert(E_INTERNAL + 1 == REQUEST_ERROR_CODES, "one name per error code");
_Static_assert(REQUEST_MAX_PARAMS + 1 <= DB_MAX_PARAMS, "a request's parameters and the user id fit a query");

/* statement id of each row of request_types[] */
static int	stmt_ids[64];

/* An unanswered request. */
struct req
{
	struct db_query q;			/* first: db hands it back */
	struct conn *c;				/* NULL once the connection closed */
	struct lws_dll2 on_conn;	/* in c->reqs while c is set */
	char	   *id;				/* the client's id, as JSON text */
	int64_t		t0;
	const struct request_type *type;
};

const char *
request_error_name(int i)
{
	return i >= 0 && i < REQUEST_ERROR_CODES ? err_names[i] : NULL;
}

/*
 * Queue {"type":"error","id":…,"code":…,"reason":…,"message":…}: code is
 * the contract's class, reason the stable subcode a program decides on,
 * message the words for a person.
 */
static void
send_error(struct conn *c, const char *id, enum err_code code, const char *reason, const char *message)
{
	json_t	   *m = json_string(message);
	char	   *ms;

	if (m == NULL)
		m = json_string("error");
	ms = json_dumps(m, JSON_ENCODE_ANY);
	conn_sendf(c, "{\"type\":\"error\",\"id\":%s,\"code\":\"%s\",\"reason\":\"%s\",\"message\":%s}",
			   id ? id : "null", err_names[code], reason, ms ? ms : "\"error\"");
	free(ms);
	json_decref(m);
	metrics.errors[code]++;
}

/* Refill a token bucket and take one token; false when empty. */
bool
bucket_take(double *tokens, int64_t *refill_us, double rate, int burst)
{
	int64_t		now = lws_now_usecs();

	if (*refill_us < 0)
		*tokens = burst;
	else
	{
		*tokens += rate * (double) (now - *refill_us) / 1e6;
		if (*tokens > burst)
			*tokens = burst;
	}
	*refill_us = now;
	if (*tokens < 1.0)
		return false;
	*tokens -= 1.0;
	return true;
}

/* The row of a request type, or NULL. */
static const struct request_type *
find_type(const char *name, int *stmt)
{
	int			i = request_type_index(name);

	if (i < 0)
		return NULL;
	*stmt = stmt_ids[i];
	return &request_types[i];
}

/*
 * Fill a request's query from its row: $1 is the user id, then the row's
 * parameters. NULL, or what is wrong (with *reason).
 */
static const char *
build(const struct request_type *t, json_t *msg, struct req *r, int64_t user_id)
{
	struct db_query *q = &r->q;
	int			n;
	const char *e;

	db_paramf(q, 0, "%lld", (long long) user_id);
	if ((e = request_params(t, msg, q->params + 1, &n)) != NULL)
		return e;
	q->nparams = n + 1;
	r->type = t;
	return NULL;
}

void
request_init(void)
{
	for (int i = 0; request_types[i].name; i++)
	{
		int			n = 1;

		if (i >= (int) (sizeof(stmt_ids) / sizeof(stmt_ids[0])))
		{
			log_error("too many request types for stmt_ids[]");
			abort();
		}

		while (n <= REQUEST_MAX_PARAMS && request_types[i].params[n - 1].name)
			n++;
		stmt_ids[i] = db_statement(request_types[i].sql, n);
	}
}

/* Unlink an answered request from its connection. */
static void
detach(struct req *r)
{
	struct conn *c = r->c;

	if (!c)
		return;
	lws_dll2_remove(&r->on_conn);
	r->c = NULL;
}

/* A connection closes: its requests are still answered by the database, to nobody. */
void
request_detach_all(struct conn *c)
{
	while (c->reqs.head)
		detach(lws_container_of(c->reqs.head, struct req, on_conn));
}

/* Free a request. */
static void
req_free(struct req *r)
{
	db_query_free_params(&r->q);
	free(r->id);
	free(r);
}

/* Map a failed query to a protocol error. */
static void
send_sql_error(struct conn *c, const char *id, PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (state == NULL)
		state = "";
	if (!strcmp(state, "42501"))
		send_error(c, id, E_FORBIDDEN, "access_denied", msg ? msg : "access denied");
	else if (!strncmp(state, "22", 2))
		send_error(c, id, E_INVALID, "bad_argument", msg ? msg : "invalid argument");
	else if (!strcmp(state, "54000"))
		send_error(c, id, E_RATE_LIMITED, "limit_reached", msg ? msg : "a limit was reached");
	else if (!strcmp(state, "55000"))
	{
		/*
		 * The server lacks what the request needs (no object store). The
		 * contract's codes are a closed set: unavailable, with a message
		 * that says it is the configuration, not a passing outage.
		 */
		send_error(c, id, E_UNAVAILABLE, "not_configured", msg ? msg : "not configured on this server");
	}
	else if (!strncmp(state, "08", 2) || !strncmp(state, "53", 2) || !strncmp(state, "57", 2) ||
			 !strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03"))
		send_error(c, id, E_UNAVAILABLE, "busy", "the database is unavailable or busy; retry");
	else
	{
		log_error("request failed: SQLSTATE %s: %s", state, PQresultErrorMessage(res));
		send_error(c, id, E_INTERNAL, "internal", "internal error");
	}
}

/*
 * Whether an answer of len bytes may be queued, else answer why not. An
 * answer never makes its own reader a slow reader (1013): answers fill at
 * most half the send queue (in frames and bytes), so events still have
 * the other half, and none is larger than max_answer_bytes or that half.
 * One refused for the queue is retried once the client has read what it
 * was sent; one too large never fits (a smaller page_size does).
 */
static bool
answer_fits(struct conn *c, const char *id, size_t len)
{
	size_t		half = (size_t) cf_send_queue_bytes / 2;
	size_t		max = (size_t) cf_max_answer_bytes < half ? (size_t) cf_max_answer_bytes : half;
	char		msg[200];

	if (len > max)
	{
		snprintf(msg, sizeof(msg), "the answer would be %zu bytes, over the relay's limit of %zu; "
				 "ask for fewer rows (page_size)", len, max);
		send_error(c, id, E_TOO_LARGE, "answer_too_large", msg);
		return false;
	}
	if ((size_t) c->q_bytes + len > half || c->q_len + 1 > (uint32_t) cf_send_queue / 2)
	{
		metrics.rate_limited++;
		send_error(c, id, E_RATE_LIMITED, "send_queue_full",
				   "earlier answers and events are still waiting to be sent to you; read them, then retry");
		return false;
	}
	return true;
}

/* Build and queue {"type":"ok","id":…,"result":…}, if it fits (answer_fits). */
static void
send_ok(struct conn *c, const char *id, PGresult *res, enum result_kind rk)
{
	static const char head[] = "{\"type\":\"ok\",\"id\":";
	static const char mid[] = ",\"result\":";
	int			rows = PQntuples(res);
	size_t		len = strlen(head) + strlen(id) + strlen(mid) + 1;
	size_t		rlen = 0;
	struct frame *f;
	char	   *p;

	if (rk == RK_ROWS)
	{
		rlen = 2 + (rows > 1 ? (size_t) rows - 1 : 0);
		for (int i = 0; i < rows; i++)
			rlen += PQgetisnull(res, i, 0) ? 4 : (size_t) PQgetlength(res, i, 0);
	}
	else if (rk == RK_VALUE && rows == 1 && PQnfields(res) == 1 && !PQgetisnull(res, 0, 0))
		rlen = (size_t) PQgetlength(res, 0, 0);
	else
	{
		rk = RK_VOID;
		rlen = 4;
	}
	len += rlen;
	if (!answer_fits(c, id, len))
		return;
	f = frame_alloc(len);
	p = (char *) FRAME_PAYLOAD(f);
#define PUT(s, n) do { memcpy(p, (s), (n)); p += (n); } while (0)
	PUT(head, strlen(head));
	PUT(id, strlen(id));
	PUT(mid, strlen(mid));
	if (rk == RK_ROWS)
	{
		*p++ = '[';
		for (int i = 0; i < rows; i++)
		{
			if (i)
				*p++ = ',';
			if (PQgetisnull(res, i, 0))
				PUT("null", 4);
			else
				PUT(PQgetvalue(res, i, 0), (size_t) PQgetlength(res, i, 0));
		}
		*p++ = ']';
	}
	else if (rk == RK_VALUE)
		PUT(PQgetvalue(res, 0, 0), rlen);
	else
		PUT("null", 4);
	*p++ = '}';
#undef PUT
	conn_send(c, f);
	frame_unref(f);
}

/* The connection follows the presence of the users of the second column. */
static void
subscribe_answered(struct conn *c, const PGresult *res)
{
	for (int i = 0; i < PQntuples(res); i++)
		if (!PQgetisnull(res, i, 1))
			subscribe_add(c, strtoll(PQgetvalue(res, i, 1), NULL, 10));
}

/* The database answered (or the connection was lost: res NULL). */
static void
req_done(struct db_query *q, PGresult *res)
{
	struct req *r = (struct req *) q;
	struct conn *c = r->c;

	metrics_latency((double) (lws_now_usecs() - r->t0) / 1e6);
	if (c)
	{
		detach(r);
		if (res == NULL)
			send_error(c, r->id, E_UNAVAILABLE, "connection_lost",
					   "database connection lost; retry (send is idempotent with client_id)");
		else if (q->unreplicated)
		{
			/* committed on the primary only: a failover may lose it, so no ok */
			metrics.unreplicated++;
			send_error(c, r->id, E_UNAVAILABLE, "not_replicated",
					   "committed on the database primary but not confirmed by its standby; "
					   "retry (send is idempotent with client_id)");
		}
		else if (PQresultStatus(res) == PGRES_TUPLES_OK)
		{
			if (r->type->subscribes)
				subscribe_answered(c, res);
			send_ok(c, r->id, res, r->type->result);
		}
		else
			send_sql_error(c, r->id, res);
	}
	req_free(r);
}

/* {"type":"auth","token":…}: a fresh token for the same user extends the connection. */
static void
reauth(struct conn *c, const char *id, json_t *msg)
{
	json_t	   *t = json_object_get(msg, "token");
	struct auth_result ar;
	const char *why;

	if (!json_is_string(t))
	{
		send_error(c, id, E_INVALID, "bad_param", "token must be a string");
		return;
	}
	if (auth_verify(json_string_value(t), json_string_length(t), &ar, &why) != 0)
	{
		metrics.auth_refused++;
		send_error(c, id, E_UNAUTHORIZED, "token_invalid", why);
		return;
	}
	if (ar.user_id != c->user->id)
	{
		send_error(c, id, E_UNAUTHORIZED, "token_other_user", "the token is for another user");
		return;
	}
	c->exp = ar.exp;
	conn_sendf(c, "{\"type\":\"ok\",\"id\":%s,\"result\":{\"expires_at\":%lld}}",
			   id, (long long) ar.exp);
}

/* Run a request of a table row: parameters, then the database. */
static void
submit(struct conn *c, char *id, json_t *msg, const char *type)
{
	int			stmt = -1;
	const struct request_type *t = find_type(type, &stmt);
	struct req *r;
	const char *e;

	if (t == NULL)
	{
		send_error(c, id, E_INVALID, "unknown_type", "unknown request type");
		free(id);
		return;
	}
	if ((int) c->reqs.count >= cf_max_inflight)
	{
		metrics.rate_limited++;
		send_error(c, id, E_RATE_LIMITED, "in_flight", "too many requests in flight");
		free(id);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->id = id;
	r->q.stmt = stmt;
	r->q.done = req_done;
	r->t0 = lws_now_usecs();
	if ((e = build(t, msg, r, c->user->id)) != NULL)
		send_error(c, r->id, E_INVALID, "bad_param", e);
	else if (db_submit(&r->q) != 0)
		send_error(c, r->id, E_UNAVAILABLE, "database_unavailable", "the database is unavailable; retry later");
	else
	{
		r->c = c;
		lws_dll2_add_head(&r->on_conn, &c->reqs);
		return;
	}
	req_free(r);
}

/* A message that passed the checks: refused for its rate, or run. Takes id. */
static void
answer(struct conn *c, char *id, json_t *msg, const char *type, const char *limited)
{
	if (limited)
		send_error(c, id, E_RATE_LIMITED, limited, "too many requests; slow down");
	else if (!strcmp(type, "ping"))
		conn_sendf(c, "{\"type\":\"ok\",\"id\":%s,\"result\":\"pong\"}", id);
	else if (!strcmp(type, "auth"))
		reauth(c, id, msg);
	else
	{
		submit(c, id, msg, type);	/* takes id */
		return;
	}
	free(id);
}

/* One whole client message. */
void
request_message(struct conn *c, const char *data, size_t len, bool binary, bool too_large)
{
	struct user *u = c->user;
	struct parsed_request pr;
	struct request_error err;
	bool		limited;
	int			rc;

	metrics.requests++;

	/*
	 * Every message takes a token, from the typing bucket or the request
	 * bucket; one refused for its form is still answered with what is
	 * wrong with it, but counts toward the limit of what follows.
	 */
	rc = request_parse(data, len, binary, too_large, &pr, &err);
	limited = pr.typing ? !bucket_take(&u->typing_tokens, &u->typing_refill_us, cf_typing_rate, cf_typing_burst)
		: !bucket_take(&u->tokens, &u->refill_us, cf_rate, cf_burst);
	if (limited)
		metrics.rate_limited++;
	/* a client that keeps sending into an empty bucket only burns CPU: closed */
	c->refused_in_row = limited ? c->refused_in_row + 1 : 0;
	if (c->refused_in_row > (uint32_t) cf_flood_close)
	{
		metrics.flood_closed++;
		log_info("user %lld: %u messages in a row over the rate limit, closing with 1008",
				 (long long) u->id, c->refused_in_row);
		conn_close(c, 1008);
		request_parsed_free(&pr);
		return;
	}
	if (rc != 0)
		send_error(c, pr.id, err.code, err.reason, err.message);	/* id: NULL until known */
	else
	{
		answer(c, pr.id, pr.msg, pr.type, limited ? (pr.typing ? "typing" : "requests") : NULL);
		pr.id = NULL;			/* answer took it */
	}
	request_parsed_free(&pr);
}
