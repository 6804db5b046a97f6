/*
 * curl_loop.c: libcurl's multi interface on the daemon's libev loop
 * (curl_loop.h).
 *
 * Why libev watchers and not lws adoption: curl opens, swaps and closes
 * its sockets itself (happy eyeballs tries several at once) and says for
 * each which events it wants (CURLMOPT_SOCKETFUNCTION), and when it next
 * needs to run (CURLMOPT_TIMERFUNCTION). An ev_io per socket and one
 * ev_timer map onto that one to one. lws adoption would need a dup() per
 * socket (lws closes what it adopts), re-adoption whenever curl's socket
 * changes, and could only ask for POLLOUT once at a time, and lws 4.1's
 * libev glue fires timers late (core/timer.c): more code, less exact. The
 * loop is the same one lws runs on (core/daemon.c lends it), so all of it
 * stays on one thread. One multi handle for every protocol: HTTP and SMTP
 * transfers share the watchers and the timer.
 */
#include "curl_loop.h"

#include "alloc.h"
#include "log.h"

#include <ev.h>
#include <stdlib.h>

/* One socket curl watches. */
struct curl_sock
{
	ev_io		io;
	curl_socket_t fd;
};

static struct ev_loop *loop;
static CURLM *multi;
static ev_timer timer;

/* Every transfer curl has finished: ended, then its handle freed. */
static void
collect(void)
{
	CURLMsg    *m;
	int			left;

	while ((m = curl_multi_info_read(multi, &left)) != NULL)
	{
		struct curl_xfer *x = NULL;
		CURL	   *e = m->easy_handle;
		CURLcode	code = m->data.result;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **) &x);
		curl_multi_remove_handle(multi, e);
		x->easy = NULL;			/* ended may free x */
		x->ended(x, e, code);
		curl_easy_cleanup(e);
	}
}

/* A watched socket is ready. */
static void
on_io(struct ev_loop *l, ev_io *w, int revents)
{
	struct curl_sock *k = (struct curl_sock *) w;
	int			action = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int			running;

	(void) l;
	curl_multi_socket_action(multi, k->fd, action, &running);
	collect();
}

/* curl's timeout is due. */
static void
on_timer(struct ev_loop *l, ev_timer *w, int revents)
{
	int			running;

	(void) l;
	(void) w;
	(void) revents;
	curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect();
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl wants, or stop. */
static int
on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct curl_sock *k = socketp;
	int			events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);

	(void) e;
	(void) userp;
	if (what == CURL_POLL_REMOVE)
	{
		if (k)
		{
			ev_io_stop(loop, &k->io);
			free(k);
		}
		return 0;
	}
	if (k == NULL)
	{
		k = xcalloc(1, sizeof(*k));
		k->fd = s;
		ev_io_init(&k->io, on_io, s, events);
		curl_multi_assign(multi, s, k);
	}
	else
	{
		ev_io_stop(loop, &k->io);
		ev_io_set(&k->io, s, events);
	}
	ev_io_start(loop, &k->io);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: run curl after timeout_ms (-1: never). */
static int
on_timer_set(CURLM *m, long timeout_ms, void *userp)
{
	(void) m;
	(void) userp;
	ev_timer_stop(loop, &timer);
	if (timeout_ms >= 0)
	{
		ev_timer_set(&timer, (double) timeout_ms / 1000.0, 0.);
		ev_timer_start(loop, &timer);
	}
	return 0;
}

int
curl_loop_add(struct curl_xfer *x)
{
	if (multi == NULL || curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (void *) x) != CURLE_OK ||
		curl_multi_add_handle(multi, x->easy) != CURLM_OK)
		return -1;
	return 0;
}

void
curl_loop_remove(struct curl_xfer *x)
{
	if (x->easy == NULL)
		return;
	curl_multi_remove_handle(multi, x->easy);
	curl_easy_cleanup(x->easy);
	x->easy = NULL;
}

int
curl_loop_start(struct ev_loop *l)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (multi = curl_multi_init()) == NULL)
	{
		log_error("cannot initialise libcurl");
		return -1;
	}
	loop = l;
	ev_timer_init(&timer, on_timer, 0., 0.);
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
	return 0;
}

void
curl_loop_stop(void)
{
	if (multi)
	{
		curl_multi_cleanup(multi);
		multi = NULL;
		ev_timer_stop(loop, &timer);
		curl_global_cleanup();
	}
}
