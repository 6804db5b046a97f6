/*
 * maintain.h: partition maintenance as the rest of the extension sees it:
 * the run (maintain.c), its background workers (worker.c) and the lock
 * waits it allows itself (locks.c).
 */
#ifndef CHAT_MAINTAIN_H
#define CHAT_MAINTAIN_H

#include "postgres.h"

#include "storage/lockdefs.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* maintain.c: partition maintenance (premake, rescue, retention) */
typedef void (*ChatCommitHook) (void *arg);

typedef struct ChatMaintainCounts
{
	int			created;
	int			dropped;
	int			archived;
	int			deferred;
	int64		moved;
	int			attachment_keys;
} ChatMaintainCounts;

extern Jsonb *ChatMaintain(TimestampTz at, ChatCommitHook commit, void *commit_arg,
						   MemoryContext keep, ChatMaintainCounts *counts);

/* worker.c */
extern void ChatRegisterMaintenanceLauncher(void);

/* locks.c: lock acquisition that never sits in a lock queue for long */
extern bool ChatLockWithin(Oid relid, LOCKMODE mode, int timeout_ms);
extern void ChatSleepMs(int ms);

#endif							/* CHAT_MAINTAIN_H */
