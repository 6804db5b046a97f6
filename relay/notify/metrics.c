/*
 * metrics.c: chat-notify's metrics for GET /metrics (written by
 * core/prom.c in the Prometheus text format).
 */
#include "metrics.h"

#include "channel.h"
#include "db.h"
#include "dispatch.h"
#include "email.h"
#include "push.h"
#include "webhook.h"
#include "prom.h"

#include <stddef.h>

struct metrics metrics;

static const char *const reason_names[WH_NREASONS] = {
	[WH_STATUS] = "status", [WH_GONE] = "gone", [WH_REDIRECT] = "redirect",
	[WH_TIMEOUT] = "timeout", [WH_CONNECT] = "connect", [WH_TLS] = "tls",
	[WH_TOO_LARGE] = "too_large", [WH_BAD_RESPONSE] = "bad_response",
	[WH_ABORTED] = "aborted", [WH_OTHER] = "other",
};

/* The webhook channel: attempts and what followed them, the backlog. */
static void
render_webhooks(struct prom_out *o)
{
	prom_metric(o, "chat_notify_webhooks_sent_total", "counter", "Webhook attempts answered with a 2xx.", (double) metrics.webhooks_sent);
	prom_put(o, "# HELP chat_notify_webhooks_failed_total Webhook attempts that failed, by reason.\n"
			 "# TYPE chat_notify_webhooks_failed_total counter\n");
	for (int r = 0; r < WH_NREASONS; r++)
		prom_put(o, "chat_notify_webhooks_failed_total{reason=\"%s\"} %llu\n", reason_names[r],
				 (unsigned long long) metrics.webhooks_failed[r]);
	prom_metric(o, "chat_notify_webhooks_retried_total", "counter", "Failed attempts the database scheduled again (webhook_result: retry).",
				(double) metrics.webhooks_retried);
	prom_metric(o, "chat_notify_webhooks_dropped_total", "counter", "Deliveries given up after the last attempt (webhook_result: dropped).",
				(double) metrics.webhooks_dropped);
	prom_metric(o, "chat_notify_webhooks_disabled_total", "counter", "Endpoints disabled: a 410, or 72 h of failures (webhook_result: disabled).",
				(double) metrics.webhooks_disabled);
	prom_metric(o, "chat_notify_webhooks_in_flight", "gauge", "Webhook deliveries claimed and not yet reported.", (double) webhook_in_flight());
	if (metrics.webhook_backlog.known)
	{
		prom_metric(o, "chat_notify_webhook_backlog", "gauge", "Webhook deliveries due now (webhook_backlog, read every poll_interval).",
					metrics.webhook_backlog.due);
		prom_metric(o, "chat_notify_webhook_oldest_due_seconds", "gauge", "How long the oldest due webhook delivery has been due.",
					metrics.webhook_backlog.oldest_s);
	}
	prom_histogram(o, "chat_notify_webhook_duration_seconds", "Time from a webhook request to its answer.", &metrics.webhook_duration);
}

/* The email channel: digests sent, failed, what followed, the backlog. */
static void
render_emails(struct prom_out *o)
{
	prom_metric(o, "chat_notify_email_enabled", "gauge", "1 when smtp_url is set (the email channel claims).", email_on() ? 1 : 0);
	prom_metric(o, "chat_notify_emails_sent_total", "counter", "Email digests the SMTP server accepted.", (double) metrics.emails_sent);
	prom_metric(o, "chat_notify_emails_failed_total", "counter", "Email digests not sent: refused, 4xx / 5xx, timeout, TLS, AUTH.",
				(double) metrics.emails_failed);
	prom_metric(o, "chat_notify_emails_retried_total", "counter", "Failed digests the database scheduled again (email_result: retry).",
				(double) metrics.emails_retried);
	prom_metric(o, "chat_notify_emails_dropped_total", "counter", "Digests given up after the fifth failure (email_result: dropped).",
				(double) metrics.emails_dropped);
	prom_metric(o, "chat_notify_emails_in_flight", "gauge", "Email digests claimed and not yet reported.", (double) email_in_flight());
	if (metrics.email_backlog.known)
	{
		prom_metric(o, "chat_notify_email_backlog", "gauge", "Users with a due digest (email_backlog, read every poll_interval).",
					metrics.email_backlog.due);
		prom_metric(o, "chat_notify_email_oldest_due_seconds", "gauge", "How long the longest-waiting due user has been due.",
					metrics.email_backlog.oldest_s);
	}
	prom_histogram(o, "chat_notify_email_duration_seconds", "Time from the start of an SMTP exchange to the message accepted.",
				   &metrics.email_duration);
}

