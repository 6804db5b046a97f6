/*
 * notify_db.c: chat-notify on the database client (core/db.c) and the
 * sealed channel chat_events (core/channel.c, which needs the login to be
 * a member of chat_event_reader: chat_notify is).
 *
 * The daemon reads nothing from events: an event says that work may be
 * due, and the claim finds out. Typing and presence events never make
 * work (they are not webhook types), so they do not cause a claim.
 */
#include "notify_db.h"

#include "channel.h"
#include "config.h"
#include "db.h"
#include "dispatch.h"
#include "envelope.h"
#include "log.h"
#include "metrics.h"

#include <string.h>

static struct envelope_list envelopes;	/* reused from payload to payload */
static struct lws_context *db_context;
static struct lws_vhost *db_vhost;
static const char *db_protocol;

/* Does the event start as a typing or presence event does? */
static bool
is_chatter(const char *ev, size_t len)
{
	static const char *const prefixes[] = {"{\"v\":1,\"type\":\"typing\"", "{\"v\":1,\"type\":\"presence\""};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (len >= strlen(prefixes[i]) && memcmp(ev, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* An opened payload: claim soon, unless it holds only typing and presence. */
static void
on_event(const char *plain, size_t len)
{
	if (envelope_parse(plain, len, &envelopes) == 0)
	{
		size_t		i;

		for (i = 0; i < envelopes.n; i++)
			if (!is_chatter(envelopes.v[i].ev, envelopes.v[i].ev_len))
				break;
		if (i == envelopes.n)
			return;
	}
	metrics.events++;
	dispatch_kick();
}

/* Payloads were dropped (by the extension or the channel): catch up. */
static void
on_lost(const char *reason)
{
	log_info("events may have been lost (%s): claiming", reason);
	metrics.resyncs++;
	dispatch_kick();
}

/* LISTEN (again): what was recorded meanwhile made no event here. */
static void
listen_ready(bool again)
{
	if (again)
		metrics.resyncs++;
	dispatch_kick();
}

static void
pool_ready(void)
{
	dispatch_kick();
}

static void
settings(struct db_settings *s)
{
	*s = (struct db_settings) {
		.conninfo = cf_db,
		.application_name = "chat-notify",
		.pool_size = cf_pool_size,
		.pipeline_depth = 64,
		.statement_timeout = cf_statement_timeout,
		.max_pending = cf_max_pending,
		.backoff_min_ms = cf_backoff_min_ms,
		.backoff_max_ms = cf_backoff_max_ms,
		.listen_channel = "chat_events",
		/* the event keys and the floor of payload numbers, before LISTEN */
		.listen_setup_sql = channel_setup_sql,
		.context = db_context,
		.vhost = db_vhost,
		.raw_protocol = db_protocol,
	};
}

void
notify_db_start(struct lws_context *context, struct lws_vhost *vhost, const char *raw_protocol)
{
	static const struct db_hooks hooks = {
		.notify = channel_notify,
		.listen_setup = channel_setup,
		.listen_ready = listen_ready,
		.pool_ready = pool_ready,
	};
	static const struct channel_hooks channel = {
		.deliver = on_event,
		.lost = on_lost,
	};
	struct db_settings s;

	db_context = context;
	db_vhost = vhost;
	db_protocol = raw_protocol;
	channel_init(&channel, cf_key_refresh);
	settings(&s);
	db_start(&s, &hooks);
}

void
notify_db_reload(void)
{
	struct db_settings s;

	settings(&s);
	db_configure(&s);
}

void
notify_db_free(void)
{
	envelope_list_free(&envelopes);
}
