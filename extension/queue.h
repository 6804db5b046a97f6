/*
 * queue.h: deferred publication. The shared-memory queue of each database
 * (queue.c: slots, claiming, the ring), the staging of a transaction's
 * events (staging.c) and the publisher worker that drains it (publisher.c).
 */
#ifndef CHAT_QUEUE_H
#define CHAT_QUEUE_H

#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"

/* one slot, and one ring of chat.event_queue_size, per database */
#define CHAT_QUEUE_DATABASES 4

typedef struct ChatQueueSlot ChatQueueSlot;

/* queue.c: set-up (from _PG_init while preloading) */
extern void ChatQueueInit(void);
extern bool ChatQueueAvailable(void);

/* queue.c: slots */
extern ChatQueueSlot *ChatQueueLookup(Oid dboid);
extern ChatQueueSlot *ChatQueueClaim(Oid dboid, bool *claimed);
extern void ChatQueueRelease(ChatQueueSlot *slot);

/* queue.c: the ring (senders) */
extern bool ChatQueueReserve(ChatQueueSlot *slot, char *const *payloads, int n, uint64 *offsets);
extern void ChatQueueSettle(ChatQueueSlot *slot, const uint64 *offsets, int n, bool commit,
							bool dropped);

/* queue.c: the publisher's side */
extern bool ChatQueueCountStart(Oid dboid);
extern ChatQueueSlot *ChatQueueAttach(Oid dboid);
extern void ChatQueueDetach(ChatQueueSlot *slot);
extern int	ChatQueueTake(ChatQueueSlot *slot, StringInfo batch);
extern bool ChatQueueResyncDue(ChatQueueSlot *slot);

/* staging.c */
extern void ChatQueueStage(const char *payload);

/* publisher.c */
extern bool ChatPublisherStart(Oid dboid);
extern PGDLLEXPORT void chat_publisher_main(Datum main_arg);

#endif							/* CHAT_QUEUE_H */
