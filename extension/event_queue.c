/*
 * event_queue.c: events leave the sender's commit path through a queue in
 * shared memory, drained by a publisher worker (publisher.c).
 *
 * NOTIFY takes a cluster-wide lock at commit and holds it through the WAL
 * flush, so notifying transactions commit one at a time. In deferred mode a
 * transaction's events are staged in backend memory; at PRE_COMMIT they are
 * copied into the database's ring (reserved: the only step that may fail,
 * and failing there is harmless), at COMMIT they are marked ready (no lock,
 * nothing that can fail), at ABORT marked dead. The publisher sends ready
 * events in ring order, many per NOTIFY, and stops at the first entry still
 * reserved, so a chat's events (ordered by its row lock, which is held until
 * after COMMIT) keep their order.
 *
 * A full ring never blocks a sender: the transaction's events are dropped and
 * the publisher announces `resync` once the dropping transaction committed.
 * Memory: chat.event_queue_size per database, at most CHAT_QUEUE_DATABASES.
 */
#include "chat.h"
#include "events.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/memutils.h"

#define CQ_RESERVED 1
#define CQ_READY	2
#define CQ_DEAD		3
#define CQ_PAD		4

typedef struct QueueEntry
{
	uint32		len;			/* payload bytes */
	volatile uint32 state;
} QueueEntry;

#define ENTRY_SIZE(len) MAXALIGN(sizeof(QueueEntry) + (len) + 1)

static ChatQueueShared *queue = NULL;
static char *rings = NULL;
static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

/* This backend's staged and reserved events. */
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

/* Bytes of shared memory the queue needs. */
static Size
QueueShmemSize(void)
{
	return add_size(MAXALIGN(sizeof(ChatQueueShared)),
					mul_size((Size) chat_event_queue_size * 1024, CHAT_QUEUE_DATABASES));
}

/* shmem_request_hook: reserve the queue's memory and its lock. */
static void
QueueShmemRequest(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(QueueShmemSize());
	RequestNamedLWLockTranche("chat_events", 1);
}

/* shmem_startup_hook: attach to (or create) the queue. */
static void
QueueShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	queue = ShmemInitStruct("chat event queue", QueueShmemSize(), &found);
	if (!found)
	{
		memset(queue, 0, sizeof(ChatQueueShared));
		queue->lock = &(GetNamedLWLockTranche("chat_events"))->lock;
		queue->ring_size = MAXALIGN_DOWN((Size) chat_event_queue_size * 1024);
	}
	rings = (char *) queue + MAXALIGN(sizeof(ChatQueueShared));
	LWLockRelease(AddinShmemInitLock);
}

/* Empty a slot and give it to a database (queue lock held exclusively). */
void
ChatQueueSlotInit(ChatQueueSlot *slot, Oid dboid)
{
	memset(slot, 0, sizeof(ChatQueueSlot));
	pg_atomic_init_u32(&slot->resync_pending, 0);
	slot->dboid = dboid;
}

/* Called from _PG_init while preloading. */
void
ChatQueueInit(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = QueueShmemRequest;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = QueueShmemStartup;
}

/* Is deferred publication available in this backend? */
bool
ChatQueueAvailable(void)
{
	return queue != NULL;
}

/* The ring of a slot. */
char *
ChatQueueRing(ChatQueueSlot *slot)
{
	return rings + (Size) (slot - queue->slots) * queue->ring_size;
}

/* Start the publisher worker of a database; false if no worker slot is free. */
static bool
StartPublisher(Oid dboid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "chat");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "chat_publisher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "chat publisher for database %u", dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "chat publisher");
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = 0;
	return RegisterDynamicBackgroundWorker(&worker, &handle);
}

/*
 * The queue slot of this database, claimed (and its publisher started) on
 * first use; NULL when every slot is taken or no worker can be started.
 */
static ChatQueueSlot *
SlotForDatabase(Oid dboid, bool create)
{
	ChatQueueSlot *free_slot = NULL;
	ChatQueueSlot *slot = NULL;
	int			i;

	LWLockAcquire(queue->lock, LW_SHARED);
	for (i = 0; i < CHAT_QUEUE_DATABASES; i++)
		if (queue->slots[i].dboid == dboid)
			slot = &queue->slots[i];
	LWLockRelease(queue->lock);
	if (slot != NULL || !create)
		return slot;

	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	for (i = 0; i < CHAT_QUEUE_DATABASES && slot == NULL; i++)
	{
		if (queue->slots[i].dboid == dboid)
			slot = &queue->slots[i];
		else if (free_slot == NULL && queue->slots[i].dboid == InvalidOid)
			free_slot = &queue->slots[i];
	}
	if (slot == NULL && free_slot != NULL)
	{
		ChatQueueSlotInit(free_slot, dboid);
		slot = free_slot;
	}
	LWLockRelease(queue->lock);
	if (slot != NULL && slot == free_slot && !StartPublisher(dboid))
	{
		ereport(WARNING,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("chat: could not start the event publisher, events are sent with NOTIFY"),
				 errhint("Raise max_worker_processes.")));
		LWLockAcquire(queue->lock, LW_EXCLUSIVE);
		slot->dboid = InvalidOid;
		LWLockRelease(queue->lock);
		return NULL;
	}
	return slot;
}

