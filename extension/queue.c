/*
 * queue.c: the shared-memory event queue, one slot and ring per database
 * (at most CHAT_QUEUE_DATABASES, chat.event_queue_size each). Everything
 * that touches a slot or a ring is here: claiming slots, reserving and
 * settling entries for senders (staging.c), attaching and taking batches
 * for the publisher (publisher.c).
 *
 * A ring entry is reserved (copied in at PRE_COMMIT, under the queue lock),
 * then ready (COMMIT) or dead (ABORT), set without the lock: only its sender
 * writes it then, and the publisher reads its state behind a barrier. The
 * publisher sends ready entries in ring order and stops at the first entry
 * still reserved, so commit order is kept.
 */
#include "chat.h"
#include "events.h"
#include "queue.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/jsonb.h"

#define CQ_RESERVED 1
#define CQ_READY	2
#define CQ_DEAD		3
#define CQ_PAD		4

/*
 * A publisher start that does not connect (its database was dropped) is
 * counted; after this many the slot is freed and the worker stops for good
 * instead of restarting every second forever.
 */
#define CHAT_PUBLISHER_MAX_FAILED_STARTS 10

typedef struct QueueEntry
{
	uint32		len;			/* payload bytes */
	volatile uint32 state;
} QueueEntry;

#define ENTRY_SIZE(len) MAXALIGN(sizeof(QueueEntry) + (len) + 1)

struct ChatQueueSlot
{
	Oid			dboid;			/* InvalidOid: free */
	pid_t		publisher_pid;
	struct Latch *publisher_latch;
	uint64		head;			/* next byte to reserve, grows forever */
	uint64		tail;			/* next byte to publish */
	pg_atomic_uint32 resync_pending;	/* events were dropped */
	uint64		published_events;
	uint64		dropped_events;
	int			failed_starts;	/* publisher starts that did not connect */
};

typedef struct ChatQueueShared
{
	LWLock	   *lock;			/* every field of every slot but the above */
	Size		ring_size;		/* bytes per database */
	ChatQueueSlot slots[CHAT_QUEUE_DATABASES];
} ChatQueueShared;

static ChatQueueShared *queue = NULL;
static char *rings = NULL;
static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

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
static char *
Ring(ChatQueueSlot *slot)
{
	return rings + (Size) (slot - queue->slots) * queue->ring_size;
}

/* The entry at ring offset off (a position that grows forever). */
static QueueEntry *
EntryAt(ChatQueueSlot *slot, uint64 off)
{
	return (QueueEntry *) (Ring(slot) + off % queue->ring_size);
}

/* The slot of dboid, or NULL (queue lock held). */
static ChatQueueSlot *
FindSlot(Oid dboid)
{
	int			i;

	for (i = 0; i < CHAT_QUEUE_DATABASES; i++)
		if (queue->slots[i].dboid == dboid)
			return &queue->slots[i];
	return NULL;
}

/*
 * The slot of dboid, or a free one given to it (*claimed: true); NULL when
 * every slot is taken. The queue lock is held exclusively.
 */
static ChatQueueSlot *
ClaimLocked(Oid dboid, bool *claimed)
{
	ChatQueueSlot *slot = FindSlot(dboid);

	*claimed = false;
	if (slot != NULL)
		return slot;
	slot = FindSlot(InvalidOid);
	if (slot == NULL)
		return NULL;
	memset(slot, 0, sizeof(ChatQueueSlot));
	pg_atomic_init_u32(&slot->resync_pending, 0);
	slot->dboid = dboid;
	*claimed = true;
	return slot;
}

/* The slot of dboid, or NULL. */
ChatQueueSlot *
ChatQueueLookup(Oid dboid)
{
	ChatQueueSlot *slot;

	LWLockAcquire(queue->lock, LW_SHARED);
	slot = FindSlot(dboid);
	LWLockRelease(queue->lock);
	return slot;
}

/*
 * The slot of dboid, claimed if it has none (*claimed: true, and the caller
 * starts its publisher); NULL when every slot is taken.
 */
ChatQueueSlot *
ChatQueueClaim(Oid dboid, bool *claimed)
{
	ChatQueueSlot *slot = ChatQueueLookup(dboid);

	*claimed = false;
	if (slot != NULL)
		return slot;
	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	slot = ClaimLocked(dboid, claimed);
	LWLockRelease(queue->lock);
	return slot;
}

/* Free a slot (its publisher could not be started). */
void
ChatQueueRelease(ChatQueueSlot *slot)
{
	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	slot->dboid = InvalidOid;
	LWLockRelease(queue->lock);
}

/* Copy one payload into the ring at its head; false if it is full (lock held). */
static bool
ReserveOne(ChatQueueSlot *slot, const char *payload, uint64 *offset)
{
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
		e = EntryAt(slot, slot->head);
		e->len = pad - sizeof(QueueEntry);
		e->state = CQ_PAD;
		slot->head += pad;
	}
	e = EntryAt(slot, slot->head);
	e->len = len;
	memcpy((char *) (e + 1), payload, len + 1);
	e->state = CQ_RESERVED;
	*offset = slot->head;
	slot->head += need;
	return true;
}

