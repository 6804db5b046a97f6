/*
 * push.c: the push channel's SQL side and its words (push.h, dispatch.h).
 *
 * A claim (chat.push_claim) first turns the due states into one send per
 * device, the rules checked then, at send time, and leases up to the room
 * left of them; each row becomes a struct push with its title and body
 * (push_text.c) and goes to the sender of its kind. Only the kinds this
 * daemon has credentials for are claimed: another daemon may hold the
 * others. The result goes to chat.push_result: sent, gone (the device is
 * deleted), retry (with the service's Retry-After), dropped, stale.
 *
 * Never logged: tokens, endpoints, message text.
 */
#include "push.h"

#include "alloc.h"
#include "apns_send.h"
#include "config.h"
#include "db.h"
#include "email_message.h"
#include "fcm_send.h"
#include "log.h"
#include "metrics.h"
#include "push_text.h"
#include "webpush_send.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Web Push's record holds 3,993 bytes of plaintext; APNs 4 KB; FCM 4,000 bytes of data. */
#define PAYLOAD_MAX 3500

static struct notify_channel channel;
static int	claim_stmt,
			result_stmt;

static bool
kind_on(enum push_kind k)
{
	return k == PUSH_WEBPUSH ? webpush_on() : k == PUSH_FCM ? fcm_on() : apns_on();
}

bool
push_on(void)
{
	return kind_on(PUSH_WEBPUSH) || kind_on(PUSH_FCM) || kind_on(PUSH_APNS);
}

int
push_in_flight(void)
{
	return channel.in_flight;
}

/* The kinds this daemon sends, as a text[] literal: {webpush,apns}. */
static void
kinds_literal(char *buf, size_t len)
{
	size_t		at = (size_t) snprintf(buf, len, "{");

	for (int k = 0; k < PUSH_NKINDS; k++)
		if (kind_on(k))
			at += (size_t) snprintf(buf + at, len - at, "%s%s", at > 1 ? "," : "", push_kind_names[k]);
	snprintf(buf + at, len - at, "}");
}

/* chat.push_claim for the room left, of the kinds on. */
static struct db_query *
claim(int room, int lease_s, db_done_fn done, void *arg)
{
	struct db_query *q = db_query_new(claim_stmt, 4, done, arg);
	char		kinds[64];

	kinds_literal(kinds, sizeof(kinds));
	db_param(q, 0, cf_worker_id);
	db_paramf(q, 1, "%d", room);
	db_paramf(q, 2, "%d", lease_s);
	db_param(q, 3, kinds);
	return q;
}

char *
push_payload(const struct push *p)
{
	json_t	   *o = json_object();
	char	   *url = *cf_app_url ? email_subst(cf_app_url, "chat_id", (long long) p->chat_id) : NULL;
	char	   *text;

	json_object_set_new(o, "type", json_string(p->alert ? "alert" : "clear"));
	json_object_set_new(o, "chat_id", json_integer(p->chat_id));
	json_object_set_new(o, "tag", json_string(p->collapse));
	json_object_set_new(o, "badge", json_integer(p->badge));
	if (p->alert)
	{
		json_object_set_new(o, "title", json_string(p->title));
		json_object_set_new(o, "body", json_string(p->body));
		json_object_set_new(o, "count", json_integer(p->count));
	}
	if (url)
		json_object_set_new(o, "url", json_string(url));
	else
	{
		char		rel[40];

		snprintf(rel, sizeof(rel), "/?chat=%" PRId64, p->chat_id);
		json_object_set_new(o, "url", json_string(rel));
	}
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(url);
	return text;
}

static enum push_kind
kind_of(const char *name)
{
	for (int k = 0; name && k < PUSH_NKINDS; k++)
		if (!strcmp(name, push_kind_names[k]))
			return k;
	return PUSH_NKINDS;
}

/* An alert's words, cut until the payload fits every service's bound. */
static void
words(struct push *p, const json_t *data)
{
	size_t		max_bytes = PUSH_BODY_MAX * 2;
	char	   *payload;

	push_text_alert(data, PUSH_BODY_MAX, max_bytes, &p->title, &p->body);
	while ((payload = push_payload(p)) != NULL && strlen(payload) > PAYLOAD_MAX && *p->body)
	{
		/* JSON escapes made it longer than its bytes: halve it */
		free(payload);
		max_bytes = strlen(p->body) / 2;
		push_text_cut(p->body, PUSH_BODY_MAX, max_bytes);
	}
	free(payload);
}

/* The fields of a claimed row; -1 when it is not one. */
static int
take_fields(struct push *p, json_t *doc)
{
	json_t	   *data = json_object_get(doc, "data");

	p->kind = kind_of(json_string_value(json_object_get(doc, "kind")));
	if (!json_is_integer(json_object_get(doc, "send_id")) || !json_is_object(data) ||
		!json_is_object(json_object_get(doc, "token")) || p->kind == PUSH_NKINDS)
		return -1;
	p->send_id = (int64_t) json_integer_value(json_object_get(doc, "send_id"));
	p->device_id = (int64_t) json_integer_value(json_object_get(doc, "device_id"));
	p->user_id = (int64_t) json_integer_value(json_object_get(doc, "user_id"));
	p->chat_id = (int64_t) json_integer_value(json_object_get(doc, "chat_id"));
	p->attempt = (int) json_integer_value(json_object_get(doc, "attempt"));
	p->alert = json_is_true(json_object_get(doc, "alert"));
	p->badge = (int) json_integer_value(json_object_get(data, "badge"));
	p->count = (int) json_integer_value(json_object_get(data, "count"));
	p->token = json_incref(json_object_get(doc, "token"));
	p->ttl_s = cf_push_ttl;
	p->retry_after_s = -1;
	snprintf(p->collapse, sizeof(p->collapse), "chat-%" PRId64, p->chat_id);
	if (p->alert)
		words(p, data);
	return 0;
}

