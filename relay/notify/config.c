/*
 * config.c: every setting of chat-notify, one row each (the engine that
 * reads the file and the flags is core/conf.c), and the checks that span
 * two settings.
 */
#include "config.h"

#include "log.h"

#include <string.h>

char	   *cf_listen;
char	   *cf_db;
char	   *cf_worker_id;
int			cf_poll_interval;
int			cf_claim_delay_ms;
int			cf_lease;
int			cf_webhook_timeout;
int			cf_webhook_concurrency;
int			cf_webhook_per_endpoint;
int			cf_max_response;
char	   *cf_webhook_proxy;
int			cf_shutdown_timeout;
int			cf_pool_size;
int			cf_statement_timeout;
int			cf_max_pending;
int			cf_backoff_min_ms;
int			cf_backoff_max_ms;
int			cf_key_refresh;
char	   *cf_smtp_url;
char	   *cf_smtp_from;
char	   *cf_smtp_user;
char	   *cf_smtp_password_file;
char	   *cf_smtp_ca_file;
bool		cf_smtp_require_tls;
int			cf_smtp_timeout;
int			cf_email_concurrency;
char	   *cf_unsubscribe_url;
char	   *cf_app_url;
char	   *cf_log_level;
int			cf_push_concurrency;
int			cf_push_poll_ms;
int			cf_push_timeout;
int			cf_push_ttl;
char	   *cf_push_ca_file;
char	   *cf_vapid_key_file;
char	   *cf_vapid_subject;
char	   *cf_fcm_service_account_file;
char	   *cf_fcm_url;
char	   *cf_fcm_token_url;
char	   *cf_apns_key_file;
char	   *cf_apns_key_id;
char	   *cf_apns_team_id;
char	   *cf_apns_topic;
char	   *cf_apns_url;
char	   *cf_apns_sandbox_url;
int			cf_apns_token_refresh;

/* A lease must outlast a send and its report, or a second worker may send it too. */
#define LEASE_MARGIN 5

