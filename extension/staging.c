/*
 * staging.c: in deferred mode a transaction's events leave its commit path
 * through the shared queue (queue.c), drained by a publisher worker
 * (publisher.c).
 *
 * NOTIFY takes a cluster-wide lock at commit and holds it through the WAL
 * flush, so notifying transactions commit one at a time. Here a
 * transaction's events are staged in backend memory; at PRE_COMMIT they are
 * copied into the database's ring (reserved: the only step that may fail,
 * and failing there is harmless), at COMMIT they are marked ready (no lock,
 * nothing that can fail), at ABORT marked dead. A chat's events, ordered by
 * its row lock (held until after COMMIT), keep their order.
 *
 * A full ring never blocks a sender: the transaction's events are dropped and
 * the publisher announces `resync` once the dropping transaction committed.
 */
#include "chat.h"
#include "events.h"
#include "queue.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/memutils.h"

/* One staged event. */
typedef struct Staged
{
	char	   *payload;
	int			nest_level;
} Staged;

static List *staged = NIL;		/* of Staged *, in TopTransactionContext */
static uint64 *reserved = NULL; /* ring offsets reserved at PRE_COMMIT */
static int	nreserved = 0;
static int	reserved_cap = 0;
static ChatQueueSlot *reserved_slot = NULL;
static bool dropped = false;	/* the ring was full at PRE_COMMIT */
static bool callbacks_registered = false;

/*
 * The queue slot of this database, claimed (and its publisher started) on
 * first use; NULL when every slot is taken or no worker can be started.
 */
static ChatQueueSlot *
SlotForDatabase(void)
{
	bool		claimed;
	ChatQueueSlot *slot = ChatQueueClaim(MyDatabaseId, &claimed);

	if (slot != NULL && claimed && !ChatPublisherStart(MyDatabaseId))
	{
		ereport(WARNING,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("chat: could not start the event publisher, events are sent with NOTIFY"),
				 errhint("Raise max_worker_processes.")));
		ChatQueueRelease(slot);
		return NULL;
	}
	return slot;
}

/* PRE_COMMIT: copy the staged events into the ring, or NOTIFY without one. */
static void
ReserveStaged(void)
{
	int			n = list_length(staged);
	char	  **payloads;
	ListCell   *lc;
	int			i = 0;

	reserved_slot = SlotForDatabase();
	if (reserved_slot == NULL)
	{
		/* no publisher: NOTIFY, still before commit */
		foreach(lc, staged)
			ChatNotifyDirect(((Staged *) lfirst(lc))->payload);
		staged = NIL;
		return;
	}
	if (n > reserved_cap)
	{
		reserved_cap = Max(16, n);
		if (reserved)
			pfree(reserved);
		reserved = MemoryContextAlloc(TopMemoryContext, sizeof(uint64) * reserved_cap);
	}
	payloads = palloc(sizeof(char *) * n);
	foreach(lc, staged)
		payloads[i++] = ((Staged *) lfirst(lc))->payload;
	if (ChatQueueReserve(reserved_slot, payloads, n, reserved))
		nreserved = n;
	else
		dropped = true;
	pfree(payloads);
}

/* Forget everything of the ending transaction. */
static void
ResetTransactionState(void)
{
	staged = NIL;
	nreserved = 0;
	reserved_slot = NULL;
	dropped = false;
}

/* Transaction callback: reserve before commit, settle after. */
static void
QueueXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (staged != NIL)
				ReserveStaged();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
			if (reserved_slot != NULL)
				ChatQueueSettle(reserved_slot, reserved, nreserved,
								event == XACT_EVENT_COMMIT, dropped);
			ResetTransactionState();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (staged != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has published chat events")));
			break;
		default:
			break;
	}
}

/* Subtransaction callback: a rolled-back savepoint drops its own events. */
static void
QueueSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	List	   *kept = NIL;
	ListCell   *lc;

	if (staged == NIL)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		/* the aborting subtransaction's memory is about to go */
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		foreach(lc, staged)
			if (((Staged *) lfirst(lc))->nest_level < level)
				kept = lappend(kept, lfirst(lc));
		staged = kept;
		MemoryContextSwitchTo(old);
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, staged)
			if (((Staged *) lfirst(lc))->nest_level >= level)
				((Staged *) lfirst(lc))->nest_level = level - 1;
	}
}

/* Stage an event of the current transaction for deferred publication. */
void
ChatQueueStage(const char *payload)
{
	MemoryContext old;
	Staged	   *s;

	if (!callbacks_registered)
	{
		RegisterXactCallback(QueueXactCallback, NULL);
		RegisterSubXactCallback(QueueSubXactCallback, NULL);
		callbacks_registered = true;
	}
	/* start the publisher now, while an error is still harmless */
	if (staged == NIL)
		(void) SlotForDatabase();
	old = MemoryContextSwitchTo(TopTransactionContext);
	s = palloc(sizeof(Staged));
	s->payload = pstrdup(payload);
	s->nest_level = GetCurrentTransactionNestLevel();
	staged = lappend(staged, s);
	MemoryContextSwitchTo(old);
}