/* One counter of the push channel, a line per kind. */
static void
push_counter(struct prom_out *o, const char *name, const char *help, size_t offset)
{
	prom_put(o, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (int k = 0; k < PUSH_NKINDS; k++)
		prom_put(o, "%s{kind=\"%s\"} %llu\n", name, push_kind_names[k],
				 (unsigned long long) *(const uint64_t *) ((const char *) &metrics.push[k] + offset));
}

/* The push channel: per kind, what the services took and what followed. */
static void
render_push(struct prom_out *o)
{
	static const char *const hist[PUSH_NKINDS] = {
		"chat_notify_push_webpush_duration_seconds", "chat_notify_push_fcm_duration_seconds",
		"chat_notify_push_apns_duration_seconds",
	};

	prom_metric(o, "chat_notify_push_enabled", "gauge", "1 when a push kind has credentials (the push channel claims).", push_on() ? 1 : 0);
	push_counter(o, "chat_notify_pushes_sent_total", "Pushes the push service took, by kind.", offsetof(struct push_counters, sent));
	push_counter(o, "chat_notify_pushes_failed_total", "Pushes not taken: refused, 4xx / 5xx, timeout, TLS, by kind.",
				 offsetof(struct push_counters, failed));
	push_counter(o, "chat_notify_pushes_gone_total", "Devices deleted because their service said they are gone (404, 410, UNREGISTERED).",
				 offsetof(struct push_counters, gone));
	push_counter(o, "chat_notify_pushes_retried_total", "Failed pushes the database scheduled again (push_result: retry).",
				 offsetof(struct push_counters, retried));
	push_counter(o, "chat_notify_pushes_dropped_total", "Pushes given up (push_result: dropped).", offsetof(struct push_counters, dropped));
	prom_metric(o, "chat_notify_pushes_in_flight", "gauge", "Pushes claimed and not yet reported.", (double) push_in_flight());
	if (metrics.push_backlog.known)
	{
		prom_metric(o, "chat_notify_push_backlog", "gauge", "Push states and sends due now (push_backlog, read every poll_interval).",
					metrics.push_backlog.due);
		prom_metric(o, "chat_notify_push_oldest_due_seconds", "gauge", "How long the oldest due push has been due.",
					metrics.push_backlog.oldest_s);
	}
	for (int k = 0; k < PUSH_NKINDS; k++)
		prom_histogram(o, hist[k], "Time from a push request to the service's answer.", &metrics.push[k].duration);
}

/* Claims, reports, events and the database. */
static void
render_database(struct prom_out *o)
{
	prom_metric(o, "chat_notify_claims_total", "counter", "Claim queries answered.", (double) dispatch_stats.claims);
	prom_metric(o, "chat_notify_claim_errors_total", "counter", "Claim queries that failed.", (double) dispatch_stats.claim_errors);
	prom_metric(o, "chat_notify_claimed_total", "counter", "Deliveries claimed.", (double) dispatch_stats.claimed);
	prom_metric(o, "chat_notify_report_errors_total", "counter", "Results that could not be reported at the first try.", (double) dispatch_stats.report_errors);
	prom_metric(o, "chat_notify_results_lost_total", "counter", "Results never reported: the delivery is sent again when its lease ends.",
				(double) dispatch_stats.results_lost);
	prom_metric(o, "chat_notify_events_total", "counter", "Events of chat_events that made a claim due.", (double) metrics.events);
	prom_metric(o, "chat_notify_resyncs_total", "counter", "Times events may have been lost (payloads dropped, LISTEN again).", (double) metrics.resyncs);
	prom_put(o, "# HELP chat_notify_payloads_refused_total Payloads of chat_events that did not open, by reason.\n"
			 "# TYPE chat_notify_payloads_refused_total counter\n");
	for (int r = SEAL_MALFORMED; r < SEAL_NRESULTS; r++)
		prom_put(o, "chat_notify_payloads_refused_total{reason=\"%s\"} %llu\n", seal_result_names[r],
				 (unsigned long long) channel_stats.refused[r]);
	prom_metric(o, "chat_notify_db_up", "gauge", "1 when the LISTEN connection and a pool connection are ready.",
				db_listen_ready() && db_pool_ready() ? 1 : 0);
	prom_metric(o, "chat_notify_db_reconnects_total", "counter", "Database connections re-established after a loss.", (double) db_reconnects());
}

char *
metrics_render(size_t *len, size_t headroom)
{
	struct prom_out o;

	prom_begin(&o, headroom);
	render_webhooks(&o);
	render_emails(&o);
	render_push(&o);
	render_database(&o);
	prom_process(&o);
	return prom_end(&o, headroom, len);
}
