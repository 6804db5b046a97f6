/*
 * metrics.h: chat-notify's counters (metrics.c renders them for GET
 * /metrics on the admin address).
 */
#ifndef NOTIFY_METRICS_H
#define NOTIFY_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backlog.h"
#include "prom.h"

/* Why a webhook attempt failed: the reason label of _failed_total. */
enum webhook_reason
{
	WH_STATUS,					/* answered, neither 2xx nor 3xx nor 410 */
	WH_GONE,					/* 410: the endpoint is disabled */
	WH_REDIRECT,				/* 3xx: never followed */
	WH_TIMEOUT,
	WH_CONNECT,
	WH_TLS,
	WH_TOO_LARGE,
	WH_BAD_RESPONSE,			/* not HTTP, cut off, reset */
	WH_ABORTED,					/* stopped by the shutdown */
	WH_OTHER,
	WH_NREASONS
};

/* One push kind's counters (push.c). */
struct push_counters
{
	uint64_t	sent;			/* the service took it */
	uint64_t	failed;			/* not taken: refused, 4xx / 5xx, timeout, TLS */
	uint64_t	gone;			/* push_result: gone (the device was deleted) */
	uint64_t	retried;		/* push_result: retry */
	uint64_t	dropped;		/* push_result: dropped */
	struct prom_histogram duration;	/* of pushes taken, seconds */
};

struct metrics
{
	uint64_t	events;			/* opened events that may have made work (not typing, presence) */
	uint64_t	resyncs;		/* payloads lost or LISTEN again: a claim to catch up */
	uint64_t	webhooks_sent;	/* 2xx */
	uint64_t	webhooks_failed[WH_NREASONS];
	uint64_t	webhooks_retried;	/* webhook_result: retry */
	uint64_t	webhooks_dropped;	/* webhook_result: dropped (out of attempts) */
	uint64_t	webhooks_disabled;	/* webhook_result: disabled (410, or 72 h failing) */
	struct backlog webhook_backlog; /* webhook_backlog() */
	struct prom_histogram webhook_duration;	/* of answered requests, seconds */
	uint64_t	emails_sent;	/* SMTP DATA accepted */
	uint64_t	emails_failed;	/* not sent: refused, 4xx / 5xx, timeout, TLS, AUTH, a bad claim */
	uint64_t	emails_retried; /* email_result: retry */
	uint64_t	emails_dropped; /* email_result: dropped (fifth failure) */
	struct backlog email_backlog;	/* email_backlog() */
	struct prom_histogram email_duration;	/* of sent emails, seconds */
	struct push_counters push[3];	/* by enum push_kind */
	struct backlog push_backlog;	/* push_backlog() */
};

extern struct metrics metrics;

/* The page, in a buffer with headroom free bytes first; *len: the text's length. */
char	   *metrics_render(size_t *len, size_t headroom);

#endif
