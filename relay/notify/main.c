/*
 * main.c: chat-notify's entry point: settings, the lws context (no port of
 * its own: the database sockets and the signalfd live on a vhost that
 * does not listen; the admin address is core/admin.c's), libcurl on the
 * same libev loop, the channels (webhooks, email), the shutdown sequence.
 *
 * SIGTERM / SIGINT: claim no more; wait for the deliveries in flight to be
 * sent and reported, at most shutdown_timeout seconds; then stop the sends
 * left (reported as failed attempts), give their reports 3 s more, exit 0.
 * What is still unreported then is retried by any daemon when its lease
 * ends. SIGHUP: reload the settings marked reloadable.
 *
 * Exit status: 0 after SIGTERM or --help; 2 for a bad setting; 1 when it
 * cannot listen or set up its loop; 70, out of memory, is alloc.c's.
 */
#include "admin.h"
#include "alloc.h"
#include "channel.h"
#include "config.h"
#include "daemon.h"
#include "db.h"
#include "dispatch.h"
#include "email.h"
#include "email_send.h"
#include "push.h"
#include "http_client.h"
#include "log.h"
#include "metrics.h"
#include "notify_db.h"
#include "sign.h"
#include "timer.h"
#include "webhook.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPORT_GRACE_US (3 * LWS_US_PER_SEC)

static struct lws_context *context;
static struct lws_vhost *vhost;
static bool shutting_down;
static bool aborted;			/* the sends left were stopped */
static int64_t deadline_us;
static lws_sorted_usec_list_t stop_sul;

/* What main() set up, so that teardown() undoes exactly that. */
struct setup
{
	bool		config;			/* config_load ran (config_free is due even if it failed) */
	bool		curl;			/* http_client_start succeeded */
	bool		running;		/* timers, channels, database started */
	char		host[256];
	int			port;
};

/* The body of /healthz: can this daemon deliver now? */
static char *
health(bool *ok)
{
	bool		up = db_listen_ready() && db_pool_ready();
	json_t	   *id = json_string(cf_worker_id);
	char	   *ids = json_dumps(id, JSON_ENCODE_ANY);
	char	   *body;

	*ok = up && !shutting_down;
	xasprintf(&body, "{\"status\":\"%s\",\"database\":\"%s\",\"listening\":%s,\"pool\":%s,"
			  "\"in_flight\":%d,\"shutting_down\":%s,\"worker_id\":%s}\n",
			  *ok ? "ok" : "unavailable", up ? "up" : "down",
			  db_listen_ready() ? "true" : "false", db_pool_ready() ? "true" : "false",
			  dispatch_in_flight(), shutting_down ? "true" : "false", ids ? ids : "null");
	free(ids);
	json_decref(id);
	return body;
}

/* Every 100 ms while stopping: done, or past a bound. */
static void
stop_tick(lws_sorted_usec_list_t *sul)
{
	(void) sul;
	if (dispatch_idle())
	{
		daemon_quit(context);
		return;
	}
	if (lws_now_usecs() > deadline_us)
	{
		if (aborted)
		{
			log_warn("%d deliveries not reported: they are sent again when their leases end", dispatch_in_flight());
			daemon_quit(context);
			return;
		}
		log_warn("shutdown_timeout: stopping the %d sends in flight", dispatch_in_flight());
		aborted = true;
		dispatch_abort();
		deadline_us = lws_now_usecs() + REPORT_GRACE_US;
	}
	timer_schedule(&stop_sul, stop_tick, 100 * LWS_US_PER_MS);
}

/* SIGTERM / SIGINT. */
static void
begin_shutdown(void)
{
	if (shutting_down)
		return;
	shutting_down = true;
	log_info("shutting down: %d deliveries in flight", dispatch_in_flight());
	dispatch_stop();
	deadline_us = lws_now_usecs() + (int64_t) cf_shutdown_timeout * LWS_US_PER_SEC;
	stop_tick(&stop_sul);
}

/* SIGHUP: reload what may change. */
static void
reload(void)
{
	log_info("SIGHUP: reloading the configuration");
	if (config_reload() != 0)
		return;
	webhook_configure();
	email_configure();
	if (push_configure() != 0)
		log_warn("a push credential did not load: that kind keeps its previous one");
	dispatch_configure(cf_poll_interval, cf_claim_delay_ms, cf_lease);
	notify_db_reload();
	log_info("configuration reloaded: webhook concurrency %d, %d per endpoint, timeout %d s; email %s; push %s",
			 cf_webhook_concurrency, cf_webhook_per_endpoint, cf_webhook_timeout, email_on() ? "on" : "off",
			 push_on() ? "on" : "off");
}

