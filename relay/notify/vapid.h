/*
 * vapid.h: RFC 8292 VAPID: the Authorization header of a Web Push request,
 * "vapid t=<JWT ES256>, k=<public key>", signed with the configured EC
 * P-256 key; one per push service origin, kept and reused for hours.
 */
#ifndef NOTIFY_VAPID_H
#define NOTIFY_VAPID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long a token is good for, and how long before its end a new one is made. */
#define VAPID_LIFETIME_S (12 * 3600)
#define VAPID_RENEW_S 3600
/* Origins whose header is kept. */
#define VAPID_CACHE 64

/*
 * Load the PEM private key (EC P-256) at path, with subject (mailto:… or
 * https://…, the JWT's sub): 0, or -1 (logged) and the key in use, if
 * any, is kept. Headers made with the old key are forgotten.
 */
int			vapid_load(const char *path, const char *subject);

bool		vapid_loaded(void);

/* The public key as base64url of its uncompressed point (applicationServerKey); NULL: none. */
const char *vapid_public_key(void);

/* "scheme://host[:port]" of url into out; 0, or -1 when it is not http(s)://host… */
int			vapid_origin(const char *url, char *out, size_t cap);

/*
 * The Authorization header value for a request to endpoint, from the
 * cache or made now (malloc'd; the caller frees it). NULL when no key is
 * loaded, the endpoint has no origin or signing failed.
 */
char	   *vapid_authorization(const char *endpoint);

/* The JWT for aud expiring at exp (malloc'd), not cached: for tests. */
char	   *vapid_jwt(const char *aud, int64_t exp);

void		vapid_free(void);

#endif