/* Copy a staged event into the ring at PRE_COMMIT; false if it is full. */
static bool
Reserve(ChatQueueSlot *slot, const char *payload)
{
	char	   *ring = ChatQueueRing(slot);
	Size		size = queue->ring_size;
	uint32		len = strlen(payload);
	Size		need = ENTRY_SIZE(len);
	Size		pos = slot->head % size;
	Size		pad = (size - pos < need) ? size - pos : 0;
	QueueEntry *e;

	if (slot->head + pad + need - slot->tail > size)
		return false;
	if (pad > 0)
	{
		e = (QueueEntry *) (ring + pos);
		e->len = pad - sizeof(QueueEntry);
		e->state = CQ_PAD;
		slot->head += pad;
		pos = 0;
	}
	e = (QueueEntry *) (ring + pos);
	e->len = len;
	memcpy((char *) (e + 1), payload, len + 1);
	e->state = CQ_RESERVED;
	if (nreserved == reserved_cap)
	{
		reserved_cap = Max(16, reserved_cap * 2);
		reserved = reserved
			? repalloc(reserved, sizeof(uint64) * reserved_cap)
			: MemoryContextAlloc(TopMemoryContext, sizeof(uint64) * reserved_cap);
	}
	reserved[nreserved++] = slot->head;
	slot->head += need;
	return true;
}

/* Mark this transaction's reserved entries ready or dead and wake the publisher. */
static void
Settle(uint32 state)
{
	int			i;

	if (reserved_slot == NULL)
		return;
	for (i = 0; i < nreserved; i++)
	{
		QueueEntry *e = (QueueEntry *) (ChatQueueRing(reserved_slot) +
										reserved[i] % queue->ring_size);

		pg_write_barrier();
		e->state = state;
	}
	if (dropped && state == CQ_READY)
		pg_atomic_write_u32(&reserved_slot->resync_pending, 1);
	pg_write_barrier();
	if (reserved_slot->publisher_latch != NULL)
		SetLatch(reserved_slot->publisher_latch);
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
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (staged == NIL)
				return;
			reserved_slot = SlotForDatabase(MyDatabaseId, true);
			if (reserved_slot == NULL)
			{
				/* no publisher: fall back to NOTIFY, still before commit */
				foreach(lc, staged)
					ChatNotifyDirect(((Staged *) lfirst(lc))->payload);
				staged = NIL;
				return;
			}
			LWLockAcquire(queue->lock, LW_EXCLUSIVE);
			foreach(lc, staged)
			{
				if (!Reserve(reserved_slot, ((Staged *) lfirst(lc))->payload))
				{
					dropped = true;
					break;
				}
			}
			if (dropped)
			{
				int			i;

				/* all or nothing: a partial transaction would mislead */
				for (i = 0; i < nreserved; i++)
					((QueueEntry *) (ChatQueueRing(reserved_slot) +
									 reserved[i] % queue->ring_size))->state = CQ_DEAD;
				reserved_slot->dropped_events += list_length(staged);
				nreserved = 0;
			}
			LWLockRelease(queue->lock);
			break;
		case XACT_EVENT_COMMIT:
			Settle(CQ_READY);
			ResetTransactionState();
			break;
		case XACT_EVENT_ABORT:
			Settle(CQ_DEAD);
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
		(void) SlotForDatabase(MyDatabaseId, true);
	old = MemoryContextSwitchTo(TopTransactionContext);
	s = palloc(sizeof(Staged));
	s->payload = pstrdup(payload);
	s->nest_level = GetCurrentTransactionNestLevel();
	staged = lappend(staged, s);
	MemoryContextSwitchTo(old);
}

/* The shared queue, for the publisher. */
ChatQueueShared *
ChatQueue(void)
{
	return queue;
}

/*
 * Take ready events from the ring, in order, into one payload of at most
 * CHAT_NOTIFY_MAX bytes (ChatEventBatchAdd). Stops at the first entry not
 * yet settled. Returns the number of events taken.
 */
int
ChatQueueTake(ChatQueueSlot *slot, StringInfo batch)
{
	char	   *ring = ChatQueueRing(slot);
	Size		size = queue->ring_size;
	int			n = 0;

	resetStringInfo(batch);
	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	while (slot->tail < slot->head)
	{
		QueueEntry *e = (QueueEntry *) (ring + slot->tail % size);
		uint32		state = e->state;

		pg_read_barrier();
		if (state == CQ_RESERVED)
			break;
		if (state == CQ_READY)
		{
			if (!ChatEventBatchAdd(batch, n, (char *) (e + 1), e->len))
				break;
			n++;
		}
		slot->tail += (state == CQ_PAD) ? sizeof(QueueEntry) + e->len : ENTRY_SIZE(e->len);
	}
	slot->published_events += n;
	LWLockRelease(queue->lock);
	return n;
}

PG_FUNCTION_INFO_V1(publisher_status);

/* publisher_status() → jsonb: mode, queue size, backlog and counters of this database */
Datum
publisher_status(PG_FUNCTION_ARGS)
{
	JsonbParseState *st = NULL;
	ChatQueueSlot *slot = queue ? SlotForDatabase(MyDatabaseId, false) : NULL;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	JbBool(&st, "preloaded", queue != NULL);
	JbText(&st, "mode", (queue != NULL && chat_event_mode == CHAT_EVENTS_DEFERRED) ? "deferred" : "direct");
	if (queue != NULL)
	{
		JbInt8(&st, "queue_bytes", (int64) queue->ring_size);
		LWLockAcquire(queue->lock, LW_SHARED);
		JbInt8(&st, "pending_bytes", slot ? (int64) (slot->head - slot->tail) : 0);
		JbInt8(&st, "published_events", slot ? (int64) slot->published_events : 0);
		JbInt8(&st, "dropped_events", slot ? (int64) slot->dropped_events : 0);
		JbInt8(&st, "publisher_pid", slot ? (int64) slot->publisher_pid : 0);
		LWLockRelease(queue->lock);
	}
	PG_RETURN_JSONB_P(JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL)));
}
