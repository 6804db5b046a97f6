/*
 * events.h: the events of channel chat_events, every one built in events.c.
 *
 * A payload is one envelope or a JSON array of envelopes (the publisher's
 * batches). An envelope is exactly {"to":[u1,u2,...],"ev":EVENT}, user ids
 * ascending, or {"to":null,"ev":...} for a broadcast (resync); EVENT is the
 * object clients receive.
 */
#ifndef CHAT_EVENTS_H
#define CHAT_EVENTS_H

#include "chat.h"

#include "lib/stringinfo.h"

#define CHAT_EVENT_CHANNEL		"chat_events"
#define CHAT_EVENT_VERSION		1
/* NOTIFY refuses payloads of 8000 bytes or more */
#define CHAT_NOTIFY_MAX			7999
/*
 * The most a payload may hold before sealing (seal.c): "c1.<id>." and the
 * base64 of nonce, ciphertext and tag fit CHAT_NOTIFY_MAX for any key id.
 */
#define CHAT_PLAIN_MAX			5960

/* Events of the current transaction, published if and when it commits. */
extern void ChatEventMessage(const char *type, const ChatMessage *msg, Jsonb *json,
							 const int64 *to, int nto);
extern void ChatEventRead(int64 chat_id, int64 user_id, int64 seq, const int64 *to, int nto);
extern void ChatEventTyping(int64 chat_id, int64 user_id, const int64 *to, int nto);
extern void ChatEventPresence(int64 user_id, bool online, TimestampTz last_seen, int64 version);
extern void ChatEventBlock(int64 blocker, int64 blocked);

/* The resync broadcast (publisher.c sends it in its own transaction). */
extern char *ChatEventResync(const char *reason);

/* Joining envelopes into one payload of at most CHAT_PLAIN_MAX bytes. */
extern bool ChatEventBatchAdd(StringInfo batch, int n, const char *env, uint32 len);

/* NOTIFY chat_events in the current transaction (sealed). */
extern void ChatNotifyDirect(const char *payload);

/* seal.c: the sealed form of a payload of at most CHAT_PLAIN_MAX bytes */
extern char *ChatSeal(const char *plain);

/* The members of a chat (ascending). */
extern int	ChatMemberIds(int64 chat_id, int64 **users);

#endif							/* CHAT_EVENTS_H */