static void
on_signal(int signo)
{
	if (signo == SIGHUP)
		reload();
	else
		begin_shutdown();
}

static struct lws_protocols protocols[] = {
	{"notify-raw", daemon_raw_callback, 0, 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0}
};

/* Undo what was set up, in reverse order; the one way out of main(). */
static int
teardown(struct setup *s, int status)
{
	if (s->running)
	{
		log_info("stopped");
		timer_cancel(&stop_sul);
		dispatch_end();			/* sends stopped, nothing more reported */
		db_stop();				/* reports in flight answered as lost */
		dispatch_free();
		channel_shutdown();
		notify_db_free();
		timers_stop();
	}
	if (s->curl)
		http_client_stop();		/* its watchers, before the loop goes */
	daemon_end(context);
	context = NULL;
	sign_free();
	email_free();
	push_free();
	if (s->config)
		config_free();
	return status;
}

/* The settings; 0, or the exit status (-1: exit 0 at once). */
static int
load_settings(struct setup *s, int argc, char **argv)
{
	int			rc;

	s->config = true;
	rc = config_load(argc, argv);
	if (rc != 0)
		return rc > 0 ? -1 : 2;
	if (daemon_listen_setting("listen", cf_listen, s->host, sizeof(s->host), &s->port) != 0)
		return 2;
	if (email_send_configure() != 0)
		return 2;				/* the password file: logged */
	if (push_configure() != 0)
		return 2;				/* a key or service account file: logged */
	if (!*cf_worker_id)
	{
		free(cf_worker_id);
		cf_worker_id = daemon_default_id("notify", (long) getpid());
	}
	return 0;
}

/* The lws context on our libev loop, the signalfd, the admin address. */
static int
listen_on(struct setup *s)
{
	struct lws_context_creation_info info;
	struct admin_hooks admin = {.health = health, .metrics = metrics_render, .handshake_timeout = 5};

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.vhost_name = "notify";
	if (daemon_lend_loop(&info) != 0)
		return 1;
	context = lws_create_context(&info);
	vhost = context ? lws_get_vhost_by_name(context, "notify") : NULL;
	if (vhost == NULL || daemon_watch_signals(vhost, "notify-raw", on_signal) != 0)
	{
		log_error("cannot set up the event loop: %s", strerror(errno));
		return 1;
	}
	if (admin_listen(context, s->host, s->port, &admin) != 0)
	{
		log_error("cannot listen on %s", cf_listen);
		return 1;
	}
	if (http_client_start(daemon_loop(), cf_webhook_proxy) != 0)
		return 1;
	s->curl = true;
	return 0;
}

/* Start the channels and the database, then serve until the shutdown ends. */
static void
run(struct setup *s)
{
	log_info("chat-notify %s (worker %s) on %s: webhooks %d in flight, %d per endpoint, timeout %d s",
			 NOTIFY_VERSION, cf_worker_id, cf_listen, cf_webhook_concurrency, cf_webhook_per_endpoint,
			 cf_webhook_timeout);
	if (email_on())
		log_info("email digests on: %d in flight, timeout %d s, STARTTLS %s, AUTH %s", cf_email_concurrency,
				 cf_smtp_timeout, cf_smtp_require_tls ? "required" : "when offered", *cf_smtp_user ? "on" : "off");
	else
		log_info("email digests off: no smtp_url");
	push_log_kinds();
	timers_start(context, daemon_loop());
	webhook_init();
	email_init();
	push_init();
	notify_db_start(context, vhost, "notify-raw");
	dispatch_start(cf_poll_interval, cf_claim_delay_ms, cf_lease);
	s->running = true;
	daemon_run(context);
}

int
main(int argc, char **argv)
{
	struct setup s = {0};
	int			rc;

	/* jansson too: out of memory is an exit, never a NULL taken for bad input */
	json_set_alloc_funcs(xmalloc, free);
	daemon_block_signals();
	if ((rc = load_settings(&s, argc, argv)) != 0)
		return teardown(&s, rc < 0 ? 0 : rc);
	daemon_prepare();
	if ((rc = listen_on(&s)) != 0)
		return teardown(&s, rc);
	run(&s);
	return teardown(&s, 0);
}
