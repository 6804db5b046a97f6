/*
 * publisher.c: the background worker that sends a database's queued events
 * (event_queue.c) on channel chat_events, many per NOTIFY, one short
 * transaction per batch. Woken by its latch when a sender commits.
 *
 * Its own commits are asynchronous: if the server crashes before a batch
 * reaches disk, clients catch up from the database after the restart anyway,
 * and every publisher start announces `resync`.
 */
#include "chat.h"
#include "events.h"

#include "access/xact.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

static ChatQueueSlot *my_slot = NULL;

/* Send one payload in its own transaction. */
static void
PublishPayload(const char *payload)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	Async_Notify(CHAT_EVENT_CHANNEL, payload);
	CommitTransactionCommand();
}

/* Tell listeners that events may have been lost. */
static void
PublishResync(const char *reason)
{
	char	   *payload = ChatEventResync(reason);

	PublishPayload(payload);
	pfree(payload);
}

/* On exit, leave the slot so senders stop waking a dead latch. */
static void
Detach(int code, Datum arg)
{
	ChatQueueShared *q = ChatQueue();

	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	if (my_slot != NULL && my_slot->publisher_pid == MyProcPid)
	{
		my_slot->publisher_pid = 0;
		my_slot->publisher_latch = NULL;
	}
	LWLockRelease(q->lock);
}

/*
 * The slot of dboid, made again if a crash restart emptied shared memory;
 * NULL when every slot is taken. The queue lock is held exclusively.
 */
static ChatQueueSlot *
ClaimSlot(Oid dboid)
{
	ChatQueueShared *q = ChatQueue();
	ChatQueueSlot *free_slot = NULL;
	int			i;

	for (i = 0; i < CHAT_QUEUE_DATABASES; i++)
	{
		if (q->slots[i].dboid == dboid)
			return &q->slots[i];
		if (free_slot == NULL && q->slots[i].dboid == InvalidOid)
			free_slot = &q->slots[i];
	}
	if (free_slot != NULL)
		ChatQueueSlotInit(free_slot, dboid);
	return free_slot;
}

/*
 * Take the slot of dboid (creating it after a crash restart emptied shared
 * memory); false if another publisher already serves it.
 */
static bool
Attach(Oid dboid)
{
	ChatQueueShared *q = ChatQueue();
	ChatQueueSlot *slot;
	bool		ok = true;

	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	slot = ClaimSlot(dboid);
	if (slot == NULL)
		ok = false;
	else if (slot->publisher_pid != 0 && slot->publisher_pid != MyProcPid &&
			 kill(slot->publisher_pid, 0) == 0)
		ok = false;
	else
	{
		slot->publisher_pid = MyProcPid;
		slot->publisher_latch = MyLatch;
		my_slot = slot;
	}
	LWLockRelease(q->lock);
	return ok;
}

/*
 * Count a start before connecting to dboid, in its slot. A database that was dropped
 * makes every start fail; after CHAT_PUBLISHER_MAX_FAILED_STARTS the slot is
 * freed and false tells the worker to stop for good instead of restarting
 * every second forever.
 */
#define CHAT_PUBLISHER_MAX_FAILED_STARTS 10

static bool
CountStart(Oid dboid)
{
	ChatQueueShared *q = ChatQueue();
	ChatQueueSlot *slot;
	bool		go = true;

	LWLockAcquire(q->lock, LW_EXCLUSIVE);
	slot = ClaimSlot(dboid);
	if (slot != NULL && ++slot->failed_starts > CHAT_PUBLISHER_MAX_FAILED_STARTS)
	{
		slot->dboid = InvalidOid;
		go = false;
	}
	LWLockRelease(q->lock);
	return go;
}

/* Entry point of the publisher worker; main_arg is the database oid. */
void
chat_publisher_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	StringInfoData batch;
	MemoryContext loop_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	if (ChatQueue() == NULL)
		proc_exit(0);
	if (!CountStart(dboid))
	{
		ereport(LOG, (errmsg("chat publisher: cannot connect to database %u (dropped?), giving up", dboid)));
		proc_exit(0);
	}
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	if (!Attach(dboid))
	{
		ereport(LOG, (errmsg("chat publisher: database %u is already served, exiting", dboid)));
		proc_exit(0);
	}
	my_slot->failed_starts = 0;
	before_shmem_exit(Detach, (Datum) 0);
	pgstat_report_appname("chat publisher");
	StartTransactionCommand();
	ereport(LOG,
			(errmsg("chat publisher started for database \"%s\"", get_database_name(dboid))));
	CommitTransactionCommand();

	loop_cxt = AllocSetContextCreate(TopMemoryContext, "chat publisher", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(loop_cxt);
	initStringInfo(&batch);

	/* whatever happened before this start, listeners must catch up */
	PublishResync("publisher_start");

	for (;;)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		while (ChatQueueTake(my_slot, &batch) > 0)
		{
			PublishPayload(batch.data);
			CHECK_FOR_INTERRUPTS();
		}
		if (pg_atomic_exchange_u32(&my_slot->resync_pending, 0) != 0)
			PublishResync("overflow");
		pgstat_report_stat(false);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
	}
}
