/*
 * partitions.c: the partitions of chat.messages, newest first, each with its
 * own kept plans.
 *
 * A query on the partitioned parent makes the planner (or a generic plan)
 * lock and consider every partition; with two years of monthly partitions
 * that is most of the cost of a history page and the lock traffic collapses
 * under many clients. Messages of a chat are stamped in seq order, so the
 * extension walks the partitions that overlap the chat's lifetime from the
 * newest and stops as soon as a page is full, touching one or two tables.
 * The list comes from the relcache's partition descriptor and is rebuilt
 * when it changes (maintenance attaching or detaching a partition).
 */
#include "chat.h"
#include "partitions.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "storage/lmgr.h"

static MemoryContext part_cxt = NULL;
static Oid	cached_parent = InvalidOid;
static int	cached_n = 0;
static Oid *cached_oids = NULL;		/* in partition-descriptor order */
static Datum *cached_bounds = NULL;
static int	cached_nbounds = 0;
static ChatPartition **cached_parts = NULL;	/* newest first, default last */

/* Order partitions by upper bound, newest first; the default one last. */
static int
PartitionCmp(const void *a, const void *b)
{
	const ChatPartition *pa = *(ChatPartition *const *) a;
	const ChatPartition *pb = *(ChatPartition *const *) b;

	if (pa->is_default != pb->is_default)
		return pa->is_default ? 1 : -1;
	if (pa->upper != pb->upper)
		return pa->upper > pb->upper ? -1 : 1;
	return 0;
}

/* Does the cache describe this partition descriptor? */
static bool
CacheMatches(Oid parent, PartitionDesc pd)
{
	PartitionBoundInfo bi = pd->boundinfo;
	int			i;

	if (cached_parts == NULL || parent != cached_parent || pd->nparts != cached_n)
		return false;
	if (memcmp(cached_oids, pd->oids, sizeof(Oid) * pd->nparts) != 0)
		return false;
	if ((bi ? bi->ndatums : 0) != cached_nbounds)
		return false;
	for (i = 0; i < cached_nbounds; i++)
		if (bi->datums[i][0] != cached_bounds[i])
			return false;
	return true;
}

/* Forget the cached partitions and free their plans. */
static void
CacheReset(void)
{
	int			i,
				k;

	for (i = 0; cached_parts != NULL && i < cached_n; i++)
		for (k = 0; k < PP_COUNT; k++)
			if (cached_parts[i] != NULL && cached_parts[i]->plans[k] != NULL)
				SPI_freeplan(cached_parts[i]->plans[k]);
	if (part_cxt != NULL)
		MemoryContextReset(part_cxt);
	else
		part_cxt = AllocSetContextCreate(TopMemoryContext, "chat partitions",
										 ALLOCSET_SMALL_SIZES);
	cached_parts = NULL;
	cached_n = 0;
	cached_nbounds = 0;
}

/* Build the cache from the relcache's partition descriptor. */
static void
CacheBuild(Oid parent, PartitionDesc pd)
{
	PartitionBoundInfo bi = pd->boundinfo;
	MemoryContext old;
	ChatPartition **parts;
	int			i;

	CacheReset();
	old = MemoryContextSwitchTo(part_cxt);

	cached_parent = parent;
	cached_oids = palloc(sizeof(Oid) * Max(pd->nparts, 1));
	memcpy(cached_oids, pd->oids, sizeof(Oid) * pd->nparts);
	cached_nbounds = bi ? bi->ndatums : 0;
	cached_bounds = palloc(sizeof(Datum) * Max(cached_nbounds, 1));
	parts = palloc0(sizeof(ChatPartition *) * Max(pd->nparts, 1));

	for (i = 0; i < pd->nparts; i++)
	{
		ChatPartition *p = palloc0(sizeof(ChatPartition));
		Oid			relid = pd->oids[i];

		p->relid = relid;
		p->qualname = pstrdup(quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
														 get_rel_name(relid)));
		p->is_default = bi != NULL && bi->default_index == i;
		p->lower = DT_NOBEGIN;
		p->upper = DT_NOEND;
		parts[i] = p;
	}

	/* indexes[k] is the partition whose upper bound is datums[k] */
	for (i = 0; i < cached_nbounds; i++)
	{
		int			idx = bi->indexes[i];

		cached_bounds[i] = bi->datums[i][0];
		if (idx < 0)
			continue;
		if (bi->kind[i][0] == PARTITION_RANGE_DATUM_VALUE)
			parts[idx]->upper = DatumGetTimestampTz(bi->datums[i][0]);
		if (i > 0 && bi->kind[i - 1][0] == PARTITION_RANGE_DATUM_VALUE)
			parts[idx]->lower = DatumGetTimestampTz(bi->datums[i - 1][0]);
	}

	qsort(parts, pd->nparts, sizeof(ChatPartition *), PartitionCmp);
	MemoryContextSwitchTo(old);
	/* published last: an error above leaves the cache empty, not half-built */
	cached_n = pd->nparts;
	cached_parts = parts;
}

/*
 * The partitions of chat.messages, newest first and the default one last.
 * Takes AccessShareLock on the parent, as any query on it would.
 */
