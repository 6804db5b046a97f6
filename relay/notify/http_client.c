/*
 * http_client.c: libcurl's multi interface on the daemon's libev loop
 * (http_client.h).
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
 * stays on one thread.
 *
 * Bounds: CURLOPT_TIMEOUT_MS covers the whole request, connecting
 * included; the header and write callbacks count what the receiver sends
 * and stop at max_response (nothing of it is kept); redirects are not
 * followed; only http and https; CURLOPT_NOSIGNAL (no SIGALRM for name
 * lookups: Debian's libcurl resolves in a thread).
 */
#include "http_client.h"

#include "alloc.h"
#include "log.h"

#include <ev.h>
#include <stdlib.h>
#include <string.h>

/* One socket curl watches. */
struct http_sock
{
	ev_io		io;
	curl_socket_t fd;
};

static struct ev_loop *loop;
static CURLM *multi;
static ev_timer timer;
static char *proxy;

/* The answer has ended: take its result, free the handle, call done. */
static void
complete(struct http_request *r, CURLcode code)
{
	long		status = 0;

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(multi, r->easy);
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	r->curl_code = code;
	r->status = 0;
	if (code == CURLE_OK && status >= 100)
	{
		r->outcome = HTTP_ANSWERED;
		r->status = status;
	}
	else if (r->too_large)
		r->outcome = HTTP_TOO_LARGE;
	else if (code == CURLE_OPERATION_TIMEDOUT)
		r->outcome = HTTP_TIMEOUT;
	else if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
			 code == CURLE_COULDNT_RESOLVE_PROXY)
		r->outcome = HTTP_CONNECT;
	else if (code == CURLE_SSL_CONNECT_ERROR || code == CURLE_PEER_FAILED_VERIFICATION ||
			 code == CURLE_SSL_CERTPROBLEM || code == CURLE_SSL_CACERT_BADFILE)
		r->outcome = HTTP_TLS;
	else if (code == CURLE_OK || code == CURLE_GOT_NOTHING || code == CURLE_RECV_ERROR ||
			 code == CURLE_SEND_ERROR || code == CURLE_PARTIAL_FILE ||
			 code == CURLE_WEIRD_SERVER_REPLY || code == CURLE_UNSUPPORTED_PROTOCOL ||
			 code == CURLE_HTTP2 || code == CURLE_HTTP2_STREAM || code == CURLE_BAD_CONTENT_ENCODING)
		r->outcome = HTTP_BAD_RESPONSE;
	else
		r->outcome = HTTP_FAILED;
	r->done(r);
}

/* Answer every request curl has finished. */
static void
collect(void)
{
	CURLMsg    *m;
	int			left;

	while ((m = curl_multi_info_read(multi, &left)) != NULL)
	{
		struct http_request *r = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &r);
		complete(r, m->data.result);
	}
}

/* A watched socket is ready. */
static void
on_io(struct ev_loop *l, ev_io *w, int revents)
{
	struct http_sock *k = (struct http_sock *) w;
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
	struct http_sock *k = socketp;
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

/* Count what the receiver sends; past the bound, stop (0 ends the transfer). */
static size_t
take(struct http_request *r, size_t n)
{
	if (r->received + n > r->max_response)
	{
		r->too_large = true;
		return 0;
	}
	r->received += n;
	return n;
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void) ptr;
	return take(userdata, size * nmemb);
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void) ptr;
	return take(userdata, size * nmemb);
}

/* The options of one request; 0, or -1 when curl refuses one. */
static int
set_options(CURL *e, struct http_request *r)
{
	CURLcode	c = CURLE_OK;

#define SET(opt, val) do { if (c == CURLE_OK) c = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_URL, r->url);
	SET(CURLOPT_PRIVATE, (void *) r);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_PROXY, proxy);
	SET(CURLOPT_TIMEOUT_MS, r->timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDS, r->body);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) r->body_len);
	SET(CURLOPT_HTTPHEADER, r->headers);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, (void *) r);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, (void *) r);
	SET(CURLOPT_ACCEPT_ENCODING, NULL);	/* no compressed answer: its size is what we count */
#undef SET
	return c == CURLE_OK ? 0 : -1;
}

int
http_send(struct http_request *r)
{
	CURL	   *e = curl_easy_init();

	if (e == NULL)
		return -1;
	r->received = 0;
	r->too_large = false;
	r->status = 0;
	r->easy = e;
	if (set_options(e, r) != 0 || curl_multi_add_handle(multi, e) != CURLM_OK)
	{
		curl_easy_cleanup(e);
		r->easy = NULL;
		return -1;
	}
	return 0;
}

void
http_abort(struct http_request *r)
{
	if (r->easy == NULL)
		return;
	curl_multi_remove_handle(multi, r->easy);
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	r->outcome = HTTP_ABORTED;
	r->status = 0;
	r->done(r);
}

const char *
http_outcome_text(const struct http_request *r)
{
	switch (r->outcome)
	{
		case HTTP_ANSWERED:
			return "answered";
		case HTTP_TIMEOUT:
			return "timeout";
		case HTTP_TOO_LARGE:
			return "answer over max_response bytes";
		case HTTP_ABORTED:
			return "stopped by chat-notify's shutdown";
		default:
			/* curl's own texts name no URL and nothing the receiver sent */
			return curl_easy_strerror(r->curl_code);
	}
}

int
http_client_start(struct ev_loop *l, const char *p)
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
	http_client_configure(p);
	return 0;
}

void
http_client_configure(const char *p)
{
	free(proxy);
	proxy = xstrdup(p);
}

void
http_client_stop(void)
{
	if (multi)
	{
		curl_multi_cleanup(multi);
		multi = NULL;
		ev_timer_stop(loop, &timer);
		curl_global_cleanup();
	}
	free(proxy);
	proxy = NULL;
}
