/*
 * partitions.h: chat.messages partition by partition (partitions.c) and
 * the UTC months they span (months.c).
 */
#ifndef CHAT_PARTITIONS_H
#define CHAT_PARTITIONS_H

#include "chat.h"

/* partitions.c */
typedef enum ChatPartPlan
{
	PP_HISTORY,					/* page before a seq, newest first */
	PP_CATCH_UP,				/* changes after a rev, oldest first */
	PP_BY_SEQ,					/* one message */
	PP_BY_CLIENT_ID,			/* idempotent send */
	PP_UPDATE,					/* edit or delete */
	PP_COUNT
} ChatPartPlan;

typedef struct ChatPartition
{
	Oid			relid;
	char	   *qualname;
	bool		is_default;
	TimestampTz lower;			/* DT_NOBEGIN when unbounded */
	TimestampTz upper;			/* DT_NOEND when unbounded */
	SPIPlanPtr	plans[PP_COUNT];
} ChatPartition;

extern int	ChatPartitions(ChatPartition ***parts);
extern int	ChatPartitionsForRead(ChatPartition ***parts);
extern bool ChatPartitionOverlaps(const ChatPartition *p, TimestampTz from, TimestampTz to);
extern SPIPlanPtr ChatPartitionPlan(ChatPartition *p, ChatPartPlan kind);
extern bool ChatFindMessage(const ChatAccess *acc, int64 seq, ChatPartition **where, ChatMessage *msg);

/* months.c */
extern TimestampTz ChatMonthStart(TimestampTz t);
extern TimestampTz ChatAddMonths(TimestampTz t, int n);
extern char *ChatMonthLiteral(TimestampTz t);
extern char *ChatMonthRelname(TimestampTz lo);

#endif							/* CHAT_PARTITIONS_H */
