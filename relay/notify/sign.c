/*
 * sign.c: Standard Webhooks signatures (sign.h), HMAC-SHA256 through
 * OpenSSL's EVP_MAC, fed the three parts in turn so the body is not
 * copied. Keys live on the stack and are wiped after use.
 */
#include "sign.h"

#include "base64url.h"

#include "alloc.h"
#include "log.h"

#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_B64_LEN 44			/* base64 of 32 bytes */

static EVP_MAC *hmac;

/* HMAC-SHA256 of id.ts.body under key, as base64 in out; 0, or -1. */
static int
sign_one(const unsigned char *key, size_t key_len, const char *id, const char *ts,
		 const char *body, size_t body_len, char out[SIG_B64_LEN + 1])
{
	OSSL_PARAM	params[2];
	unsigned char mac[32];
	size_t		mac_len = 0;
	EVP_MAC_CTX *ctx;
	int			ok;

	if (hmac == NULL && (hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		return -1;
	if ((ctx = EVP_MAC_CTX_new(hmac)) == NULL)
		return -1;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	ok = EVP_MAC_init(ctx, key, key_len, params) &&
		EVP_MAC_update(ctx, (const unsigned char *) id, strlen(id)) &&
		EVP_MAC_update(ctx, (const unsigned char *) ".", 1) &&
		EVP_MAC_update(ctx, (const unsigned char *) ts, strlen(ts)) &&
		EVP_MAC_update(ctx, (const unsigned char *) ".", 1) &&
		EVP_MAC_update(ctx, (const unsigned char *) body, body_len) &&
		EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) && mac_len == sizeof(mac);
	EVP_MAC_CTX_free(ctx);
	if (!ok)
		return -1;
	EVP_EncodeBlock((unsigned char *) out, mac, (int) sizeof(mac));
	return 0;
}

/* Sign with one secret "whsec_…" of length len, appending "v1,<sig>" to sig. */
static int
sign_secret(const char *secret, size_t len, const char *id, const char *ts,
			const char *body, size_t body_len, char *sig)
{
	unsigned char key[SIGN_MAX_KEY];
	char		b64[SIG_B64_LEN + 1];
	int			key_len;
	int			rc;

	if (len <= 6 || strncmp(secret, "whsec_", 6) != 0)
		return -1;
	key_len = base64url_decode(secret + 6, len - 6, key, sizeof(key));
	rc = key_len > 0 ? sign_one(key, (size_t) key_len, id, ts, body, body_len, b64) : -1;
	OPENSSL_cleanse(key, sizeof(key));
	if (rc != 0)
		return -1;
	if (*sig)
		strcat(sig, " ");
	strcat(sig, "v1,");
	strcat(sig, b64);
	return 0;
}

char *
sign_webhook(const char *secrets, const char *msg_id, int64_t timestamp,
			 const char *body, size_t body_len)
{
	char		ts[24];
	size_t		n = 0;
	char	   *sig;

	for (const char *p = secrets; *p; p++)
		n += *p == ' ';
	/* "v1," + 44 per secret, a space between, a NUL */
	sig = xcalloc(1, (n + 1) * (3 + SIG_B64_LEN + 1) + 1);
	snprintf(ts, sizeof(ts), "%" PRId64, timestamp);
	for (const char *p = secrets; *p;)
	{
		size_t		len = strcspn(p, " ");

		if (len > 0 && sign_secret(p, len, msg_id, ts, body, body_len, sig) != 0)
		{
			free(sig);
			return NULL;
		}
		p += len;
		p += *p == ' ';
	}
	if (*sig == '\0')
	{
		free(sig);
		return NULL;
	}
	return sig;
}

void
sign_free(void)
{
	EVP_MAC_free(hmac);
	hmac = NULL;
}
