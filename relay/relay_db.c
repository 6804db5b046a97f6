/*
 * relay_db.c: chat-relay on the database client (core/db.c): the settings
 * from the config, what the relay does when its connections come and go,
 * and the SQL it runs besides client requests (those are request_types.c).
 */
#include "relay_db.h"

#include "channel.h"
#include "config.h"
#include "db.h"
#include "event.h"
#include "log.h"
#include "presence.h"
#include "relay.h"
#include "request.h"
#include "writer.h"

struct relay_statements relay_sql;

/*
 * The LISTEN connection is (again) listening. Clients that were connected
 * while it was not may have missed events: resync, after a loss and also at
 * the first LISTEN of a start if clients came in before it.
 */
static void
listen_ready(bool again)
{
	if (relay_conns > 0)
	{
		log_info("listening%s: the %d connected clients get resync", again ? " again" : "", relay_conns);
		event_resync("relay_reconnected");
	}
	presence_db_ready();
}

/* A pool connection is ready: presence may have something to send. */
static void
pool_ready(void)
{
	presence_kick();
}

static void
settings(struct db_settings *s)
{
	*s = (struct db_settings) {
		.conninfo = cf_db,
		.application_name = "chat-relay",
		.pool_size = cf_pool_size,
		.pipeline_depth = cf_pipeline_depth,
		.statement_timeout = cf_statement_timeout,
		.max_pending = cf_max_pending,
		.backoff_min_ms = cf_backoff_min_ms,
		.backoff_max_ms = cf_backoff_max_ms,
		.listen_channel = "chat_events",
		/* the relay's advisory lock: one live relay per relay id */
		.register_sql = "SELECT chat.relay_register($1::text)",
		.register_arg = cf_relay_id,
		.register_refused = "relay id is held by another live relay (or being cleared)",
		/* the event keys and the floor of payload numbers, before LISTEN */
		.listen_setup_sql = channel_setup_sql,
		.context = relay_context,
		.vhost = relay_vhost,
		.raw_protocol = "chat-raw",
	};
}

void
relay_db_start(void)
{
	static const struct db_hooks hooks = {
		/* what one read brings goes out in one write per connection */
		.io_begin = ws_batch_begin,
		.io_end = ws_batch_end,
		.notify = channel_notify,
		.listen_setup = channel_setup,
		.listen_ready = listen_ready,
		.pool_ready = pool_ready,
	};
	static const struct channel_hooks channel = {
		.deliver = event_notify,
		.lost = event_resync,
	};
	struct db_settings s;

	channel_init(&channel, cf_key_refresh);
	/* a message too large for its event, for the recipients here that are members */
	relay_sql.fetch = db_statement("SELECT message, members FROM chat.event_message($1::bigint, $2::bigint, $3::bigint[])", 3);
	relay_sql.presence_update = db_statement("SELECT chat.presence_update($1::text, $2::bigint[], $3::bigint[])", 3);
	relay_sql.presence_sync = db_statement("SELECT chat.presence_sync($1::text, $2::bigint[])", 2);
	relay_sql.heartbeat = db_statement("SELECT chat.relay_heartbeat($1::text, $2::int)", 2);
	relay_sql.relay_gone = db_statement("SELECT chat.relay_gone($1::text)", 1);
	request_init();
	settings(&s);
	db_start(&s, &hooks);
}

void
relay_db_reload(void)
{
	struct db_settings s;

	settings(&s);
	db_configure(&s);
}
