/*
 * webpush_crypt.c: RFC 8291 / RFC 8188 aes128gcm (webpush_crypt.h), on
 * OpenSSL 3's EVP interfaces. Derived keys live on the stack and are
 * wiped after use.
 */
#include "webpush_crypt.h"

#include "alloc.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define TAG_LEN 16
#define SECRET_LEN 32

EVP_PKEY *
webpush_p256_key(const unsigned char *priv, const unsigned char pub[WEBPUSH_KEY_LEN])
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY_CTX *check = NULL;
	EVP_PKEY   *key = NULL;
	BIGNUM	   *d = priv ? BN_bin2bn(priv, 32, NULL) : NULL;
	int			ok;

	ok = bld && ctx && pub[0] == 4 && (priv == NULL || d) &&
		OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
		OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, WEBPUSH_KEY_LEN) &&
		(d == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d)) &&
		(params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
		EVP_PKEY_fromdata_init(ctx) > 0 &&
		EVP_PKEY_fromdata(ctx, &key, d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) > 0;
	/* a point off the curve would leak the private key through ECDH */
	if (ok)
		ok = (check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) != NULL &&
			EVP_PKEY_public_check(check) > 0;
	if (!ok)
	{
		EVP_PKEY_free(key);
		key = NULL;
	}
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(d);
	return key;
}

int
webpush_p256_public(EVP_PKEY *key, unsigned char pub[WEBPUSH_KEY_LEN])
{
	size_t		len = 0;

	if (EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "uncompressed") <= 0 ||
		EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pub, WEBPUSH_KEY_LEN, &len) <= 0)
		return -1;
	return len == WEBPUSH_KEY_LEN && pub[0] == 4 ? 0 : -1;
}

/* ECDH of our key and theirs: 32 bytes into secret; 0, or -1. */
static int
ecdh(EVP_PKEY *ours, EVP_PKEY *theirs, unsigned char secret[SECRET_LEN])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ours, NULL);
	size_t		len = SECRET_LEN;
	int			ok;

	ok = ctx && EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_derive_set_peer(ctx, theirs) > 0 &&
		EVP_PKEY_derive(ctx, secret, &len) > 0 && len == SECRET_LEN;
	EVP_PKEY_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* HKDF-SHA256 (extract then expand) of ikm under salt, out_len bytes for info. */
static int
hkdf(const unsigned char *salt, size_t salt_len, const unsigned char *ikm, size_t ikm_len,
	 const unsigned char *info, size_t info_len, unsigned char *out, size_t out_len)
{
	EVP_KDF    *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM	params[5];
	int			ok;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt, salt_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) ikm, ikm_len);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) info, info_len);
	params[4] = OSSL_PARAM_construct_end();
	ok = ctx && EVP_KDF_derive(ctx, out, out_len, params) > 0;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return ok ? 0 : -1;
}

/* The content encryption key and nonce of RFC 8291 section 3.4. */
static int
derive(const unsigned char *ua_public, const unsigned char *as_public, const unsigned char *auth,
	   const unsigned char *salt, const unsigned char secret[SECRET_LEN],
	   unsigned char cek[16], unsigned char nonce[12])
{
	static const char cek_info[] = "Content-Encoding: aes128gcm";	/* its NUL included */
	static const char nonce_info[] = "Content-Encoding: nonce";
	unsigned char info[14 + 2 * WEBPUSH_KEY_LEN];
	unsigned char ikm[SECRET_LEN];
	int			rc;

	memcpy(info, "WebPush: info", 14);	/* with its NUL */
	memcpy(info + 14, ua_public, WEBPUSH_KEY_LEN);
	memcpy(info + 14 + WEBPUSH_KEY_LEN, as_public, WEBPUSH_KEY_LEN);
	rc = hkdf(auth, WEBPUSH_AUTH_LEN, secret, SECRET_LEN, info, sizeof(info), ikm, sizeof(ikm)) == 0 &&
		hkdf(salt, WEBPUSH_SALT_LEN, ikm, sizeof(ikm), (const unsigned char *) cek_info, sizeof(cek_info), cek, 16) == 0 &&
		hkdf(salt, WEBPUSH_SALT_LEN, ikm, sizeof(ikm), (const unsigned char *) nonce_info, sizeof(nonce_info), nonce, 12) == 0
		? 0 : -1;
	OPENSSL_cleanse(ikm, sizeof(ikm));
	return rc;
}

