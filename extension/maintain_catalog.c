/*
 * maintain_catalog.c: the catalog and SPI helpers of partition maintenance
 * (maintain.c): statements that come back to the run's memory context,
 * report notes, and what a relation is.
 */
#include "chat.h"
#include "maintain_run.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/rel.h"

/* chat.<relname>, quoted. */
char *
ChatMaintQual(const char *relname)
{
	return psprintf("chat.%s", quote_identifier(relname));
}

/*
 * SPI calls return in SPI's procedure context, which the worker frees at each
 * step's commit: every SPI call here goes through these wrappers, which come
 * back to the caller's context (the run's), where results are copied.
 */

/* Run one utility or one-shot statement; errors propagate. */
void
ChatMaintExec(const char *sql)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			rc = SPI_execute(sql, false, 0);

	MemoryContextSwitchTo(cxt);
	if (rc < 0)
		elog(ERROR, "chat: \"%s\" failed: %s", sql, SPI_result_code_string(rc));
}

/* Prepare (once) and run a kept plan, coming back to the caller's context. */
void
ChatMaintExecKept(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *types, Datum *values)
{
	MemoryContext cxt = CurrentMemoryContext;

	ChatPlanOnce(slot, sql, nargs, types);
	ChatExec(*slot, values, NULL, false, 0);
	MemoryContextSwitchTo(cxt);
}

/* Append a step that was deferred or skipped. */
void
ChatMaintNote(List **list, const char *partition, const char *action, const char *reason)
{
	MaintNote  *n = palloc0(sizeof(MaintNote));

	n->partition = pstrdup(partition);
	n->action = action;
	n->reason = pstrdup(reason);
	*list = lappend(*list, n);
}

/* Quoted, comma-separated columns of chat.messages in their order. */
char *
ChatMaintColumns(Oid parent)
{
	Relation	rel = table_open(parent, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", quote_identifier(NameStr(att->attname)));
	}
	table_close(rel, NoLock);
	return buf.data;
}

/* The owner of a relation. */
Oid
ChatMaintOwner(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	Oid			owner = rel->rd_rel->relowner;

	table_close(rel, NoLock);
	return owner;
}

/*
 * What is chat.<relname> today: 0 absent, 1 a standalone table left by an
 * earlier deferred run (not a partition, carries our range constraint),
 * -1 something else that blocks the name.
 */
int
ChatMaintNameState(MaintRun *run, const char *relname, Oid *relid)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[3] = {TEXTOID, TEXTOID, OIDOID};
	Datum		v[3];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	char	   *kind;

	v[0] = CStringGetTextDatum(relname);
	v[1] = CStringGetTextDatum(psprintf("%s_range", relname));
	v[2] = ObjectIdGetDatum(run->nsp);
	ChatMaintExecKept(&plan,
			 "SELECT c.oid, c.relkind::text, c.relispartition, "
			 "       EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k "
			 "               WHERE k.conrelid = c.oid AND k.conname = $2::name AND k.contype = 'c') "
			 "FROM pg_catalog.pg_class c WHERE c.relnamespace = $3 AND c.relname = $1::name",
			 3, types, v);
	if (SPI_processed == 0)
		return 0;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	*relid = DatumGetObjectId(ChatGetDatum(tup, desc, 1, &isnull));
	kind = TextDatumGetCString(ChatGetDatum(tup, desc, 2, &isnull));
	if (strcmp(kind, "r") == 0 &&
		!DatumGetBool(ChatGetDatum(tup, desc, 3, &isnull)) &&
		DatumGetBool(ChatGetDatum(tup, desc, 4, &isnull)))
		return 1;
	return -1;
}

/* Is relid a member of an extension (made by CREATE EXTENSION)? */
bool
ChatMaintIsMember(Oid relid)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {OIDOID};
	Datum		v[1];

	v[0] = ObjectIdGetDatum(relid);
	ChatMaintExecKept(&plan,
			 "SELECT 1 FROM pg_catalog.pg_depend WHERE classid = 'pg_catalog.pg_class'::regclass "
			 "AND objid = $1 AND refclassid = 'pg_catalog.pg_extension'::regclass AND deptype = 'e'",
			 1, types, v);
	return SPI_processed > 0;
}
