/*
 * worker.c: the partition maintenance background worker, after worker_spi.
 *
 * A static launcher, registered in _PG_init when the library is preloaded,
 * wakes every chat.maintenance_interval, lists the databases that accept
 * connections, and for each starts a dynamic worker that connects to it,
 * runs maintenance when the chat extension is installed there (one short
 * transaction per step), logs one line and exits. The launcher waits for each
 * worker before starting the next, so at most one maintenance runs at a time.
 * A failure is logged by the worker and retried at the next round; the
 * launcher is restarted by the postmaster after a crash and exits cleanly on
 * SIGTERM.
 */
#include "chat.h"
#include "maintain.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

PGDLLEXPORT void chat_maintenance_launcher_main(Datum arg);
PGDLLEXPORT void chat_maintenance_worker_main(Datum arg);

/* A database the launcher visits. */
typedef struct ChatDatabase
{
	Oid			oid;
	char		name[NAMEDATALEN];
} ChatDatabase;

/* Register the launcher; called from _PG_init while preloading. */
void
ChatRegisterMaintenanceLauncher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "chat");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "chat_maintenance_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "chat maintenance launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "chat maintenance launcher");
	RegisterBackgroundWorker(&worker);
}

/* The databases that accept connections, read from pg_database. */
static List *
DatabaseList(MemoryContext cxt)
{
	List	   *dbs = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		ChatDatabase *d;
		MemoryContext old;

		if (!db->datallowconn || db->datistemplate || database_is_invalid_form(db))
			continue;
		old = MemoryContextSwitchTo(cxt);
		d = palloc0(sizeof(ChatDatabase));
		d->oid = db->oid;
		strlcpy(d->name, NameStr(db->datname), NAMEDATALEN);
		dbs = lappend(dbs, d);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dbs;
}

/* Start the worker of one database and wait until it exits. */
static void
RunDatabase(ChatDatabase *d)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	pid_t		pid;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "chat");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "chat_maintenance_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "chat maintenance worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "chat maintenance worker");
	worker.bgw_main_arg = ObjectIdGetDatum(d->oid);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(LOG,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("chat maintenance: could not start a worker for database %s", d->name),
				 errhint("More max_worker_processes may be needed; the database is tried again next round.")));
		return;
	}
	/* poll rather than WaitForBackgroundWorkerStartup: it never returns if
	 * the postmaster is shutting down and will not start the worker */
	for (;;)
	{
		status = GetBackgroundWorkerPid(handle, &pid);
		if (status == BGWH_STOPPED || status == BGWH_POSTMASTER_DIED)
			break;
		if (ShutdownRequestPending)
		{
			TerminateBackgroundWorker(handle);
			break;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	pfree(handle);
}

/* One round: every database in turn. */
static void
RunRound(MemoryContext cxt)
{
	List	   *dbs = DatabaseList(cxt);
	ListCell   *lc;

	foreach(lc, dbs)
	{
		if (ShutdownRequestPending)
			break;
		RunDatabase(lfirst(lc));
	}
}

/* Main of the launcher: a round every chat.maintenance_interval. */
void
chat_maintenance_launcher_main(Datum arg)
{
	MemoryContext cxt;
	TimestampTz last = 0;
	bool		ran = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	/* no database: only the shared catalogs, pg_database among them */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	cxt = AllocSetContextCreate(TopMemoryContext, "chat maintenance launcher", ALLOCSET_DEFAULT_SIZES);
	ereport(LOG,
			(errmsg("chat maintenance launcher started"),
			 errdetail("Maintenance runs every %d s.", chat_maintenance_interval)));

	while (!ShutdownRequestPending)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		wait_ms = 60 * 1000L;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (chat_maintenance_interval > 0)
		{
			TimestampTz next = TimestampTzPlusMilliseconds(last, chat_maintenance_interval * 1000L);

			if (!ran || now >= next)
			{
				last = now;
				ran = true;
				RunRound(cxt);
				MemoryContextReset(cxt);
				continue;
			}
			wait_ms = Max(TimestampDifferenceMilliseconds(now, next), 1);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	ereport(LOG, (errmsg("chat maintenance launcher shutting down")));
	proc_exit(0);
}

/* End the worker's step transaction and start the next, as worker_spi does. */
static void
WorkerCommit(void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(cxt);
}

/* Main of a database's worker: maintain when chat is installed, log, exit. */
void
chat_maintenance_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	MemoryContext cxt;
	ChatMaintainCounts c;
	TimestampTz start;
	char	   *dbname;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	/*
	 * A superuser session that took the database's and role's settings: an
	 * owner's ALTER DATABASE … SET search_path must not choose the
	 * operators of its DDL.
	 */
	SetConfigOption("search_path", CHAT_SEARCH_PATH, PGC_SUSET, PGC_S_OVERRIDE);
	cxt = AllocSetContextCreate(TopMemoryContext, "chat maintenance", ALLOCSET_DEFAULT_SIZES);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	dbname = MemoryContextStrdup(cxt, get_database_name(MyDatabaseId));
	if (!OidIsValid(get_extension_oid("chat", true)))
	{
		CommitTransactionCommand();
		proc_exit(0);
	}
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "chat maintenance");
	start = GetCurrentTimestamp();

	PG_TRY();
	{
		(void) ChatMaintain(start, WorkerCommit, NULL, cxt, &c);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG,
				(errmsg("chat maintenance: database %s: failed, retried next round: %s",
						dbname, edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0));
		proc_exit(1);
	}
	PG_END_TRY();

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(true);
	pgstat_report_activity(STATE_IDLE, NULL);
	ereport(LOG,
			(errmsg("chat maintenance: database %s: created %d, dropped %d, archived %d, moved " INT64_FORMAT " rows, deferred %d (%ld ms)",
					dbname, c.created, c.dropped, c.archived, c.moved, c.deferred,
					TimestampDifferenceMilliseconds(start, GetCurrentTimestamp()))));
	proc_exit(0);
}
