/*
 * seal.c: every payload of chat_events leaves sealed (docs/security.md).
 *
 * LISTEN and NOTIFY have no privileges in PostgreSQL: any role that can
 * connect may read the channel and write to it. So a payload is
 *
 *     c1.<key id>.<base64(nonce[12] || ciphertext || tag[16])>
 *
 * AES-256-GCM under the newest active key of chat.event_keys, which only
 * the extension's owner and chat_event_reader (the relay and notifier
 * roles) can read; the text before the base64 is the associated data. The
 * nonce is 4 random bytes drawn once per process and the 8-byte big-endian
 * number from chat.event_seq: listeners accept each number once, so a
 * payload copied off the channel and sent again is refused.
 */
#include "chat.h"
#include "events.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "common/base64.h"
#include "executor/spi.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include <openssl/evp.h>

PG_FUNCTION_INFO_V1(chat_rotate_event_key);
PG_FUNCTION_INFO_V1(chat_event_seal);
PG_FUNCTION_INFO_V1(chat_event_open);

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
/* how long a backend trusts its copy of the current key: rotation leads by more */
#define KEY_CACHE_US (5 * USECS_PER_SEC)

static struct
{
	bool		loaded;
	int32		id;
	unsigned char key[KEY_LEN];
	TimestampTz loaded_at;
	unsigned char nonce_prefix[4];
	bool		have_prefix;
	EVP_CIPHER_CTX *ctx;		/* keyed with key: the key schedule is made once */
} cur;

static void KeyContext(void);

/* Read the newest key whose time has come into cur. */
static void
LoadKey(void)
{
	static SPIPlanPtr plan = NULL;
	bool		snap = !ActiveSnapshotSet();
	bool		isnull;
	bytea	   *key;

	if (snap)
		PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	ChatPlanOnce(&plan, "SELECT id, key FROM chat.event_keys WHERE active_from <= now() "
				 "ORDER BY active_from DESC, id DESC LIMIT 1", 0, NULL);
	ChatExec(plan, NULL, NULL, true, 1);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chat: no event key is active, so no event can be sealed"),
				 errhint("Run SELECT chat.rotate_event_key('0') as the extension's owner.")));
	cur.id = DatumGetInt32(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	key = DatumGetByteaPP(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (VARSIZE_ANY_EXHDR(key) != KEY_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("chat: event key %d is not %d bytes", cur.id, KEY_LEN)));
	if (!cur.loaded || memcmp(cur.key, VARDATA_ANY(key), KEY_LEN) != 0)
	{
		memcpy(cur.key, VARDATA_ANY(key), KEY_LEN);
		KeyContext();
	}
	SPI_finish();
	if (snap)
		PopActiveSnapshot();
	cur.loaded = true;
	cur.loaded_at = GetCurrentTimestamp();
}

/* The next number of chat.event_seq, whoever the current user is. */
static uint64
NextSeq(void)
{
	Oid			ns = get_namespace_oid("chat", false);
	Oid			seq = get_relname_relid("event_seq", ns);

	if (!OidIsValid(seq))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("chat: sequence chat.event_seq is missing")));
	return (uint64) nextval_internal(seq, false);
}

/* The cipher context, keyed with cur.key (made again when the key changes). */
static void
KeyContext(void)
{
	if (cur.ctx == NULL)
		cur.ctx = EVP_CIPHER_CTX_new();
	if (cur.ctx == NULL ||
		EVP_EncryptInit_ex(cur.ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
		EVP_CIPHER_CTX_ctrl(cur.ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
		EVP_EncryptInit_ex(cur.ctx, NULL, NULL, cur.key, NULL) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("chat: could not key AES-256-GCM (OpenSSL)")));
}

/* AES-256-GCM of plain under cur.key into out (ciphertext then tag). */
static void
Encrypt(const unsigned char *nonce, const char *aad, int aad_len,
		const char *plain, int len, unsigned char *out)
{
	EVP_CIPHER_CTX *ctx = cur.ctx;
	int			n = 0,
				fin = 0;

	if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
		EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *) aad, aad_len) != 1 ||
		EVP_EncryptUpdate(ctx, out, &n, (const unsigned char *) plain, len) != 1 ||
		EVP_EncryptFinal_ex(ctx, out + n, &fin) != 1 ||
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + n + fin) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("chat: could not seal an event (OpenSSL AES-256-GCM failed)")));
}

/*
 * The sealed form of a payload of at most CHAT_PLAIN_MAX bytes, palloc'd in
 * the current memory context; at most CHAT_NOTIFY_MAX bytes.
 */
char *
ChatSeal(const char *plain)
{
	int			len = (int) strlen(plain);
	unsigned char nonce[NONCE_LEN];
	uint64		seq_be;
	unsigned char *raw;
	StringInfoData out;
	int			aad_len,
				b64;

	Assert(len <= CHAT_PLAIN_MAX);
	if (!cur.loaded || GetCurrentTimestamp() - cur.loaded_at > KEY_CACHE_US)
		LoadKey();
	if (!cur.have_prefix)
	{
		if (!pg_strong_random(cur.nonce_prefix, sizeof(cur.nonce_prefix)))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("chat: no strong random numbers for an event nonce")));
		cur.have_prefix = true;
	}
	memcpy(nonce, cur.nonce_prefix, 4);
	seq_be = pg_hton64(NextSeq());
	memcpy(nonce + 4, &seq_be, 8);

	raw = palloc(NONCE_LEN + len + TAG_LEN);
	memcpy(raw, nonce, NONCE_LEN);
	initStringInfo(&out);
	appendStringInfo(&out, "c1.%d.", cur.id);
	aad_len = out.len;
	Encrypt(nonce, out.data, aad_len, plain, len, raw + NONCE_LEN);
	b64 = pg_b64_enc_len(NONCE_LEN + len + TAG_LEN);
	enlargeStringInfo(&out, b64 + 1);
	b64 = pg_b64_encode((const char *) raw, NONCE_LEN + len + TAG_LEN, out.data + out.len, b64);
	if (b64 < 0)
		elog(ERROR, "chat: base64 of a sealed event failed");
	out.len += b64;
	out.data[out.len] = '\0';
	pfree(raw);
	Assert(out.len <= CHAT_NOTIFY_MAX);
	return out.data;
}

