/*
 * timer.h: lws suls that fire on time under either event loop (timer.c
 * says why lws's own scheduling is not enough under libev). Use these, not
 * lws_sul_schedule / lws_sul_cancel.
 */
#ifndef CORE_TIMER_H
#define CORE_TIMER_H

#include <libwebsockets.h>

struct ev_loop;

/* loop: the libev loop lent to lws, or NULL under poll */
void		timers_start(struct lws_context *context, struct ev_loop *loop);
void		timer_schedule(lws_sorted_usec_list_t *sul, sul_cb_t cb, lws_usec_t us);
void		timer_cancel(lws_sorted_usec_list_t *sul);
void		timers_stop(void);

#endif
