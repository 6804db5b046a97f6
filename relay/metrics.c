/*
 * metrics.c: counters and the request latency histogram, rendered in the
 * Prometheus text format for GET /metrics.
 */
#include "alloc.h"
#include "config.h"
#include "pg.h"
#include "relay.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct metrics metrics;

static const double lat_bounds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
#define N_BOUNDS ((int) (sizeof(lat_bounds) / sizeof(lat_bounds[0])))

const char *request_error_name(int i);

/* Count one answered request's latency. */
void
metrics_latency(double seconds)
{
	int			i;

	for (i = 0; i < N_BOUNDS && seconds > lat_bounds[i]; i++)
		;
	metrics.lat_buckets[i]++;
	metrics.lat_count++;
	metrics.lat_sum += seconds;
}

struct out
{
	char	   *s;
	size_t		len,
				cap;
};

/* printf onto the output. */
__attribute__((format(printf, 2, 3)))
static void
put(struct out *o, const char *fmt,...)
{
	va_list		ap;
	int			n;

	for (;;)
	{
		va_start(ap, fmt);
		n = vsnprintf(o->s + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t) n < o->cap - o->len)
			break;
		o->cap *= 2;
		o->s = xrealloc(o->s, o->cap);
	}
	o->len += (size_t) n;
}

/* One metric with its HELP and TYPE lines. */
static void
metric(struct out *o, const char *name, const char *type, const char *help, double v)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

/* Resident memory of this process, bytes. */
static double
rss_bytes(void)
{
	FILE	   *f = fopen("/proc/self/statm", "r");
	long		pages = 0,
				rss = 0;

	if (f)
	{
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return (double) rss * (double) sysconf(_SC_PAGESIZE);
}

/*
 * The whole page, in a buffer with headroom bytes free at the start (the
 * text begins at buf + headroom); *len is the text's length.
 */
char *
metrics_render(size_t *len, size_t headroom)
{
	struct out	o;
	struct rusage ru;
	uint64_t	cum = 0;

	o.cap = 8192;
	o.s = xmalloc(o.cap);
	o.len = headroom;
	metric(&o, "chat_relay_connections", "gauge", "WebSocket connections open on this relay.", relay_conns);
	metric(&o, "chat_relay_users", "gauge", "Users with at least one connection on this relay.", relay_users);
	metric(&o, "chat_relay_connections_opened_total", "counter", "WebSocket connections accepted.", (double) metrics.connections_total);
	metric(&o, "chat_relay_notifications_total", "counter", "NOTIFY payloads received on chat_events.", (double) metrics.notifications_in);
	metric(&o, "chat_relay_events_in_total", "counter", "Events received from the database.", (double) metrics.events_in);
	metric(&o, "chat_relay_events_invalid_total", "counter", "Events that could not be routed.", (double) metrics.events_bad);
	metric(&o, "chat_relay_frames_out_total", "counter", "WebSocket frames written to clients.", (double) metrics.frames_out);
	metric(&o, "chat_relay_held_writes_total", "counter", "Times writes were held (up to coalesce_ms) to coalesce frames under load.", (double) metrics.held_writes);
	metric(&o, "chat_relay_bytes_out_total", "counter", "Payload bytes written to clients.", (double) metrics.bytes_out);
	metric(&o, "chat_relay_queue_drops_total", "counter", "Slow readers whose send queue overflowed (closed with 1013).", (double) metrics.queue_drops);
	metric(&o, "chat_relay_requests_total", "counter", "Client messages received.", (double) metrics.requests);
	metric(&o, "chat_relay_rate_limited_total", "counter", "Requests refused by the rate limits.", (double) metrics.rate_limited);
	put(&o, "# HELP chat_relay_errors_total Error answers by code.\n# TYPE chat_relay_errors_total counter\n");
	for (int i = 0; request_error_name(i); i++)
		put(&o, "chat_relay_errors_total{code=\"%s\"} %llu\n", request_error_name(i),
			(unsigned long long) metrics.errors[i]);
	metric(&o, "chat_relay_auth_refused_total", "counter", "Tokens refused.", (double) metrics.auth_refused);
	metric(&o, "chat_relay_origin_refused_total", "counter", "Upgrades refused for their Origin.", (double) metrics.origin_refused);
	metric(&o, "chat_relay_resyncs_total", "counter", "resync events sent to clients.", (double) metrics.resyncs);
	metric(&o, "chat_relay_message_fetches_total", "counter", "Messages fetched because they did not fit in their event.", (double) metrics.fetches);
	metric(&o, "chat_relay_db_up", "gauge", "1 when the LISTEN connection and a pool connection are ready.",
		   pg_listen_ready() && pg_pool_ready() ? 1 : 0);
	metric(&o, "chat_relay_db_reconnects_total", "counter", "Database connections re-established after a loss.", (double) metrics.db_reconnects);
	metric(&o, "chat_relay_db_waiting", "gauge", "Requests waiting for room on a database connection.", pg_pending());
	put(&o, "# HELP chat_relay_request_duration_seconds Time from a request to its answer from the database.\n"
		"# TYPE chat_relay_request_duration_seconds histogram\n");
	for (int i = 0; i < N_BOUNDS; i++)
	{
		cum += metrics.lat_buckets[i];
		put(&o, "chat_relay_request_duration_seconds_bucket{le=\"%g\"} %llu\n", lat_bounds[i],
			(unsigned long long) cum);
	}
	put(&o, "chat_relay_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long) metrics.lat_count);
	put(&o, "chat_relay_request_duration_seconds_sum %.9f\n", metrics.lat_sum);
	put(&o, "chat_relay_request_duration_seconds_count %llu\n", (unsigned long long) metrics.lat_count);
	getrusage(RUSAGE_SELF, &ru);
	metric(&o, "process_cpu_seconds_total", "counter", "User and system CPU time of the relay.",
		   (double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	metric(&o, "process_resident_memory_bytes", "gauge", "Resident memory of the relay.", rss_bytes());
	*len = o.len - headroom;
	return o.s;
}