int
ChatPartitions(ChatPartition ***parts)
{
	Oid			nsp = get_namespace_oid("chat", false);
	Oid			parent = get_relname_relid("messages", nsp);
	Relation	rel;
	PartitionDesc pd;

	if (!OidIsValid(parent))
		elog(ERROR, "chat: table chat.messages is missing");
	rel = table_open(parent, AccessShareLock);
	pd = RelationGetPartitionDesc(rel, true);
	if (!CacheMatches(parent, pd))
		CacheBuild(parent, pd);
	table_close(rel, NoLock);
	*parts = cached_parts;
	return cached_n;
}

/*
 * The partitions, for a read of several of them that must see rows moving
 * between partitions exactly once. The statement's snapshot predates the
 * locks taken here: after waiting behind a DETACH (or an ATTACH moving rows
 * out of the default partition) the partition list is newer than that
 * snapshot, and rows moved by that transaction would be missed. So the
 * parent and the default partition (every such move goes through one of
 * them) are locked first, the list is read again, and a snapshot taken
 * after the locks is pushed; the caller pops it with PopActiveSnapshot().
 */
int
ChatPartitionsForRead(ChatPartition ***parts)
{
	int			n = ChatPartitions(parts);
	int			i;

	for (i = 0; i < n; i++)
		if ((*parts)[i]->is_default)
		{
			LockRelationOid((*parts)[i]->relid, AccessShareLock);
			n = ChatPartitions(parts);
			break;
		}
	PushActiveSnapshot(GetTransactionSnapshot());
	return n;
}

/* May partition p hold rows stamped between from and to (inclusive)? */
bool
ChatPartitionOverlaps(const ChatPartition *p, TimestampTz from, TimestampTz to)
{
	if (p->is_default)
		return true;
	return p->upper > from && p->lower <= to;
}

/* The kept plan of one kind for partition p, prepared on first use. */
SPIPlanPtr
ChatPartitionPlan(ChatPartition *p, ChatPartPlan kind)
{
	static const Oid t_hist[3] = {INT8OID, INT8OID, INT8OID};
	static const Oid t_seq[2] = {INT8OID, INT8OID};
	static const Oid t_client[3] = {INT8OID, UUIDOID, INT8OID};
	static const Oid t_update[6] = {INT8OID, INT8OID, TEXTOID, TIMESTAMPTZOID, BOOLOID, INT8OID};
	char	   *sql;

	if (p->plans[kind] != NULL)
		return p->plans[kind];
	switch (kind)
	{
		case PP_HISTORY:
			sql = psprintf("SELECT " CHAT_MESSAGE_COLS " FROM %s WHERE chat_id = $1 AND seq < $2 "
						   "ORDER BY seq DESC LIMIT $3", p->qualname);
			ChatPlanOnce(&p->plans[kind], sql, 3, t_hist);
			break;
		case PP_CATCH_UP:
			sql = psprintf("SELECT " CHAT_MESSAGE_COLS " FROM %s WHERE chat_id = $1 AND rev > $2 "
						   "ORDER BY rev LIMIT $3", p->qualname);
			ChatPlanOnce(&p->plans[kind], sql, 3, t_hist);
			break;
		case PP_BY_SEQ:
			sql = psprintf("SELECT " CHAT_MESSAGE_COLS " FROM %s WHERE chat_id = $1 AND seq = $2",
						   p->qualname);
			ChatPlanOnce(&p->plans[kind], sql, 2, t_seq);
			break;
		case PP_BY_CLIENT_ID:
			sql = psprintf("SELECT " CHAT_MESSAGE_COLS " FROM %s WHERE chat_id = $1 AND client_id = $2 "
						   "AND client_id IS NOT NULL AND sender_id = $3 LIMIT 1", p->qualname);
			ChatPlanOnce(&p->plans[kind], sql, 3, t_client);
			break;
		case PP_UPDATE:
			sql = psprintf("UPDATE %s SET body = $3, edited_at = $4, deleted = $5, rev = $6 "
						   "WHERE chat_id = $1 AND seq = $2 RETURNING " CHAT_MESSAGE_COLS,
						   p->qualname);
			ChatPlanOnce(&p->plans[kind], sql, 6, t_update);
			break;
		default:
			elog(ERROR, "chat: unknown partition plan %d", (int) kind);
	}
	pfree(sql);
	return p->plans[kind];
}

/*
 * Find message seq of the chat: walk the partitions the chat has lived in,
 * newest first. Returns false when there is no such message.
 */
bool
ChatFindMessage(const ChatAccess *acc, int64 seq, ChatPartition **where, ChatMessage *msg)
{
	ChatPartition **parts;
	int			n = ChatPartitions(&parts);
	int			i;
	Datum		values[2];

	if (seq < 1 || seq > acc->last_seq || !acc->has_last_message)
		return false;
	values[0] = Int64GetDatum(acc->chat_id);
	values[1] = Int64GetDatum(seq);
	for (i = 0; i < n; i++)
	{
		if (!ChatPartitionOverlaps(parts[i], acc->created_at, acc->last_message_at))
			continue;
		ChatExec(ChatPartitionPlan(parts[i], PP_BY_SEQ), values, NULL, false, 1);
		if (SPI_processed == 1)
		{
			ChatMessageFromTuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, msg);
			*where = parts[i];
			return true;
		}
	}
	return false;
}
