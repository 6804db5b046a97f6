/*
 * s3.h: the object store: SigV4 presigning (s3_sign.c), the storage
 * settings (storage.c) and the upload policy (upload_policy.c).
 */
#ifndef CHAT_S3_H
#define CHAT_S3_H

#include "postgres.h"

#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* S3 refuses presigned URLs valid for longer than 7 days */
#define CHAT_S3_MAX_EXPIRES		(7 * 24 * 3600)
/* the old system's upload limit: 100 MB */
#define CHAT_DEFAULT_MAX_UPLOAD	((int64) 100 * 1024 * 1024)

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

#endif							/* CHAT_S3_H */
