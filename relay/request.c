/*
 * request.c: client requests. Each text frame is one JSON object with a
 * `type` and an `id` of the client's choosing; it is checked (rate limits,
 * shape, types), mapped to one SQL function of the extension with the user
 * id of the verified token, and answered exactly once with `ok` or `error`.
 */
#include "alloc.h"
#include "auth.h"
#include "config.h"
#include "log.h"
#include "pg.h"
#include "relay.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum err_code
{
	E_UNAUTHORIZED,
	E_FORBIDDEN,
	E_INVALID,
	E_RATE_LIMITED,
	E_TOO_LARGE,
	E_UNAVAILABLE,
	E_INTERNAL
};

static const char *const err_names[] = {
	"unauthorized", "forbidden", "invalid", "rate_limited", "too_large", "unavailable", "internal"
};

/* How a statement's result becomes the `result` of the answer. */
enum result_kind
{
	RK_VALUE,					/* the one value (jsonb, number), or null */
	RK_ROWS,					/* every row's value, as an array */
	RK_VOID						/* null */
};

/* An unanswered request. */
struct req
{
	struct pg_query q;			/* first: pg hands it back */
	struct conn *c;				/* NULL once the connection closed */
	struct req *c_prev,
			   *c_next;
	char	   *id;				/* the client's id, as JSON text */
	int64_t		t0;
	enum result_kind rk;
};

/* Metric names of the error codes, for metrics.c. */
const char *request_error_name(int i);
const char *
request_error_name(int i)
{
	return i >= 0 && i <= E_INTERNAL ? err_names[i] : NULL;
}

/* Queue {"type":"error",…} on a connection. */
static void
send_error(struct conn *c, const char *id, enum err_code code, const char *message)
{
	json_t	   *m = json_string(message);
	char	   *ms;

	if (m == NULL)
		m = json_string("error");
	ms = json_dumps(m, JSON_ENCODE_ANY);
	conn_sendf(c, "{\"type\":\"error\",\"id\":%s,\"code\":\"%s\",\"message\":%s}",
			   id ? id : "null", err_names[code], ms ? ms : "\"error\"");
	free(ms);
	json_decref(m);
	metrics.errors[code]++;
}

/* Refill a token bucket and take one token; false when empty. */
static bool
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

/*
 * Parameter builders: each returns NULL on success or an error message.
 * ARG() runs one unless an earlier one failed.
 */
#define ARG(call) do { if (e == NULL) e = (call); } while (0)

/* An integer (or, when optional, absent / null). */
static const char *
p_int(json_t *msg, const char *name, bool required, char **out)
{
	static char err[96];
	json_t	   *v = json_object_get(msg, name);

	*out = NULL;
	if (v == NULL || json_is_null(v))
	{
		if (!required)
			return NULL;
		snprintf(err, sizeof(err), "%s is required", name);
		return err;
	}
	if (!json_is_integer(v))
	{
		snprintf(err, sizeof(err), "%s must be an integer", name);
		return err;
	}
	if (asprintf(out, "%lld", (long long) json_integer_value(v)) < 0)
		*out = NULL;
	return NULL;
}

/* A string of at most max bytes. */
static const char *
p_str(json_t *msg, const char *name, bool required, size_t max, char **out)
{
	static char err[96];
	json_t	   *v = json_object_get(msg, name);

	*out = NULL;
	if (v == NULL || json_is_null(v))
	{
		if (!required)
			return NULL;
		snprintf(err, sizeof(err), "%s is required", name);
		return err;
	}
	if (!json_is_string(v))
	{
		snprintf(err, sizeof(err), "%s must be a string", name);
		return err;
	}
	if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v))
	{
		snprintf(err, sizeof(err), "%s is too long or contains a NUL", name);
		return err;
	}
	*out = xstrdup(json_string_value(v));
	return NULL;
}

/* A boolean. */
static const char *
p_bool(json_t *msg, const char *name, bool required, char **out)
{
	static char err[96];
	json_t	   *v = json_object_get(msg, name);

	*out = NULL;
	if (v == NULL || json_is_null(v))
	{
		if (!required)
			return NULL;
		snprintf(err, sizeof(err), "%s is required", name);
		return err;
	}
	if (!json_is_boolean(v))
	{
		snprintf(err, sizeof(err), "%s must be true or false", name);
		return err;
	}
	*out = xstrdup(json_is_true(v) ? "true" : "false");
	return NULL;
}

