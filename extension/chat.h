/*
 * chat.h: the shared core of the chat extension: settings, the message and
 * access structs, SPI helpers, argument checks, bigint[] helpers and jsonb
 * building. Each area has its own header: events.h, queue.h, partitions.h,
 * s3.h, maintain.h.
 */
#ifndef CHAT_H
#define CHAT_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#define CHAT_PREVIEW_CHARS		200
#define CHAT_MAX_PAGE			1000
#define CHAT_MAX_ATTACHMENTS	10
#define CHAT_PAGE_MAX_BYTES_DEFAULT	(256 * 1024)
/* Largest user id: 2^53 - 1, the largest integer a JavaScript number holds exactly */
#define CHAT_MAX_USER_ID		INT64CONST(9007199254740991)
/* what maintenance runs under, as the SET clause of the SQL API */
#define CHAT_SEARCH_PATH		"pg_catalog, pg_temp"
/* GUCs (chat.c) */
typedef enum ChatEventMode
{
	CHAT_EVENTS_DEFERRED,		/* queue + publisher worker (needs preload) */
	CHAT_EVENTS_DIRECT			/* NOTIFY in the writing transaction */
} ChatEventMode;

extern int	chat_max_body_length;
extern int	chat_idempotency_window;
extern int	chat_max_new_chats_per_hour;
extern int	chat_presence_granularity;	/* seconds */
extern int	chat_push_delay;		/* seconds */
extern int	chat_push_interval;	/* seconds */
extern int	chat_event_mode;
extern int	chat_event_queue_size;	/* kB per database */
extern int	chat_page_max_bytes;	/* page_budget.c */

extern int	chat_premake_months;
extern int	chat_retention_months;
extern int	chat_retention_action;
extern char *chat_archive_schema;
extern int	chat_maintenance_interval;
extern int	chat_maintenance_lock_timeout;
extern int	chat_maintenance_lock_retries;

/* chat.retention_action */
typedef enum ChatRetentionAction
{
	CHAT_RETENTION_DROP,
	CHAT_RETENTION_DETACH
} ChatRetentionAction;

/*
 * The membership check and the block check, one text wherever a chat is
 * entered (ChatLoadAccess, send_message's lock): user is a member of chat;
 * a member of chat has blocked user. chat and user are SQL expressions.
 */
#define CHAT_IS_MEMBER_SQL(chat, user) \
	"EXISTS (SELECT 1 FROM chat.members m WHERE m.chat_id = " chat " AND m.user_id = " user ")"
#define CHAT_IS_BLOCKED_SQL(chat, user) \
	"EXISTS (SELECT 1 FROM chat.members o JOIN chat.blocks b " \
	"ON b.blocker_id = o.user_id AND b.blocked_id = " user " WHERE o.chat_id = " chat ")"

/* a block between users a and b, either way round (SQL expressions) */
#define CHAT_BLOCK_EITHER_WAY_SQL(a, b) \
	"EXISTS (SELECT 1 FROM chat.blocks b WHERE (b.blocker_id = " a " AND b.blocked_id = " b ") " \
	"OR (b.blocker_id = " b " AND b.blocked_id = " a "))"

/* may viewer see user's presence (contacts.c): themselves, or a contact with no block */
#define CHAT_SEES_PRESENCE_SQL(viewer, user) \
	"(" user " = " viewer " OR (EXISTS (SELECT 1 FROM chat.contacts c WHERE c.user_id = " viewer \
	" AND c.peer_id = " user ") AND NOT " CHAT_BLOCK_EITHER_WAY_SQL(viewer, user) "))"

/* A row of chat.messages, as read by every message query. */
#define CHAT_MESSAGE_COLS \
	"chat_id, seq, rev, sender_id, body, client_id, created_at, edited_at, deleted, n_attachments"

typedef struct ChatMessage
{
	int64		chat_id;
	int64		seq;
	int64		rev;
	int64		sender_id;
	char	   *body;
	bool		has_client_id;
	pg_uuid_t	client_id;
	TimestampTz created_at;
	bool		has_edited_at;
	TimestampTz edited_at;
	bool		deleted;
	int16		n_attachments;
	/* filled by ChatLoadAttachments */
	int			natt;
	struct ChatAttachment *att;
} ChatMessage;

