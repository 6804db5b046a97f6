/*
 * curl_loop.h: libcurl's multi interface on the daemon's libev loop, for
 * every protocol chat-notify speaks (http_client.c: webhooks; smtp_client.c:
 * email). A caller configures an easy handle, adds it with its transfer,
 * and is called back once when it ends.
 */
#ifndef NOTIFY_CURL_LOOP_H
#define NOTIFY_CURL_LOOP_H

#include <curl/curl.h>

struct ev_loop;

struct curl_xfer
{
	CURL	   *easy;			/* set by the caller; NULL again once ended */
	/* the transfer has ended with code: easy (x->easy is NULL now) is freed after */
	void		(*ended) (struct curl_xfer *x, CURL *easy, CURLcode code);
};

/* With libev's loop; 0, or -1 (logged). */
int			curl_loop_start(struct ev_loop *loop);
void		curl_loop_stop(void);

/* Run x->easy (CURLOPT_PRIVATE is taken); 0, or -1 (x->easy untouched). */
int			curl_loop_add(struct curl_xfer *x);

/* Stop x now, without its ended call; x->easy is freed. */
void		curl_loop_remove(struct curl_xfer *x);

#endif
