/*
 * webhook_send.c: a claimed webhook signed and POSTed (webhook_send.h).
 *
 * Headers are the Standard Webhooks ones: webhook-id is the same on every
 * attempt, webhook-timestamp is this attempt's, one v1 signature per
 * secret, newest first. A 2xx is success; anything else, an answer cut off
 * or too large included, is a failed attempt, reported with status 0 and
 * a short error when there was no whole answer.
 *
 * Order: the extension leases an endpoint to one daemon at a time and
 * hands over its due deliveries in order, so a chat's events reach an
 * endpoint in order if each waits here for the one before it (of the same
 * endpoint and chat) to be answered; other chats' go meanwhile. A failure
 * lets the next one go at once (the failed one is retried later: receivers
 * reorder by cursor). A waiting one is sent anyway when its lease has only
 * webhook_timeout + 5 s left, so that it is reported before the lease ends.
 *
 * Never logged or reported: secrets, bodies, whole URLs (they may carry a
 * token), anything the receiver sent.
 */
#include "webhook_send.h"

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "sign.h"
#include "timer.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEASE_MARGIN_US (5 * LWS_US_PER_SEC)

static struct webhook *transit; /* being sent, or waiting to be */

static void post(struct webhook *w);

/* The body's chat_id (0: none). */
static int64_t
body_chat_id(const char *body, size_t len)
{
	json_t	   *doc = json_loadb(body, len, 0, NULL);
	json_t	   *id = doc ? json_object_get(doc, "chat_id") : NULL;
	int64_t		chat = json_is_integer(id) ? (int64_t) json_integer_value(id) : 0;

	json_decref(doc);
	return chat;
}

static void
transit_add(struct webhook *w)
{
	w->t_prev = NULL;
	w->t_next = transit;
	if (transit)
		transit->t_prev = w;
	transit = w;
}

static void
transit_remove(struct webhook *w)
{
	if (w->t_prev)
		w->t_prev->t_next = w->t_next;
	else if (transit == w)
		transit = w->t_next;
	if (w->t_next)
		w->t_next->t_prev = w->t_prev;
	w->t_prev = w->t_next = NULL;
}

/* Take w out of its chat's order; the next one goes now if start_next. */
static void
unchain(struct webhook *w, bool start_next)
{
	struct webhook *n = w->after;

	if (w->before)
		w->before->after = n;
	if (n)
		n->before = w->before;
	w->before = w->after = NULL;
	if (n && start_next && n->before == NULL && n->waiting)
	{
		n->waiting = false;
		timer_cancel(&n->wait_sul);
		post(n);
	}
}

/* The status and error an ended request is reported with. */
static void
classify(struct webhook *w, int *status, char *error, size_t cap)
{
	const struct http_request *r = &w->req;
	static const enum webhook_reason by_outcome[] = {
		[HTTP_TIMEOUT] = WH_TIMEOUT, [HTTP_CONNECT] = WH_CONNECT, [HTTP_TLS] = WH_TLS,
		[HTTP_TOO_LARGE] = WH_TOO_LARGE, [HTTP_BAD_RESPONSE] = WH_BAD_RESPONSE,
		[HTTP_ABORTED] = WH_ABORTED, [HTTP_FAILED] = WH_OTHER,
	};

	*status = 0;
	*error = '\0';
	if (r->outcome == HTTP_ANSWERED && (r->status < 100 || r->status > 599))
	{
		w->reason = WH_BAD_RESPONSE;
		snprintf(error, cap, "not an HTTP status: %ld", r->status);
		return;
	}
	if (r->outcome == HTTP_ANSWERED)
	{
		*status = (int) r->status;
		w->reason = r->status == 410 ? WH_GONE : r->status >= 300 && r->status < 400 ? WH_REDIRECT : WH_STATUS;
		if (r->status == 410)
			snprintf(error, cap, "410 Gone");
		else if (w->reason == WH_REDIRECT)
			snprintf(error, cap, "HTTP %ld: a redirect, not followed", r->status);
		else if (r->status < 200 || r->status >= 300)
			snprintf(error, cap, "HTTP %ld", r->status);
		return;
	}
	w->reason = by_outcome[r->outcome];
	if (r->outcome == HTTP_TIMEOUT)
		snprintf(error, cap, "no answer within %ld s", r->timeout_ms / 1000);
	else if (r->outcome == HTTP_TOO_LARGE)
		snprintf(error, cap, "answer over %zu bytes", r->max_response);
	else if (r->outcome == HTTP_CONNECT)
		snprintf(error, cap, "cannot connect: %s", http_outcome_text(r));
	else if (r->outcome == HTTP_TLS)
		snprintf(error, cap, "TLS: %s", http_outcome_text(r));
	else if (r->outcome == HTTP_BAD_RESPONSE)
		snprintf(error, cap, "no whole answer: %s", http_outcome_text(r));
	else
		snprintf(error, cap, "%s", http_outcome_text(r));
}

