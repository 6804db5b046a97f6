/*
 * vapid.c: VAPID (vapid.h). The JWT is ES256: OpenSSL signs in DER, JWS
 * wants r || s of 32 bytes each. Headers are cached per origin (a
 * signature per push would cost an ECDSA each time) and remade an hour
 * before they expire; the cache is small and the soonest to expire goes.
 */
#include "vapid.h"

#include "jwt_sign.h"

#include "alloc.h"
#include "base64url.h"
#include "log.h"
#include "webpush_crypt.h"

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ORIGIN_MAX 256

struct cached
{
	char		origin[ORIGIN_MAX];
	char	   *header;
	int64_t		exp;
};

static EVP_PKEY *key;
static char *subject;
static char public_b64[BASE64URL_LEN(WEBPUSH_KEY_LEN) + 1];
static struct cached cache[VAPID_CACHE];

static void
cache_clear(void)
{
	for (int i = 0; i < VAPID_CACHE; i++)
	{
		free(cache[i].header);
		cache[i] = (struct cached) {0};
	}
}

/* The key at path if it is an EC P-256 private key, else NULL (logged). */
static EVP_PKEY *
read_key(const char *path)
{
	EVP_PKEY   *k = jwt_key_from_file(path);

	if (k && !jwt_key_is_p256(k))
	{
		EVP_PKEY_free(k);
		k = NULL;
	}
	if (k == NULL)
		log_error("vapid_key_file %s: not readable, or not a PEM private key of EC P-256", path);
	return k;
}

int
vapid_load(const char *path, const char *sub)
{
	unsigned char pub[WEBPUSH_KEY_LEN];
	EVP_PKEY   *k = read_key(path);

	if (k == NULL)
		return -1;
	if (webpush_p256_public(k, pub) != 0)
	{
		log_error("vapid_key_file %s: its public key cannot be had", path);
		EVP_PKEY_free(k);
		return -1;
	}
	EVP_PKEY_free(key);
	key = k;
	free(subject);
	subject = xstrdup(sub);
	base64url_encode(pub, sizeof(pub), public_b64);
	cache_clear();
	return 0;
}

bool
vapid_loaded(void)
{
	return key != NULL;
}

const char *
vapid_public_key(void)
{
	return key ? public_b64 : NULL;
}

int
vapid_origin(const char *url, char *out, size_t cap)
{
	const char *host;
	size_t		len;

	if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else
		return -1;
	/* the authority ends at the path, query or fragment; no user@ in it */
	len = (size_t) (host - url) + strcspn(host, "/?#");
	if (len == (size_t) (host - url) || len >= cap || memchr(host, '@', len - (size_t) (host - url)))
		return -1;
	memcpy(out, url, len);
	out[len] = '\0';
	return 0;
}

char *
vapid_jwt(const char *aud, int64_t exp)
{
	json_t	   *header,
			   *claims;
	char	   *jwt;

	if (key == NULL)
		return NULL;
	header = json_pack("{s:s, s:s}", "typ", "JWT", "alg", "ES256");
	claims = json_pack("{s:s, s:I, s:s}", "aud", aud, "exp", (json_int_t) exp, "sub", subject);
	jwt = header && claims ? jwt_sign(header, claims, key) : NULL;
	json_decref(header);
	json_decref(claims);
	return jwt;
}

/* The cache entry for origin, or the one to replace. */
static struct cached *
cache_slot(const char *origin)
{
	struct cached *victim = &cache[0];

	for (int i = 0; i < VAPID_CACHE; i++)
	{
		if (cache[i].header && strcmp(cache[i].origin, origin) == 0)
			return &cache[i];
		if (cache[i].header == NULL || (victim->header && cache[i].exp < victim->exp))
			victim = &cache[i];
	}
	return victim;
}

char *
vapid_authorization(const char *endpoint)
{
	char		origin[ORIGIN_MAX];
	int64_t		now = (int64_t) time(NULL);
	struct cached *slot;
	char	   *jwt;

	if (key == NULL || vapid_origin(endpoint, origin, sizeof(origin)) != 0)
		return NULL;
	slot = cache_slot(origin);
	if (slot->header && strcmp(slot->origin, origin) == 0 && slot->exp - VAPID_RENEW_S > now)
		return xstrdup(slot->header);
	if ((jwt = vapid_jwt(origin, now + VAPID_LIFETIME_S)) == NULL)
		return NULL;
	free(slot->header);
	snprintf(slot->origin, sizeof(slot->origin), "%s", origin);
	xasprintf(&slot->header, "vapid t=%s, k=%s", jwt, public_b64);
	slot->exp = now + VAPID_LIFETIME_S;
	free(jwt);
	return xstrdup(slot->header);
}

void
vapid_free(void)
{
	cache_clear();
	EVP_PKEY_free(key);
	key = NULL;
	free(subject);
	subject = NULL;
}
