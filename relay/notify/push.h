/*
 * push.h: the push channel (push.c: claim, take, report on dispatch.h) and
 * its three senders, one per kind of device:
 *   webpush_send.c  RFC 8030 + RFC 8291 (aes128gcm) + RFC 8292 (VAPID)
 *   fcm_send.c      FCM HTTP v1, OAuth2 token from a service account
 *   apns_send.c     APNs over HTTP/2, ES256 provider token
 *
 * push.c turns one claimed row (chat.push_claim: one device, one alert or
 * one silent clear) into a struct push with its words already chosen
 * (title, body, in the user's language) and calls the sender of its kind.
 * The sender sends it on http_client.h and calls
 * delivery_sent(&p->d, status, error) exactly once, later, after setting
 * gone (the device is no more: chat.push_result deletes it) and
 * retry_after_s (the service asked for a pause).
 */
#ifndef NOTIFY_PUSH_H
#define NOTIFY_PUSH_H

#include "dispatch.h"
#include "http_client.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum push_kind
{
	PUSH_WEBPUSH,
	PUSH_FCM,
	PUSH_APNS,
	PUSH_NKINDS
};

/* "webpush", "fcm", "apns": as chat.devices.kind, and in metrics and logs */
extern const char *const push_kind_names[PUSH_NKINDS];

/* The bytes of a preview in a push (the "about 1,000 characters"). */
#define PUSH_BODY_MAX 1000

struct push
{
	struct delivery d;			/* dispatch.h's; first */
	int64_t		send_id;		/* chat.push_sends */
	int64_t		device_id;
	int64_t		user_id;
	int64_t		chat_id;
	enum push_kind kind;
	bool		alert;			/* an alert (shown, sound) or a silent clear of the chat's notification */
	json_t	   *token;			/* the device's token as registered: webpush {endpoint, keys:
								 * {p256dh, auth}}, fcm {token}, apns {token, environment} */
	char	   *title;			/* alert: "User 42"; NULL for a clear */
	char	   *body;			/* alert: the preview or "3 new messages" (UTF-8, at most
								 * PUSH_BODY_MAX bytes); NULL for a clear */
	int			badge;			/* the user's unread_total at send time */
	int			count;			/* alert: the new messages it tells of */
	char		collapse[32];	/* one per chat: "chat-<chat_id>" (Topic, apns-collapse-id, collapse_key) */
	int			ttl_s;			/* how long the service may keep it */
	int			attempt;		/* 1 for the first */
	int64_t		started_us;		/* lws_now_usecs() at the send */
	/* set by the sender before delivery_sent */
	bool		gone;			/* 404/410, UNREGISTERED, BadDeviceToken: delete the device */
	long		retry_after_s;	/* the service's Retry-After, -1: none */
	/* the sender's */
	struct http_request http;
	struct curl_slist *headers;
	char	   *req_body;		/* what http.body points at */
	char	   *url;
	bool		waiting;		/* fcm: waiting for an access token */
};

/* Register the statements and the channel (before db_start). */
void		push_init(void);
/* Load (again, after SIGHUP) each kind's credentials; on when any is. 0, or -1 (logged). */
int			push_configure(void);
/* The start's log line: which kinds are on. */
void		push_log_kinds(void);
bool		push_on(void);
/* Pushes claimed and not yet reported. */
int			push_in_flight(void);
void		push_free(void);

/* The payload every kind carries (JSON text, malloc'd): what sw.js and the apps read. */
char	   *push_payload(const struct push *p);

/* Each sender: start sending p; abort: stop it now (delivery_sent is called before it returns). */
void		webpush_send(struct push *p);
void		webpush_abort(struct push *p);
void		fcm_send(struct push *p);
void		fcm_abort(struct push *p);
void		apns_send(struct push *p);
void		apns_abort(struct push *p);

#endif