typedef struct ChatAttachment
{
	int64		id;
	char	   *name;
	char	   *content_type;
	int64		size;
} ChatAttachment;

/* The acting user's view of a chat, read under the membership check. */
typedef struct ChatAccess
{
	int64		chat_id;
	TimestampTz created_at;
	bool		has_last_message;
	TimestampTz last_message_at;
	int64		last_seq;
	int64		last_rev;
	bool		blocked;		/* a member has blocked the acting user */
} ChatAccess;

/* spi_util.c */
extern void ChatPlanOnce(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *argtypes);
extern void ChatPlanOnceOpts(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *argtypes,
							 int options);
extern int	ChatExec(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only, long count);
extern int64 ChatGetInt8(HeapTuple tup, TupleDesc desc, int col, bool *isnull);
extern Datum ChatGetDatum(HeapTuple tup, TupleDesc desc, int col, bool *isnull);
extern Tuplestorestate *ChatSrfBegin(FunctionCallInfo fcinfo);
extern void ChatSrfPut(FunctionCallInfo fcinfo, Tuplestorestate *ts, Jsonb *row);
extern Jsonb *ChatCopyOut(MemoryContext outer, Jsonb *j);

/* arrays.c: every bigint[] built or read */
extern ArrayType *ChatInt8Array(Datum *elems, int n);
extern int	ChatInt8ArrayValues(ArrayType *arr, const char *name, int64 **out);
extern int	ChatInt8ArrayArg(FunctionCallInfo fcinfo, int argno, const char *name, int max,
							 const char *too_many, int64 **out);

/* contacts.c */
extern void ChatAddContacts(int64 chat_id, int64 sender);
extern int	ChatTypingRecipients(int64 chat_id, int64 user_id, int64 **users);
extern TimestampTz ChatCoarseTime(TimestampTz t);

/* checks.c */
extern void ChatRequireArg(FunctionCallInfo fcinfo, int argno, const char *name);
extern void ChatCheckPageSize(int32 page_size);
extern void ChatCheckBody(const char *body, bool allow_empty);
extern pg_attribute_noreturn() void ChatDenied(void);
extern void ChatLoadAccess(int64 user_id, int64 chat_id, bool for_update, ChatAccess *acc);

/* A page being filled under chat.page_max_bytes (page_budget.c). */
typedef struct ChatPage
{
	int			size;			/* page_size */
	int			rows;			/* rows put */
	int64		bytes;			/* their JSON text, at most */
	bool		stopped;		/* by the budget: the last row says "more" */
} ChatPage;

/* page_budget.c */
extern int64 ChatJsonStringBytes(const char *s);
extern int64 ChatMessageJsonBytes(const ChatMessage *msg);
extern bool ChatPageStopsAfter(ChatPage *page, int64 this_bytes, int64 next_bytes);
extern int	ChatPageNextBatch(const ChatPage *page, int first);
/*
 * The first batch a page reads: a default page (50) in one query, while a
 * page of large rows reads at most this many before the budget is known.
 */
#define CHAT_PAGE_FIRST_BATCH	64

/* locks.c: a user's lock until commit, per purpose */
#define CHAT_LOCK_UPLOADS		0x6361
#define CHAT_LOCK_NEW_CHATS		0x6362
extern void ChatLockUser(int64 user_id, uint16 purpose);

/* message_json.c */
extern void ChatMessageFromTuple(HeapTuple tup, TupleDesc desc, ChatMessage *msg);
extern Jsonb *ChatMessageToJsonb(const ChatMessage *msg);
extern Jsonb *ChatPageMessageToJsonb(const ChatMessage *msg, bool more);
extern void ChatLoadAttachments(ChatMessage *msgs, int n);
extern void ChatJbKey(JsonbParseState **st, const char *key);
extern void ChatJbInt8(JsonbParseState **st, const char *key, int64 v);
extern void ChatJbText(JsonbParseState **st, const char *key, const char *s);
extern void ChatJbBool(JsonbParseState **st, const char *key, bool v);
extern void ChatJbNull(JsonbParseState **st, const char *key);
extern void ChatJbTimestamp(JsonbParseState **st, const char *key, TimestampTz ts);

#endif							/* CHAT_H */