static const struct cf_entry cf_table[] = {
	{"listen", CF_STR, &cf_listen, false, "127.0.0.1:8091", NOLIM, "HOST:PORT of /healthz, /livez and /metrics"},
	{"db", CF_STR, &cf_db, false, "dbname=chat", NOLIM, "libpq connection string (a login granted chat_notify)"},
	{"worker_id", CF_STR, &cf_worker_id, false, "", 0, 200, "name of this daemon in the leases it takes, at most 200 bytes (empty: hostname:pid)"},
	{"poll_interval", CF_INT, &cf_poll_interval, true, "10", 1, 3600, "seconds between claims when no event says there is work (NOTIFY can drop events; the tables cannot), and between backlog reads"},
	{"claim_delay_ms", CF_INT, &cf_claim_delay_ms, true, "20", 0, 10000, "ms an event waits for others before the claim it causes (one claim for a burst)"},
	{"lease", CF_INT, &cf_lease, true, "60", 6, 86400, "seconds a claimed delivery is this daemon's; at least webhook_timeout + 5"},
	{"webhook_timeout", CF_INT, &cf_webhook_timeout, true, "15", 1, 600, "seconds a webhook receiver has to answer, connecting included"},
	{"webhook_concurrency", CF_INT, &cf_webhook_concurrency, true, "64", 1, 10000, "webhook deliveries in flight (claimed, not yet reported), all endpoints together"},
	{"webhook_per_endpoint", CF_INT, &cf_webhook_per_endpoint, true, "8", 1, 10000, "webhook deliveries to one endpoint in one claim"},
	{"max_response", CF_INT, &cf_max_response, true, "65536", 1024, 16777216, "bytes of a receiver's answer (headers and body) read at most; more is a failed attempt"},
	{"webhook_proxy", CF_STR, &cf_webhook_proxy, true, "", NOLIM, "proxy URL for webhooks (empty: none; http_proxy and the like in the environment are ignored)"},
	{"shutdown_timeout", CF_INT, &cf_shutdown_timeout, false, "20", 1, 600, "seconds SIGTERM waits for the sends in flight before it stops them (their failure is reported)"},
	{"pool_size", CF_INT, &cf_pool_size, false, "2", 1, 64, "database connections for claims and results (plus one for LISTEN)"},
	{"statement_timeout", CF_INT, &cf_statement_timeout, false, "10", 1, 3600, "seconds a claim or result may run in the database"},
	{"max_pending", CF_INT, &cf_max_pending, true, "10000", 1, 10000000, "queries waiting for a database connection before refusal"},
	{"backoff_min_ms", CF_INT, &cf_backoff_min_ms, false, "100", 1, 600000, "first database reconnect delay, ms"},
	{"backoff_max_ms", CF_INT, &cf_backoff_max_ms, false, "10000", 1, 3600000, "longest database reconnect delay, ms"},
	{"key_refresh", CF_INT, &cf_key_refresh, false, "30", 1, 3600, "seconds between loads of the event keys of chat_events"},
	{"smtp_url", CF_STR, &cf_smtp_url, true, "", NOLIM, "smtp://HOST:PORT (or smtps://) of the mail relay for email digests (empty: no email)"},
	{"smtp_from", CF_STR, &cf_smtp_from, true, "", NOLIM, "From address of email digests, name@domain (needed with smtp_url; its domain ends the Message-ID)"},
	{"smtp_user", CF_STR, &cf_smtp_user, true, "", NOLIM, "SMTP AUTH user (empty: no AUTH)"},
	{"smtp_password_file", CF_STR, &cf_smtp_password_file, true, "", NOLIM, "file holding the SMTP AUTH password (read at start and on SIGHUP; one trailing newline dropped)"},
	{"smtp_ca_file", CF_STR, &cf_smtp_ca_file, true, "", NOLIM, "CA bundle the SMTP server's certificate is checked against (empty: the system's)"},
	{"smtp_require_tls", CF_BOOL, &cf_smtp_require_tls, true, "false", NOLIM, "refuse to send unless STARTTLS succeeds (false: STARTTLS when the server offers it)"},
	{"smtp_timeout", CF_INT, &cf_smtp_timeout, true, "30", 1, 600, "seconds one email may take, connecting included; lease must be at least this + 5"},
	{"email_concurrency", CF_INT, &cf_email_concurrency, true, "4", 1, 1000, "emails in flight (claimed, not yet reported); also the most users one claim leases"},
	{"unsubscribe_url", CF_STR, &cf_unsubscribe_url, true, "", NOLIM, "List-Unsubscribe URL, {user_id} replaced (empty: a mailto: to smtp_from)"},
	{"app_url", CF_STR, &cf_app_url, true, "", NOLIM, "link to a chat in the digest, {chat_id} replaced (empty: no link)"},
	{"log_level", CF_STR, &cf_log_level, true, "info", NOLIM, "error, warn, info or debug"},
	{"push_concurrency", CF_INT, &cf_push_concurrency, true, "64", 1, 10000, "pushes in flight (claimed, not yet reported), all kinds together"},
	{"push_poll_ms", CF_INT, &cf_push_poll_ms, true, "1000", 50, 60000, "ms between push claims (alerts come due seconds after their message, with no event to say so)"},
	{"push_timeout", CF_INT, &cf_push_timeout, true, "10", 1, 600, "seconds a push service (or FCM's token endpoint) has to answer, connecting included"},
	{"push_ttl", CF_INT, &cf_push_ttl, true, "86400", 0, 2419200, "seconds a push service may keep an alert for an unreachable device (TTL, apns-expiration)"},
	{"push_ca_file", CF_STR, &cf_push_ca_file, true, "", NOLIM, "CA bundle the push services' certificates are checked against (empty: the system's)"},
	{"vapid_key_file", CF_STR, &cf_vapid_key_file, true, "", NOLIM, "PEM file of the VAPID key (EC P-256) Web Push is signed with (empty: no Web Push)"},
	{"vapid_subject", CF_STR, &cf_vapid_subject, true, "", NOLIM, "VAPID contact, mailto:… or https://… (needed with vapid_key_file)"},
	{"fcm_service_account_file", CF_STR, &cf_fcm_service_account_file, true, "", NOLIM, "the Firebase service account's JSON key file (empty: no FCM)"},
	{"fcm_url", CF_STR, &cf_fcm_url, true, "https://fcm.googleapis.com", NOLIM, "https:// origin of the FCM HTTP v1 API"},
	{"fcm_token_url", CF_STR, &cf_fcm_token_url, true, "", NOLIM, "OAuth2 token endpoint (empty: the service account's token_uri)"},
	{"apns_key_file", CF_STR, &cf_apns_key_file, true, "", NOLIM, "the APNs auth key (.p8, EC P-256) provider tokens are signed with (empty: no APNs)"},
	{"apns_key_id", CF_STR, &cf_apns_key_id, true, "", NOLIM, "the APNs auth key's Key ID (10 characters)"},
	{"apns_team_id", CF_STR, &cf_apns_team_id, true, "", NOLIM, "the Apple developer Team ID the key belongs to"},
	{"apns_topic", CF_STR, &cf_apns_topic, true, "", NOLIM, "apns-topic: the iOS app's bundle ID"},
	{"apns_url", CF_STR, &cf_apns_url, true, "https://api.push.apple.com", NOLIM, "https:// origin of APNs for devices registered as production"},
	{"apns_sandbox_url", CF_STR, &cf_apns_sandbox_url, true, "https://api.sandbox.push.apple.com", NOLIM, "https:// origin of APNs for devices registered as sandbox"},
	{"apns_token_refresh", CF_INT, &cf_apns_token_refresh, true, "3000", 1200, 3500, "seconds a provider token is reused before it is signed again (APNs refuses one older than an hour, and new ones more often than every 20 minutes)"},
};

