/*
 * maintain.c: partition maintenance of chat.messages: make the months ahead
 * (chat.premake_months), move rows found in the default partition into
 * proper partitions, retire months past chat.retention_months, and report.
 *
 * Locking, so that readers and writers never wait behind maintenance:
 *
 * - A month is made as a standalone table (LIKE chat.messages INCLUDING ALL,
 *   so its indexes exist before it is attached) with a CHECK constraint
 *   matching its range, then attached: SHARE UPDATE EXCLUSIVE on the parent,
 *   which readers and writers do not conflict with, no scan of the new table.
 *   PostgreSQL also takes ACCESS EXCLUSIVE on the default partition and scans
 *   it; rows of the new range found there are moved into the new table first,
 *   in the same transaction, so no reader sees them twice or not at all.
 * - Retiring a month needs a plain DETACH: DETACH ... CONCURRENTLY refuses to
 *   run while a default partition exists. Plain DETACH takes ACCESS EXCLUSIVE
 *   on the parent, held only for the catalog change.
 * - Every lock is taken up front, parent first as readers do, through
 *   ChatLockWithin (locks.c): never queued longer than
 *   chat.maintenance_lock_timeout. A step that does not get its locks is
 *   rolled back, retried chat.maintenance_lock_retries times and then
 *   deferred to the next round and reported.
 *
 * Two ways to run. Atomic (SQL function chat.maintain, inside the caller's
 * transaction): everything in one transaction, all locks taken at once at the
 * end, after the slow preparation. Step by step (the procedure and the
 * background worker, commit != NULL): the preparation, then one short
 * transaction per month attached, per partition detached (the only step with
 * ACCESS EXCLUSIVE on the parent) and per partition dropped or archived. A
 * month detached but not dropped (a run stopped in between) is retired by the
 * next run. Concurrent runs are serialised by an advisory lock.
 *
 * DDL names differ per month, so these statements are one-shot SPI calls
 * built with quote_identifier(); catalog look-ups are kept plans.
 */
#include "chat.h"
#include "maintain.h"
#include "partitions.h"
#include "maintain_run.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "pgtime.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"

/* advisory lock key of maintenance: "chat", 1 */
#define CHAT_MAINT_LOCK_KEY1	0x63686174
#define CHAT_MAINT_LOCK_KEY2	1

static void Leftovers(MaintRun *run);