/*
 * Reserve entries for n payloads, all or nothing (a partial transaction
 * would mislead): false, counted as dropped, when the ring is full.
 */
bool
ChatQueueReserve(ChatQueueSlot *slot, char *const *payloads, int n, uint64 *offsets)
{
	int			i;

	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	for (i = 0; i < n; i++)
		if (!ReserveOne(slot, payloads[i], &offsets[i]))
			break;
	if (i < n)
	{
		while (i-- > 0)
			EntryAt(slot, offsets[i])->state = CQ_DEAD;
		slot->dropped_events += n;
	}
	LWLockRelease(queue->lock);
	return i == n;
}

/*
 * Mark reserved entries ready (commit) or dead and wake the publisher; after
 * a commit whose events were dropped, ask it for a resync. No lock, nothing
 * that can fail: this runs after the commit record.
 */
void
ChatQueueSettle(ChatQueueSlot *slot, const uint64 *offsets, int n, bool commit, bool dropped)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		pg_write_barrier();
		EntryAt(slot, offsets[i])->state = commit ? CQ_READY : CQ_DEAD;
	}
	if (dropped && commit)
		pg_atomic_write_u32(&slot->resync_pending, 1);
	pg_write_barrier();
	if (slot->publisher_latch != NULL)
		SetLatch(slot->publisher_latch);
}

/*
 * Count a publisher start for dboid in its slot (made again if a crash
 * restart emptied shared memory); false, and the slot freed, after
 * CHAT_PUBLISHER_MAX_FAILED_STARTS starts that never attached.
 */
bool
ChatQueueCountStart(Oid dboid)
{
	ChatQueueSlot *slot;
	bool		claimed;
	bool		go = true;

	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	slot = ClaimLocked(dboid, &claimed);
	if (slot != NULL && ++slot->failed_starts > CHAT_PUBLISHER_MAX_FAILED_STARTS)
	{
		slot->dboid = InvalidOid;
		go = false;
	}
	LWLockRelease(queue->lock);
	return go;
}

/*
 * Take the slot of dboid as its publisher (the start succeeded: the count
 * of failed starts is reset); NULL if every slot is taken or another live
 * publisher serves it.
 */
ChatQueueSlot *
ChatQueueAttach(Oid dboid)
{
	ChatQueueSlot *slot;
	bool		claimed;

	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	slot = ClaimLocked(dboid, &claimed);
	if (slot != NULL && slot->publisher_pid != 0 && slot->publisher_pid != MyProcPid &&
		kill(slot->publisher_pid, 0) == 0)
		slot = NULL;
	if (slot != NULL)
	{
		slot->publisher_pid = MyProcPid;
		slot->publisher_latch = MyLatch;
		slot->failed_starts = 0;
	}
	LWLockRelease(queue->lock);
	return slot;
}

/* Leave the slot, so senders stop waking a dead latch. */
void
ChatQueueDetach(ChatQueueSlot *slot)
{
	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	if (slot->publisher_pid == MyProcPid)
	{
		slot->publisher_pid = 0;
		slot->publisher_latch = NULL;
	}
	LWLockRelease(queue->lock);
}

/*
 * Take ready events from the ring, in order, into one payload of at most
 * CHAT_PLAIN_MAX bytes (ChatEventBatchAdd). Stops at the first entry not
 * yet settled. Returns the number of events taken.
 */
int
ChatQueueTake(ChatQueueSlot *slot, StringInfo batch)
{
	int			n = 0;

	resetStringInfo(batch);
	LWLockAcquire(queue->lock, LW_EXCLUSIVE);
	while (slot->tail < slot->head)
	{
		QueueEntry *e = EntryAt(slot, slot->tail);
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

/* Were events dropped since the last call? (clears the request) */
bool
ChatQueueResyncDue(ChatQueueSlot *slot)
{
	return pg_atomic_exchange_u32(&slot->resync_pending, 0) != 0;
}

PG_FUNCTION_INFO_V1(chat_publisher_status);

/* publisher_status() → jsonb: mode, queue size, backlog and counters of this database */
Datum
chat_publisher_status(PG_FUNCTION_ARGS)
{
	JsonbParseState *st = NULL;
	ChatQueueSlot *slot = queue ? ChatQueueLookup(MyDatabaseId) : NULL;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	ChatJbBool(&st, "preloaded", queue != NULL);
	ChatJbText(&st, "mode", (queue != NULL && chat_event_mode == CHAT_EVENTS_DEFERRED) ? "deferred" : "direct");
	if (queue != NULL)
	{
		ChatJbInt8(&st, "queue_bytes", (int64) queue->ring_size);
		LWLockAcquire(queue->lock, LW_SHARED);
		ChatJbInt8(&st, "pending_bytes", slot ? (int64) (slot->head - slot->tail) : 0);
		ChatJbInt8(&st, "published_events", slot ? (int64) slot->published_events : 0);
		ChatJbInt8(&st, "dropped_events", slot ? (int64) slot->dropped_events : 0);
		ChatJbInt8(&st, "publisher_pid", slot ? (int64) slot->publisher_pid : 0);
		LWLockRelease(queue->lock);
	}
	PG_RETURN_JSONB_P(JsonbValueToJsonb(pushJsonbValue(&st, WJB_END_OBJECT, NULL)));
}