/* An array of at most max integers, as a PostgreSQL array literal. */
static const char *
p_ints(json_t *msg, const char *name, bool required, size_t max, char **out)
{
	static char err[96];
	json_t	   *v = json_object_get(msg, name);
	json_t	   *e;
	size_t		i;
	char	   *buf,
			   *p;

	*out = NULL;
	if (v == NULL || json_is_null(v))
	{
		if (!required)
			return NULL;
		snprintf(err, sizeof(err), "%s is required", name);
		return err;
	}
	if (!json_is_array(v) || json_array_size(v) > max)
	{
		snprintf(err, sizeof(err), "%s must be an array of at most %zu integers", name, max);
		return err;
	}
	buf = p = xmalloc(json_array_size(v) * 22 + 3);
	*p++ = '{';
	json_array_foreach(v, i, e)
	{
		if (!json_is_integer(e))
		{
			free(buf);
			snprintf(err, sizeof(err), "%s must be an array of integers", name);
			return err;
		}
		p += sprintf(p, "%s%lld", i ? "," : "", (long long) json_integer_value(e));
	}
	*p++ = '}';
	*p = '\0';
	*out = buf;
	return NULL;
}

/*
 * Fill q's statement and parameters from a request; NULL or an error
 * message. Parameter 1 is always the user id.
 */
static const char *
build(const char *type, json_t *msg, struct req *r, int64_t user_id)
{
	struct pg_query *q = &r->q;
	char	  **p = q->params;
	const char *e = NULL;

	if (asprintf(&p[0], "%lld", (long long) user_id) < 0)
		return "out of memory";
	r->rk = RK_VALUE;
	if (!strcmp(type, "send"))
	{
		q->stmt = S_SEND;
		q->nparams = 5;
		ARG(p_int(msg, "chat_id", true, &p[1]));
		ARG(p_str(msg, "body", true, 65536, &p[2]));
		ARG(p_str(msg, "client_id", false, 64, &p[3]));
		ARG(p_ints(msg, "attachment_ids", false, 100, &p[4]));
	}
	else if (!strcmp(type, "edit"))
	{
		q->stmt = S_EDIT;
		q->nparams = 4;
		ARG(p_int(msg, "chat_id", true, &p[1]));
		ARG(p_int(msg, "seq", true, &p[2]));
		ARG(p_str(msg, "body", true, 65536, &p[3]));
	}
	else if (!strcmp(type, "delete"))
	{
		q->stmt = S_DELETE;
		q->nparams = 3;
		ARG(p_int(msg, "chat_id", true, &p[1]));
		ARG(p_int(msg, "seq", true, &p[2]));
	}
	else if (!strcmp(type, "history"))
	{
		q->stmt = S_HISTORY;
		q->nparams = 4;
		r->rk = RK_ROWS;
		ARG(p_int(msg, "chat_id", true, &p[1]));
		ARG(p_int(msg, "before_seq", false, &p[2]));
		ARG(p_int(msg, "page_size", false, &p[3]));
	}
	else if (!strcmp(type, "catch_up"))
	{
		q->stmt = S_CATCH_UP;
		q->nparams = 4;
		r->rk = RK_ROWS;
		ARG(p_int(msg, "chat_id", true, &p[1]));
		ARG(p_int(msg, "after", true, &p[2]));
		ARG(p_int(msg, "page_size", false, &p[3]));
	}
	else if (!strcmp(type, "chats"))
	{
		q->stmt = S_CHATS;
		q->nparams = 4;
		r->rk = RK_ROWS;
		ARG(p_str(msg, "before", false, 200, &p[1]));
		ARG(p_int(msg, "page_size", false, &p[2]));
		ARG(p_bool(msg, "archived", false, &p[3]));
	}
	else if (!strcmp(type, "read"))
	{
		q->stmt = S_READ;
		q->nparams = 3;
		ARG(p_int(msg, "chat_id", true, &p[1]));
		ARG(p_int(msg, "seq", true, &p[2]));
	}
	else if (!strcmp(type, "typing"))
	{
		q->stmt = S_TYPING;
		q->nparams = 2;
		r->rk = RK_VOID;
		e = p_int(msg, "chat_id", true, &p[1]);
	}
	else if (!strcmp(type, "open"))
	{
		q->stmt = S_OPEN;
		q->nparams = 4;
		ARG(p_str(msg, "kind", true, 32, &p[1]));
		ARG(p_int(msg, "context_id", false, &p[2]));
		ARG(p_int(msg, "peer_id", true, &p[3]));
	}
	else if (!strcmp(type, "presence"))
	{
		q->stmt = S_PRESENCE;
		q->nparams = 2;
		r->rk = RK_ROWS;
		e = p_ints(msg, "user_ids", true, 1000, &p[1]);
	}
	else if (!strcmp(type, "unread"))
	{
		q->stmt = S_UNREAD;
		q->nparams = 1;
	}
	else if (!strcmp(type, "archive") || !strcmp(type, "mute"))
	{
		bool		archive = type[0] == 'a';

		q->stmt = archive ? S_ARCHIVE : S_MUTE;
		q->nparams = 3;
		r->rk = RK_VOID;
		ARG(p_int(msg, "chat_id", true, &p[1]));
		ARG(p_bool(msg, archive ? "archived" : "muted", true, &p[2]));
	}
	else if (!strcmp(type, "block") || !strcmp(type, "unblock"))
	{
		q->stmt = type[0] == 'b' ? S_BLOCK : S_UNBLOCK;
		q->nparams = 2;
		r->rk = RK_VOID;
		e = p_int(msg, "other_id", true, &p[1]);
	}
	else if (!strcmp(type, "upload"))
	{
		q->stmt = S_UPLOAD;
		q->nparams = 5;
		ARG(p_int(msg, "chat_id", true, &p[1]));
		ARG(p_str(msg, "file_name", true, 1024, &p[2]));
		ARG(p_str(msg, "content_type", true, 255, &p[3]));
		ARG(p_int(msg, "size", true, &p[4]));
	}
	else if (!strcmp(type, "attachment_url"))
	{
		q->stmt = S_ATTACHMENT_URL;
		q->nparams = 4;
		ARG(p_int(msg, "attachment_id", true, &p[1]));
		ARG(p_int(msg, "expires_s", false, &p[2]));
		ARG(p_bool(msg, "inline", false, &p[3]));
	}
	else
	{
		q->nparams = 1;
		return "unknown request type";
	}
	return e;
}

