/*
 * notify.h: devices, notification preferences and webhooks
 * (docs/notifications.md): the checks they share, the webhook event types,
 * and the recording of webhook events by the API's write functions.
 */
#ifndef CHAT_NOTIFY_H
#define CHAT_NOTIFY_H

#include "chat.h"

/* Webhook event types: the bits of chat.webhooks.type_mask. */
#define CHAT_WH_MESSAGE			0x01
#define CHAT_WH_EDIT			0x02
#define CHAT_WH_DELETE			0x04
#define CHAT_WH_READ			0x08
#define CHAT_WH_CHAT_OPENED		0x10
#define CHAT_WH_BLOCKED			0x20
#define CHAT_WH_DISABLED		0x40
#define CHAT_WH_NTYPES			7
#define CHAT_WH_ALL				((1 << CHAT_WH_NTYPES) - 1)

/* The longest URL (webhooks, webpush endpoints), in bytes. */
#define CHAT_URL_MAX			2048

/* notify_checks.c */
extern const char *ChatWebhookTypeName(int bit);
extern int	ChatWebhookTypeBit(const char *name);
extern const char *ChatWebhookTypeList(void);
extern void ChatCheckUrl(const char *what, const char *url, bool https_only);
extern int	ChatBase64Decode(const char *s, bool url_alphabet, unsigned char *out, int outlen);
extern JsonbContainer *ChatJsonbObjectArg(Jsonb *jb, const char *what);
extern void ChatJsonbOnlyKeys(JsonbContainer *obj, const char *what, const char *const *keys);
extern JsonbValue *ChatJsonbField(JsonbContainer *obj, const char *key);
extern char *ChatJsonbString(JsonbContainer *obj, const char *what, const char *key, bool required);

/* webhook_record.c: webhook events of the current transaction */
extern void ChatWebhookMessage(const char *type, const ChatMessage *msg, Jsonb *json);
extern void ChatWebhookRead(int64 chat_id, int64 user_id, int64 seq);
extern void ChatWebhookChatOpened(int64 chat_id, const char *kind, bool has_context,
								  int64 context_id, int64 user_a, int64 user_b);
extern void ChatWebhookBlocked(int64 user_id, int64 other_id);
extern void ChatWebhookDisabled(int64 endpoint_id, const char *reason);
extern Oid	ChatWebhookDeliveriesOid(void);

#endif							/* CHAT_NOTIFY_H */
