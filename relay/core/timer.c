/*
 * Timers that fire on time under either event loop.
 *
 * The relay's timers are lws suls. Under poll, lws sleeps until the earliest
 * one. Under libev, lws 4.1 keeps one ev_timer for all of them and re-arms it
 * after each I/O with ev_timer_set() + ev_timer_start() even while it is
 * running: libev ignores that start, so a sul due sooner than the timer's
 * current expiry waits for it (a 1 µs database teardown waited for the next
 * 1 s tick; once it did not run for 31 s). We keep our own ev_timer at the
 * earliest of the relay's suls; when it fires, lws_cancel_service() wakes
 * lws, which runs every ripe sul after that event.
 */
#include "timer.h"
#include "log.h"

#include <ev.h>
#include <stdlib.h>

/* Wake a little after the due time, so that lws finds the sul ripe. */
#define WAKE_SLACK_US 500

static struct lws_context *context;
static struct ev_loop *loop;	/* NULL under poll */
static ev_prepare before_wait;
static ev_timer waker;
static lws_usec_t armed_for;	/* due time the waker is set for, 0 if none */

/* The suls scheduled through here (under libev); pending or not. */
static lws_sorted_usec_list_t **known;
static int	nknown,
			maxknown;

static void
remember(lws_sorted_usec_list_t *sul)
{
	int			i;

	for (i = 0; i < nknown; i++)
		if (known[i] == sul)
			return;
	if (nknown == maxknown)
	{
		int			n = maxknown ? maxknown * 2 : 16;
		lws_sorted_usec_list_t **k = realloc(known, (size_t) n * sizeof(*k));

		if (k == NULL)
		{
			/* lws still fires it, at worst on the next 1 s tick */
			log_error("out of memory: a timer may fire late");
			return;
		}
		known = k;
		maxknown = n;
	}
	known[nknown++] = sul;
}

static void
forget(lws_sorted_usec_list_t *sul)
{
	int			i;

	for (i = 0; i < nknown; i++)
		if (known[i] == sul)
		{
			known[i] = known[--nknown];
			return;
		}
}

/* The waker: make lws service its suls. */
static void
on_waker(struct ev_loop *l, ev_timer *w, int revents)
{
	(void) l;
	(void) w;
	(void) revents;
	armed_for = 0;
	lws_cancel_service(context);
}

/* Before the loop waits: the waker is set for the earliest pending sul. */
static void
on_before_wait(struct ev_loop *l, ev_prepare *w, int revents)
{
	lws_usec_t	next = 0,
				now;
	int			i;

	(void) w;
	(void) revents;
	for (i = 0; i < nknown; i++)
	{
		lws_sorted_usec_list_t *s = known[i];

		if (lws_dll2_is_detached(&s->list))
			continue;
		if (next == 0 || s->us < next)
			next = s->us;
	}
	if (next == armed_for)
		return;
	ev_timer_stop(l, &waker);
	armed_for = next;
	if (next == 0)
		return;
	ev_now_update(l);
	now = lws_now_usecs();
	ev_timer_set(&waker, (double) ((next > now ? next - now : 0) + WAKE_SLACK_US) / 1e6, 0.);
	ev_timer_start(l, &waker);
}

void
timers_start(struct lws_context *ctx, struct ev_loop *l)
{
	context = ctx;
	loop = l;
	if (loop == NULL)
		return;
	ev_prepare_init(&before_wait, on_before_wait);
	ev_prepare_start(loop, &before_wait);
	ev_timer_init(&waker, on_waker, 0., 0.);
}

void
timer_schedule(lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us)
{
	lws_sul_schedule(context, 0, sul, cb, us);
	if (loop)
		remember(sul);
}

void
timer_cancel(lws_sorted_usec_list_t *sul)
{
	lws_sul_cancel(sul);
	if (loop)
		forget(sul);
}

void
timers_stop(void)
{
	if (loop)
	{
		ev_prepare_stop(loop, &before_wait);
		ev_timer_stop(loop, &waker);
	}
	free(known);
	known = NULL;
	nknown = maxknown = 0;
	armed_for = 0;
	loop = NULL;
}
