/*
 * seal.c: opening sealed payloads (seal.h). Strict: one format, one base64
 * alphabet with its padding, no whitespace; anything else is malformed and
 * never reaches a JSON parser.
 */
#include "seal.h"

#include "alloc.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_LEN 12
#define TAG_LEN 16
/* NOTIFY's payload limit bounds what can arrive */
#define PAYLOAD_MAX 8000

const char *const seal_result_names[SEAL_NRESULTS] = {
	[SEAL_OK] = "ok",
	[SEAL_MALFORMED] = "malformed",
	[SEAL_UNKNOWN_KEY] = "unknown_key",
	[SEAL_FORGED] = "forged",
	[SEAL_REPLAYED] = "replayed",
};

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* value of each byte in the alphabet, -1 for the others (64 for '=') */
static signed char b64_table[256];
static bool b64_ready;

static void
b64_table_init(void)
{
	memset(b64_table, -1, sizeof(b64_table));
	for (int i = 0; i < 64; i++)
		b64_table[(unsigned char) b64_chars[i]] = (signed char) i;
	b64_table['='] = 64;
	b64_ready = true;
}

/* Decode standard padded base64 into out (room for len / 4 * 3); its length, or -1. */
static int
b64_decode(const char *in, size_t len, unsigned char *out)
{
	const unsigned char *p = (const unsigned char *) in;
	size_t		n = 0,
				pad;

	if (!b64_ready)
		b64_table_init();
	if (len == 0 || len % 4 != 0)
		return -1;
	pad = (p[len - 1] == '=') + (p[len - 2] == '=');
	for (size_t i = 0; i < len; i += 4)
	{
		int			a = b64_table[p[i]],
					b = b64_table[p[i + 1]],
					c = b64_table[p[i + 2]],
					d = b64_table[p[i + 3]];

		if (i + 4 == len && pad)
		{
			/* "xy==" or "xyz=": the padding only at the very end */
			if (pad == 2)
				c = 0;
			d = 0;
			if (c == 64)
				return -1;
		}
		if ((a | b | c | d) < 0 || a == 64 || b == 64 || c == 64 || d == 64)
			return -1;
		out[n++] = (unsigned char) (a << 2 | b >> 4);
		out[n++] = (unsigned char) (b << 4 | c >> 2);
		out[n++] = (unsigned char) (c << 6 | d);
	}
	return (int) (n - pad);
}

static void
b64_encode(const unsigned char *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i += 3)
	{
		unsigned	v = (unsigned) in[i] << 16 | (i + 1 < len ? (unsigned) in[i + 1] << 8 : 0) |
			(i + 2 < len ? in[i + 2] : 0);

		*out++ = b64_chars[v >> 18 & 63];
		*out++ = b64_chars[v >> 12 & 63];
		*out++ = i + 1 < len ? b64_chars[v >> 6 & 63] : '=';
		*out++ = i + 2 < len ? b64_chars[v & 63] : '=';
	}
	*out = '\0';
}

/* "c1.<id>." at the start of payload: the header's length and the id, or 0. */
static size_t
read_header(const char *p, size_t len, int *id)
{
	size_t		i = 3;
	long		v = 0;

	if (len < 5 || memcmp(p, "c1.", 3) != 0 || p[3] < '1' || p[3] > '9')
		return 0;
	while (i < len && p[i] >= '0' && p[i] <= '9' && i < 3 + 9)
		v = v * 10 + (p[i++] - '0');
	if (i >= len || p[i] != '.')
		return 0;
	*id = (int) v;
	return i + 1;
}

static const struct seal_key *
find_key(const struct seal_ring *r, int id)
{
	for (int i = 0; i < r->nkeys; i++)
		if (r->keys[i].id == id)
			return &r->keys[i];
	return NULL;
}

bool
seal_ring_has_key(const struct seal_ring *r, int id)
{
	return find_key(r, id) != NULL;
}

void
seal_ring_set_keys(struct seal_ring *r, const struct seal_key *keys, int n)
{
	if (n > SEAL_MAX_KEYS)
		n = SEAL_MAX_KEYS;
	memset(r->keys, 0, sizeof(r->keys));
	memcpy(r->keys, keys, (size_t) n * sizeof(*keys));
	r->nkeys = n;
	r->ctx_key = NULL;
}

void
seal_ring_reset(struct seal_ring *r, uint64_t floor)
{
	r->floor = r->newest = floor;
	memset(r->seen, 0, sizeof(r->seen));
}

