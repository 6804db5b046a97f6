/*
 * storage.c: the object-store configuration, read from chat.storage_config.
 *
 * The table has one row and no privilege for anyone but the extension's
 * owner; the SECURITY DEFINER API functions read it as the owner. It has no
 * CHECK or NOT NULL constraints on purpose: a violated constraint prints the
 * whole failing row, secret key included, in the error and the server log.
 * chat.configure_storage() validates instead, and this reader checks again.
 */
#include "chat.h"
#include "s3.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

/* Column n (1-based) of the config row as a C string, or NULL. */
static char *
TextCol(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = ChatGetDatum(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* Column n as int64 with a fallback for NULL. */
static int64
IntCol(HeapTuple tup, TupleDesc desc, int col, int64 fallback)
{
	bool		isnull;
	int64		v = ChatGetInt8(tup, desc, col, &isnull);

	return isnull ? fallback : v;
}

/* The refusal when something the configuration must give is missing. */
static pg_attribute_noreturn() void
NotConfigured(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("object storage is not configured"),
			 errdetail("chat.storage_config has no %s.", what),
			 errhint("The extension's owner sets it with chat.configure_storage().")));
}

/*
 * Read the configuration (inside SPI). With need_signing, refuse with 55000
 * when the endpoint, bucket or keys are missing.
 */
void
ChatLoadStorage(ChatStorage *s, bool need_signing)
{
	static SPIPlanPtr plan = NULL;
	HeapTuple	tup;
	TupleDesc	desc;
	char	   *public_endpoint;
	bool		isnull;
	Datum		d;

	ChatPlanOnce(&plan,
				 "SELECT endpoint, public_endpoint, bucket, region, access_key, secret_key, "
				 "  virtual_host, upload_url_lifetime::int8, default_url_lifetime::int8, "
				 "  max_url_lifetime::int8, max_upload_size, max_pending_uploads::int8, "
				 "  pending_upload_ttl::int8 "
				 "FROM chat.storage_config WHERE singleton",
				 0, NULL);
	ChatExec(plan, NULL, NULL, true, 1);
	if (SPI_processed != 1)
		NotConfigured("row");
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	memset(s, 0, sizeof(*s));
	s->internal.endpoint = TextCol(tup, desc, 1);
	public_endpoint = TextCol(tup, desc, 2);
	s->internal.bucket = TextCol(tup, desc, 3);
	s->internal.region = TextCol(tup, desc, 4);
	s->internal.access_key = TextCol(tup, desc, 5);
	s->internal.secret_key = TextCol(tup, desc, 6);
	d = ChatGetDatum(tup, desc, 7, &isnull);
	s->internal.virtual_host = !isnull && DatumGetBool(d);
	if (s->internal.region == NULL)
		s->internal.region = "us-east-1";
	s->upload_url_lifetime = (int) Min(Max(IntCol(tup, desc, 8, 900), 1), CHAT_S3_MAX_EXPIRES);
	s->max_url_lifetime = (int) Min(Max(IntCol(tup, desc, 10, 86400), 1), CHAT_S3_MAX_EXPIRES);
	s->default_url_lifetime = (int) Min(Max(IntCol(tup, desc, 9, 900), 1), s->max_url_lifetime);
	s->max_upload_size = Max(IntCol(tup, desc, 11, CHAT_DEFAULT_MAX_UPLOAD), 1);
	s->max_pending_uploads = (int) Min(Max(IntCol(tup, desc, 12, 20), 1), PG_INT32_MAX);
	s->pending_upload_ttl = Max(IntCol(tup, desc, 13, 86400), 60);

	s->public = s->internal;
	if (public_endpoint != NULL)
		s->public.endpoint = public_endpoint;

	if (need_signing)
	{
		if (s->internal.endpoint == NULL)
			NotConfigured("endpoint");
		if (s->internal.bucket == NULL)
			NotConfigured("bucket");
		if (s->internal.access_key == NULL)
			NotConfigured("access_key");
		if (s->internal.secret_key == NULL)
			NotConfigured("secret_key");
	}
}
