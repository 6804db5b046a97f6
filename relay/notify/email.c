/*
 * email.c: the email channel's SQL side (email.h, dispatch.h).
 *
 * A claim leases up to the room left of due users (chat.email_claim, one
 * jsonb each); each becomes one message at once (email_message.c), sent by
 * email_send.c, and reported with chat.email_result: covered is the
 * claim's [{chat_id, up_to_seq}], so the database marks exactly what the
 * mail told. A retry of the same digest is claimed with the same
 * message_id, so its Message-ID is the same.
 *
 * Never logged: the address (only its domain), the password, message text.
 */
#include "email.h"

#include "alloc.h"
#include "config.h"
#include "db.h"
#include "dispatch.h"
#include "email_message.h"
#include "email_send.h"
#include "log.h"
#include "metrics.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct notify_channel channel;
static int	claim_stmt,
			result_stmt;

bool
email_on(void)
{
	return *cf_smtp_url != '\0';
}

int
email_in_flight(void)
{
	return channel.in_flight;
}

/* chat.email_claim for the room left. */
static struct db_query *
claim(int room, int lease_s, db_done_fn done, void *arg)
{
	struct db_query *q = db_query_new(claim_stmt, 3, done, arg);

	db_param(q, 0, cf_worker_id);
	db_paramf(q, 1, "%d", room);
	db_paramf(q, 2, "%d", lease_s);
	return q;
}

/* [{chat_id, up_to_seq}] of the claim's chats, as JSON text. */
static char *
covered_of(const json_t *claim)
{
	json_t	   *out = json_array();
	size_t		i;
	const json_t *c;
	char	   *text;

	json_array_foreach(json_object_get(claim, "chats"), i, c)
		json_array_append_new(out, json_pack("{s:O,s:O}", "chat_id", json_object_get(c, "chat_id"),
											 "up_to_seq", json_object_get(c, "up_to_seq")));
	text = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	return text;
}

/* The fields of a claim an email keeps; -1 when it is not a claim. */
static int
take_fields(struct email *e, const json_t *doc)
{
	const char *rcpt = json_string_value(json_object_get(doc, "email_address"));
	const char *mid = json_string_value(json_object_get(doc, "message_id"));
	const char *at;

	if (!json_is_integer(json_object_get(doc, "user_id")) || rcpt == NULL || mid == NULL ||
		!json_is_array(json_object_get(doc, "chats")))
		return -1;
	e->user_id = (int64_t) json_integer_value(json_object_get(doc, "user_id"));
	e->attempt = (int) json_integer_value(json_object_get(doc, "attempt"));
	e->rcpt = xstrdup(rcpt);
	e->message_id = xstrdup(mid);
	at = strrchr(rcpt, '@');
	snprintf(e->domain, sizeof(e->domain), "%s", at ? at + 1 : "(none)");
	e->covered = covered_of(doc);
	return 0;
}

/* One claimed user as an email, its message made now. */
static struct delivery *
take(PGresult *res, int row)
{
	json_t	   *doc = json_loads(PQgetvalue(res, row, 0), 0, NULL);
	struct email *e = xcalloc(1, sizeof(*e));
	struct email_settings s = {
		.from = cf_smtp_from, .unsubscribe_url = cf_unsubscribe_url, .app_url = cf_app_url, .now = time(NULL),
	};

	if (doc == NULL || take_fields(e, doc) != 0)
	{
		log_error("email_claim returned a row that is not a claim: is the extension this daemon's version?");
		json_decref(doc);
		free(e->rcpt);
		free(e->message_id);
		free(e->covered);
		free(e);
		return NULL;
	}
	e->msg = email_message_build(doc, &s, &e->msg_len, &e->msg_error);
	json_decref(doc);
	return &e->d;
}

/* chat.email_result(worker, user_id, covered, sent, error). */
static struct db_query *
report(struct delivery *d, db_done_fn done)
{
	struct email *e = (struct email *) d;
	struct db_query *q = db_query_new(result_stmt, 5, done, d);

	db_param(q, 0, cf_worker_id);
	db_paramf(q, 1, "%" PRId64, e->user_id);
	db_param(q, 2, e->covered);
	db_param(q, 3, *d->error ? "false" : "true");
	db_param(q, 4, *d->error ? d->error : NULL);
	return q;
}

/* What followed, counted and logged (a success only at debug). */
static void
reported(struct delivery *d, const char *outcome)
{
	struct email *e = (struct email *) d;
	const char *what = *d->error ? d->error : "sent";

	if (outcome == NULL)
		log_warn("email %s to a user at %s (attempt %d): %s; the result could not be reported: it is sent again when its lease ends",
				 e->message_id, e->domain, e->attempt, what);
	else if (!strcmp(outcome, "sent"))
		log_debug("email %s to a user at %s (attempt %d): sent", e->message_id, e->domain, e->attempt);
	else
		log_info("email %s to a user at %s (attempt %d): %s: %s", e->message_id, e->domain, e->attempt, what, outcome);
	if (outcome && !strcmp(outcome, "retry"))
		metrics.emails_retried++;
	else if (outcome && !strcmp(outcome, "dropped"))
		metrics.emails_dropped++;
}

static void
release(struct delivery *d)
{
	struct email *e = (struct email *) d;

	curl_slist_free_all(e->rcpts);
	free(e->rcpt);
	free(e->message_id);
	free(e->covered);
	free(e->msg);
	free(e);
}

/* every poll interval: the backlog for /metrics */
static void
poll_backlog(void)
{
	if (email_on())
	backlog_poll(&metrics.email_backlog);
}

void
email_configure(void)
{
	/* off: no room, so no claim; what is in flight finishes */
	channel.concurrency = email_on() ? cf_email_concurrency : 0;
	if (email_send_configure() != 0)
		log_warn("the SMTP password stays as it was");
}

void
email_init(void)
{
	claim_stmt = db_statement("SELECT e::text FROM chat.email_claim($1::text, $2::int, $3::int) AS e", 3);
	result_stmt = db_statement("SELECT chat.email_result($1::text, $2::bigint, $3::jsonb, $4::bool, $5::text)", 5);
	backlog_init(&metrics.email_backlog, "SELECT due_users, oldest_due_s FROM chat.email_backlog()");
	channel = (struct notify_channel) {
		.name = "email", .concurrency = email_on() ? cf_email_concurrency : 0, .poll_only = true,
		.claim = claim, .take = take, .send = email_send, .abort = email_abort,
		.report = report, .reported = reported, .release = release, .poll = poll_backlog,
	};
	dispatch_add(&channel);
}

void
email_free(void)
{
	email_send_free();
}