static const struct conf_spec spec = {
	cf_table, (int) (sizeof(cf_table) / sizeof(cf_table[0])),
	"Usage: chat-notify [--config FILE] [--db CONNINFO] [--listen HOST:PORT]\n"
	"                   [--smtp-url smtp://HOST:PORT] [--smtp-from ADDRESS] [OPTION VALUE]...\n\n"
	"Sends what the chat extension records for delivery: signed webhooks, and\n"
	"email digests when smtp_url is set (docs/notifications.md). Flags override\n"
	"the config file (name = value lines, same names with - or _). SIGHUP\n"
	"reloads the settings marked *; SIGTERM stops claiming, waits for the sends\n"
	"in flight (shutdown_timeout), reports them, exits.\n\n",
	&cf_log_level,
};

/* The push settings that go together; 0 when they hold (else logged). */
static int
push_cross_check(void)
{
	const char *origins[] = {cf_fcm_url, cf_apns_url, cf_apns_sandbox_url, cf_fcm_token_url};

	for (size_t i = 0; i < sizeof(origins) / sizeof(origins[0]); i++)
		if (*origins[i] && strncmp(origins[i], "https://", 8) != 0)
		{
			log_error("\"%s\": push services are reached over https only", origins[i]);
			return -1;
		}
	if (*cf_vapid_key_file && strncmp(cf_vapid_subject, "mailto:", 7) != 0 && strncmp(cf_vapid_subject, "https://", 8) != 0)
	{
		log_error("vapid_subject must be mailto:… or https://… when vapid_key_file is set (push services write to it)");
		return -1;
	}
	if (*cf_apns_key_file && (!*cf_apns_key_id || !*cf_apns_team_id || !*cf_apns_topic))
	{
		log_error("apns_key_file needs apns_key_id, apns_team_id and apns_topic");
		return -1;
	}
	if ((*cf_vapid_key_file || *cf_fcm_service_account_file || *cf_apns_key_file) &&
		cf_lease < cf_push_timeout * 2 + LEASE_MARGIN)
	{
		log_error("lease (%d s) must be at least twice push_timeout (%d s) + %d: an FCM token and a push must fit in a lease",
				  cf_lease, cf_push_timeout, LEASE_MARGIN);
		return -1;
	}
	return 0;
}

/* The checks that span settings; 0 when they hold (else logged). */
static int
cross_check(void)
{
	if (cf_lease < cf_webhook_timeout + LEASE_MARGIN)
	{
		log_error("lease (%d s) must be at least webhook_timeout (%d s) + %d: a delivery must be reported before its lease ends",
				  cf_lease, cf_webhook_timeout, LEASE_MARGIN);
		return -1;
	}
	if (*cf_smtp_url && cf_lease < cf_smtp_timeout + LEASE_MARGIN)
	{
		log_error("lease (%d s) must be at least smtp_timeout (%d s) + %d: an email must be reported before its lease ends",
				  cf_lease, cf_smtp_timeout, LEASE_MARGIN);
		return -1;
	}
	if (*cf_smtp_url && strncmp(cf_smtp_url, "smtp://", 7) != 0 && strncmp(cf_smtp_url, "smtps://", 8) != 0)
	{
		log_error("smtp_url must be smtp://HOST:PORT or smtps://HOST:PORT");
		return -1;
	}
	if (*cf_smtp_url && (strchr(cf_smtp_from, '@') == NULL || strpbrk(cf_smtp_from, " \t\r\n<>") != NULL))
	{
		log_error("smtp_from must be an address name@domain when smtp_url is set, not \"%s\"", cf_smtp_from);
		return -1;
	}
	if (push_cross_check() != 0)
		return -1;
	if (strpbrk(cf_unsubscribe_url, " \t\r\n<>\"") != NULL)
	{
		log_error("unsubscribe_url must be a URL without spaces, quotes or angle brackets: it goes into a header");
		return -1;
	}
	return 0;
}

int
config_load(int argc, char **argv)
{
	int			rc = conf_load(&spec, argc, argv);

	if (rc != 0)
		return rc;
	return cross_check();
}

int
config_reload(void)
{
	return conf_reload(cross_check);
}

void
config_free(void)
{
	conf_free();
}
