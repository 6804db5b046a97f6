/*
 * webhook.c: the webhook channel's SQL side (webhook.h, dispatch.h): the
 * claim (chat.webhook_claim leases due deliveries, an endpoint to one
 * daemon at a time), each row taken as it is (the body the extension
 * recorded is what is POSTed: webhook_send.c), the result reported to
 * chat.webhook_result, which decides what follows (delivered, retry,
 * dropped, disabled), and the backlog for /metrics.
 *
 * Never logged: secrets, bodies, whole URLs (they may carry a token): a
 * log line names the event, the URL's host and what happened.
 */
#include "webhook.h"

#include "alloc.h"
#include "config.h"
#include "db.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "timer.h"
#include "webhook_send.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLAIM_COLUMNS 7

static struct notify_channel channel;
static int	claim_stmt,
			result_stmt;

/* The host of url for log lines (never its path, query or user info). */
static void
url_host(const char *url, char *host, size_t cap)
{
	CURLU	   *u = curl_url();
	char	   *h = NULL;

	snprintf(host, cap, "(unparsable URL)");
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK)
		snprintf(host, cap, "%s", h);
	curl_free(h);
	curl_url_cleanup(u);
}

/* chat.webhook_claim for the room left. */
static struct db_query *
claim(int room, int lease_s, db_done_fn done, void *arg)
{
	struct db_query *q = db_query_new(claim_stmt, 4, done, arg);

	db_param(q, 0, cf_worker_id);
	db_paramf(q, 1, "%d", room);
	db_paramf(q, 2, "%d", cf_webhook_per_endpoint);
	db_paramf(q, 3, "%d", lease_s);
	return q;
}

/* One claimed row as a delivery. */
static struct delivery *
take(PGresult *res, int row)
{
	struct webhook *w;

	if (PQnfields(res) != CLAIM_COLUMNS)
	{
		log_error("webhook_claim returned %d columns, not %d: is the extension this daemon's version?",
				  PQnfields(res), CLAIM_COLUMNS);
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	w->endpoint_id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
	w->event_id = strtoll(PQgetvalue(res, row, 1), NULL, 10);
	w->url = xstrdup(PQgetvalue(res, row, 2));
	w->secrets = xstrdup(PQgetvalue(res, row, 3));
	w->webhook_id = xstrdup(PQgetvalue(res, row, 4));
	w->body_len = (size_t) PQgetlength(res, row, 5);
	w->body = xstrndup(PQgetvalue(res, row, 5), w->body_len);
	w->attempt = atoi(PQgetvalue(res, row, 6));
	url_host(w->url, w->host, sizeof(w->host));
	return &w->d;
}

/* chat.webhook_result(endpoint_id, event_id, status, error). */
static struct db_query *
report(struct delivery *d, db_done_fn done)
{
	struct webhook *w = (struct webhook *) d;
	struct db_query *q = db_query_new(result_stmt, 4, done, d);

	db_paramf(q, 0, "%" PRId64, w->endpoint_id);
	db_paramf(q, 1, "%" PRId64, w->event_id);
	db_paramf(q, 2, "%d", d->status);
	db_param(q, 3, *d->error ? d->error : NULL);
	return q;
}

/*
 * Is w the endpoint's last delivery in flight here? Its report then ended
 * the endpoint's lease (webhook_result does when a daemon has reported all
 * it claimed of it), so the endpoint's next deliveries can be claimed now.
 */
static bool
last_of_endpoint(const struct webhook *w)
{
	for (const struct delivery *d = channel.head; d; d = d->next)
		if (d != &w->d && ((const struct webhook *) d)->endpoint_id == w->endpoint_id)
			return false;
	return true;
}

/* What followed, counted and logged (a success only at debug). */
static void
reported(struct delivery *d, const char *outcome)
{
	struct webhook *w = (struct webhook *) d;
	char		what[DELIVERY_ERROR_MAX + 16];

	if (*d->error)
		snprintf(what, sizeof(what), "%s", d->error);
	else
		snprintf(what, sizeof(what), "HTTP %d", d->status);
	if (outcome == NULL)
		log_warn("webhook %s to %s (attempt %d): %s; the result could not be reported: it is sent again when its lease ends",
				 w->webhook_id, w->host, w->attempt, what);
	else if (!strcmp(outcome, "delivered"))
		log_debug("webhook %s to %s (attempt %d): %s", w->webhook_id, w->host, w->attempt, what);
	else if (!strcmp(outcome, "disabled"))
		log_warn("webhook endpoint %" PRId64 " (%s) disabled after %s (event %s)",
				 w->endpoint_id, w->host, what, w->webhook_id);
	else
		log_info("webhook %s to %s (attempt %d): %s: %s", w->webhook_id, w->host, w->attempt, what, outcome);
	/* the lease ended; or a webhook_disabled event was recorded, which no NOTIFY announces */
	if (outcome && (last_of_endpoint(w) || !strcmp(outcome, "disabled")))
		dispatch_kick();
	if (outcome && !strcmp(outcome, "retry"))
		metrics.webhooks_retried++;
	else if (outcome && !strcmp(outcome, "dropped"))
		metrics.webhooks_dropped++;
	else if (outcome && !strcmp(outcome, "disabled"))
		metrics.webhooks_disabled++;
}

static void
release(struct delivery *d)
{
	struct webhook *w = (struct webhook *) d;

	timer_cancel(&w->wait_sul);
	curl_slist_free_all(w->headers);
	free(w->url);
	free(w->secrets);
	free(w->webhook_id);
	free(w->body);
	free(w);
}

/* every poll interval: the backlog for /metrics */
static void
poll_backlog(void)
{
	backlog_poll(&metrics.webhook_backlog);
}

int
webhook_in_flight(void)
{
	return channel.in_flight;
}

void
webhook_configure(void)
{
	channel.concurrency = cf_webhook_concurrency;
	http_client_configure(cf_webhook_proxy);
}

void
webhook_init(void)
{
	/* secrets never hold a space (whsec_ + base64): a list easy to take apart */
	claim_stmt = db_statement("SELECT endpoint_id, event_id, url, array_to_string(secrets, ' '), webhook_id, body, attempt"
							  " FROM chat.webhook_claim($1::text, $2::int, $3::int, $4::int)", 4);
	result_stmt = db_statement("SELECT chat.webhook_result($1::bigint, $2::bigint, $3::int, $4::text)", 4);
	backlog_init(&metrics.webhook_backlog, "SELECT due, oldest_due_s FROM chat.webhook_backlog()");
	channel = (struct notify_channel) {
		.name = "webhook", .concurrency = cf_webhook_concurrency,
		.claim = claim, .take = take, .send = webhook_send, .abort = webhook_abort,
		.report = report, .reported = reported, .release = release, .poll = poll_backlog,
	};
	dispatch_add(&channel);
}
