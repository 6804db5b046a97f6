/*
 * webpush_send.c: Web Push (webpush_send.h, push.h).
 *
 * The body is push_payload() encrypted as aes128gcm for the subscription's
 * keys; headers are RFC 8030's (TTL, Urgency, Topic) and RFC 8292's
 * Authorization. Answers: 200/201/202 sent; 404/410 the subscription is
 * gone; 429 and 5xx keep the service's Retry-After; other statuses are
 * failures with their status. A token that cannot be used (not an
 * endpoint and keys of the right lengths) fails at once with status 0.
 *
 * Never logged or reported: keys, the payload, whole endpoints (they are
 * capabilities), the service's answer.
 */
#include "webpush_send.h"

#include "push_request.h"

#include "alloc.h"
#include "base64url.h"
#include "config.h"
#include "log.h"
#include "vapid.h"
#include "webpush_crypt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 8030 section 5.4: a Topic is at most 32 characters of base64url. */
#define TOPIC_MAX 32

bool
webpush_on(void)
{
	return vapid_loaded();
}

int
webpush_configure(void)
{
	if (cf_vapid_key_file == NULL || *cf_vapid_key_file == '\0')
		return 0;
	return vapid_load(cf_vapid_key_file, cf_vapid_subject ? cf_vapid_subject : "");
}

void
webpush_free(void)
{
	vapid_free();
}

/* s holds only base64url characters and is 1 to TOPIC_MAX long. */
static bool
valid_topic(const char *s)
{
	size_t		len = strlen(s);

	if (len == 0 || len > TOPIC_MAX)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == len;
}

/* Decode the string member of keys named name into out of exactly len bytes. */
static bool
token_key(json_t *keys, const char *name, unsigned char *out, size_t len)
{
	json_t	   *v = json_object_get(keys, name);
	unsigned char buf[WEBPUSH_KEY_LEN + 1];

	if (!json_is_string(v) ||
		base64url_decode(json_string_value(v), json_string_length(v), buf, sizeof(buf)) != (int) len)
		return false;
	memcpy(out, buf, len);
	return true;
}

/* The token's endpoint and keys; NULL and *error when it is not usable. */
static const char *
parse_token(json_t *token, unsigned char p256dh[WEBPUSH_KEY_LEN],
			unsigned char auth[WEBPUSH_AUTH_LEN], const char **error)
{
	json_t	   *endpoint = json_object_get(token, "endpoint");
	json_t	   *keys = json_object_get(token, "keys");
	const char *url = json_string_value(endpoint);

	if (url == NULL || (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0))
		*error = "bad Web Push token: no http(s) endpoint";
	else if (!json_is_object(keys))
		*error = "bad Web Push token: no keys";
	else if (!token_key(keys, "p256dh", p256dh, WEBPUSH_KEY_LEN) || p256dh[0] != 4)
		*error = "bad Web Push token: p256dh is not base64url of a 65-byte P-256 point";
	else if (!token_key(keys, "auth", auth, WEBPUSH_AUTH_LEN))
		*error = "bad Web Push token: auth is not base64url of 16 bytes";
	else
		return url;
	return NULL;
}

/* The request's headers; authorization is VAPID's. */
static void
add_headers(struct push *p, const char *authorization)
{
	char		ttl[16];

	/* a clear too: a phone offline now must still lose the notification when it comes back */
	snprintf(ttl, sizeof(ttl), "%d", p->ttl_s > 0 ? p->ttl_s : 0);
	push_header(p, "TTL", ttl);
	push_header(p, "Urgency", p->alert ? "high" : "normal");
	if (valid_topic(p->collapse))
		push_header(p, "Topic", p->collapse);
	else if (p->collapse[0])
		log_debug("push %lld: collapse key is no RFC 8030 Topic, sent without one", (long long) p->send_id);
	push_header(p, "Content-Encoding", "aes128gcm");
	push_header(p, "Content-Type", "application/octet-stream");
	push_header(p, "Authorization", authorization);
	push_header(p, "User-Agent", "chat-notify/" NOTIFY_VERSION);
	p->headers = curl_slist_append(p->headers, "Expect:");	/* no 100-continue round trip */
}

