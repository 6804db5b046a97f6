/*
 * attachment_read.c: the attachments of a page of messages, read with one
 * index scan per page, never one query per message.
 *
 * history and catch_up pages carry up to 1000 messages; their attachments
 * come from one btree scan of chat.attachments_message (chat_id,
 * message_seq, position): a key range when the page's seqs lie close
 * together (every history page), the seqs as an array key otherwise (a
 * catch_up page after edits of old messages). The scan is driven directly
 * rather than through SPI: executor start-up and the copy of every row into
 * an SPI tuple table cost more than the scan itself for a 50-message page.
 * Rows come in (seq, position) order and are placed by binary search.
 */
#include "chat.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* Scan a seq range rather than a list while it is under this many seqs per message. */
#define CHAT_ATTACHMENT_RANGE_SLACK	4

/* Columns of chat.attachments read here, by name (attnums looked up). */
typedef enum AttCol
{
	AC_SEQ,
	AC_POSITION,
	AC_ID,
	AC_NAME,
	AC_TYPE,
	AC_SIZE,
	AC_COUNT
} AttCol;

static const char *const att_col_names[AC_COUNT] = {
	"message_seq", "position", "attachment_id", "file_name", "content_type", "size"
};

/* Order message pointers by seq. */
static int
MsgSeqCmp(const void *a, const void *b)
{
	int64		x = (*(ChatMessage *const *) a)->seq;
	int64		y = (*(ChatMessage *const *) b)->seq;

	return (x > y) - (x < y);
}

/* The message with this seq among with[0..n), sorted by seq, or NULL. */
static ChatMessage *
FindSeq(ChatMessage **with, int n, int64 seq)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (with[mid]->seq == seq)
			return with[mid];
		if (with[mid]->seq < seq)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/* OID of chat.<name>, which the extension's script created. */
static Oid
ChatRelid(const char *name)
{
	Oid			nsp = get_namespace_oid("chat", false);
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "chat: relation chat.%s is missing", name);
	return relid;
}

/* Place one index-scan row into its message. */
static void
PlaceRow(TupleTableSlot *slot, const AttrNumber *attnum, ChatMessage **with, int nwith)
{
	ChatMessage *msg;
	ChatAttachment *a;
	int			pos;

	slot_getallattrs(slot);
	if (slot->tts_isnull[attnum[AC_SEQ] - 1] || slot->tts_isnull[attnum[AC_POSITION] - 1])
		return;
	msg = FindSeq(with, nwith, DatumGetInt64(slot->tts_values[attnum[AC_SEQ] - 1]));
	pos = DatumGetInt16(slot->tts_values[attnum[AC_POSITION] - 1]);
	if (msg == NULL || pos < 0 || pos >= msg->n_attachments || msg->att[pos].name != NULL)
		return;
	a = &msg->att[pos];
	a->id = DatumGetInt64(slot->tts_values[attnum[AC_ID] - 1]);
	a->name = TextDatumGetCString(slot->tts_values[attnum[AC_NAME] - 1]);
	a->content_type = TextDatumGetCString(slot->tts_values[attnum[AC_TYPE] - 1]);
	a->size = DatumGetInt64(slot->tts_values[attnum[AC_SIZE] - 1]);
}

/*
 * Attach attachment metadata to the messages of one chat that have any.
 * Deleted messages show none. Called inside SPI; reads with the active
 * snapshot, as a read-only SPI query would.
 */
void
ChatLoadAttachments(ChatMessage *msgs, int n)
{
	ChatMessage **with;
	int			nwith = 0;
	int			i,
				k;
	int64		lo,
				hi;
	Oid			relid;
	Relation	rel,
				idx;
	AttrNumber	attnum[AC_COUNT];
	ScanKeyData keys[3];
	int			nkeys;
	IndexScanDesc scan;
	TupleTableSlot *slot;

	with = palloc(sizeof(ChatMessage *) * Max(n, 1));
	for (i = 0; i < n; i++)
		if (msgs[i].n_attachments > 0 && !msgs[i].deleted)
		{
			msgs[i].att = palloc0(sizeof(ChatAttachment) * msgs[i].n_attachments);
			with[nwith++] = &msgs[i];
		}
	if (nwith == 0)
		return;
	qsort(with, nwith, sizeof(ChatMessage *), MsgSeqCmp);
	lo = with[0]->seq;
	hi = with[nwith - 1]->seq;

	relid = ChatRelid("attachments");
	for (i = 0; i < AC_COUNT; i++)
	{
		attnum[i] = get_attnum(relid, att_col_names[i]);
		if (attnum[i] == InvalidAttrNumber)
			elog(ERROR, "chat: column chat.attachments.%s is missing", att_col_names[i]);
	}
	rel = table_open(relid, AccessShareLock);
	idx = index_open(ChatRelid("attachments_message"), AccessShareLock);

	/* index columns: 1 chat_id, 2 message_seq, 3 position */
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(with[0]->chat_id));
	if (hi - lo < (int64) nwith * CHAT_ATTACHMENT_RANGE_SLACK)
	{
		ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(lo));
		ScanKeyInit(&keys[2], 2, BTLessEqualStrategyNumber, F_INT8LE, Int64GetDatum(hi));
		nkeys = 3;
	}
	else
	{
		Datum	   *seqs = palloc(sizeof(Datum) * nwith);

		for (i = 0; i < nwith; i++)
			seqs[i] = Int64GetDatum(with[i]->seq);
		ScanKeyEntryInitialize(&keys[1], SK_SEARCHARRAY, 2, BTEqualStrategyNumber, INT8OID,
							   InvalidOid, F_INT8EQ,
							   PointerGetDatum(ChatInt8Array(seqs, nwith)));
		nkeys = 2;
	}

	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
		PlaceRow(slot, attnum, with, nwith);
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);

	/* close any gap (there is none unless rows were changed by hand) */
	for (i = 0; i < nwith; i++)
	{
		ChatMessage *msg = with[i];

		for (k = 0; k < msg->n_attachments; k++)
			if (msg->att[k].name != NULL)
				msg->att[msg->natt++] = msg->att[k];
	}
}
