/*
 * main.c: chat-relay's entry point: settings, the lws context, signals (a
 * signalfd on the loop, so handlers run as ordinary loop callbacks: the
 * steps every daemon shares are core/daemon.c's), timers and the shutdown
 * sequence.
 *
 * SIGTERM / SIGINT: refuse new upgrades, close every client with 1012, take
 * this relay's users offline (relay_gone), and leave the loop when all are
 * closed or after shutdown_timeout seconds. SIGHUP: reload the settings
 * marked reloadable (origins, limits, keys, log level).
 *
 * main() is the sequence of set-up steps; each one that fails returns its
 * exit status (2: a bad setting or key file, 1: cannot listen; 70, out of
 * memory, is alloc.c's), and whatever was set up by then is undone by one
 * teardown(), which also ends a normal run.
 */
#include "admin.h"
#include "alloc.h"
#include "auth.h"
#include "channel.h"
#include "config.h"
#include "conn.h"
#include "daemon.h"
#include "db.h"
#include "event.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "peers.h"
#include "presence.h"
#include "relay.h"
#include "relay_db.h"
#include "static.h"
#include "subscribe.h"
#include "timer.h"
#include "users.h"
#include "writer.h"
#include "ws.h"

#include <errno.h>
#include <ev.h>
#include <jansson.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct lws_context *relay_context;
struct lws_vhost *relay_vhost;
bool		relay_shutting_down;
bool		relay_destroying;
int			relay_conns;
int			relay_users;

static int64_t shutdown_deadline;
static lws_sorted_usec_list_t tick_sul;

static void tick(lws_sorted_usec_list_t *sul);

/* Begin the graceful shutdown. */
static void
begin_shutdown(void)
{
	if (relay_shutting_down)
		return;
	relay_shutting_down = true;
	shutdown_deadline = lws_now_usecs() + (int64_t) cf_shutdown_timeout * LWS_US_PER_SEC;
	log_info("shutting down: closing %d connections with 1012", relay_conns);
	conn_close_all(1012);
	presence_stop();
	/* look at the progress every 100 ms from now on, not at the next second */
	timer_schedule(&tick_sul, tick, 100 * LWS_US_PER_MS);
}

/*
 * Handshakes (header tables, token checks) and closed connections leave
 * freed memory scattered through the heap, which glibc keeps. Once a burst
 * of connections is over (or every 10 s while it lasts), give whole free
 * pages back so the RSS follows the connections that remain.
 */
static void
trim_heap(void)
{
	static uint64_t seen_total;
	static int	seen_conns;
	static bool owed;
	static int64_t last_trim;
	bool		churn = metrics.connections_total != seen_total || relay_conns != seen_conns;
	int64_t		now = lws_now_usecs();

	seen_total = metrics.connections_total;
	seen_conns = relay_conns;
	owed = owed || churn;
	if (owed && (!churn || now - last_trim > 10 * LWS_US_PER_SEC))
	{
		malloc_trim(0);
		owed = false;
		last_trim = now;
	}
}

/* Every second (every 100 ms while stopping): expiry and shutdown progress. */
static void
tick(lws_sorted_usec_list_t *sul)
{
	(void) sul;
	if (relay_shutting_down)
	{
		if ((relay_conns == 0 && presence_stopped()) || lws_now_usecs() > shutdown_deadline)
		{
			daemon_quit(relay_context);
			return;
		}
		timer_schedule(&tick_sul, tick, 100 * LWS_US_PER_MS);
		return;
	}
	conn_tick();
	users_sweep();
	trim_heap();
	timer_schedule(&tick_sul, tick, LWS_US_PER_SEC);
}

/* What a reload must pass besides the table's limits: keys that load, a well-formed VAPID key. */
static int
reload_accept(void)
{
	return conn_check_vapid() != 0 ? -1 : auth_load_keys();
}

/* SIGHUP: reload what may change. */
static void
reload(void)
{
	log_info("SIGHUP: reloading the configuration");
	/* all or nothing: a key that does not load keeps the old settings too */
	if (config_reload(reload_accept) != 0)
		return;
	relay_db_reload();
	log_info("configuration reloaded: %d allowed origins, rate %g/s burst %d",
				 cf_allow_origin.n, cf_rate, cf_burst);
}

/* A signal, from the signalfd: SIGHUP reloads, the others stop. */
static void
on_signal(int signo)
{
	if (signo == SIGHUP)
		reload();
	else
		begin_shutdown();
}

static struct lws_protocols protocols[] = {
	{"chat", ws_callback, sizeof(struct conn), 1024, 0, NULL, 0},
	{"chat-raw", daemon_raw_callback, 0, 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0}
};

/* What main() set up, so that teardown() undoes exactly that. */
struct setup
{
	bool		config;			/* config_load ran (config_free is due even if it failed) */
	bool		keys;			/* auth_load_keys succeeded */
	bool		running;		/* timers, database, presence started */
	char		host[256];
	int			port;
	char		admin_host[256];	/* metrics_listen, when set */
	int			admin_port;
};

/* Undo what was set up, in reverse order; the one way out of main(). */
static int
teardown(struct setup *s, int status)
{
	if (s->running)
	{
		log_info("stopped");
		timers_stop();
		timer_cancel(&tick_sul);
		writer_stop();
		presence_free();
		db_stop();
		channel_shutdown();		/* its timer, before the context goes */
	}
	relay_destroying = true;	/* the connections closed now get no frame */
	daemon_end(relay_context);
	relay_context = NULL;
	if (s->running)
	{
		event_shutdown();
		peers_free();
		subscribe_free();
		users_free();
		writer_free();
	}
	if (s->keys)
		auth_free();
	if (s->config)
		config_free();
	return status;
}

