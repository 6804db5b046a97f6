/*
 * apns_send.c: a push to an iOS device through APNs (apns_send.h, push.h).
 *
 * An alert is apns-push-type alert, priority 10, kept by APNs until
 * now + ttl; a clear is a background push (content-available, priority 5,
 * the only priority APNs takes for it), expiration 0: worth nothing later.
 * apns-collapse-id and thread-id are the chat's, so a newer alert of a
 * chat replaces the older one. push_payload()'s keys ride at the top
 * level beside "aps", where the app reads them.
 *
 * Never logged or reported: the device token, the provider token, the
 * text, anything APNs sent but its status and reason.
 */
#include "apns_send.h"

#include "push_request.h"

#include "alloc.h"
#include "apns_token.h"
#include "config.h"
#include "log.h"
#include "push.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool
apns_on(void)
{
	return apns_token_loaded();
}

int
apns_configure(void)
{
	if (cf_apns_key_file == NULL || *cf_apns_key_file == '\0')
	{
		apns_token_free();
		return 0;
	}
	return apns_token_load(cf_apns_key_file, cf_apns_key_id, cf_apns_team_id, cf_apns_token_refresh);
}

void
apns_free(void)
{
	apns_token_free();
}

/* The request's body (malloc'd). */
static char *
body_of(const struct push *p)
{
	char	   *text = push_payload(p);
	json_t	   *doc = text ? json_loads(text, 0, NULL) : NULL;
	json_t	   *top = json_is_object(doc) ? doc : json_object();
	json_t	   *aps;
	char	   *body;

	if (p->alert)
		aps = json_pack("{s:{s:s, s:s}, s:i, s:s, s:s}", "alert", "title", p->title ? p->title : "",
						"body", p->body ? p->body : "", "badge", p->badge, "sound", "default",
						"thread-id", p->collapse);
	else
		aps = json_pack("{s:i, s:i}", "content-available", 1, "badge", p->badge);
	if (top != doc)
		json_decref(doc);
	json_object_set_new(top, "aps", aps);
	body = json_dumps(top, JSON_COMPACT);
	json_decref(top);
	free(text);
	return body;
}

/* The device token if it is hex as APNs gives it (64 digits today, up to 200), else NULL. */
static const char *
device_token(const struct push *p)
{
	const char *t = json_string_value(json_object_get(p->token, "token"));
	size_t		n = t ? strlen(t) : 0;

	if (n < 32 || n > 200 || strspn(t, "0123456789abcdefABCDEF") != n)
		return NULL;
	return t;
}

/* The origin p goes to, by the environment its app was built for. */
static const char *
origin_of(const struct push *p)
{
	const char *env = json_string_value(json_object_get(p->token, "environment"));

	return env && strcmp(env, "sandbox") == 0 ? cf_apns_sandbox_url : cf_apns_url;
}

#define BEARER "authorization: bearer "

/* The provider token p was sent with (in its headers). */
static const char *
bearer_of(const struct push *p)
{
	for (const struct curl_slist *h = p->headers; h; h = h->next)
		if (strncmp(h->data, BEARER, strlen(BEARER)) == 0)
			return h->data + strlen(BEARER);
	return NULL;
}

/* APNs's {"reason": …}, letters and digits only (it is logged). */
static void
reason_of(const struct http_request *r, char *out, size_t cap)
{
	json_t	   *doc = json_loadb(r->answer, r->answer_len, 0, NULL);
	const char *s = json_string_value(json_object_get(doc, "reason"));
	size_t		n = 0;

	for (; s && *s && n + 1 < cap; s++)
		if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9'))
			out[n++] = *s;
	out[n] = '\0';
	json_decref(doc);
}

/* APNs's answer: the status and error p is reported with, p->gone and retry_after_s set. */
static int
classify(struct push *p, char *error, size_t cap)
{
	const struct http_request *r = &p->http;
	char		reason[48];

	*error = '\0';
	if (r->outcome != HTTP_ANSWERED)
	{
		snprintf(error, cap, "APNs: %s", http_outcome_text(r));
		return 0;
	}
	if (r->status == 200)
		return 200;
	reason_of(r, reason, sizeof(reason));
	snprintf(error, cap, "APNs HTTP %ld%s%s", r->status, *reason ? " " : "", reason);
	if (r->status == 410
		|| (r->status == 400 && (strcmp(reason, "BadDeviceToken") == 0 || strcmp(reason, "DeviceTokenNotForTopic") == 0)))
		p->gone = true;
	else if (r->status == 403 && strcmp(reason, "ExpiredProviderToken") == 0)
		apns_token_expired(bearer_of(p), time(NULL));
	else if (r->status == 429 || r->status >= 500)
		p->retry_after_s = r->retry_after_s;
	return r->status < 100 || r->status > 599 ? 0 : (int) r->status;
}

static void
answered(struct http_request *r)
{
	struct push *p = lws_container_of(r, struct push, http);
	char		error[DELIVERY_ERROR_MAX + 1];
	int			status = classify(p, error, sizeof(error));

	push_request_end(p, status, error);
}

/* The headers of p, signed with jwt. */
static void
headers_of(struct push *p, const char *jwt, time_t now)
{
	char		buf[32];
	char	   *auth;

	xasprintf(&auth, BEARER "%s", jwt);
	p->headers = curl_slist_append(p->headers, auth);
	free(auth);
	push_header(p, "apns-topic", cf_apns_topic);
	push_header(p, "apns-push-type", p->alert ? "alert" : "background");
	push_header(p, "apns-priority", p->alert ? "10" : "5");
	push_header(p, "apns-collapse-id", p->collapse);
	snprintf(buf, sizeof(buf), "%" PRId64, p->alert && p->ttl_s > 0 ? (int64_t) now + p->ttl_s : (int64_t) 0);
	push_header(p, "apns-expiration", buf);
	push_header(p, "content-type", "application/json");
}

void
apns_send(struct push *p)
{
	time_t		now = time(NULL);
	const char *dev = device_token(p);
	const char *jwt = apns_on() ? apns_token_get(now) : NULL;

	p->gone = false;
	p->retry_after_s = -1;
	if (!apns_on() || jwt == NULL)
	{
		push_request_end(p, 0, apns_on() ? "APNs: no provider token could be signed" : "APNs is not configured (apns_key_file)");
		return;
	}
	if (dev == NULL)
	{
		/* not a token APNs ever gave: it never will be one */
		p->gone = true;
		push_request_end(p, 0, "APNs: the device's token is not hex");
		return;
	}
	xasprintf(&p->url, "%s/3/device/%s", origin_of(p), dev);
	p->req_body = body_of(p);
	headers_of(p, jwt, now);
	p->http = (struct http_request) {
		.url = p->url, .headers = p->headers, .body = p->req_body, .body_len = strlen(p->req_body),
		.timeout_ms = (long) cf_push_timeout * 1000, .max_response = (size_t) cf_max_response,
		.ca_file = cf_push_ca_file && *cf_push_ca_file ? cf_push_ca_file : NULL,
		.http2 = true, .direct = true, .keep_answer = true, .done = answered,
	};
	if (http_send(&p->http) != 0)
		push_request_end(p, 0, "APNs: cannot start the request");
}

void
apns_abort(struct push *p)
{
	http_abort(&p->http);
}