void
seal_ring_free(struct seal_ring *r)
{
	EVP_CIPHER_CTX_free(r->ctx);
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

/* May number n be accepted? Not yet marked: see accept(). */
static bool
fresh(const struct seal_ring *r, uint64_t n)
{
	if (n <= r->floor || n + SEAL_WINDOW <= r->newest)
		return false;
	if (n > r->newest)
		return true;
	return !(r->seen[n % SEAL_WINDOW / 64] >> (n % 64) & 1);
}

/* Mark n accepted, clearing the bits that fall out of the window. */
static void
accept(struct seal_ring *r, uint64_t n)
{
	if (n > r->newest)
	{
		if (n - r->newest >= SEAL_WINDOW)
			memset(r->seen, 0, sizeof(r->seen));
		else
			for (uint64_t k = r->newest + 1; k < n; k++)
				r->seen[k % SEAL_WINDOW / 64] &= ~(UINT64_C(1) << (k % 64));
		r->newest = n;
	}
	r->seen[n % SEAL_WINDOW / 64] |= UINT64_C(1) << (n % 64);
}

/* AES-256-GCM open of ct (ciphertext then tag) into out; false when it does not authenticate. */
static bool
decrypt(struct seal_ring *r, const struct seal_key *k, const unsigned char *nonce,
		const char *aad, size_t aad_len, const unsigned char *ct, size_t ct_len, unsigned char *out)
{
	EVP_CIPHER_CTX *ctx;
	int			n = 0,
				fin = 0;

	if (r->ctx == NULL)
		r->ctx = EVP_CIPHER_CTX_new();
	ctx = r->ctx;
	if (ctx == NULL)
		return false;
	/* keyed once per key: the key schedule and GHASH tables are not redone per payload */
	if (r->ctx_key != k)
	{
		r->ctx_key = NULL;
		if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
			EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
			EVP_DecryptInit_ex(ctx, NULL, NULL, k->key, NULL) != 1)
			return false;
		r->ctx_key = k;
	}
	return EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) == 1 &&
		EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *) aad, (int) aad_len) == 1 &&
		EVP_DecryptUpdate(ctx, out, &n, ct, (int) (ct_len - TAG_LEN)) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *) (ct + ct_len - TAG_LEN)) == 1 &&
		EVP_DecryptFinal_ex(ctx, out + n, &fin) == 1;
}

enum seal_result
seal_open(struct seal_ring *r, const char *payload, size_t len,
		  const char **plain, size_t *plain_len, int *key_id)
{
	size_t		hl = len <= PAYLOAD_MAX ? read_header(payload, len, key_id) : 0;
	const struct seal_key *k;
	unsigned char *raw;
	int			raw_len;
	uint64_t	n = 0;

	if (hl == 0)
		return SEAL_MALFORMED;
	if (r->buf_size < len)
	{
		free(r->buf);
		r->buf_size = PAYLOAD_MAX * 2;
		r->buf = xmalloc(r->buf_size);
	}
	raw = r->buf + PAYLOAD_MAX;		/* decoded here, opened into buf */
	raw_len = b64_decode(payload + hl, len - hl, raw);
	if (raw_len < NONCE_LEN + TAG_LEN)
		return SEAL_MALFORMED;
	if ((k = find_key(r, *key_id)) == NULL)
		return SEAL_UNKNOWN_KEY;
	if (!decrypt(r, k, raw, payload, hl, raw + NONCE_LEN, (size_t) raw_len - NONCE_LEN, r->buf))
		return SEAL_FORGED;
	for (int i = 4; i < NONCE_LEN; i++)
		n = n << 8 | raw[i];
	if (!fresh(r, n))
		return SEAL_REPLAYED;
	accept(r, n);
	*plain_len = (size_t) raw_len - NONCE_LEN - TAG_LEN;
	r->buf[*plain_len] = '\0';
	*plain = (const char *) r->buf;
	return SEAL_OK;
}

int
seal_seal(const struct seal_key *key, uint64_t seq, const char *plain, size_t len,
		  char *out, size_t out_size)
{
	unsigned char nonce[NONCE_LEN] = {0x5e, 0xa1, 0x00, 0x01};
	size_t		raw_len = NONCE_LEN + len + TAG_LEN;
	unsigned char *raw = xmalloc(raw_len);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int			hl = snprintf(out, out_size, "c1.%d.", key->id),
				n = 0,
				fin = 0;
	bool		ok;

	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (unsigned char) (seq >> (56 - 8 * i));
	memcpy(raw, nonce, NONCE_LEN);
	ok = ctx && hl > 0 && (size_t) hl + (raw_len + 2) / 3 * 4 < out_size &&
		EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
		EVP_EncryptInit_ex(ctx, NULL, NULL, key->key, nonce) == 1 &&
		EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *) out, hl) == 1 &&
		EVP_EncryptUpdate(ctx, raw + NONCE_LEN, &n, (const unsigned char *) plain, (int) len) == 1 &&
		EVP_EncryptFinal_ex(ctx, raw + NONCE_LEN + n, &fin) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, raw + NONCE_LEN + len) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (ok)
		b64_encode(raw, raw_len, out + hl);
	free(raw);
	return ok ? hl + (int) ((raw_len + 2) / 3 * 4) : -1;
}
