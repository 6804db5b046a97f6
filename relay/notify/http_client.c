/*
 * http_client.c: outgoing HTTP requests (http_client.h) on the shared
 * multi handle of curl_loop.c.
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

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static char *proxy;

/* The request has ended: take its result, call done. */
static void
complete(struct curl_xfer *x, CURL *easy, CURLcode code)
{
	struct http_request *r = lws_container_of(x, struct http_request, xfer);
	long		status = 0;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
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
	struct http_request *r = userdata;
	size_t		n = size * nmemb;

	if (r->keep_answer && r->answer_len < HTTP_ANSWER_MAX)
	{
		size_t		k = n < HTTP_ANSWER_MAX - r->answer_len ? n : HTTP_ANSWER_MAX - r->answer_len;

		memcpy(r->answer + r->answer_len, ptr, k);
		r->answer_len += k;
		r->answer[r->answer_len] = '\0';
	}
	return take(r, n);
}

/* Retry-After: delta-seconds or an HTTP date (RFC 9110 10.2.3). */
static void
retry_after(struct http_request *r, const char *line, size_t n)
{
	static const char name[] = "retry-after:";
	char		value[64];
	size_t		len;
	time_t		when;

	if (n <= sizeof(name) - 1 || strncasecmp(line, name, sizeof(name) - 1) != 0)
		return;
	line += sizeof(name) - 1;
	n -= sizeof(name) - 1;
	while (n > 0 && (*line == ' ' || *line == '\t'))
		line++, n--;
	for (len = 0; len < n && len < sizeof(value) - 1 && line[len] != '\r' && line[len] != '\n'; len++)
		value[len] = line[len];
	value[len] = '\0';
	if (len > 0 && strspn(value, "0123456789") == len)
		r->retry_after_s = len > 9 ? 999999999 : atol(value);
	else if ((when = curl_getdate(value, NULL)) != -1)
		r->retry_after_s = when > time(NULL) ? (long) (when - time(NULL)) : 0;
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	retry_after(userdata, ptr, size * nmemb);
	return take(userdata, size * nmemb);
}

/* The options of one request; 0, or -1 when curl refuses one. */
static int
set_options(CURL *e, struct http_request *r)
{
	CURLcode	c = CURLE_OK;

#define SET(opt, val) do { if (c == CURLE_OK) c = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_URL, r->url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_PROXY, r->direct ? "" : proxy);
	if (r->ca_file)
		SET(CURLOPT_CAINFO, r->ca_file);
	if (r->http2)
	{
		SET(CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS);
		SET(CURLOPT_PROTOCOLS_STR, "https");
	}
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
	r->retry_after_s = -1;
	r->answer_len = 0;
	r->answer[0] = '\0';
	r->xfer = (struct curl_xfer) {.easy = e, .ended = complete};
	if (set_options(e, r) != 0 || curl_loop_add(&r->xfer) != 0)
	{
		curl_easy_cleanup(e);
		r->xfer.easy = NULL;
		return -1;
	}
	return 0;
}

void
http_abort(struct http_request *r)
{
	if (r->xfer.easy == NULL)
		return;
	curl_loop_remove(&r->xfer);
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
	if (curl_loop_start(l) != 0)
		return -1;
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
	curl_loop_stop();
	free(proxy);
	proxy = NULL;
}
