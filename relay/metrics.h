/*
 * metrics.h: chat-relay's counters (metrics.c renders them for GET /metrics).
 */
#ifndef RELAY_METRICS_H
#define RELAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "prom.h"
#include "request.h"

struct metrics
{
	uint64_t	connections_total;
	uint64_t	notifications_in;
	uint64_t	events_in;
	uint64_t	events_bad;
	uint64_t	flood_closed;	/* connections closed for sending into an empty bucket */
	uint64_t	upgrades_limited;	/* upgrades refused by upgrade_rate */
	uint64_t	frames_out;
	uint64_t	held_writes;	/* writes held under load (ws_batch_end) */
	uint64_t	bytes_out;
	uint64_t	queue_drops;	/* slow readers closed with 1013 */
	uint64_t	total_queue_drops;	/* largest queues closed with 1013 at max_total_queue_bytes */
	uint64_t	requests;
	uint64_t	rate_limited;
	uint64_t	unreplicated;	/* answered unavailable: committed, standby wait cancelled */
	uint64_t	auth_refused;
	uint64_t	origin_refused;
	uint64_t	resyncs;
	uint64_t	fetches;
	uint64_t	errors[REQUEST_ERROR_CODES];	/* by error code */
	struct prom_histogram latency;	/* of requests, seconds */
};

extern struct metrics metrics;

/* Count one answered request's latency. */
void		metrics_latency(double seconds);
/* The page, in a buffer with headroom free bytes first; *len: the text's length. */
char	   *metrics_render(size_t *len, size_t headroom);

#endif