/* The status and error of an ended request; sets gone and retry_after_s. */
static int
classify(struct push *p, char *error, size_t cap)
{
	const struct http_request *r = &p->http;
	long		s = r->status;

	*error = '\0';
	if (r->outcome != HTTP_ANSWERED)
	{
		if (r->outcome == HTTP_TIMEOUT)
			snprintf(error, cap, "no answer within %ld s", r->timeout_ms / 1000);
		else
			snprintf(error, cap, "%s", http_outcome_text(r));
		return 0;
	}
	if (s < 100 || s > 599)
	{
		snprintf(error, cap, "not an HTTP status: %ld", s);
		return 0;
	}
	if (s == 200 || s == 201 || s == 202)
		return (int) s;
	if (s == 404 || s == 410)
	{
		p->gone = true;
		snprintf(error, cap, "subscription gone (%ld)", s);
	}
	else if (s == 429 || s >= 500)
	{
		p->retry_after_s = r->retry_after_s;
		snprintf(error, cap, s == 429 ? "HTTP 429: too many requests" : "HTTP %ld: push service error", s);
	}
	else if (s == 400)
		snprintf(error, cap, "HTTP 400: bad request");
	else if (s == 401 || s == 403)
		snprintf(error, cap, "HTTP %ld: VAPID refused", s);
	else if (s == 413)
		snprintf(error, cap, "HTTP 413: payload too large");
	else
		snprintf(error, cap, "HTTP %ld", s);
	return (int) s;
}

/* The request has ended (http_client.h's done). */
static void
answered(struct http_request *r)
{
	struct push *p = lws_container_of(r, struct push, http);
	char		error[DELIVERY_ERROR_MAX + 1];
	int			status = classify(p, error, sizeof(error));

	push_request_end(p, status, error);
}

/* The encrypted payload into p->req_body; its length, or 0 and *error. */
static size_t
encrypt_payload(struct push *p, const unsigned char *p256dh, const unsigned char *auth, const char **error)
{
	char	   *payload = push_payload(p);
	unsigned char *body = NULL;
	size_t		len = 0;

	if (payload == NULL)
		*error = "no payload";
	else if (strlen(payload) > WEBPUSH_PLAINTEXT_MAX)
		*error = "payload over the 3993 bytes of a Web Push message";
	else if (webpush_encrypt(p256dh, auth, (const unsigned char *) payload, strlen(payload), &body, &len) != 0)
		*error = "cannot encrypt for the subscription's keys";
	free(payload);
	p->req_body = (char *) body;
	return body ? len : 0;
}

void
webpush_send(struct push *p)
{
	unsigned char p256dh[WEBPUSH_KEY_LEN], auth[WEBPUSH_AUTH_LEN];
	const char *error = NULL;
	const char *url = NULL;
	char	   *authorization = NULL;
	size_t		len = 0;

	p->gone = false;
	p->retry_after_s = -1;
	if (!vapid_loaded())
		error = "Web Push is off: no vapid_key_file";
	else if ((url = parse_token(p->token, p256dh, auth, &error)) != NULL &&
			 (len = encrypt_payload(p, p256dh, auth, &error)) > 0 &&
			 (authorization = vapid_authorization(url)) == NULL)
		error = "cannot make the VAPID Authorization for the endpoint";
	if (error)
	{
		push_request_end(p, 0, error);
		return;
	}
	add_headers(p, authorization);
	free(authorization);
	p->url = xstrdup(url);
	p->http = (struct http_request) {
		.url = p->url, .headers = p->headers, .body = p->req_body, .body_len = len,
		.timeout_ms = (long) cf_push_timeout * 1000, .max_response = (size_t) cf_max_response,
		.ca_file = cf_push_ca_file && *cf_push_ca_file ? cf_push_ca_file : NULL,
		.direct = true, .done = answered,
	};
	if (http_send(&p->http) != 0)
		push_request_end(p, 0, "cannot start the request");
}

void
webpush_abort(struct push *p)
{
	http_abort(&p->http);
}
