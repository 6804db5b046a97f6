/*
 * spi_util.c: SPI plans prepared once per backend and kept, and result helpers.
 */
#include "chat.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "nodes/execnodes.h"
#include "utils/tuplestore.h"

/*
 * Prepare sql into *slot unless already there; the plan outlives SPI_finish.
 * Plans are generic from the first call: every query here is an index probe
 * whose plan does not depend on the values, and custom plans would be
 * re-planned on every call (the planner keeps choosing them when it cannot
 * tell the two apart by cost).
 */
void
ChatPlanOnce(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *argtypes)
{
	ChatPlanOnceOpts(slot, sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);
}

/* ChatPlanOnce with explicit cursor options (SPI_prepare_cursor). */
void
ChatPlanOnceOpts(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *argtypes, int options)
{
	SPIPlanPtr	plan;

	if (*slot != NULL)
		return;
	plan = SPI_prepare_cursor(sql, nargs, (Oid *) argtypes, options);
	if (plan == NULL)
		elog(ERROR, "chat: SPI_prepare failed for \"%s\": %s",
			 sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "chat: SPI_keepplan failed");
	*slot = plan;
}

/* Execute a kept plan and fail loudly on anything but success. */
int
ChatExec(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only, long count)
{
	int			rc = SPI_execute_plan(plan, values, nulls, read_only, count);

	if (rc < 0)
		elog(ERROR, "chat: SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	return rc;
}

/* Column col (1-based) of a result row as a Datum. */
Datum
ChatGetDatum(HeapTuple tup, TupleDesc desc, int col, bool *isnull)
{
	return SPI_getbinval(tup, desc, col, isnull);
}

/* Column col (1-based) of a result row as int64; 0 when NULL. */
int64
ChatGetInt8(HeapTuple tup, TupleDesc desc, int col, bool *isnull)
{
	bool		null;
	Datum		d = SPI_getbinval(tup, desc, col, &null);

	if (isnull)
		*isnull = null;
	return null ? 0 : DatumGetInt64(d);
}

/* Start a materialized SETOF jsonb result; rows go in with ChatSrfPut. */
Tuplestorestate *
ChatSrfBegin(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	TupleDesc	desc;
	Tuplestorestate *ts;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	desc = CreateTemplateTupleDesc(1);
	TupleDescInitEntry(desc, (AttrNumber) 1, "value", JSONBOID, -1, 0);
	ts = tuplestore_begin_heap(true, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = ts;
	rsinfo->setDesc = desc;
	MemoryContextSwitchTo(old);
	return ts;
}

/* Append one jsonb row to a result started by ChatSrfBegin. */
void
ChatSrfPut(FunctionCallInfo fcinfo, Tuplestorestate *ts, Jsonb *row)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[1];
	bool		nulls[1] = {false};

	values[0] = JsonbPGetDatum(row);
	tuplestore_putvalues(ts, rsinfo->setDesc, values, nulls);
}

/* Copy a jsonb built inside SPI into the caller's memory context. */
Jsonb *
ChatCopyOut(MemoryContext outer, Jsonb *j)
{
	Jsonb	   *out = MemoryContextAlloc(outer, VARSIZE(j));

	memcpy(out, j, VARSIZE(j));
	return out;
}
