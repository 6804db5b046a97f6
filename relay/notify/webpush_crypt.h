/*
 * webpush_crypt.h: RFC 8291 message encryption for Web Push: ECDH P-256
 * with the subscription's p256dh key, HKDF-SHA256 keyed with its auth
 * secret, then RFC 8188 "aes128gcm" with one record of rs 4096 (the 0x02
 * delimiter, no padding).
 */
#ifndef NOTIFY_WEBPUSH_CRYPT_H
#define NOTIFY_WEBPUSH_CRYPT_H

#include <openssl/evp.h>
#include <stddef.h>

#define WEBPUSH_KEY_LEN 65		/* an uncompressed P-256 point */
#define WEBPUSH_AUTH_LEN 16
#define WEBPUSH_SALT_LEN 16
#define WEBPUSH_RS 4096
#define WEBPUSH_HEADER_LEN (WEBPUSH_SALT_LEN + 4 + 1 + WEBPUSH_KEY_LEN)
/* RFC 8291 section 4: 4096 - header 86 - tag 16 - delimiter 1 */
#define WEBPUSH_PLAINTEXT_MAX 3993

/*
 * The aes128gcm body for plaintext (len bytes) to ua_public and auth, from
 * the sender's key pair as_key and salt (for tests: the RFC's example);
 * malloc'd into *out. 0, or -1 (a plaintext too long, a bad key).
 */
int			webpush_encrypt_with(const unsigned char ua_public[WEBPUSH_KEY_LEN],
								 const unsigned char auth[WEBPUSH_AUTH_LEN],
								 const unsigned char *plain, size_t len,
								 EVP_PKEY *as_key, const unsigned char salt[WEBPUSH_SALT_LEN],
								 unsigned char **out, size_t *out_len);

/* The same with a fresh key pair and salt: what is sent. */
int			webpush_encrypt(const unsigned char ua_public[WEBPUSH_KEY_LEN],
							const unsigned char auth[WEBPUSH_AUTH_LEN],
							const unsigned char *plain, size_t len,
							unsigned char **out, size_t *out_len);

/*
 * A P-256 key from its raw parts: pub (65 bytes, uncompressed) alone, or
 * with the private scalar priv (32 bytes; NULL: public only). NULL when
 * they are not a key on the curve.
 */
EVP_PKEY   *webpush_p256_key(const unsigned char *priv, const unsigned char pub[WEBPUSH_KEY_LEN]);

/* The uncompressed point of key into pub; 0, or -1. */
int			webpush_p256_public(EVP_PKEY *key, unsigned char pub[WEBPUSH_KEY_LEN]);

#endif