/*
 * chat.rotate_event_key(lead interval): a new random key that the
 * extension starts to seal with after lead (listeners load it before), its id.
 */
Datum
chat_rotate_event_key(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {BYTEAOID, INTERVALOID};
	unsigned char key[KEY_LEN];
	bytea	   *k = palloc(VARHDRSZ + KEY_LEN);
	Datum		values[2];
	bool		isnull;
	int32		id;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lead must not be NULL"),
				 errhint("Pass the time listeners need to load the key, e.g. '2 minutes', or '0'.")));
	if (!pg_strong_random(key, KEY_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("chat: no strong random numbers for an event key")));
	SET_VARSIZE(k, VARHDRSZ + KEY_LEN);
	memcpy(VARDATA(k), key, KEY_LEN);
	explicit_bzero(key, KEY_LEN);
	values[0] = PointerGetDatum(k);
	values[1] = PG_GETARG_DATUM(0);
	SPI_connect();
	ChatPlanOnce(&plan, "INSERT INTO chat.event_keys (id, key, active_from) "
				 "SELECT coalesce(max(id), 0) + 1, $1, now() + $2 FROM chat.event_keys RETURNING id",
				 2, types);
	ChatExec(plan, values, NULL, false, 0);
	id = DatumGetInt32(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	explicit_bzero(VARDATA(k), KEY_LEN);
	cur.loaded = false;
	PG_RETURN_INT32(id);
}

/*
 * chat.event_seal(payload text): payload sealed as the extension seals
 * events, for operators and tests that must publish by hand (owner only).
 */
Datum
chat_event_seal(PG_FUNCTION_ARGS)
{
	char	   *plain = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (strlen(plain) > CHAT_PLAIN_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("payload is %zu bytes; at most %d can be sealed", strlen(plain), CHAT_PLAIN_MAX)));
	PG_RETURN_TEXT_P(cstring_to_text(ChatSeal(plain)));
}

/* The key of id from chat.event_keys, into key; false when there is none. */
static bool
KeyById(int32 id, unsigned char *key)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(id)};
	bool		found,
				isnull;

	SPI_connect();
	ChatPlanOnce(&plan, "SELECT key FROM chat.event_keys WHERE id = $1", 1, types);
	ChatExec(plan, values, NULL, true, 1);
	found = SPI_processed == 1;
	if (found)
	{
		bytea	   *k = DatumGetByteaPP(ChatGetDatum(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

		found = VARSIZE_ANY_EXHDR(k) == KEY_LEN;
		if (found)
			memcpy(key, VARDATA_ANY(k), KEY_LEN);
	}
	SPI_finish();
	return found;
}

/* AES-256-GCM open of raw (nonce, ciphertext, tag) under key into out. */
static bool
Decrypt(const unsigned char *key, const char *aad, int aad_len,
		const unsigned char *raw, int raw_len, char *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int			ct_len = raw_len - NONCE_LEN - TAG_LEN;
	int			n = 0,
				fin = 0;
	bool		ok;

	ok = ctx != NULL &&
		EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
		EVP_DecryptInit_ex(ctx, NULL, NULL, key, raw) == 1 &&
		EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *) aad, aad_len) == 1 &&
		EVP_DecryptUpdate(ctx, (unsigned char *) out, &n, raw + NONCE_LEN, ct_len) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *) (raw + raw_len - TAG_LEN)) == 1 &&
		EVP_DecryptFinal_ex(ctx, (unsigned char *) out + n, &fin) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

/*
 * chat.event_open(sealed text): what a sealed payload holds, for operators
 * and tests (owner only). No check of its number: a listener does that.
 */
Datum
chat_event_open(PG_FUNCTION_ARGS)
{
	char	   *s = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int32		id = 0;
	char	   *dot = NULL;
	unsigned char key[KEY_LEN];
	unsigned char *raw;
	char	   *plain;
	int			raw_len;

	if (strncmp(s, "c1.", 3) == 0)
	{
		id = (int32) strtol(s + 3, &dot, 10);
		if (dot == s + 3 || *dot != '.')
			dot = NULL;
	}
	if (dot == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("not a sealed event payload"),
				 errdetail("A sealed payload is c1.<key id>.<base64>.")));
	raw = palloc(pg_b64_dec_len(strlen(dot + 1)) + 1);
	raw_len = pg_b64_decode(dot + 1, strlen(dot + 1), (char *) raw, pg_b64_dec_len(strlen(dot + 1)));
	if (raw_len < NONCE_LEN + TAG_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("not a sealed event payload: bad base64 or too short")));
	if (!KeyById(id, key))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no event key %d", id)));
	plain = palloc(raw_len - NONCE_LEN - TAG_LEN + 1);
	if (!Decrypt(key, s, (int) (dot + 1 - s), raw, raw_len, plain))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the payload does not open under event key %d: forged or damaged", id)));
	explicit_bzero(key, KEY_LEN);
	plain[raw_len - NONCE_LEN - TAG_LEN] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text(plain));
}