/* Unlink an answered request from its connection. */
static void
detach(struct req *r)
{
	struct conn *c = r->c;

	if (!c)
		return;
	if (r->c_prev)
		r->c_prev->c_next = r->c_next;
	else
		c->reqs = r->c_next;
	if (r->c_next)
		r->c_next->c_prev = r->c_prev;
	c->inflight--;
	r->c = NULL;
}

/* A connection closes: its requests are still answered by the database, to nobody. */
void
request_detach_all(struct conn *c)
{
	while (c->reqs)
		detach(c->reqs);
}

/* Free a request. */
static void
req_free(struct req *r)
{
	pg_query_free_params(&r->q);
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
		send_error(c, id, E_FORBIDDEN, msg ? msg : "access denied");
	else if (!strncmp(state, "22", 2))
		send_error(c, id, E_INVALID, msg ? msg : "invalid argument");
	else if (!strcmp(state, "54000"))
		send_error(c, id, E_RATE_LIMITED, msg ? msg : "a limit was reached");
	else if (!strcmp(state, "55000"))
	{
		/*
		 * The server lacks what the request needs (no object store). The
		 * contract's codes are a closed set: unavailable, with a message
		 * that says it is the configuration, not a passing outage.
		 */
		send_error(c, id, E_UNAVAILABLE, msg ? msg : "not configured on this server");
	}
	else if (!strncmp(state, "08", 2) || !strncmp(state, "53", 2) || !strncmp(state, "57", 2) ||
			 !strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03"))
		send_error(c, id, E_UNAVAILABLE, "the database is unavailable or busy; retry");
	else
	{
		log_error("request failed: SQLSTATE %s: %s", state, PQresultErrorMessage(res));
		send_error(c, id, E_INTERNAL, "internal error");
	}
}

/* Build and queue {"type":"ok","id":…,"result":…}. */
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

/* The database answered (or the connection was lost: res NULL). */
static void
req_done(struct pg_query *q, PGresult *res)
{
	struct req *r = (struct req *) q;
	struct conn *c = r->c;

	metrics_latency((double) (lws_now_usecs() - r->t0) / 1e6);
	if (c)
	{
		detach(r);
		if (res == NULL)
			send_error(c, r->id, E_UNAVAILABLE, "database connection lost; retry (send is idempotent with client_id)");
		else if (PQresultStatus(res) == PGRES_TUPLES_OK)
			send_ok(c, r->id, res, r->rk);
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
		send_error(c, id, E_INVALID, "token must be a string");
		return;
	}
	if (auth_verify(json_string_value(t), json_string_length(t), &ar, &why) != 0)
	{
		metrics.auth_refused++;
		send_error(c, id, E_UNAUTHORIZED, why);
		return;
	}
	if (ar.user_id != c->user->id)
	{
		send_error(c, id, E_UNAUTHORIZED, "the token is for another user");
		return;
	}
	c->exp = ar.exp;
	conn_sendf(c, "{\"type\":\"ok\",\"id\":%s,\"result\":{\"expires_at\":%lld}}",
			   id, (long long) ar.exp);
}

/* One whole client message. */
void
request_message(struct conn *c, const char *data, size_t len, bool binary, bool too_large)
{
	struct user *u = c->user;
	json_t	   *msg = NULL;
	json_t	   *idv;
	json_t	   *typev;
	const char *type;
	char	   *id = NULL;
	struct req *r;
	const char *e;
	bool		typing,
				limited;

	metrics.requests++;
	/*
	 * Every message takes a token, from the typing bucket or the request
	 * bucket; one refused for its form is still answered with what is
	 * wrong with it, but counts toward the limit of what follows.
	 */
	msg = too_large || binary ? NULL : json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
	typev = json_object_get(msg, "type");
	typing = json_is_string(typev) && strcmp(json_string_value(typev), "typing") == 0;
	limited = typing ? !bucket_take(&u->typing_tokens, &u->typing_refill_us, cf_typing_rate, cf_typing_burst)
		: !bucket_take(&u->tokens, &u->refill_us, cf_rate, cf_burst);
	if (limited)
		metrics.rate_limited++;
	if (too_large || binary)
	{
		send_error(c, NULL, too_large ? E_TOO_LARGE : E_INVALID,
				   too_large ? "message too large" : "binary frames are not supported; send JSON text");
		return;
	}
	if (!json_is_object(msg))
	{
		send_error(c, NULL, E_INVALID, "a request is one JSON object");
		goto out;
	}
	idv = json_object_get(msg, "id");
	if (idv && !(json_is_integer(idv) || (json_is_string(idv) && json_string_length(idv) <= 128)))
	{
		send_error(c, NULL, E_INVALID, "id must be an integer or a string of at most 128 bytes");
		goto out;
	}
	id = idv ? json_dumps(idv, JSON_ENCODE_ANY) : xstrdup("null");
	if (!json_is_string(typev))
	{
		send_error(c, id, E_INVALID, "type must be a string");
		goto out;
	}
	type = json_string_value(typev);
	if (limited)
	{
		send_error(c, id, E_RATE_LIMITED, "too many requests; slow down");
		goto out;
	}
	if (!strcmp(type, "ping"))
	{
		conn_sendf(c, "{\"type\":\"ok\",\"id\":%s,\"result\":\"pong\"}", id);
		goto out;
	}
	if (!strcmp(type, "auth"))
	{
		reauth(c, id, msg);
		goto out;
	}
	if (c->inflight >= cf_max_inflight)
	{
		metrics.rate_limited++;
		send_error(c, id, E_RATE_LIMITED, "too many requests in flight");
		goto out;
	}
	r = xcalloc(1, sizeof(*r));
	e = build(type, msg, r, u->id);
	if (e)
	{
		send_error(c, id, E_INVALID, e);
		req_free(r);
		goto out;
	}
	r->q.done = req_done;
	r->t0 = lws_now_usecs();
	r->id = id;
	id = NULL;
	if (pg_submit(&r->q) != 0)
	{
		send_error(c, r->id, E_UNAVAILABLE, "the database is unavailable; retry later");
		req_free(r);
		goto out;
	}
	r->c = c;
	r->c_next = c->reqs;
	if (c->reqs)
		c->reqs->c_prev = r;
	c->reqs = r;
	c->inflight++;
out:
	free(id);
	json_decref(msg);
}
