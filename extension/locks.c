/*
 * locks.c: a user's lock until commit (ChatLockUser), and lock acquisition
 * for maintenance that never sits in a lock queue for long.
 *
 * A lock request that waits in a relation's queue blocks every later request
 * that conflicts with it: an ACCESS EXCLUSIVE request queued behind one long
 * reader stops every new reader and writer of the table. So maintenance first
 * polls for the lock without queueing (ConditionalLockRelationOid also yields
 * to requests already waiting), and only for the second half of its budget
 * joins the queue, with a lock timeout of what is left. Whoever arrives while
 * it queues waits at most that long; a caller that fails gives up its other
 * locks, backs off and retries, and finally defers the step to the next round.
 */
#include "chat.h"
#include "maintain.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

/*
 * Serialize one user's calls of one kind (purpose: CHAT_LOCK_*) until
 * commit, so that a count taken under it (pending uploads, new chats)
 * cannot be passed by parallel calls. An advisory lock tag whose field4 is
 * distinct from pg_advisory_lock's 1 and 2.
 */
void
ChatLockUser(int64 user_id, uint16 purpose)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) ((uint64) user_id >> 32), (uint32) user_id, purpose);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* Sleep ms milliseconds on the latch, still answering interrupts. */
void
ChatSleepMs(int ms)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);

		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Wait in the lock queue for at most ms milliseconds. A lock timeout is
 * caught in a subtransaction; the lock, when granted, passes to the caller's
 * (sub)transaction.
 */
static bool
QueuedLock(Oid relid, LOCKMODE mode, int ms)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	int			saved = LockTimeout;
	volatile bool granted = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		LockTimeout = ms;
		LockRelationOid(relid, mode);
		LockTimeout = saved;
		ReleaseCurrentSubTransaction();
		granted = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		LockTimeout = saved;
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(edata);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return granted;
}

/*
 * Take a lock on relid within timeout_ms: poll without queueing for the
 * first half, then queue for the rest. Returns false when not granted.
 */
bool
ChatLockWithin(Oid relid, LOCKMODE mode, int timeout_ms)
{
	TimestampTz start = GetCurrentTimestamp();
	long		poll_ms = timeout_ms / 2;
	long		spent;

	for (;;)
	{
		if (ConditionalLockRelationOid(relid, mode))
			return true;
		spent = TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
		if (spent >= poll_ms)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	spent = TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
	return QueuedLock(relid, mode, (int) Max(timeout_ms - spent, 1));
}
