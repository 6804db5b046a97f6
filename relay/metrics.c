/*
 * metrics.c: chat-relay's metrics for GET /metrics (written by core/prom.c
 * in the Prometheus text format).
 */
#include "channel.h"
#include "config.h"
#include "db.h"
#include "metrics.h"
#include "peers.h"
#include "prom.h"
#include "relay.h"
#include "request.h"
#include "subscribe.h"
#include "writer.h"

struct metrics metrics;

/* Count one answered request's latency. */
void
metrics_latency(double seconds)
{
	prom_observe(&metrics.latency, seconds);
}

/* Counters of the WebSocket side. */
static void
render_clients(struct prom_out *o)
{
	prom_metric(o, "chat_relay_connections", "gauge", "WebSocket connections open on this relay.", relay_conns);
	prom_metric(o, "chat_relay_users", "gauge", "Users with at least one connection on this relay.", relay_users);
	prom_metric(o, "chat_relay_presence_subscriptions", "gauge", "Presence subscriptions of the connections here (presence requests).", (double) subscribe_count());
	prom_metric(o, "chat_relay_connections_opened_total", "counter", "WebSocket connections accepted.", (double) metrics.connections_total);
	prom_metric(o, "chat_relay_frames_out_total", "counter", "WebSocket frames written to clients.", (double) metrics.frames_out);
	prom_metric(o, "chat_relay_held_writes_total", "counter", "Times writes were held (up to coalesce_ms) to coalesce frames under load.", (double) metrics.held_writes);
	prom_metric(o, "chat_relay_bytes_out_total", "counter", "Payload bytes written to clients.", (double) metrics.bytes_out);
	prom_metric(o, "chat_relay_queue_drops_total", "counter", "Slow readers whose send queue overflowed (closed with 1013).", (double) metrics.queue_drops);
	prom_metric(o, "chat_relay_total_queue_drops_total", "counter",
				"Largest send queues closed with 1013 because all queues together reached max_total_queue_bytes.",
				(double) metrics.total_queue_drops);
	prom_metric(o, "chat_relay_queued_bytes", "gauge", "Bytes of the frames on all send queues (a frame on several counts once).",
				(double) writer_total_bytes());
	prom_metric(o, "chat_relay_requests_total", "counter", "Client messages received.", (double) metrics.requests);
	prom_metric(o, "chat_relay_rate_limited_total", "counter", "Requests refused by the rate limits.", (double) metrics.rate_limited);
	prom_metric(o, "chat_relay_unreplicated_total", "counter",
				"Requests committed on the primary whose wait for the synchronous standby was cancelled, answered unavailable.",
				(double) metrics.unreplicated);
	prom_put(o, "# HELP chat_relay_errors_total Error answers by code.\n# TYPE chat_relay_errors_total counter\n");
	for (int i = 0; request_error_name(i); i++)
		prom_put(o, "chat_relay_errors_total{code=\"%s\"} %llu\n", request_error_name(i),
				 (unsigned long long) metrics.errors[i]);
	prom_metric(o, "chat_relay_flood_closed_total", "counter",
				"Connections closed for flood_close messages in a row over the rate limit.", (double) metrics.flood_closed);
	prom_metric(o, "chat_relay_upgrades_limited_total", "counter", "Upgrades refused by upgrade_rate.", (double) metrics.upgrades_limited);
	prom_metric(o, "chat_relay_handshakes_evicted_total", "counter",
				"Handshakes closed for a newer one from the same address (max_handshakes_per_address).", (double) peers_evicted);
	prom_metric(o, "chat_relay_auth_refused_total", "counter", "Tokens refused.", (double) metrics.auth_refused);
	prom_metric(o, "chat_relay_origin_refused_total", "counter", "Upgrades refused for their Origin.", (double) metrics.origin_refused);
}

/* Counters of the database side: events in, fetches, connections. */
static void
render_database(struct prom_out *o)
{
	prom_metric(o, "chat_relay_notifications_total", "counter", "NOTIFY payloads received on chat_events.", (double) metrics.notifications_in);
	prom_put(o, "# HELP chat_relay_payloads_refused_total Payloads of chat_events that did not open, by reason.\n"
			 "# TYPE chat_relay_payloads_refused_total counter\n");
	for (int r = SEAL_MALFORMED; r < SEAL_NRESULTS; r++)
		prom_put(o, "chat_relay_payloads_refused_total{reason=\"%s\"} %llu\n", seal_result_names[r],
				 (unsigned long long) channel_stats.refused[r]);
	prom_metric(o, "chat_relay_event_keys", "gauge", "Event keys held.", channel_stats.keys);
	prom_metric(o, "chat_relay_event_key_loads_total", "counter", "Loads of the event keys.", (double) channel_stats.key_loads);
	prom_metric(o, "chat_relay_events_in_total", "counter", "Events received from the database.", (double) metrics.events_in);
	prom_metric(o, "chat_relay_events_invalid_total", "counter", "Payloads and events refused as malformed.", (double) metrics.events_bad);
	prom_metric(o, "chat_relay_resyncs_total", "counter", "resync events sent to clients.", (double) metrics.resyncs);
	prom_metric(o, "chat_relay_message_fetches_total", "counter", "Messages fetched because they did not fit in their event.", (double) metrics.fetches);
	prom_metric(o, "chat_relay_db_up", "gauge", "1 when the LISTEN connection and a pool connection are ready.",
				db_listen_ready() && db_pool_ready() ? 1 : 0);
	prom_metric(o, "chat_relay_db_reconnects_total", "counter", "Database connections re-established after a loss.", (double) db_reconnects());
	prom_metric(o, "chat_relay_db_waiting", "gauge", "Requests waiting for room on a database connection.", db_pending());
}

/*
 * The whole page, in a buffer with headroom bytes free at the start (the
 * text begins at buf + headroom); *len is the text's length.
 */
char *
metrics_render(size_t *len, size_t headroom)
{
	struct prom_out o;

	prom_begin(&o, headroom);
	render_clients(&o);
	render_database(&o);
	prom_histogram(&o, "chat_relay_request_duration_seconds",
				   "Time from a request to its answer from the database.", &metrics.latency);
	prom_process(&o);
	return prom_end(&o, headroom, len);
}
