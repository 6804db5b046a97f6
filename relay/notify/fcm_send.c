/*
 * fcm_send.c: a push to an Android device through FCM HTTP v1
 * (fcm_send.h, push.h).
 *
 * The message carries push_payload()'s keys as data (FCM wants strings),
 * and for an alert a notification too, so that Android shows it when the
 * app is not running; a clear is data only: the app removes the chat's
 * notification itself, silently. collapse_key and tag are the chat's, so
 * a newer alert of a chat replaces the older one.
 *
 * Never logged or reported: the device token, the access token, the text,
 * anything FCM sent but its status and error code.
 */
#include "fcm_send.h"

#include "push_request.h"

#include "alloc.h"
#include "config.h"
#include "fcm_auth.h"
#include "log.h"
#include "push.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
fcm_on(void)
{
	return fcm_auth_loaded();
}

int
fcm_configure(void)
{
	if (cf_fcm_service_account_file == NULL || *cf_fcm_service_account_file == '\0')
	{
		fcm_auth_free();
		return 0;
	}
	return fcm_auth_load(cf_fcm_service_account_file);
}

void
fcm_free(void)
{
	fcm_auth_free();
}

/* push_payload's keys, every value as a string (FCM's data is string to string). */
static json_t *
data_of(const struct push *p)
{
	char	   *text = push_payload(p);
	json_t	   *doc = text ? json_loads(text, 0, NULL) : NULL;
	json_t	   *data = json_object();
	const char *k;
	json_t	   *v;

	json_object_foreach(doc, k, v)
	{
		char	   *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

		json_object_set_new(data, k, json_string(s ? s : json_string_value(v)));
		free(s);
	}
	json_decref(doc);
	free(text);
	return data;
}

/* The request's body (malloc'd), or NULL when the device has no token. */
static char *
message_of(const struct push *p)
{
	const char *token = json_string_value(json_object_get(p->token, "token"));
	char		ttl[24];
	json_t	   *android, *msg;
	char	   *body;

	if (token == NULL || *token == '\0')
		return NULL;
	snprintf(ttl, sizeof(ttl), "%ds", p->ttl_s);
	android = json_pack("{s:s, s:s, s:s}", "collapse_key", p->collapse,
						"priority", p->alert ? "HIGH" : "NORMAL", "ttl", ttl);
	msg = json_pack("{s:s, s:o, s:o}", "token", token, "data", data_of(p), "android", android);
	if (p->alert)
	{
		json_object_set_new(android, "notification",
							json_pack("{s:s, s:s, s:s, s:i}", "title", p->title ? p->title : "",
									  "body", p->body ? p->body : "", "tag", p->collapse,
									  "notification_count", p->badge));
		json_object_set_new(msg, "notification", json_pack("{s:s, s:s}", "title", p->title ? p->title : "",
														   "body", p->body ? p->body : ""));
	}
	msg = json_pack("{s:o}", "message", msg);
	body = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	return body;
}

/* Copy an error code FCM sent, letters, digits and _ only (it is logged). */
static void
copy_code(char *out, size_t cap, const char *code)
{
	size_t		n = 0;

	for (; code && *code && n + 1 < cap; code++)
		if ((*code >= 'A' && *code <= 'Z') || (*code >= 'a' && *code <= 'z') || (*code >= '0' && *code <= '9') || *code == '_')
			out[n++] = *code;
	out[n] = '\0';
}

/*
 * FCM's error body {"error": {"status", "message", "details": [{"errorCode"}
 * or {"fieldViolations": [{"field"}]}]}}: its code in code (errorCode
 * before status), and whether it names the device token.
 */
static bool
error_of(const struct http_request *r, char *code, size_t cap)
{
	json_t	   *doc = json_loadb(r->answer, r->answer_len, 0, NULL);
	json_t	   *err = json_object_get(doc, "error"), *d, *f;
	const char *msg = json_string_value(json_object_get(err, "message"));
	const char *c = json_string_value(json_object_get(err, "status"));
	bool		names_token = msg && strstr(msg, "registration token") != NULL;
	size_t		i, j;

	json_array_foreach(json_object_get(err, "details"), i, d)
	{
		if (json_is_string(json_object_get(d, "errorCode")))
			c = json_string_value(json_object_get(d, "errorCode"));
		json_array_foreach(json_object_get(d, "fieldViolations"), j, f)
			names_token |= json_is_string(json_object_get(f, "field"))
			&& strcmp(json_string_value(json_object_get(f, "field")), "message.token") == 0;
	}
	/* cut off past HTTP_ANSWER_MAX: the code may still be read */
	copy_code(code, cap, c ? c : doc == NULL && strstr(r->answer, "UNREGISTERED") ? "UNREGISTERED" : "");
	json_decref(doc);
	return names_token;
}