/* Months (UTC month starts) that have rows in the default partition. */
static int
DefaultMonths(MaintRun *run, TimestampTz **months)
{
	char	   *sql;
	uint64		i;
	int			n;
	bool		isnull;

	*months = NULL;
	if (!OidIsValid(run->def))
		return 0;
	sql = psprintf("SELECT DISTINCT pg_catalog.date_trunc('month', created_at, 'UTC') FROM %s",
				   run->def_qual);
	ChatMaintExec(sql);
	n = (int) SPI_processed;
	*months = palloc(sizeof(TimestampTz) * Max(n, 1));
	for (i = 0; i < SPI_processed; i++)
		(*months)[i] = DatumGetTimestampTz(ChatGetDatum(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	return n;
}

/* Sort month starts ascending. */
static int
TsCmp(const void *a, const void *b)
{
	TimestampTz x = *(const TimestampTz *) a;
	TimestampTz y = *(const TimestampTz *) b;

	return (x > y) - (x < y);
}

/* Add the month starting at lo to the months to make, unless covered. */
static void
WantMonth(MaintRun *run, ChatPartition **parts, int nparts, TimestampTz lo, bool has_rows)
{
	TimestampTz hi = ChatAddMonths(lo, 1);
	char	   *relname = ChatMonthRelname(lo);
	MaintMonth *m;
	ListCell   *lc;
	int			i;
	Oid			relid = InvalidOid;
	int			state;

	foreach(lc, run->months)
		if (((MaintMonth *) lfirst(lc))->lo == lo)
			return;
	for (i = 0; i < nparts; i++)
	{
		ChatPartition *p = parts[i];

		if (p->is_default || p->upper <= lo || p->lower >= hi)
			continue;
		if (has_rows && !(p->lower == lo && p->upper == hi))
			ChatMaintNote(&run->skipped, ChatMaintQual(relname), "attach",
				 psprintf("rows of this month in the default partition overlap partition %s; move them by hand",
						  p->qualname));
		return;
	}
	state = ChatMaintNameState(run, relname, &relid);
	if (state < 0)
	{
		ChatMaintNote(&run->skipped, ChatMaintQual(relname), "attach",
			 "a table of this name exists and is not a partition left by maintenance");
		return;
	}
	m = palloc0(sizeof(MaintMonth));
	m->lo = lo;
	m->hi = hi;
	m->relname = relname;
	m->relid = state > 0 ? relid : InvalidOid;
	run->months = lappend(run->months, m);
}

/* Sort months to make by start. */
static int
MonthCmp(const ListCell *a, const ListCell *b)
{
	const MaintMonth *x = lfirst(a);
	const MaintMonth *y = lfirst(b);

	return (x->lo > y->lo) - (x->lo < y->lo);
}

/*
 * Decide the work of this run from the partition descriptor: months to make
 * (this month and chat.premake_months ahead, and the months of rows found in
 * the default partition) and partitions to retire. Past months without rows
 * need no partition: messages are stamped with the time they are sent.
 */
static void
Survey(MaintRun *run)
{
	ChatPartition **parts;
	int			nparts;
	TimestampTz first = ChatMonthStart(run->at);
	TimestampTz last = ChatAddMonths(first, run->premake);
	TimestampTz *dmonths;
	int			ndmonths;
	TimestampTz m;
	int			i;

	run->nsp = get_namespace_oid("chat", false);
	run->parent = get_relname_relid("messages", run->nsp);
	if (!OidIsValid(run->parent))
		elog(ERROR, "chat: table chat.messages is missing");
	run->owner = ChatMaintOwner(run->parent);
	run->columns = ChatMaintColumns(run->parent);
	nparts = ChatPartitions(&parts);
	for (i = 0; i < nparts; i++)
		if (parts[i]->is_default)
		{
			run->def = parts[i]->relid;
			run->def_qual = pstrdup(parts[i]->qualname);
		}

	for (m = first; m <= last; m = ChatAddMonths(m, 1))
		if (!run->has_cutoff || ChatAddMonths(m, 1) > run->cutoff)
			WantMonth(run, parts, nparts, m, false);

	ndmonths = DefaultMonths(run, &dmonths);
	qsort(dmonths, ndmonths, sizeof(TimestampTz), TsCmp);
	for (i = 0; i < ndmonths; i++)
		WantMonth(run, parts, nparts, dmonths[i], true);
	list_sort(run->months, MonthCmp);

	if (!run->has_cutoff)
		return;
	/* parts are newest first: collect the retired ones oldest first */
	for (i = nparts - 1; i >= 0; i--)
	{
		ChatPartition *p = parts[i];
		MaintOld   *o;

		if (p->is_default || p->upper == DT_NOEND || p->upper > run->cutoff)
			continue;
		o = palloc0(sizeof(MaintOld));
		o->relid = p->relid;
		o->relname = get_rel_name(p->relid);
		o->member = ChatMaintIsMember(p->relid);
		if (get_rel_namespace(p->relid) != run->nsp)
		{
			ChatMaintNote(&run->skipped, p->qualname, "retire", "the partition is not in schema chat");
			continue;
		}
		if (run->action == CHAT_RETENTION_DETACH)
		{
			Oid			arch = get_namespace_oid(run->archive, true);

			if (OidIsValid(arch) && OidIsValid(get_relname_relid(o->relname, arch)))
			{
				ChatMaintNote(&run->skipped, p->qualname, "retire",
					 psprintf("schema %s already holds a table named %s", run->archive, o->relname));
				continue;
			}
		}
		run->olds = lappend(run->olds, o);
	}
	Leftovers(run);
}

/*
 * Detached months left in schema chat past the cutoff: a step-by-step run
 * detaches a month and drops it in the next transaction, and may have been
 * stopped in between. They are retired like partitions, without the detach.
 */
static void
Leftovers(MaintRun *run)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {OIDOID};
	Datum		v[1];
	uint64		i;
	List	   *found = NIL;
	ListCell   *lc;

	v[0] = ObjectIdGetDatum(run->nsp);
	ChatMaintExecKept(&plan,
			 "SELECT c.oid, c.relname::text FROM pg_catalog.pg_class c "
			 "WHERE c.relnamespace = $1 AND c.relkind = 'r' AND NOT c.relispartition "
			 "AND c.relname ~ '^messages_[0-9]{4}_[0-9]{2}$' ORDER BY c.relname",
			 1, types, v);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		MaintOld   *o = palloc0(sizeof(MaintOld));

		o->relid = DatumGetObjectId(ChatGetDatum(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		o->relname = TextDatumGetCString(ChatGetDatum(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		found = lappend(found, o);
	}
	foreach(lc, found)
	{
		MaintOld   *o = lfirst(lc);
		int			year,
					month;
		struct pg_tm tm = {0};
		TimestampTz lo;

		if (sscanf(o->relname, "messages_%4d_%2d", &year, &month) != 2 || month < 1 || month > 12)
			continue;
		tm.tm_year = year;
		tm.tm_mon = month;
		tm.tm_mday = 1;
		if (tm2timestamp(&tm, 0, NULL, &lo) != 0 || ChatAddMonths(lo, 1) > run->cutoff)
			continue;
		o->detached = true;
		o->member = ChatMaintIsMember(o->relid);
		run->olds = lappend(run->olds, o);
	}
}

/* The ids of the attachments of a partition's messages. */
static void
CollectAttachments(MaintRun *run, MaintOld *o)
{
	char	   *sql;
	uint64		i;

	sql = psprintf("SELECT a.attachment_id FROM chat.attachments a JOIN %s m "
				   "ON a.chat_id = m.chat_id AND a.message_seq = m.seq WHERE m.n_attachments > 0",
				   ChatMaintQual(o->relname));
	ChatMaintExec(sql);
	o->natt = (int) SPI_processed;
	o->att_ids = palloc(sizeof(Datum) * Max(o->natt, 1));
	for (i = 0; i < SPI_processed; i++)
		o->att_ids[i] = Int64GetDatum(ChatGetInt8(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, NULL));
}

/*
 * Preparation, with no lock anyone waits for: the standalone tables of the
 * months to make, with their indexes and range constraint, and the
 * attachments of the partitions to retire.
 */
static void
Prepare(MaintRun *run)
{
	ListCell   *lc;

	foreach(lc, run->months)
	{
		MaintMonth *m = lfirst(lc);
		char	   *qual = ChatMaintQual(m->relname);

		if (OidIsValid(m->relid))
			continue;
		ChatMaintExec(psprintf("CREATE TABLE %s (LIKE chat.messages INCLUDING ALL)", qual));
		ChatMaintExec(psprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (created_at >= %s AND created_at < %s)",
					  qual, quote_identifier(psprintf("%s_range", m->relname)),
					  ChatMonthLiteral(m->lo), ChatMonthLiteral(m->hi)));
		if (GetUserId() != run->owner)
			ChatMaintExec(psprintf("ALTER TABLE %s OWNER TO %s", qual,
						  quote_identifier(GetUserNameFromId(run->owner, false))));
		m->relid = get_relname_relid(m->relname, run->nsp);
		if (!OidIsValid(m->relid))
			elog(ERROR, "chat: table %s vanished after creation", qual);
		m->made = true;
	}
	if (run->action == CHAT_RETENTION_DROP)
		foreach(lc, run->olds)
			CollectAttachments(run, lfirst(lc));
}

/* Take every lock of a unit, parent first; false names the one refused. */
static bool
UnitLocks(MaintRun *run, MaintUnit *u)
{
	int			t = chat_maintenance_lock_timeout;
	ListCell   *lc;

	if (u->parent_mode == NoLock)
		;						/* only detached tables */
	else if (!ChatLockWithin(run->parent, u->parent_mode, t))
	{
		run->blocker = "chat.messages";
		return false;
	}
	if (u->parent_mode != NoLock && OidIsValid(run->def) && !ChatLockWithin(run->def, AccessExclusiveLock, t))
	{
		run->blocker = run->def_qual;
		return false;
	}
	foreach(lc, u->months)
	{
		MaintMonth *m = lfirst(lc);

		if (!ChatLockWithin(m->relid, AccessExclusiveLock, t))
		{
			run->blocker = ChatMaintQual(m->relname);
			return false;
		}
	}
	foreach(lc, u->olds)
	{
		MaintOld   *o = lfirst(lc);

		if (!ChatLockWithin(o->relid, AccessExclusiveLock, t))
		{
			run->blocker = ChatMaintQual(o->relname);
			return false;
		}
	}
	return true;
}

/* Move the month's rows out of the default partition, attach the month. */
static void
AttachMonth(MaintRun *run, MaintMonth *m)
{
	char	   *qual = ChatMaintQual(m->relname);
	int64		moved = 0;

	if (OidIsValid(run->def))
	{
		Oid			types[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
		Datum		v[2];
		int			rc;
		MemoryContext cxt = CurrentMemoryContext;

		v[0] = TimestampTzGetDatum(m->lo);
		v[1] = TimestampTzGetDatum(m->hi);
		rc = SPI_execute_with_args(psprintf("WITH moved AS (DELETE FROM %s WHERE created_at >= $1 AND created_at < $2 "
											"RETURNING %s) INSERT INTO %s (%s) SELECT %s FROM moved",
											run->def_qual, run->columns, qual, run->columns, run->columns),
								   2, types, v, NULL, false, 0);
		MemoryContextSwitchTo(cxt);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "chat: moving rows into %s failed: %s", qual, SPI_result_code_string(rc));
		moved = (int64) SPI_processed;
	}
	/*
	 * The range constraint stays: it says what the bounds say, costs two
	 * comparisons per insert, and dropping it would be one more statement
	 * while the locks are held.
	 */
	ChatMaintExec(psprintf("ALTER TABLE chat.messages ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)",
				  qual, ChatMonthLiteral(m->lo), ChatMonthLiteral(m->hi)));

	run->created = lappend(run->created, qual);
	m->attached = true;
	if (moved > 0)
	{
		MaintNote  *n = palloc0(sizeof(MaintNote));

		n->partition = qual;
		n->rows = moved;
		run->rescued = lappend(run->rescued, n);
		run->moved += moved;
	}
}

/* Detach a partition from chat.messages (and from the extension). */
static void
DetachPartition(MaintRun *run, MaintOld *o)
{
	char	   *qual = ChatMaintQual(o->relname);

	if (o->member)
		ChatMaintExec(psprintf("ALTER EXTENSION chat DROP TABLE %s", qual));
	o->member = false;
	ChatMaintExec(psprintf("ALTER TABLE chat.messages DETACH PARTITION %s", qual));
	o->detached = true;
}

/* Drop a detached month with its attachments rows, or archive it. */
static void
DisposeDetached(MaintRun *run, MaintOld *o)
{
	static SPIPlanPtr plan_att = NULL;
	static const Oid t_att[1] = {INT8ARRAYOID};
	char	   *qual = ChatMaintQual(o->relname);
	uint64		i;

	if (o->member)
		ChatMaintExec(psprintf("ALTER EXTENSION chat DROP TABLE %s", qual));
	if (run->action == CHAT_RETENTION_DETACH)
	{
		const char *owner = quote_identifier(GetUserNameFromId(run->owner, false));

		if (!OidIsValid(get_namespace_oid(run->archive, true)))
			ChatMaintExec(psprintf("CREATE SCHEMA %s AUTHORIZATION %s", quote_identifier(run->archive), owner));
		ChatMaintExec(psprintf("ALTER TABLE %s SET SCHEMA %s", qual, quote_identifier(run->archive)));
		run->archived = lappend(run->archived,
								psprintf("%s.%s", quote_identifier(run->archive), quote_identifier(o->relname)));
		return;
	}
	if (o->natt > 0)
	{
		Datum		v[1];

		v[0] = PointerGetDatum(ChatInt8Array(o->att_ids, o->natt));
		/* the object store is cleaned from chat.deleted_objects */
		ChatMaintExecKept(&plan_att,
				 "WITH gone AS (DELETE FROM chat.attachments WHERE attachment_id = ANY ($1) RETURNING object_key), "
				 "queued AS (INSERT INTO chat.deleted_objects (object_key) SELECT object_key FROM gone "
				 "ON CONFLICT (object_key) DO NOTHING) "
				 "SELECT object_key FROM gone ORDER BY object_key",
				 1, t_att, v);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			run->keys = lappend(run->keys,
								TextDatumGetCString(ChatGetDatum(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)));
		}
	}
	ChatMaintExec(psprintf("DROP TABLE %s", qual));
	run->dropped = lappend(run->dropped, qual);
}

/*
 * Do a unit in a subtransaction once all its locks are granted. Without them
 * the subtransaction is rolled back (releasing what it got), and after a
 * growing pause the unit is tried again, chat.maintenance_lock_retries times
 * in all. Returns false when it was not done.
 */
static bool
RunUnit(MaintRun *run, MaintUnit *u)
{
	int			attempt;

	for (attempt = 1;; attempt++)
	{
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;
		ListCell   *lc;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		if (UnitLocks(run, u))
		{
			foreach(lc, u->months)
				AttachMonth(run, lfirst(lc));
			foreach(lc, u->olds)
				if (!((MaintOld *) lfirst(lc))->detached)
					DetachPartition(run, lfirst(lc));
			if (u->dispose)
				foreach(lc, u->olds)
					DisposeDetached(run, lfirst(lc));
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			return true;
		}
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (attempt >= chat_maintenance_lock_retries)
			return false;
		ChatSleepMs(Min(50 << (attempt - 1), 1000));
	}
}

/* Record the steps of a unit that could not get its locks. */
static void
DeferUnit(MaintRun *run, MaintUnit *u)
{
	char	   *reason = psprintf("lock on %s not granted within %d ms, %d attempts",
								  run->blocker ? run->blocker : "?", chat_maintenance_lock_timeout,
								  chat_maintenance_lock_retries);
	ListCell   *lc;

	foreach(lc, u->months)
		ChatMaintNote(&run->deferred, ChatMaintQual(((MaintMonth *) lfirst(lc))->relname), "attach", reason);
	foreach(lc, u->olds)
		ChatMaintNote(&run->deferred, ChatMaintQual(((MaintOld *) lfirst(lc))->relname), "retire", reason);
}

/*
 * Drop the standalone tables this run made for months it could not attach,
 * so that a deferral leaves nothing behind (a table left by a crash between
 * preparation and attaching is reused by the next run instead). Nobody else
 * uses them; one that cannot be locked at once is left for the next run.
 */
static void
DiscardDeferred(MaintRun *run)
{
	ListCell   *lc;

	foreach(lc, run->months)
	{
		MaintMonth *m = lfirst(lc);

		if (m->made && !m->attached && ConditionalLockRelationOid(m->relid, AccessExclusiveLock))
			ChatMaintExec(psprintf("DROP TABLE %s", ChatMaintQual(m->relname)));
	}
}

/*
 * All in the caller's transaction: one unit with every lock, ACCESS
 * EXCLUSIVE on the parent when a partition is detached (taken first, so the
 * default partition is never held while waiting for the parent); if that is
 * refused, the months alone under SHARE UPDATE EXCLUSIVE, and detached
 * leftovers alone.
 */
static void
RunAtomic(MaintRun *run)
{
	List	   *attached = NIL;
	List	   *leftovers = NIL;
	ListCell   *lc;
	MaintUnit	all,
				months = {ShareUpdateExclusiveLock, run->months, NIL, false},
				rest = {NoLock, NIL, NIL, true},
				olds = {AccessExclusiveLock, NIL, NIL, true};

	foreach(lc, run->olds)
	{
		if (((MaintOld *) lfirst(lc))->detached)
			leftovers = lappend(leftovers, lfirst(lc));
		else
			attached = lappend(attached, lfirst(lc));
	}
	all.parent_mode = attached ? AccessExclusiveLock : run->months ? ShareUpdateExclusiveLock : NoLock;
	all.months = run->months;
	all.olds = run->olds;
	all.dispose = true;
	if (all.months == NIL && all.olds == NIL)
		return;
	if (RunUnit(run, &all))
		return;
	if (attached == NIL || (run->months == NIL && leftovers == NIL))
	{
		DeferUnit(run, &all);
		return;
	}
	olds.olds = attached;
	DeferUnit(run, &olds);
	if (run->months && !RunUnit(run, &months))
		DeferUnit(run, &months);
	rest.olds = leftovers;
	if (leftovers && !RunUnit(run, &rest))
		DeferUnit(run, &rest);
}

/*
 * One short transaction per step: attach a month; detach a partition (the
 * only step holding ACCESS EXCLUSIVE on chat.messages, for the catalog
 * change alone); drop or archive it, which no longer involves the parent.
 */
static void
RunSteps(MaintRun *run, ChatCommitHook commit, void *arg)
{
	ListCell   *lc;

	foreach(lc, run->months)
	{
		MaintUnit	u = {ShareUpdateExclusiveLock, list_make1(lfirst(lc)), NIL, false};

		if (!RunUnit(run, &u))
			DeferUnit(run, &u);
		commit(arg);
	}
	foreach(lc, run->olds)
	{
		MaintOld   *o = lfirst(lc);
		MaintUnit	detach = {AccessExclusiveLock, NIL, list_make1(o), false};
		MaintUnit	dispose = {NoLock, NIL, list_make1(o), true};

		if (!o->detached)
		{
			if (!RunUnit(run, &detach))
			{
				DeferUnit(run, &detach);
				commit(arg);
				continue;
			}
			commit(arg);
		}
		if (!RunUnit(run, &dispose))
			DeferUnit(run, &dispose);
		commit(arg);
	}
}

/*
 * Run maintenance as of `at`. With commit NULL everything happens in the
 * current transaction; otherwise commit(commit_arg) ends each step's
 * transaction and starts the next. Needs an SPI connection. Returns the
 * report, allocated in keep, and fills counts when given.
 */
Jsonb *
ChatMaintain(TimestampTz at, ChatCommitHook commit, void *commit_arg,
			 MemoryContext keep, ChatMaintainCounts *counts)
{
	MemoryContext old = MemoryContextSwitchTo(keep);
	MaintRun   *run = palloc0(sizeof(MaintRun));
	TimestampTz start = GetCurrentTimestamp();
	int			saved_timeout = LockTimeout;
	LOCKTAG		tag;
	bool		session = commit != NULL;
	Jsonb	   *report;

	if (TIMESTAMP_NOT_FINITE(at) || at < ChatAddMonths(start, -12 * 200) ||
		at > ChatAddMonths(start, 12 * 200))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at must be a finite time within 200 years of now")));
	if (chat_archive_schema == NULL || chat_archive_schema[0] == '\0' ||
		strcmp(chat_archive_schema, "chat") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chat.archive_schema must name a schema other than chat")));

	run->cxt = keep;
	run->at = at;
	run->premake = chat_premake_months;
	run->retention = chat_retention_months;
	run->action = chat_retention_action;
	run->archive = pstrdup(chat_archive_schema);
	run->has_cutoff = run->retention > 0;
	if (run->has_cutoff)
		run->cutoff = ChatAddMonths(at, -run->retention);

	/* one run at a time per database; the wait is not bounded by lock_timeout */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, CHAT_MAINT_LOCK_KEY1, CHAT_MAINT_LOCK_KEY2, 2);
	LockTimeout = 0;
	(void) LockAcquire(&tag, ExclusiveLock, session, false);

	PG_TRY();
	{
		/* a safety net for the locks DDL takes besides those taken up front */
		LockTimeout = Max(1000, 10 * chat_maintenance_lock_timeout);
		Survey(run);
		Prepare(run);
		if (session)
		{
			commit(commit_arg);
			RunSteps(run, commit, commit_arg);
		}
		else
			RunAtomic(run);
		DiscardDeferred(run);
	}
	PG_FINALLY();
	{
		LockTimeout = saved_timeout;
		if (session)
			LockRelease(&tag, ExclusiveLock, true);
	}
	PG_END_TRY();

	MemoryContextSwitchTo(keep);
	report = ChatMaintReport(run, TimestampDifferenceMilliseconds(start, GetCurrentTimestamp()));
	if (counts)
	{
		counts->created = list_length(run->created);
		counts->dropped = list_length(run->dropped);
		counts->archived = list_length(run->archived);
		counts->deferred = list_length(run->deferred);
		counts->moved = run->moved;
		counts->attachment_keys = list_length(run->keys);
	}
	MemoryContextSwitchTo(old);
	return report;
}
