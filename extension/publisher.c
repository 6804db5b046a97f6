/*
 * publisher.c: the background worker that sends a database's queued events
 * (queue.c) on channel chat_events, many per NOTIFY, one short transaction
 * per batch. Woken by its latch when a sender commits.
 *
 * Its own commits are asynchronous: if the server crashes before a batch
 * reaches disk, clients catch up from the database after the restart anyway,
 * and every publisher start announces `resync`.
 */
#include "chat.h"
#include "events.h"
#include "queue.h"

#include "access/xact.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

static ChatQueueSlot *my_slot = NULL;
/* what one round of the loop allocates; reset at the start of each round */
static MemoryContext loop_cxt = NULL;

/* Start the publisher worker of a database; false if no worker slot is free. */
bool
ChatPublisherStart(Oid dboid)
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

/* Send one payload, sealed, in its own transaction. */
static void
PublishPayload(const char *payload)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	Async_Notify(CHAT_EVENT_CHANNEL, ChatSeal(payload));
	CommitTransactionCommand();
	/* the commit leaves TopMemoryContext current */
	MemoryContextSwitchTo(loop_cxt);
}

/* Tell listeners that events may have been lost. */
static void
PublishResync(const char *reason)
{
	PublishPayload(ChatEventResync(reason));
}

/* On exit, leave the slot so senders stop waking a dead latch. */
static void
Detach(int code, Datum arg)
{
	if (my_slot != NULL)
		ChatQueueDetach(my_slot);
}

/* Connect to dboid and take its slot, or exit. */
static void
Start(Oid dboid)
{
	if (!ChatQueueAvailable())
		proc_exit(0);
	if (!ChatQueueCountStart(dboid))
	{
		ereport(LOG, (errmsg("chat publisher: cannot connect to database %u (dropped?), giving up", dboid)));
		proc_exit(0);
	}
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	my_slot = ChatQueueAttach(dboid);
	if (my_slot == NULL)
	{
		ereport(LOG, (errmsg("chat publisher: database %u is already served, exiting", dboid)));
		proc_exit(0);
	}
	before_shmem_exit(Detach, (Datum) 0);
	pgstat_report_appname("chat publisher");
	StartTransactionCommand();
	ereport(LOG,
			(errmsg("chat publisher started for database \"%s\"", get_database_name(dboid))));
	CommitTransactionCommand();
}

/* Entry point of the publisher worker; main_arg is the database oid. */
void
chat_publisher_main(Datum main_arg)
{
	StringInfoData batch;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	Start(DatumGetObjectId(main_arg));

	/* the batch buffer lives as long as the worker; the rest, one round */
	MemoryContextSwitchTo(TopMemoryContext);
	initStringInfo(&batch);
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "chat publisher", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(loop_cxt);

	/* whatever happened before this start, listeners must catch up */
	PublishResync("publisher_start");

	for (;;)
	{
		MemoryContextReset(loop_cxt);
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
		if (ChatQueueResyncDue(my_slot))
			PublishResync("overflow");
		pgstat_report_stat(false);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
	}
}