#define BEARER "authorization: Bearer "

/* The access token p was sent with (in its headers). */
static const char *
bearer_of(const struct push *p)
{
	for (const struct curl_slist *h = p->headers; h; h = h->next)
		if (strncmp(h->data, BEARER, strlen(BEARER)) == 0)
			return h->data + strlen(BEARER);
	return NULL;
}

/* FCM's answer: the status and error p is reported with, p->gone and retry_after_s set. */
static int
classify(struct push *p, char *error, size_t cap)
{
	const struct http_request *r = &p->http;
	char		code[48];
	bool		names_token;

	*error = '\0';
	if (r->outcome != HTTP_ANSWERED)
	{
		snprintf(error, cap, "FCM: %s", http_outcome_text(r));
		return 0;
	}
	if (r->status == 200)
		return 200;
	names_token = error_of(r, code, sizeof(code));
	snprintf(error, cap, "FCM HTTP %ld%s%s", r->status, *code ? " " : "", code);
	if (r->status == 404 || strcmp(code, "UNREGISTERED") == 0)
		p->gone = true;
	/*
	 * 400 INVALID_ARGUMENT naming the token: FCM says it is no registration
	 * token at all (malformed, truncated, another project's): it never will
	 * be, so the device goes. Another 400 is our message's fault: kept.
	 */
	else if (r->status == 400 && strcmp(code, "INVALID_ARGUMENT") == 0 && names_token)
		p->gone = true;
	else if (r->status == 401)
		fcm_auth_invalidate(bearer_of(p));
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

/* POST p with the access token. */
static void
post(struct push *p, const char *token)
{
	char	   *auth;

	xasprintf(&auth, BEARER "%s", token);
	p->headers = curl_slist_append(NULL, auth);
	free(auth);
	p->headers = curl_slist_append(p->headers, "content-type: application/json; charset=UTF-8");
	p->headers = curl_slist_append(p->headers, "Expect:");
	p->http = (struct http_request) {
		.url = p->url, .headers = p->headers, .body = p->req_body, .body_len = strlen(p->req_body),
		.timeout_ms = (long) cf_push_timeout * 1000, .max_response = (size_t) cf_max_response,
		.ca_file = cf_push_ca_file && *cf_push_ca_file ? cf_push_ca_file : NULL,
		.direct = true, .keep_answer = true, .done = answered,
	};
	if (http_send(&p->http) != 0)
		push_request_end(p, 0, "FCM: cannot start the request");
}

/* fcm_auth's answer to a push that waited for a token. */
static void
token_ready(void *arg, const char *token, const char *error)
{
	struct push *p = arg;

	p->waiting = false;
	if (token)
		post(p, token);
	else
		push_request_end(p, 0, error);
}

void
fcm_send(struct push *p)
{
	const char *token;

	p->gone = false;
	p->retry_after_s = -1;
	p->waiting = false;
	if (!fcm_on())
	{
		push_request_end(p, 0, "FCM is not configured (fcm_service_account_file)");
		return;
	}
	p->req_body = message_of(p);
	if (p->req_body == NULL)
	{
		/* nothing to send it to, ever */
		p->gone = true;
		push_request_end(p, 0, "FCM: the device has no token");
		return;
	}
	xasprintf(&p->url, "%s/v1/projects/%s/messages:send", cf_fcm_url, fcm_auth_project());
	token = fcm_auth_token(token_ready, p);
	if (token)
		post(p, token);
	else
		p->waiting = true;
}

void
fcm_abort(struct push *p)
{
	if (!p->waiting)
	{
		http_abort(&p->http);
		return;
	}
	fcm_auth_cancel(p);
	p->waiting = false;
	push_request_end(p, 0, "stopped by chat-notify's shutdown while waiting for an FCM access token");
}
