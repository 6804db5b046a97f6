/*
 * maintain_api.c: the DBA's SQL interface to partition maintenance:
 * chat.maintain() (one transaction), CALL chat.maintain_procedure() (one
 * transaction per step) and chat.partitions().
 */
#include "chat.h"
#include "maintain.h"
#include "partitions.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "optimizer/plancat.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(chat_maintain);
PG_FUNCTION_INFO_V1(chat_maintain_procedure);
PG_FUNCTION_INFO_V1(chat_partitions);

/* maintain(at) → report: everything in the caller's transaction. */
Datum
chat_maintain(PG_FUNCTION_ARGS)
{
	MemoryContext outer = CurrentMemoryContext;
	Jsonb	   *report;

	ChatRequireArg(fcinfo, 0, "at");
	SPI_connect();
	report = ChatMaintain(PG_GETARG_TIMESTAMPTZ(0), NULL, NULL, outer, NULL);
	SPI_finish();
	PG_RETURN_JSONB_P(report);
}

/* GUC nest level of the procedure's pinned search_path (PinSearchPath). */
static int	pinned_nest = -1;

/*
 * The procedure cannot have a SET clause (it commits), yet runs DDL whose
 * operators and types resolve through search_path: pin it as the SET clause
 * of the SECURITY DEFINER functions does, for the current transaction. A
 * commit pops it (restoring the caller's), so every new transaction pins
 * it again.
 */
static void
PinSearchPath(void)
{
	pinned_nest = NewGUCNestLevel();
	(void) set_config_option("search_path", CHAT_SEARCH_PATH,
							 superuser() ? PGC_SUSET : PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/* Commit a procedure's transaction and start the next. */
static void
ProcedureCommit(void *arg)
{
	SPI_commit();
	SPI_start_transaction();
	PinSearchPath();
}

/*
 * maintain_procedure(at, INOUT report): committing after each step when
 * CALLed outside a transaction block, otherwise like maintain().
 */
Datum
chat_maintain_procedure(PG_FUNCTION_ARGS)
{
	MemoryContext outer = CurrentMemoryContext;
	bool		nonatomic = fcinfo->context != NULL && IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic;
	TupleDesc	desc;
	Datum		values[1];
	bool		nulls[1] = {false};
	Jsonb	   *report;

	ChatRequireArg(fcinfo, 0, "at");
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "chat: maintain_procedure must have one INOUT argument");
	SPI_connect_ext(nonatomic ? SPI_OPT_NONATOMIC : 0);
	PinSearchPath();
	report = ChatMaintain(PG_GETARG_TIMESTAMPTZ(0), nonatomic ? ProcedureCommit : NULL, NULL,
						  outer, NULL);
	/* the caller's search_path again (an error restores it by aborting) */
	AtEOXact_GUC(true, pinned_nest);
	SPI_finish();

	/* a procedure hands back its output arguments as one record */
	MemoryContextSwitchTo(outer);
	values[0] = JsonbPGetDatum(report);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * Estimated rows of a table: the density of the last VACUUM / ANALYZE times
 * the current size, or, never analysed, the size over the typical row width.
 */
static int64
EstimateRows(Relation rel)
{
	BlockNumber curpages = RelationGetNumberOfBlocks(rel);
	double		reltuples = rel->rd_rel->reltuples;
	BlockNumber relpages = rel->rd_rel->relpages;
	double		density;

	if (curpages == 0)
		return 0;
	if (reltuples >= 0 && relpages > 0)
		density = reltuples / relpages;
	else
	{
		int32		width = get_rel_data_width(rel, NULL) +
			MAXALIGN(SizeofHeapTupleHeader) + sizeof(ItemIdData);

		density = (double) (BLCKSZ - SizeOfPageHeaderData) / width;
	}
	return (int64) (density * curpages + 0.5);
}

/* Emit one row of chat.partitions(). */
static void
PartitionRow(ReturnSetInfo *rsinfo, ChatPartition *p)
{
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	Relation	rel = try_relation_open(p->relid, AccessShareLock);

	if (rel == NULL)
		return;					/* dropped since the list was read */
	values[0] = ObjectIdGetDatum(p->relid);
	values[1] = BoolGetDatum(p->is_default);
	values[2] = TimestampTzGetDatum(p->lower);
	nulls[2] = p->is_default || p->lower == DT_NOBEGIN;
	values[3] = TimestampTzGetDatum(p->upper);
	nulls[3] = p->is_default || p->upper == DT_NOEND;
	values[4] = Int64GetDatum(EstimateRows(rel));
	relation_close(rel, AccessShareLock);
	values[5] = DirectFunctionCall1(pg_total_relation_size, ObjectIdGetDatum(p->relid));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * partitions() → (partition, is_default, range_from, range_to,
 * estimated_rows, total_bytes): the partitions of chat.messages, oldest
 * first, the default one last.
 */
Datum
chat_partitions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ChatPartition **parts;
	int			n,
				i;

	InitMaterializedSRF(fcinfo, 0);
	n = ChatPartitions(&parts);
	for (i = n - 1; i >= 0; i--)
		if (!parts[i]->is_default)
			PartitionRow(rsinfo, parts[i]);
	for (i = 0; i < n; i++)
		if (parts[i]->is_default)
			PartitionRow(rsinfo, parts[i]);
	return (Datum) 0;
}