/* Out of transit with status and error: the chat's next one may go. */
static void
ended(struct webhook *w, int status, const char *error, bool start_next)
{
	if (status >= 200 && status < 300)
		metrics.webhooks_sent++;
	else
		metrics.webhooks_failed[w->reason]++;
	curl_slist_free_all(w->headers);
	w->headers = NULL;
	transit_remove(w);
	unchain(w, start_next);
	delivery_sent(&w->d, status, error);
}

/* The request has ended (done of http_client.h). */
static void
answered(struct http_request *r)
{
	struct webhook *w = lws_container_of(r, struct webhook, req);
	char		error[DELIVERY_ERROR_MAX + 1];
	int			status;

	classify(w, &status, error, sizeof(error));
	if (r->outcome == HTTP_ANSWERED)
		prom_observe(&metrics.webhook_duration, (double) (lws_now_usecs() - w->started_us) / 1e6);
	/* stopped by the shutdown: the ones waiting are stopped too, not started */
	ended(w, status, error, r->outcome != HTTP_ABORTED);
}

/* Add "name: value" to the request's headers. */
static void
header(struct webhook *w, const char *name, const char *value)
{
	char	   *line;

	xasprintf(&line, "%s: %s", name, value);
	w->headers = curl_slist_append(w->headers, line);
	free(line);
}

/* Sign and POST now. */
static void
post(struct webhook *w)
{
	int64_t		now = (int64_t) time(NULL);
	char		ts[24];
	char	   *sig = sign_webhook(w->secrets, w->webhook_id, now, w->body, w->body_len);

	if (sig == NULL)
	{
		w->reason = WH_OTHER;
		ended(w, 0, "the endpoint has no usable secret (whsec_ + base64 of 1 to 64 bytes)", true);
		return;
	}
	snprintf(ts, sizeof(ts), "%" PRId64, now);
	header(w, "content-type", "application/json");
	header(w, "webhook-id", w->webhook_id);
	header(w, "webhook-timestamp", ts);
	header(w, "webhook-signature", sig);
	header(w, "user-agent", "chat-notify/" NOTIFY_VERSION);
	w->headers = curl_slist_append(w->headers, "Expect:");	/* no 100-continue round trip */
	free(sig);
	w->req = (struct http_request) {
		.url = w->url, .headers = w->headers, .body = w->body, .body_len = w->body_len,
		.timeout_ms = (long) cf_webhook_timeout * 1000, .max_response = (size_t) cf_max_response,
		.done = answered,
	};
	w->started_us = lws_now_usecs();
	if (http_send(&w->req) != 0)
	{
		w->reason = WH_OTHER;
		ended(w, 0, "cannot start the request", true);
	}
}

/* A waiting webhook whose lease runs short: sent now, out of its order. */
static void
wait_over(lws_sorted_usec_list_t *sul)
{
	struct webhook *w = lws_container_of(sul, struct webhook, wait_sul);

	log_info("webhook %s to %s: sent before the earlier event of its chat is answered (its lease runs short)",
			 w->webhook_id, w->host);
	if (w->before)
		w->before->after = NULL;
	w->before = NULL;
	w->waiting = false;
	post(w);
}

/* Behind the last one in transit of the same endpoint and chat, if any. */
static struct webhook *
chat_tail(const struct webhook *w)
{
	if (w->chat_id == 0)
		return NULL;
	for (struct webhook *t = transit; t; t = t->t_next)
		if (t->endpoint_id == w->endpoint_id && t->chat_id == w->chat_id && t->after == NULL)
			return t;
	return NULL;
}

void
webhook_send(struct delivery *d)
{
	struct webhook *w = (struct webhook *) d;
	int64_t		start_by;

	w->chat_id = body_chat_id(w->body, w->body_len);
	w->before = chat_tail(w);
	transit_add(w);
	if (w->before == NULL)
	{
		post(w);
		return;
	}
	w->before->after = w;
	w->waiting = true;
	start_by = d->lease_end_us - (int64_t) cf_webhook_timeout * LWS_US_PER_SEC - LEASE_MARGIN_US;
	timer_schedule(&w->wait_sul, wait_over, start_by > lws_now_usecs() ? start_by - lws_now_usecs() : 1);
}

void
webhook_abort(struct delivery *d)
{
	struct webhook *w = (struct webhook *) d;

	if (!w->waiting)
	{
		http_abort(&w->req);
		return;
	}
	w->waiting = false;
	timer_cancel(&w->wait_sul);
	w->reason = WH_ABORTED;
	ended(w, 0, "stopped by chat-notify's shutdown before it was sent", false);
}
