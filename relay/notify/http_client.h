/*
 * http_client.h: outgoing HTTP requests on the daemon's event loop
 * (curl_loop.h: libcurl's multi interface on libev), each answered once
 * through its done callback. What a request may cost is bounded: a total
 * timeout, the bytes of its answer, no redirect followed, http and https
 * only, no proxy but the one configured.
 */
#ifndef NOTIFY_HTTP_CLIENT_H
#define NOTIFY_HTTP_CLIENT_H

#include "curl_loop.h"

#include <curl/curl.h>
#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

struct ev_loop;

/* The bytes of an answer's body a request keeps (keep_answer): errors of push services. */
#define HTTP_ANSWER_MAX 1024

/* How a request ended. */
enum http_outcome
{
	HTTP_ANSWERED,				/* a whole answer: see status */
	HTTP_TIMEOUT,				/* no whole answer in time */
	HTTP_CONNECT,				/* no connection: refused, unreachable, name unknown */
	HTTP_TLS,					/* the TLS handshake or the certificate failed */
	HTTP_TOO_LARGE,				/* the answer passed max_response bytes */
	HTTP_BAD_RESPONSE,			/* not HTTP, cut off, reset, nothing */
	HTTP_ABORTED,				/* http_abort() */
	HTTP_FAILED					/* anything else (curl_code says what) */
};

struct http_request
{
	/* set by the caller */
	const char *url;
	struct curl_slist *headers;
	const char *body;			/* POSTed; must live until done */
	size_t		body_len;
	long		timeout_ms;
	size_t		max_response;	/* bytes of headers and body read at most */
	const char *ca_file;		/* CA bundle to check the server against; NULL: the system's */
	bool		http2;			/* HTTPS only, HTTP/2 asked for by ALPN (APNs speaks nothing else) */
	bool		direct;			/* not through the webhook proxy (push services) */
	bool		keep_answer;	/* keep the body's first HTTP_ANSWER_MAX bytes in answer */
	void		(*done) (struct http_request *r);
	/* the result, when done is called */
	enum http_outcome outcome;
	long		status;			/* HTTP_ANSWERED: the status */
	long		retry_after_s;	/* Retry-After in seconds (delta or date), -1: none */
	char		answer[HTTP_ANSWER_MAX + 1];	/* keep_answer: the body's start, NUL-ended */
	size_t		answer_len;
	CURLcode	curl_code;
	/* the client's */
	struct curl_xfer xfer;
	size_t		received;
	bool		too_large;
};

/* With libev's loop; proxy: "" for none. 0, or -1 (logged). */
int			http_client_start(struct ev_loop *loop, const char *proxy);
/* After SIGHUP: the proxy of requests started from now on. */
void		http_client_configure(const char *proxy);
void		http_client_stop(void);

/*
 * Start r: 0 (done will be called exactly once, never from inside this
 * call), or -1 when it could not be started (r is left untouched).
 */
int			http_send(struct http_request *r);

/* Stop r under way: done is called now with HTTP_ABORTED. */
void		http_abort(struct http_request *r);

/* A short text for outcome (no URL, nothing the receiver sent). */
const char *http_outcome_text(const struct http_request *r);

#endif
