/*
 * jwt_sign.c: compact JWS, RS256 and ES256, on OpenSSL 3's EVP (jwt_sign.h).
 *
 * ES256's signature is r||s, 32 bytes each (RFC 7518 3.4), where OpenSSL
 * gives DER (an ECDSA-Sig-Value): converted here.
 */
#include "jwt_sign.h"

#include "base64url.h"

#include "alloc.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

EVP_PKEY *
jwt_key_from_pem(const char *pem, size_t len)
{
	BIO		   *bio = BIO_new_mem_buf(pem, (int) len);
	EVP_PKEY   *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return key;
}

EVP_PKEY *
jwt_key_from_file(const char *path)
{
	FILE	   *f = fopen(path, "r");
	EVP_PKEY   *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;

	if (f)
		fclose(f);
	return key;
}

bool
jwt_key_is_p256(EVP_PKEY *key)
{
	char		group[64];

	return EVP_PKEY_is_a(key, "EC")
		&& EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL)
		&& strcmp(group, "prime256v1") == 0;
}

/* DER ECDSA-Sig-Value -> r||s in out[64]; 0 or -1. */
static int
der_to_raw(const unsigned char *der, size_t len, unsigned char out[64])
{
	const unsigned char *p = der;
	ECDSA_SIG  *sig = d2i_ECDSA_SIG(NULL, &p, (long) len);
	int			ok;

	if (sig == NULL)
		return -1;
	ok = BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32) == 32
		&& BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32) == 32;
	ECDSA_SIG_free(sig);
	return ok ? 0 : -1;
}

/* The signature of input with SHA-256 (malloc'd, its length in *len). */
static unsigned char *
sign_sha256(EVP_PKEY *key, const char *input, size_t *len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *sig = NULL;

	*len = 0;
	if (ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1
		&& EVP_DigestSign(ctx, NULL, len, (const unsigned char *) input, strlen(input)) == 1)
	{
		sig = xmalloc(*len);
		if (EVP_DigestSign(ctx, sig, len, (const unsigned char *) input, strlen(input)) != 1)
		{
			free(sig);
			sig = NULL;
		}
	}
	EVP_MD_CTX_free(ctx);
	return sig;
}

/* base64url of the JSON object's compact text. */
static char *
b64url_json(const json_t *j)
{
	char	   *text = json_dumps(j, JSON_COMPACT);
	char	   *out = text ? base64url_encode_new((unsigned char *) text, strlen(text)) : NULL;

	free(text);
	return out;
}

char *
jwt_sign(const json_t *header, const json_t *claims, EVP_PKEY *key)
{
	const char *alg = json_string_value(json_object_get(header, "alg"));
	bool		es = alg && strcmp(alg, "ES256") == 0;
	char	   *h = NULL, *c = NULL, *input = NULL, *s = NULL, *jwt = NULL;
	unsigned char *sig = NULL, raw[64];
	size_t		len;

	if (key == NULL || alg == NULL || (es ? !jwt_key_is_p256(key) : strcmp(alg, "RS256") != 0 || !EVP_PKEY_is_a(key, "RSA")))
		return NULL;
	h = b64url_json(header);
	c = b64url_json(claims);
	if (h == NULL || c == NULL)
		goto out;
	xasprintf(&input, "%s.%s", h, c);
	sig = sign_sha256(key, input, &len);
	if (sig == NULL || (es && der_to_raw(sig, len, raw) != 0))
		goto out;
	s = es ? base64url_encode_new(raw, sizeof(raw)) : base64url_encode_new(sig, len);
	xasprintf(&jwt, "%s.%s", input, s);
out:
	free(h);
	free(c);
	free(input);
	free(sig);
	free(s);
	return jwt;
}
