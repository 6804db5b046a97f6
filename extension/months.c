/*
 * months.c: UTC month arithmetic and the names of monthly partitions.
 * Partition bounds are UTC month starts whatever the session's time zone,
 * so that the worker, the procedure and any DBA session agree.
 */
#include "chat.h"
#include "partitions.h"

#include "pgtime.h"
#include "utils/datetime.h"

/* The first instant of the UTC month holding t. */
TimestampTz
ChatMonthStart(TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;
	TimestampTz result;

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	if (tm2timestamp(&tm, 0, NULL, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

/* t moved by n months in UTC, the day clamped to the month's length. */
TimestampTz
ChatAddMonths(TimestampTz t, int n)
{
	struct pg_tm tm;
	fsec_t		fsec;
	TimestampTz result;
	int			months;

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	months = tm.tm_year * 12 + (tm.tm_mon - 1) + n;
	tm.tm_year = months / 12;
	tm.tm_mon = months % 12 + 1;
	tm.tm_mday = Min(tm.tm_mday, day_tab[isleap(tm.tm_year)][tm.tm_mon - 1]);
	if (tm2timestamp(&tm, fsec, NULL, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

/* A month start as an SQL literal in UTC: '2027-03-01 00:00:00+00'. */
char *
ChatMonthLiteral(TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		elog(ERROR, "chat: month bound out of range");
	return psprintf("'%04d-%02d-%02d %02d:%02d:%02d+00'",
					tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The partition name of the month starting at lo: messages_YYYY_MM. */
char *
ChatMonthRelname(TimestampTz lo)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(lo, NULL, &tm, &fsec, NULL, NULL) != 0)
		elog(ERROR, "chat: month bound out of range");
	return psprintf("messages_%04d_%02d", tm.tm_year, tm.tm_mon);
}