/* AES-128-GCM of plain || 0x02 into out, the tag after it; 0, or -1. */
static int
seal_record(const unsigned char cek[16], const unsigned char nonce[12],
			const unsigned char *plain, size_t len, unsigned char *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	static const unsigned char delimiter = 2;	/* the last record, no padding */
	int			n1 = 0,
				n2 = 0,
				n3 = 0;
	int			ok;

	ok = ctx && EVP_EncryptInit_ex2(ctx, EVP_aes_128_gcm(), cek, nonce, NULL) &&
		EVP_EncryptUpdate(ctx, out, &n1, plain, (int) len) &&
		EVP_EncryptUpdate(ctx, out + n1, &n2, &delimiter, 1) &&
		EVP_EncryptFinal_ex(ctx, out + n1 + n2, &n3) &&
		(size_t) (n1 + n2 + n3) == len + 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + len + 1) > 0;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

int
webpush_encrypt_with(const unsigned char ua_public[WEBPUSH_KEY_LEN], const unsigned char auth[WEBPUSH_AUTH_LEN],
					 const unsigned char *plain, size_t len, EVP_PKEY *as_key,
					 const unsigned char salt[WEBPUSH_SALT_LEN], unsigned char **out, size_t *out_len)
{
	unsigned char as_public[WEBPUSH_KEY_LEN];
	unsigned char secret[SECRET_LEN], cek[16], nonce[12];
	EVP_PKEY   *ua_key;
	unsigned char *body;
	int			rc = -1;

	if (len > WEBPUSH_PLAINTEXT_MAX || webpush_p256_public(as_key, as_public) != 0 ||
		(ua_key = webpush_p256_key(NULL, ua_public)) == NULL)
		return -1;
	body = xmalloc(WEBPUSH_HEADER_LEN + len + 1 + TAG_LEN);
	if (ecdh(as_key, ua_key, secret) == 0 &&
		derive(ua_public, as_public, auth, salt, secret, cek, nonce) == 0 &&
		seal_record(cek, nonce, plain, len, body + WEBPUSH_HEADER_LEN) == 0)
		rc = 0;
	EVP_PKEY_free(ua_key);
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(cek, sizeof(cek));
	if (rc != 0)
	{
		free(body);
		return -1;
	}
	/* the RFC 8188 header: salt, rs (big-endian), idlen, keyid = as_public */
	memcpy(body, salt, WEBPUSH_SALT_LEN);
	body[16] = (WEBPUSH_RS >> 24) & 0xff;
	body[17] = (WEBPUSH_RS >> 16) & 0xff;
	body[18] = (WEBPUSH_RS >> 8) & 0xff;
	body[19] = WEBPUSH_RS & 0xff;
	body[20] = WEBPUSH_KEY_LEN;
	memcpy(body + 21, as_public, WEBPUSH_KEY_LEN);
	*out = body;
	*out_len = WEBPUSH_HEADER_LEN + len + 1 + TAG_LEN;
	return 0;
}

int
webpush_encrypt(const unsigned char ua_public[WEBPUSH_KEY_LEN], const unsigned char auth[WEBPUSH_AUTH_LEN],
				const unsigned char *plain, size_t len, unsigned char **out, size_t *out_len)
{
	unsigned char salt[WEBPUSH_SALT_LEN];
	EVP_PKEY   *as_key;
	int			rc;

	if (len > WEBPUSH_PLAINTEXT_MAX || RAND_bytes(salt, sizeof(salt)) != 1)
		return -1;
	/* a fresh key pair per message: a key reused would repeat (key, nonce) */
	if ((as_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL)
		return -1;
	rc = webpush_encrypt_with(ua_public, auth, plain, len, as_key, salt, out, out_len);
	EVP_PKEY_free(as_key);
	return rc;
}
