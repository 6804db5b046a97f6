/*
 * base64url.h: the URL-safe base64 of RFC 4648 section 5 without padding,
 * which Web Push speaks everywhere (subscription keys, VAPID's JWT and key).
 */
#ifndef NOTIFY_BASE64URL_H
#define NOTIFY_BASE64URL_H

#include <stddef.h>

/* The encoded length of n bytes (no padding, no NUL). */
#define BASE64URL_LEN(n) (((n) * 4 + 2) / 3)

/* Encode n bytes into out (room for BASE64URL_LEN(n) + 1); NUL-ended. */
void		base64url_encode(const unsigned char *in, size_t n, char *out);

/* Encode n bytes into a new string (the caller frees it). */
char	   *base64url_encode_new(const unsigned char *in, size_t n);

/*
 * Decode base64url (trailing '=' tolerated, and '+' '/' of plain base64:
 * some clients send a subscription's keys so); the length, or -1 when it is
 * not base64 or over cap bytes.
 */
int			base64url_decode(const char *in, size_t len, unsigned char *out, size_t cap);

#endif
