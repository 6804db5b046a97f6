/*
 * chat.h: shared types, constants and prototypes of the chat extension.
 */
#ifndef CHAT_H
#define CHAT_H

#include "postgres.h"

#include "executor/spi.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "utils/array.h"
#include "utils/tuplestore.h"
#include "storage/lockdefs.h"

#define CHAT_PREVIEW_CHARS		200
#define CHAT_MAX_PAGE			1000
#define CHAT_MAX_ATTACHMENTS	10
/* S3 refuses presigned URLs valid for longer than 7 days */
#define CHAT_S3_MAX_EXPIRES		(7 * 24 * 3600)
/* the old system's upload limit: 100 MB */
#define CHAT_DEFAULT_MAX_UPLOAD	((int64) 100 * 1024 * 1024)

/* GUCs (chat.c) */
typedef enum ChatEventMode
{
	CHAT_EVENTS_DEFERRED,		/* queue + publisher worker (needs preload) */
	CHAT_EVENTS_DIRECT			/* NOTIFY in the writing transaction */
} ChatEventMode;

extern int	chat_max_body_length;
extern int	chat_idempotency_window;
extern int	chat_event_mode;
extern int	chat_event_queue_size;	/* kB per database */

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

/* checks.c */
extern void ChatRequireArg(FunctionCallInfo fcinfo, int argno, const char *name);
extern void ChatCheckPageSize(int32 page_size);
extern void ChatCheckBody(const char *body, bool allow_empty);
extern pg_attribute_noreturn() void ChatDenied(void);
extern void ChatLoadAccess(int64 user_id, int64 chat_id, bool for_update, ChatAccess *acc);

/* message_json.c */
extern void ChatMessageFromTuple(HeapTuple tup, TupleDesc desc, ChatMessage *msg);
extern Jsonb *ChatMessageToJsonb(const ChatMessage *msg);
extern void ChatLoadAttachments(ChatMessage *msgs, int n);
extern void JbKey(JsonbParseState **st, const char *key);
extern void JbInt8(JsonbParseState **st, const char *key, int64 v);
extern void JbText(JsonbParseState **st, const char *key, const char *s);
extern void JbBool(JsonbParseState **st, const char *key, bool v);
extern void JbNull(JsonbParseState **st, const char *key);
extern void JbTimestamp(JsonbParseState **st, const char *key, TimestampTz ts);

/* s3_sign.c */
typedef struct ChatKV
{
	const char *name;
	const char *value;
} ChatKV;

/* Where and as whom to sign: an S3-compatible endpoint and bucket. */
typedef struct ChatS3Target
{
	const char *endpoint;		/* http(s)://host[:port] */
	const char *bucket;
	const char *region;
	const char *access_key;
	const char *secret_key;
	bool		virtual_host;	/* bucket.host/key rather than host/bucket/key */
} ChatS3Target;

extern char *ChatPresign(const ChatS3Target *t, const char *method, const char *key,
						 int expires_s, TimestampTz at, const ChatKV *headers, int nheaders,
						 const ChatKV *query, int nquery);
extern int	ChatJsonbToKV(Jsonb *jb, const char *argname, ChatKV **out);

/* storage.c: chat.storage_config */
typedef struct ChatStorage
{
	ChatS3Target internal;		/* endpoint the database side reaches */
	ChatS3Target public;		/* endpoint browsers reach (URLs for clients) */
	int			upload_url_lifetime;	/* seconds */
	int			default_url_lifetime;
	int			max_url_lifetime;
	int64		max_upload_size;	/* bytes, over every kind */
	int			max_pending_uploads;	/* per user */
	int64		pending_upload_ttl; /* seconds */
} ChatStorage;

extern void ChatLoadStorage(ChatStorage *s, bool need_signing);

/* upload_policy.c */
extern char *ChatCleanFileName(const char *name);
extern char *ChatNormalizeContentType(const char *content_type);
extern char *ChatCheckUpload(const char *content_type, int64 size, int64 max_upload_size);
extern char *ChatContentDisposition(const char *name, bool inline_);

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

/* event_queue.c: deferred publication through shared memory */
#define CHAT_QUEUE_DATABASES 4

typedef struct ChatQueueSlot
{
	Oid			dboid;			/* InvalidOid: free */
	pid_t		publisher_pid;
	struct Latch *publisher_latch;
	uint64		head;			/* next byte to reserve, grows forever */
	uint64		tail;			/* next byte to publish */
	pg_atomic_uint32 resync_pending;	/* events were dropped */
	uint64		published_events;
	uint64		dropped_events;
	int			failed_starts;	/* publisher starts that did not connect */
} ChatQueueSlot;

typedef struct ChatQueueShared
{
	LWLock	   *lock;
	Size		ring_size;		/* bytes per database */
	ChatQueueSlot slots[CHAT_QUEUE_DATABASES];
} ChatQueueShared;

extern void ChatQueueInit(void);
extern bool ChatQueueAvailable(void);
extern void ChatQueueStage(const char *payload);
extern ChatQueueShared *ChatQueue(void);
extern void ChatQueueSlotInit(ChatQueueSlot *slot, Oid dboid);
extern char *ChatQueueRing(ChatQueueSlot *slot);
extern int	ChatQueueTake(ChatQueueSlot *slot, StringInfo batch);

/* publisher.c */
extern PGDLLEXPORT void chat_publisher_main(Datum main_arg);

/* locks.c: lock acquisition that never sits in a lock queue for long */
extern bool ChatLockWithin(Oid relid, LOCKMODE mode, int timeout_ms);
extern void ChatSleepMs(int ms);

/* months.c */
extern TimestampTz ChatMonthStart(TimestampTz t);
extern TimestampTz ChatAddMonths(TimestampTz t, int n);
extern char *ChatMonthLiteral(TimestampTz t);
extern char *ChatMonthRelname(TimestampTz lo);

/* maintain.c: partition maintenance (premake, rescue, retention) */
typedef void (*ChatCommitHook) (void *arg);

typedef struct ChatMaintainCounts
{
	int			created;
	int			dropped;
	int			archived;
	int			deferred;
	int64		moved;
	int			attachment_keys;
} ChatMaintainCounts;

extern Jsonb *ChatMaintain(TimestampTz at, ChatCommitHook commit, void *commit_arg,
						   MemoryContext keep, ChatMaintainCounts *counts);

/* worker.c */
extern void ChatRegisterMaintenanceLauncher(void);

#endif							/* CHAT_H */