/* The settings and keys; 0, or the exit status (-1: exit 0 at once). */
static int
load_settings(struct setup *s, int argc, char **argv)
{
	int			rc;

	s->config = true;
	rc = config_load(argc, argv);
	if (rc != 0)
		return rc > 0 ? -1 : 2;
	if (daemon_listen_setting("listen", cf_listen, s->host, sizeof(s->host), &s->port) != 0 ||
		(*cf_metrics_listen &&
		 daemon_listen_setting("metrics_listen", cf_metrics_listen, s->admin_host, sizeof(s->admin_host),
							   &s->admin_port) != 0))
		return 2;
	if (!*cf_relay_id)
	{
		free(cf_relay_id);
		cf_relay_id = daemon_default_id("relay", s->port);
	}
	if (conn_check_vapid() != 0 || auth_load_keys() != 0)
		return 2;
	s->keys = true;
	if (strcmp(cf_event_lib, "libev") != 0 && strcmp(cf_event_lib, "poll") != 0)
	{
		log_error("event_lib must be poll or libev, not \"%s\"", cf_event_lib);
		return 2;
	}
	return 0;
}

/* What the process needs beyond the settings: warnings, seed, descriptors. */
static void
prepare_process(void)
{
	www_startup();
	if (cf_allow_origin.n == 0 && !cf_allow_no_origin)
		log_warn("no origin is allowed: every client will be refused (see --allow-origin)");
	daemon_prepare();
}

/* The lws context listening on HOST:PORT, and the signalfd on its loop. */
static int
listen_on(struct setup *s)
{
	struct lws_context_creation_info info;
	static uint32_t retry_ms[] = {1000};
	static lws_retry_bo_t retry;
	struct rlimit rl;
	/* the admin address counts its handshakes with the main port's (peers.c) */
	struct admin_hooks admin = {
		.health = http_health, .metrics = metrics_render,
		.accepted = peers_accepted, .bound = peers_bound, .done = peers_done,
		.handshake_timeout = (unsigned int) cf_handshake_timeout,
	};

	protocols[0].rx_buffer_size = (size_t) cf_rx_buffer;
	protocols[0].tx_packet_size = WRITE_BATCH;
	memset(&retry, 0, sizeof(retry));
	retry.retry_ms_table = retry_ms;
	retry.retry_ms_table_count = 1;
	retry.secs_since_valid_ping = (uint16_t) cf_ping_interval;
	retry.secs_since_valid_hangup = (uint16_t) (cf_ping_interval + cf_ping_timeout);

	memset(&info, 0, sizeof(info));
	info.port = s->port;
	info.iface = s->host;
	info.protocols = protocols;
	info.vhost_name = "chat";
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	/* event_lib = libev: our own libev loop, lent to lws (core/daemon.c) */
	if (strcmp(cf_event_lib, "libev") == 0 && daemon_lend_loop(&info) != 0)
		return 1;
	info.retry_and_idle_policy = &retry;
	/* short: a silent socket holds a header slot this long at most */
	info.timeout_secs = (unsigned int) cf_handshake_timeout;
	info.timeout_secs_ah_idle = (unsigned int) cf_handshake_timeout;
	info.max_http_header_data = (unsigned short) (cf_max_token + 4096 > 65535 ? 65535 : cf_max_token + 4096);
	info.max_http_header_pool = (unsigned short) cf_header_pool;
	info.fd_limit_per_thread = (unsigned int) (cf_max_connections + 64);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && info.fd_limit_per_thread > rl.rlim_cur)
		info.fd_limit_per_thread = (unsigned int) rl.rlim_cur;

	relay_context = lws_create_context(&info);
	if (relay_context == NULL)
	{
		log_error("cannot listen on %s", cf_listen);
		return 1;
	}
	relay_vhost = lws_get_vhost_by_name(relay_context, "chat");
	if (relay_vhost == NULL || daemon_watch_signals(relay_vhost, "chat-raw", on_signal) != 0)
	{
		log_error("cannot set up the event loop: %s", strerror(errno));
		return 1;
	}
	if (*cf_metrics_listen && admin_listen(relay_context, s->admin_host, s->admin_port, &admin) != 0)
	{
		log_error("cannot listen on %s (metrics_listen)", cf_metrics_listen);
		return 1;
	}
	return 0;
}

/* Start the relay's own work, then serve until the shutdown ends the loop. */
static void
run(struct setup *s)
{
	log_info("chat-relay %s (relay id %s) listening on %s, %d allowed origins, pool %d",
			 RELAY_VERSION, cf_relay_id, cf_listen, cf_allow_origin.n, cf_pool_size);
	if (*cf_metrics_listen)
		log_info("metrics on %s only (/metrics, /healthz, /livez)", cf_metrics_listen);
	timers_start(relay_context, daemon_loop());
	relay_db_start();
	presence_start();
	timer_schedule(&tick_sul, tick, LWS_US_PER_SEC);
	s->running = true;
	daemon_run(relay_context);
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
	prepare_process();
	if ((rc = listen_on(&s)) != 0)
		return teardown(&s, rc);
	run(&s);
	return teardown(&s, 0);
}