/* One claimed send as a push. */
static struct delivery *
take(PGresult *res, int row)
{
	json_t	   *doc = json_loads(PQgetvalue(res, row, 0), 0, NULL);
	struct push *p = xcalloc(1, sizeof(*p));

	if (doc == NULL || take_fields(p, doc) != 0)
	{
		log_error("push_claim returned a row that is not a push: is the extension this daemon's version?");
		json_decref(doc);
		json_decref(p->token);
		free(p);
		return NULL;
	}
	json_decref(doc);
	return &p->d;
}

static void
send_push(struct delivery *d)
{
	struct push *p = (struct push *) d;

	p->started_us = lws_now_usecs();
	if (p->kind == PUSH_WEBPUSH)
		webpush_send(p);
	else if (p->kind == PUSH_FCM)
		fcm_send(p);
	else
		apns_send(p);
}

static void
abort_send(struct delivery *d)
{
	struct push *p = (struct push *) d;

	if (p->kind == PUSH_WEBPUSH)
		webpush_abort(p);
	else if (p->kind == PUSH_FCM)
		fcm_abort(p);
	else
		apns_abort(p);
}

/* chat.push_result(worker, send_id, status, error, gone, retry_after_s). */
static struct db_query *
report(struct delivery *d, db_done_fn done)
{
	struct push *p = (struct push *) d;
	struct db_query *q = db_query_new(result_stmt, 6, done, d);

	db_param(q, 0, cf_worker_id);
	db_paramf(q, 1, "%" PRId64, p->send_id);
	db_paramf(q, 2, "%d", d->status);
	db_param(q, 3, *d->error ? d->error : NULL);
	db_param(q, 4, p->gone ? "true" : "false");
	if (p->retry_after_s >= 0)
		db_paramf(q, 5, "%ld", p->retry_after_s > 86400 ? 86400L : p->retry_after_s);
	else
		db_param(q, 5, NULL);
	return q;
}

/* What followed, counted per kind and logged (a success only at debug). */
static void
reported(struct delivery *d, const char *outcome)
{
	struct push *p = (struct push *) d;
	struct push_counters *c = &metrics.push[p->kind];
	const char *what = *d->error ? d->error : "sent";

	if (*d->error)
		c->failed++;
	else
		c->sent++;
	if (!*d->error)
		prom_observe(&c->duration, (double) (lws_now_usecs() - p->started_us) / 1e6);
	if (outcome == NULL)
		log_warn("%s push %" PRId64 " to device %" PRId64 " (attempt %d): %s; the result could not be reported: it is sent again when its lease ends",
				 push_kind_names[p->kind], p->send_id, p->device_id, p->attempt, what);
	else if (!strcmp(outcome, "sent"))
		log_debug("%s push %" PRId64 " to device %" PRId64 ": sent", push_kind_names[p->kind], p->send_id, p->device_id);
	else
		log_info("%s push %" PRId64 " to device %" PRId64 " (attempt %d): %s: %s",
				 push_kind_names[p->kind], p->send_id, p->device_id, p->attempt, what, outcome);
	if (outcome && !strcmp(outcome, "retry"))
		c->retried++;
	else if (outcome && !strcmp(outcome, "dropped"))
		c->dropped++;
	else if (outcome && !strcmp(outcome, "gone"))
		c->gone++;
}

static void
release(struct delivery *d)
{
	struct push *p = (struct push *) d;

	json_decref(p->token);
	curl_slist_free_all(p->headers);
	free(p->title);
	free(p->body);
	free(p->req_body);
	free(p->url);
	free(p);
}

static void
poll_backlog(void)
{
	if (push_on())
		backlog_poll(&metrics.push_backlog);
}

int
push_configure(void)
{
	/* each loads what it can; one that fails keeps its previous credentials (logged) */
	int			rc = webpush_configure() | fcm_configure() | apns_configure();

	/* off: no room, so no claim; what is in flight finishes */
	channel.concurrency = push_on() ? cf_push_concurrency : 0;
	channel.tick_us = (int64_t) cf_push_poll_ms * 1000;
	return rc != 0 ? -1 : 0;
}

void
push_log_kinds(void)
{
	char		kinds[64];

	kinds_literal(kinds, sizeof(kinds));
	if (push_on())
		log_info("push on for %s: %d in flight, timeout %d s, a claim every %d ms", kinds, cf_push_concurrency,
				 cf_push_timeout, cf_push_poll_ms);
	else
		log_info("push off: no vapid_key_file, fcm_service_account_file or apns_key_file");
}

void
push_init(void)
{
	claim_stmt = db_statement("SELECT e::text FROM chat.push_claim($1::text, $2::int, $3::int, 500, $4::text[]) AS e", 4);
	result_stmt = db_statement("SELECT chat.push_result($1::text, $2::bigint, $3::int, $4::text, $5::bool, $6::int)", 6);
	backlog_init(&metrics.push_backlog, "SELECT due, oldest_due_s FROM chat.push_backlog()");
	channel = (struct notify_channel) {
		.name = "push", .claim = claim, .take = take, .send = send_push, .abort = abort_send,
		.report = report, .reported = reported, .release = release, .poll = poll_backlog,
		.concurrency = push_on() ? cf_push_concurrency : 0, .tick_us = (int64_t) cf_push_poll_ms * 1000,
	};
	dispatch_add(&channel);
}

void
push_free(void)
{
	webpush_free();
	fcm_free();
	apns_free();
}
