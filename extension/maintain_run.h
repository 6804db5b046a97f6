/*
 * maintain_run.h: the state of one partition maintenance run, shared by
 * maintain.c (the work) and maintain_report.c (the report).
 */
#ifndef CHAT_MAINTAIN_RUN_H
#define CHAT_MAINTAIN_RUN_H

#include "nodes/pg_list.h"

/* A month to make: [lo, hi) as chat.<relname>. */
typedef struct MaintMonth
{
	TimestampTz lo;
	TimestampTz hi;
	char	   *relname;
	Oid			relid;			/* the standalone table, once it exists */
	bool		made;			/* made by this run */
	bool		attached;
} MaintMonth;

/* A partition to retire. */
typedef struct MaintOld
{
	Oid			relid;
	char	   *relname;
	bool		member;			/* made by CREATE EXTENSION: a member of it */
	bool		detached;		/* not (or no longer) a partition */
	int			natt;			/* attachments of its messages */
	Datum	   *att_ids;
} MaintOld;

/* A step that was not done this round. */
typedef struct MaintNote
{
	char	   *partition;
	const char *action;
	char	   *reason;
	int64		rows;
} MaintNote;

/* One transaction's (or subtransaction's) worth of work. */
typedef struct MaintUnit
{
	LOCKMODE	parent_mode;	/* NoLock: the unit does not touch chat.messages */
	List	   *months;			/* to attach */
	List	   *olds;			/* to detach unless detached already */
	bool		dispose;		/* and then drop or archive */
} MaintUnit;

typedef struct MaintRun
{
	MemoryContext cxt;
	TimestampTz at;
	bool		has_cutoff;
	TimestampTz cutoff;			/* retire partitions ending at or before */
	int			premake;
	int			retention;
	int			action;
	char	   *archive;
	Oid			nsp;
	Oid			parent;
	Oid			owner;
	Oid			def;			/* default partition, or InvalidOid */
	char	   *def_qual;
	char	   *columns;		/* quoted column list of chat.messages */
	List	   *months;
	List	   *olds;
	const char *blocker;		/* the lock last not granted */
	/* report */
	List	   *created;
	List	   *rescued;		/* MaintNote with rows */
	int64		moved;
	List	   *dropped;
	List	   *archived;
	List	   *keys;
	List	   *deferred;		/* MaintNote */
	List	   *skipped;		/* MaintNote */
} MaintRun;

extern Jsonb *ChatMaintReport(MaintRun *run, long ms);

/* maintain_catalog.c */
extern char *ChatMaintQual(const char *relname);
extern void ChatMaintExec(const char *sql);
extern void ChatMaintExecKept(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *types,
							  Datum *values);
extern void ChatMaintNote(List **list, const char *partition, const char *action, const char *reason);
extern char *ChatMaintColumns(Oid parent);
extern Oid	ChatMaintOwner(Oid relid);
extern int	ChatMaintNameState(MaintRun *run, const char *relname, Oid *relid);
extern bool ChatMaintIsMember(Oid relid);

#endif							/* CHAT_MAINTAIN_RUN_H */
