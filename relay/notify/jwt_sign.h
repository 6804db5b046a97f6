/*
 * jwt_sign.h: compact JWS (RFC 7515) signed on OpenSSL's EVP: RS256 (FCM's
 * OAuth2 assertion) and ES256 (APNs provider tokens, Web Push's VAPID).
 * Done here rather than with libjwt: its ES256 support and API vary across
 * the versions Debian ships, and this is about a hundred lines.
 */
#ifndef NOTIFY_JWT_SIGN_H
#define NOTIFY_JWT_SIGN_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

/* A private key from PEM text (PKCS#8, or traditional); NULL when unusable. */
EVP_PKEY   *jwt_key_from_pem(const char *pem, size_t len);
/* The same from a file; NULL when unreadable or not a key (nothing logged). */
EVP_PKEY   *jwt_key_from_file(const char *path);
/* key is an EC P-256 one (ES256's, VAPID's). */
bool		jwt_key_is_p256(EVP_PKEY *key);

/*
 * header.claims.signature, malloc'd, with header's "alg": "RS256" needs an
 * RSA key, "ES256" a P-256 key. NULL on any failure (alg and key apart).
 */
char	   *jwt_sign(const json_t *header, const json_t *claims, EVP_PKEY *key);

#endif
